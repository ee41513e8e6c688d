; Symbols of a Rust file.
;
; Capture convention (shared by every grammars/*.scm file):
;   @definition.<kind>  the whole definition; <kind> is a SymbolKind name
;   @name               the symbol's name
;   @container          optional: the enclosing type when the syntax names it (Go receivers)
; A function whose nearest enclosing symbol is an impl/trait/struct/class becomes a method in
; code, so functions are captured once here. When several patterns capture the same node, the
; first pattern in the file wins.

(function_item
  name: (identifier) @name) @definition.function

; Required trait methods have no body but are documented API.
(trait_item
  body: (declaration_list
    (function_signature_item
      name: (identifier) @name) @definition.method))

(struct_item
  name: (type_identifier) @name) @definition.struct

(union_item
  name: (type_identifier) @name) @definition.struct

(enum_item
  name: (type_identifier) @name) @definition.enum

(trait_item
  name: (type_identifier) @name) @definition.trait

; `impl Display for Foo` is named after the implementing type (`Foo`); the code strips
; generics and paths from it.
(impl_item
  type: (_) @name) @definition.impl

(type_item
  name: (type_identifier) @name) @definition.type

; Only inline modules: `mod foo;` is a file reference, not a symbol.
(mod_item
  name: (identifier) @name
  body: (declaration_list)) @definition.module

(macro_definition
  name: (identifier) @name) @definition.macro

(const_item
  name: (identifier) @name) @definition.constant

(static_item
  name: (identifier) @name) @definition.constant
