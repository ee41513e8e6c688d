; Symbols of a C file (capture convention: see rust.scm).
; Only definitions count: prototypes and forward declarations have no body and are skipped.

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
  ]) @definition.function

(struct_specifier
  name: (type_identifier) @name
  body: (_)) @definition.struct

(union_specifier
  name: (type_identifier) @name
  body: (_)) @definition.struct

(enum_specifier
  name: (type_identifier) @name
  body: (_)) @definition.enum

; `typedef struct { … } point_t;`: the anonymous type is known by its typedef name.
(type_definition
  type: (struct_specifier
    !name
    body: (_))
  declarator: (type_identifier) @name) @definition.struct

(type_definition
  type: (union_specifier
    !name
    body: (_))
  declarator: (type_identifier) @name) @definition.struct

(type_definition
  type: (enum_specifier
    !name
    body: (_))
  declarator: (type_identifier) @name) @definition.enum

(preproc_function_def
  name: (identifier) @name) @definition.macro
