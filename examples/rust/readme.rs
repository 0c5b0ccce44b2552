//! Not a library: the README's Rust snippet as a doctest. `cargo test --workspace` (scripts/
//! test-rust.sh) compiles and runs every ```rust block of the top-level README.md, so the
//! snippet cannot drift from the API (the C, Python and OCaml snippets are run by their suites
//! through scripts/readme_snippet.py).

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeSnippets;
