; Symbols of a Python file (capture convention: see rust.scm).
; Decorators are not captured: the code widens a definition to its `decorated_definition`.

(class_definition
  name: (identifier) @name) @definition.class

(function_definition
  name: (identifier) @name) @definition.function

; Module-level constants, by the PEP 8 naming convention.
(module
  (expression_statement
    (assignment
      left: (identifier) @name)) @definition.constant
  (#match? @name "^[A-Z][A-Z0-9_]*$"))
