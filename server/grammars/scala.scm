; Symbols of a Scala file, Scala 2 and 3 (capture convention: see rust.scm).
; Annotations and modifiers are children of a definition, so ranges include them. Doc comments
; are the Scaladoc `/** */` (or `//` lines) right above a definition. A `case class` is a class
; and a `case object` a value of its own (a class); any other `object`, companion or not, is a
; namespace whose members are called through it (`Merge.merge`): an object, which ranks like an
; impl block. A `package object` is a module. Local `val`s and the fields of a class are left in
; its text; a member `val` whose value is a function or an anonymous class is code, and a symbol.

(trait_definition
  name: (_) @name) @definition.trait

(enum_definition
  name: (_) @name) @definition.enum

(class_definition
  name: (_) @name) @definition.class

(object_definition
  "case"
  name: (_) @name) @definition.class

(object_definition
  name: (_) @name) @definition.object

(package_object
  name: (_) @name) @definition.module

; A Scala 3 extension method (`extension (s: String) def words …`) is called like a method of
; its receiver's type, which becomes its container.
(extension_definition
  parameters: (parameters
    (parameter
      type: (_) @container))
  body: (function_definition
    name: (_) @name) @definition.method)

(function_definition
  name: (_) @name) @definition.function

; An abstract member (`def parse(s: String): JValue` in a trait) is API.
(function_declaration
  name: (_) @name) @definition.function

; `given Ordering[Int] with { … }` has a name only when it is given one.
(given_definition
  name: (_) @name) @definition.function

; A member holding a function or an anonymous class: `val parse: String => JValue = s => …`,
; `implicit val formats = new DefaultFormats { … }`.
(template_body
  (val_definition
    pattern: (identifier) @name
    value: [
      (lambda_expression)
      (instance_expression
        (template_body))
      ; the same on the lines after the `=`
      (indented_block
        [
          (lambda_expression)
          (instance_expression
            (template_body))
        ])
    ]) @definition.function)

(type_definition
  name: (_) @name) @definition.type
