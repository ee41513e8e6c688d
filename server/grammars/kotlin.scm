; Symbols of a Kotlin file (capture convention: see rust.scm).
; Annotations and modifiers are children of a declaration, so ranges include them. Doc comments
; are the KDoc `/** */` (or `//`) comments right above a declaration. A companion object is not
; a symbol of its own: what it declares is called through its class (`Account.open()`), so its
; members sit in the class.

; `enum class`, `interface` and `fun interface` are class declarations with a keyword.
(class_declaration
  (modifiers
    (class_modifier
      "enum"))
  name: (identifier) @name) @definition.enum

(class_declaration
  "interface"
  name: (identifier) @name) @definition.interface

; `class`, `data class`, `sealed class`, `value class`, `annotation class`, …
(class_declaration
  name: (identifier) @name) @definition.class

; A singleton object holds members like a class does.
(object_declaration
  name: (identifier) @name) @definition.class

; An extension function (`fun List<T>.second()`, `fun String?.orEmpty()`) is called like a
; method of its receiver type, which becomes its container.
(function_declaration
  [
    (user_type) @container
    (nullable_type
      (user_type) @container)
  ]
  .
  name: (identifier) @name) @definition.method

(function_declaration
  name: (identifier) @name) @definition.function

; `constructor(…) : this(…)` has no name of its own; the class is its container.
(secondary_constructor
  "constructor" @name) @definition.method

; `const val LIMIT = 10`
(property_declaration
  (modifiers
    (property_modifier
      "const"))
  (variable_declaration
    (identifier) @name)) @definition.constant

; An extension property (`val String.lastChar: Char get() = …`) sits in its receiver type.
(property_declaration
  [
    (user_type) @container
    (nullable_type
      (user_type) @container)
  ]
  .
  (variable_declaration
    (identifier) @name)) @definition.method

; An interface's properties are abstract accessors: its API.
(class_declaration
  "interface"
  (class_body
    (property_declaration
      (variable_declaration
        (identifier) @name)) @definition.method))

; A property with a getter or setter is code: a pair of accessor methods.
(property_declaration
  (variable_declaration
    (identifier) @name)
  [
    (getter)
    (setter)
  ]) @definition.method

(type_alias
  type: (identifier) @name) @definition.type
