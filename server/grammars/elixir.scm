; Symbols of an Elixir file (capture convention: see rust.scm).
; Everything is a call in the grammar: `defmodule Foo do … end` is a call of `defmodule` with an
; alias and a do block. Functions sit in their module; a dotted module name (`Plug.Conn`) is
; named by its last part with the rest as container (code.rs). Docs are the `@doc`/`@moduledoc`
; strings (code.rs reads them from the siblings and the module body), else `#` lines above;
; adjacent clauses of one function are one symbol (code.rs).

(call
  target: (identifier) @_keyword
  (arguments
    .
    (alias) @name)
  (#eq? @_keyword "defmodule")) @definition.module

(call
  target: (identifier) @_keyword
  (arguments
    .
    (alias) @name)
  (#eq? @_keyword "defprotocol")) @definition.interface

; `defimpl Proto, for: Type` is named after the type it implements the protocol for; inside a
; module, without `for:`, after the protocol.
(call
  target: (identifier) @_keyword
  (arguments
    (keywords
      (pair
        key: (keyword) @_for
        value: (alias) @name)))
  (#eq? @_keyword "defimpl")
  (#match? @_for "^for:")) @definition.impl

(call
  target: (identifier) @_keyword
  (arguments
    .
    (alias) @name)
  (#eq? @_keyword "defimpl")) @definition.impl

; `defstruct` and `defexception` define the struct of their module, named after it.
(call
  target: (identifier) @_keyword
  (arguments
    .
    (alias) @name)
  (do_block
    (call
      target: (identifier) @_struct
      (#any-of? @_struct "defstruct" "defexception")) @definition.struct)
  (#eq? @_keyword "defmodule"))

; Functions, with parentheses or without (`def zero, do: 0`), with a guard or without; names
; keep their `?` and `!`.
(call
  target: (identifier) @_keyword
  (arguments
    .
    [
      (identifier) @name
      (call
        target: (identifier) @name)
      (binary_operator
        left: (call
          target: (identifier) @name)
        operator: "when")
      (binary_operator
        left: (identifier) @name
        operator: "when")
    ])
  (#any-of? @_keyword "def" "defp" "defdelegate" "defn" "defnp")) @definition.function

(call
  target: (identifier) @_keyword
  (arguments
    .
    [
      (identifier) @name
      (call
        target: (identifier) @name)
      (binary_operator
        left: (call
          target: (identifier) @name)
        operator: "when")
      (binary_operator
        left: (identifier) @name
        operator: "when")
    ])
  (#any-of? @_keyword "defmacro" "defmacrop" "defguard" "defguardp")) @definition.macro

; ExUnit: `test "deposits money" do … end` is a test named by its string.
(call
  target: (identifier) @_keyword
  (arguments
    .
    (string) @name)
  (do_block)
  (#eq? @_keyword "test")) @definition.function
