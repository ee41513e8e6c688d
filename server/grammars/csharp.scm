; Symbols of a C# file (capture convention: see rust.scm).
; Members (methods, constructors, properties, constants) sit in their class, struct, record or
; interface, which becomes their container; types sit in their namespace. A file-scoped
; `namespace Foo;` holds the rest of its file (code.rs widens it). Doc comments are the `///`
; XML doc lines (or `/** */`, `//`) right above a definition; `[…]` attributes are part of the
; declaration, so ranges include them.

(namespace_declaration
  name: (_) @name) @definition.module

(file_scoped_namespace_declaration
  name: (_) @name) @definition.module

(class_declaration
  name: (identifier) @name) @definition.class

; `record struct` is a value type; `record` and `record class` are classes.
(record_declaration
  "struct"
  name: (identifier) @name) @definition.struct

(record_declaration
  name: (identifier) @name) @definition.class

(struct_declaration
  name: (identifier) @name) @definition.struct

(interface_declaration
  name: (identifier) @name) @definition.interface

(enum_declaration
  name: (identifier) @name) @definition.enum

; A delegate names a method signature: a type.
(delegate_declaration
  name: (identifier) @name) @definition.type

(method_declaration
  name: (identifier) @name) @definition.method

(constructor_declaration
  name: (identifier) @name) @definition.method

; A property is a pair of accessor methods (`{ get; set; }`, `=> value`).
(property_declaration
  name: (identifier) @name) @definition.method

; `const int A = 1, B = 2;`: named after its first constant.
(field_declaration
  (modifier
    "const")
  (variable_declaration
    (variable_declarator
      name: (identifier) @name))) @definition.constant
