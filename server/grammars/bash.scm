; Symbols of a Bash (or POSIX sh) script and of bats test files (capture convention: see
; rust.scm). Functions are `name() { … }`, `function name { … }` and `function name() { … }`;
; doc comments are the `#` lines right above one (a `#!` shebang is not a doc).

(function_definition
  name: (word) @name) @definition.function

; bats: `@test "does a thing" { … }` is a test named by its string. The grammar does not know it:
; it sees an `@test` command and the body's lines and the closing `}` as the commands after it,
; so code.rs widens the command to that `}`.
(program
  (command
    name: (command_name) @_test
    .
    argument: [
      (string)
      (raw_string)
      (word)
    ] @name
    (#eq? @_test "@test")) @definition.function)
