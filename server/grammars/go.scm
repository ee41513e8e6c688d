; Symbols of a Go file (capture convention: see rust.scm).
; A lone `type`/`const` spec is widened by the code to its declaration (`type Foo struct`),
; while specs of a grouped `type ( … )` block stay separate symbols.

(function_declaration
  name: (identifier) @name) @definition.function

; The receiver type (without `*` and type arguments) is the method's container.
(method_declaration
  receiver: (parameter_list
    (parameter_declaration
      type: (_) @container))
  name: (field_identifier) @name) @definition.method

(type_spec
  name: (type_identifier) @name
  type: (struct_type)) @definition.struct

(type_spec
  name: (type_identifier) @name
  type: (interface_type)) @definition.interface

(type_spec
  name: (type_identifier) @name) @definition.type

(type_alias
  name: (type_identifier) @name) @definition.type

(method_elem
  name: (field_identifier) @name) @definition.method

(source_file
  (const_declaration
    (const_spec
      name: (identifier) @name) @definition.constant))
