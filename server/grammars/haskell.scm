; Symbols of a Haskell file (capture convention: see rust.scm).
; A function is its type signature and the equations that follow it: each is captured here, and
; code.rs merges a signature with the equations of the same name after it (the pragmas and
; comments between them included) into one symbol named by the signature. Docs are Haddock
; `-- |` and `{-| -}` comments right above; a plain `--` comment is a note. A type class is a
; trait whose signatures are its methods (declared without a body unless the class gives a
; default); an instance is an impl named after the type it is for (`instance Monad (Parser i)`
; is `Parser`'s), holding the methods it defines. Bindings in `where` and `let` stay in their
; function's text. The module header (its Haddock and export list) is the file's module symbol
; (header.rs).

(class
  name: (_) @name) @definition.trait

(instance
  patterns: (type_patterns) @name) @definition.impl

(data_type
  name: (_) @name) @definition.struct

(newtype
  name: (_) @name) @definition.struct

(type_synonym
  name: (_) @name) @definition.type

(type_family
  name: (_) @name) @definition.type

(data_family
  name: (_) @name) @definition.type

; `x, y :: Int`: the first name names the signature.
(signature
  names: (binding_list
    .
    (_) @name)) @definition.function

(signature
  name: (_) @name) @definition.function

(function
  name: (_) @name) @definition.function

; An operator or backticked function defined infix: `p <?> msg = …`, ``a `plus` b = …``.
(function
  (infix
    operator: (_) @name)) @definition.function

(bind
  name: (_) @name) @definition.function

(foreign_import
  (signature
    name: (_) @name)) @definition.function
