; Symbols of a C++ file (capture convention: see rust.scm).
; Only definitions count: prototypes and forward declarations have no body and are skipped.
; Out-of-class definitions (`void Foo::bar() {…}`) capture the qualified name; the code
; splits it into the method `bar` and its container `Foo`. `template <…>` is not captured:
; the code widens a definition to its `template_declaration`.

(function_definition
  declarator: [
    (function_declarator
      declarator: (_) @name)
    (pointer_declarator
      declarator: (function_declarator
        declarator: (_) @name))
    (pointer_declarator
      declarator: (pointer_declarator
        declarator: (function_declarator
          declarator: (_) @name)))
    (reference_declarator
      (function_declarator
        declarator: (_) @name))
  ]
  ; `= default` and `= delete` definitions have no body and say little.
  body: (_)) @definition.function

(class_specifier
  name: (_) @name
  body: (_)) @definition.class

(struct_specifier
  name: (_) @name
  body: (_)) @definition.struct

(union_specifier
  name: (_) @name
  body: (_)) @definition.struct

(enum_specifier
  name: (_) @name
  body: (_)) @definition.enum

(type_definition
  type: (struct_specifier
    !name
    body: (_))
  declarator: (type_identifier) @name) @definition.struct

(type_definition
  type: (enum_specifier
    !name
    body: (_))
  declarator: (type_identifier) @name) @definition.enum

(namespace_definition
  name: (_) @name) @definition.module

(alias_declaration
  name: (type_identifier) @name) @definition.type

(preproc_function_def
  name: (identifier) @name) @definition.macro
