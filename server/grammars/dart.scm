; Symbols of a Dart file (capture convention: see rust.scm).
; Annotations (`@override`) are children of a declaration, so ranges include them. Doc comments
; are the `///` lines or `/** */` block right above a declaration. Fields, enum values and
; constructors without a body are left in their type's text.

(class_declaration
  name: (identifier) @name) @definition.class

(extension_type_declaration
  name: (extension_type_name
    (identifier) @name)) @definition.class

(extension_type_declaration
  name: (identifier) @name) @definition.class

; A mixin is mixed into classes (`with Observable`), as a trait is.
(mixin_declaration
  name: (identifier) @name) @definition.trait

; `extension StringParsing on String { … }` adds methods to a type declared elsewhere, as a
; Rust impl does.
(extension_declaration
  name: (identifier) @name) @definition.impl

(extension_declaration
  !name
  class: (type) @name) @definition.impl

(enum_declaration
  name: (identifier) @name) @definition.enum

; Top-level functions, getters and setters.
(function_declaration
  signature: (function_signature
    name: (identifier) @name)) @definition.function

(getter_declaration
  signature: (getter_signature
    name: (identifier) @name)) @definition.function

(setter_declaration
  signature: (setter_signature
    name: (identifier) @name)) @definition.function

; Members with a body: methods, getters, setters, operators and constructors. A named
; constructor (`Builder.fromList(…)`) is named by its second part.
(method_declaration
  signature: (method_signature
    [
      (function_signature
        name: (identifier) @name)
      (getter_signature
        name: (identifier) @name)
      (setter_signature
        name: (identifier) @name)
      (operator_signature
        operator: _ @name)
    ])) @definition.method

(method_declaration
  signature: (method_signature
    [
      (constructor_signature
        name: (identifier)
        "."
        name: (identifier) @name)
      (factory_constructor_signature
        name: (identifier)
        "."
        name: (identifier) @name)
    ])) @definition.method

(method_declaration
  signature: (method_signature
    [
      (constructor_signature
        name: (identifier) @name)
      (factory_constructor_signature
        name: (identifier) @name)
    ])) @definition.method

; An abstract member (an interface's API): a signature without a body.
(declaration
  [
    (function_signature
      name: (identifier) @name)
    (getter_signature
      name: (identifier) @name)
    (setter_signature
      name: (identifier) @name)
  ]) @definition.method

; `const` and `static const`/`static final` values.
(top_level_variable_declaration
  (static_final_declaration_list
    (static_final_declaration
      name: (identifier) @name))) @definition.constant

(declaration
  [
    "static"
    "const"
  ]
  (static_final_declaration_list
    (static_final_declaration
      name: (identifier) @name))) @definition.constant

(type_alias
  (type_identifier) @name) @definition.type
