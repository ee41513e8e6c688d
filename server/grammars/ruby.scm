; Symbols of a Ruby file (capture convention: see rust.scm).
; A `def` inside a class or module becomes a method in code; `def self.x` is a method of the
; object it names. Doc comments are the `#` lines right above a definition (RDoc, YARD).

(class
  name: [
    (constant) @name
    (scope_resolution
      name: (_) @name)
  ]) @definition.class

(module
  name: [
    (constant) @name
    (scope_resolution
      name: (_) @name)
  ]) @definition.module

(method
  name: (_) @name) @definition.function

(singleton_method
  name: (_) @name) @definition.method

; `class << self … end` holds class methods: it is their container, named after `self`'s class
; by nesting, so it is not a symbol of its own.

; Constants assigned at the top of a file or in a class or module body.
(program
  (assignment
    left: (constant) @name) @definition.constant)

(body_statement
  (assignment
    left: (constant) @name) @definition.constant)
