; Patterns shared by JavaScript and TypeScript, appended to javascript.scm and typescript.scm
; when their queries are compiled (capture convention: see rust.scm).

; `module.exports = function query(options) {…}`: a module that exports one named function is
; known by the function's own name, not as `exports` (before the pattern below, which it wins).
(expression_statement
  (assignment_expression
    left: (member_expression
      property: (property_identifier) @_exports)
    right: [
      (function_expression name: (identifier) @name)
      (generator_function name: (identifier) @name)
    ])
  (#eq? @_exports "exports")) @definition.function

; `Foo.prototype.bar = function (…) {…}`: a method of `Foo`, as in a class.
(expression_statement
  (assignment_expression
    left: (member_expression
      object: (member_expression
        object: (identifier) @container
        property: (property_identifier) @_prototype)
      property: (property_identifier) @name)
    right: [(arrow_function) (function_expression) (generator_function)])
  (#eq? @_prototype "prototype")) @definition.method

; `module.exports.parse = function (…) {…}`, `a.b.c = (…) => {…}`.
(expression_statement
  (assignment_expression
    left: (member_expression
      property: (property_identifier) @name)
    right: [(arrow_function) (function_expression) (generator_function)])) @definition.function

; Top-level calls that define a name: a named function passed as an argument (express's
; `defineGetter(req, 'ip', function ip() {…})`), and the property-defining helpers with the
; name as a string (`Object.defineProperty(obj, 'name', {get() {…}})`). Only at the top level:
; inside a function such a symbol would make the function a container of it.
(program
  (expression_statement
    (call_expression
      arguments: (arguments
        (function_expression
          name: (identifier) @name)))) @definition.function)

(program
  (expression_statement
    (call_expression
      function: [
        (identifier) @_define
        (member_expression
          property: (property_identifier) @_define)
      ]
      arguments: (arguments
        (_)
        (string
          (string_fragment) @name)
        [(object) (function_expression) (arrow_function)])) @definition.function)
  (#match? @_define "^(defineProperty|defineGetter|defineSetter|__defineGetter__|__defineSetter__)$"))
