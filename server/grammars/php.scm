; Symbols of a PHP file (capture convention: see rust.scm), HTML around `<?php` included.
; Methods sit in their class, interface, trait or enum, which becomes their container. Doc
; comments are the PHPDoc `/** */` blocks (or `//`, `#` lines) right above a definition; PHP 8
; `#[…]` attributes belong to the definition's range.

(function_definition
  name: (name) @name) @definition.function

(class_declaration
  name: (name) @name) @definition.class

(interface_declaration
  name: (name) @name) @definition.interface

(trait_declaration
  name: (name) @name) @definition.trait

(enum_declaration
  name: (name) @name) @definition.enum

(method_declaration
  name: (name) @name) @definition.method

; `namespace Foo { … }` holds what it declares; `namespace Foo;` is a file-wide statement.
(namespace_definition
  name: (namespace_name) @name
  body: (compound_statement)) @definition.module

; `const A = 1, B = 2;` in a class or a file: named after its first constant.
(const_declaration
  (const_element
    (name) @name)) @definition.constant
