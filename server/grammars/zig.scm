; Symbols of a Zig file (capture convention: see rust.scm).
; Zig names its types by binding them: `const Stack = struct { … };` is the struct `Stack`, and
; the functions in its braces are its methods. Doc comments are the `///` lines right above a
; declaration; the `//!` lines of a file are its header (header.rs). Struct fields stay in their
; type's text.

; A function that returns a type built in its body (`fn ArrayList(comptime T: type) type {
; return struct { … }; }`) is that generic type: its methods sit in it. First, so that it wins
; over the plain function pattern below.
(function_declaration
  name: (identifier) @name
  type: (builtin_type) @_type
  body: (block
    (expression_statement
      (return_expression
        [
          (struct_declaration)
          (union_declaration)
          (enum_declaration)
          (opaque_declaration)
        ])))
  (#eq? @_type "type")) @definition.struct

; `fn`, `pub fn`, `export fn`, `extern fn` (no body), `inline fn`.
(function_declaration
  name: (identifier) @name) @definition.function

; Containers bound to a name; `extern`/`packed` and `struct(u8)` are part of the same node.
(variable_declaration
  .
  (identifier) @name
  (struct_declaration)) @definition.struct

; An untagged or tagged union holds fields like a struct (Rust's `union` is a struct too).
(variable_declaration
  .
  (identifier) @name
  (union_declaration)) @definition.struct

(variable_declaration
  .
  (identifier) @name
  (enum_declaration)) @definition.enum

; An opaque type may still declare functions in its braces.
(variable_declaration
  .
  (identifier) @name
  (opaque_declaration)) @definition.struct

; An error set is an enumeration of error names.
(variable_declaration
  .
  (identifier) @name
  (error_set_declaration)) @definition.enum

; `test "name" { … }` is a test named by its string, `test decl { … }` a doctest named after the
; declaration it documents. A test block only builds under `zig test`: its `test` keyword is its
; container, as Rust tests sit in `mod tests` (the ranking's priors take both for tests). A
; nameless `test { … }` (usually `refAllDecls`) is left out.
(test_declaration
  "test" @container
  (string
    (string_content) @name)) @definition.function

(test_declaration
  "test" @container
  (identifier) @name) @definition.function

; Other constants and variables of a file or container (the value is the last child, after any
; type), except what only names something defined elsewhere: imports (`@import("std")`, `@import("x.zig").Y`), `@This()`, and aliases
; (`const Allocator = std.mem.Allocator;`).
(variable_declaration
  .
  (identifier) @name
  (_) @_value
  .
  (#not-match? @_value "^(@import|@This|@cImport|@embedFile|[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$)")) @definition.constant
