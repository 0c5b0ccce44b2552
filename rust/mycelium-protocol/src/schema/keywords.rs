//! Reserved words of the languages code is generated for. A field called `type` or `end`
//! would make the generated Rust, Python or OCaml fail to compile or need escaping that
//! differs per language, so the schema rejects such names up front.

/// Rust strict and reserved keywords (2024 edition), lowercase ones only: field names
/// cannot start with an upper-case letter anyway.
const RUST: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Python 3 keywords and soft keywords (lowercase ones).
const PYTHON: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "case", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "match", "nonlocal", "not", "or", "pass", "raise", "return", "try", "type", "while",
    "with", "yield",
];

/// OCaml 5 keywords.
const OCAML: &[&str] = &[
    "and",
    "as",
    "assert",
    "asr",
    "begin",
    "class",
    "constraint",
    "do",
    "done",
    "downto",
    "effect",
    "else",
    "end",
    "exception",
    "external",
    "false",
    "for",
    "fun",
    "function",
    "functor",
    "if",
    "in",
    "include",
    "inherit",
    "initializer",
    "land",
    "lazy",
    "let",
    "lor",
    "lsl",
    "lsr",
    "lxor",
    "match",
    "method",
    "mod",
    "module",
    "mutable",
    "new",
    "nonrec",
    "object",
    "of",
    "open",
    "or",
    "private",
    "rec",
    "sig",
    "struct",
    "then",
    "to",
    "true",
    "try",
    "type",
    "val",
    "virtual",
    "when",
    "while",
    "with",
];

/// The languages in which `name` is a keyword, e.g. `"Rust, Python and OCaml"`, or `None`.
pub(crate) fn keyword_languages(name: &str) -> Option<String> {
    let hits: Vec<&str> = [("Rust", RUST), ("Python", PYTHON), ("OCaml", OCAML)]
        .into_iter()
        .filter(|(_, words)| words.contains(&name))
        .map(|(language, _)| language)
        .collect();
    match hits.as_slice() {
        [] => None,
        [one] => Some((*one).to_owned()),
        [init @ .., last] => Some(format!("{} and {last}", init.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::keyword_languages;

    #[test]
    fn names_every_language_that_reserves_the_word() {
        assert_eq!(
            keyword_languages("type").as_deref(),
            Some("Rust, Python and OCaml")
        );
        assert_eq!(keyword_languages("fn").as_deref(), Some("Rust"));
        assert_eq!(keyword_languages("lambda").as_deref(), Some("Python"));
        assert_eq!(keyword_languages("val").as_deref(), Some("OCaml"));
        assert_eq!(
            keyword_languages("class").as_deref(),
            Some("Python and OCaml")
        );
        assert_eq!(keyword_languages("price"), None);
    }
}
