; Symbols of a Swift file (capture convention: see rust.scm).
; The grammar has one `class_declaration` for classes, structs, enums, actors and extensions,
; told apart by its keyword. `@attributes` and modifiers are children of a declaration, so
; ranges include them. Doc comments are the `///` lines or `/** */` block right above a
; declaration. Operator functions (`static func + (…)`) and stored instance properties are left
; in their type's text.

(class_declaration
  declaration_kind: "struct"
  name: (type_identifier) @name) @definition.struct

(class_declaration
  declaration_kind: "enum"
  name: (type_identifier) @name) @definition.enum

; An extension adds to a type declared elsewhere, as a Rust impl does; what it declares sits in
; the extended type.
(class_declaration
  declaration_kind: "extension"
  name: (_) @name) @definition.impl

; `class` and `actor`.
(class_declaration
  name: (type_identifier) @name) @definition.class

(protocol_declaration
  name: (type_identifier) @name) @definition.interface

; `name` also labels the return type: only an identifier is the function's name.
(function_declaration
  name: (simple_identifier) @name) @definition.function

(protocol_function_declaration
  name: (simple_identifier) @name) @definition.method

; `init(…)`, `init?(…)` and `subscript(…)` are named by their keyword.
(init_declaration
  "init" @name) @definition.method

(subscript_declaration
  "subscript" @name) @definition.method

; A computed property (`var isEmpty: Bool { … }`) and a protocol's property requirement
; (`var owner: String { get }`) are accessors.
(property_declaration
  name: (pattern
    bound_identifier: (simple_identifier) @name)
  computed_value: (computed_property)) @definition.method

(protocol_property_declaration
  name: (pattern
    bound_identifier: (simple_identifier) @name)) @definition.method

; `static let` in a type and `let` at the top level are constants.
(property_declaration
  (modifiers
    (property_modifier
      "static"))
  (value_binding_pattern
    mutability: "let")
  name: (pattern
    bound_identifier: (simple_identifier) @name)) @definition.constant

(source_file
  (property_declaration
    (value_binding_pattern
      mutability: "let")
    name: (pattern
      bound_identifier: (simple_identifier) @name)) @definition.constant)

(typealias_declaration
  name: (type_identifier) @name) @definition.type

(macro_declaration
  (simple_identifier) @name) @definition.macro
