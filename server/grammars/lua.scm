; Symbols of a Lua file (capture convention: see rust.scm).
; Lua has no classes: a module or class is a table, and its functions are stored in it. The
; table a function is stored in is its container (`M` in `function M.new()`, `function M:push()`,
; `M.f = function() end`, `local M = { f = function() end }`); `:` makes a method. Doc comments
; are the `--` lines (LuaLS/LDoc `---`) and `--[[ ]]` blocks right above a definition.

; function M.new() … end, function a.b.c() … end: the last table of the path holds it.
(function_declaration
  name: (dot_index_expression
    table: [
      (identifier) @container
      (dot_index_expression
        field: (identifier) @container)
    ]
    field: (identifier) @name)) @definition.function

; function M:push(x) … end: called with `self`.
(function_declaration
  name: (method_index_expression
    table: [
      (identifier) @container
      (dot_index_expression
        field: (identifier) @container)
    ]
    method: (identifier) @name)) @definition.method

; function f() … end, local function f() … end
(function_declaration
  name: (identifier) @name) @definition.function

; M.f = function() … end. Everywhere a function value may be the fallback of a polyfill,
; `M.f = M.f or function() … end` (`table.unpack = table.unpack or function`, a returned table's
; `setfenv = setfenv or function`).
(assignment_statement
  (variable_list
    .
    name: (dot_index_expression
      table: [
        (identifier) @container
        (dot_index_expression
          field: (identifier) @container)
      ]
      field: (identifier) @name))
  (expression_list
    .
    value: [(function_definition) (binary_expression "or" right: (function_definition))])) @definition.function

; local f = function() … end (the declaration holds the comments above it)
(variable_declaration
  (assignment_statement
    (variable_list
      .
      name: (identifier) @name)
    (expression_list
      .
      value: [(function_definition) (binary_expression "or" right: (function_definition))]))) @definition.function

; f = function() … end
(chunk
  (assignment_statement
    (variable_list
      .
      name: (identifier) @name)
    (expression_list
      .
      value: [(function_definition) (binary_expression "or" right: (function_definition))])) @definition.function)

; M = { f = function() … end }, and `local M = { … }`, whose assignment is inside a
; declaration: functions in a module table.
(assignment_statement
  (variable_list
    .
    name: (identifier) @container)
  (expression_list
    .
    value: (table_constructor
      (field
        name: (identifier) @name
        value: [(function_definition) (binary_expression "or" right: (function_definition))]) @definition.function)))

; return { f = function() … end }: a module returned as a table literal.
(return_statement
  (expression_list
    .
    (table_constructor
      (field
        name: (identifier) @name
        value: [(function_definition) (binary_expression "or" right: (function_definition))]) @definition.function)))
