; Symbols of a JavaScript (and JSX) file (capture convention: see rust.scm).
; `export` and `export default` are not captured: the code widens a definition to its
; `export_statement`, so the range and signature include the keyword.

(function_declaration
  name: (identifier) @name) @definition.function

(generator_function_declaration
  name: (identifier) @name) @definition.function

(class_declaration
  name: (identifier) @name) @definition.class

(method_definition
  name: (_) @name) @definition.method

; Class fields holding functions (`handleClick = () => {…}`) are methods in all but syntax.
(field_definition
  property: (_) @name
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.method

; `const handler = async (req) => {…}`, `let f = function () {…}`, `var C = class {…}`.
(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function

(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function

(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: (class))) @definition.class

(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: (class))) @definition.class

; Chained assignments give one function several names: `res.contentType = res.type = function
; contentType(type) {…}`, `var proto = module.exports = function (options) {…}`. The symbol takes
; the first name; the others stay in its signature.
(expression_statement
  (assignment_expression
    left: (member_expression
      property: (property_identifier) @name)
    right: (assignment_expression
      right: [(arrow_function) (function_expression) (generator_function)]))) @definition.function

(expression_statement
  (assignment_expression
    left: (member_expression
      property: (property_identifier) @name)
    right: (assignment_expression
      right: (assignment_expression
        right: [(arrow_function) (function_expression) (generator_function)])))) @definition.function

(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: (assignment_expression
      right: [(arrow_function) (function_expression) (generator_function)]))) @definition.function

(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: (assignment_expression
      right: [(arrow_function) (function_expression) (generator_function)]))) @definition.function

; Top-level constants, by the SCREAMING_CASE convention.
(program
  (lexical_declaration
    (variable_declarator
      name: (identifier) @name)) @definition.constant
  (#match? @name "^[A-Z][A-Z0-9_]*$"))

(program
  (export_statement
    declaration: (lexical_declaration
      (variable_declarator
        name: (identifier) @name)) @definition.constant)
  (#match? @name "^[A-Z][A-Z0-9_]*$"))

