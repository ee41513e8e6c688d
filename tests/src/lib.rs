//! End-to-end tests for coder-lsp live in `tests/tests/`; this library is empty on purpose.
