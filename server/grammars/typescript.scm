; Symbols of a TypeScript file; compiled against both the TypeScript and the TSX grammar
; (capture convention: see rust.scm). `export`, `export default` and `declare` are not
; captured: the code widens a definition to its `export_statement` / `ambient_declaration`.

(function_declaration
  name: (identifier) @name) @definition.function

(generator_function_declaration
  name: (identifier) @name) @definition.function

(class_declaration
  name: (type_identifier) @name) @definition.class

(abstract_class_declaration
  name: (type_identifier) @name) @definition.class

(method_definition
  name: (_) @name) @definition.method

; Signatures in interfaces and abstract classes carry the API's documentation.
(method_signature
  name: (_) @name) @definition.method

(abstract_method_signature
  name: (_) @name) @definition.method

; Class fields holding functions (`handleClick = () => {…}`) are methods in all but syntax.
(public_field_definition
  name: (_) @name
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.method

(interface_declaration
  name: (type_identifier) @name) @definition.interface

(type_alias_declaration
  name: (type_identifier) @name) @definition.type

(enum_declaration
  name: (identifier) @name) @definition.enum

; `namespace Foo {…}` and `module Foo {…}` / `declare module "foo" {…}`.
(internal_module
  name: (_) @name) @definition.module

(module
  name: (_) @name) @definition.module

; `const handler = async (req: Request) => {…}`, `let f = function () {…}`.
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

