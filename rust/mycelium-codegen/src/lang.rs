//! Target languages of the code generators.

use std::fmt;
use std::str::FromStr;

/// A language the `mycelium codegen` command can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lang {
    /// Rust structs implementing `mycelium_protocol::Message`.
    Rust,
    /// One Python module of dataclasses (standard library only).
    Python,
    /// One OCaml module (`.ml`) plus its interface (`.mli`).
    OCaml,
}

impl Lang {
    /// Every language with a working generator, in the order shown to users.
    pub const ALL: &'static [Lang] = &[Lang::Rust, Lang::Python, Lang::OCaml];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::OCaml => "ocaml",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a language name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LangError {
    /// The name matches no language at all.
    #[error("unknown language '{0}' (available: {avail})", avail = available())]
    Unknown(String),
}

fn available() -> String {
    Lang::ALL
        .iter()
        .map(|l| l.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Lang {
    type Err = LangError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        if let Some(lang) = Lang::ALL.iter().find(|l| l.name() == lower) {
            return Ok(*lang);
        }
        Err(LangError::Unknown(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rust_case_insensitively() {
        assert_eq!("rust".parse::<Lang>(), Ok(Lang::Rust));
        assert_eq!("Rust".parse::<Lang>(), Ok(Lang::Rust));
    }

    #[test]
    fn every_language_parses_from_its_name() {
        for lang in Lang::ALL {
            assert_eq!(lang.name().parse::<Lang>(), Ok(*lang));
            assert_eq!(lang.name().to_uppercase().parse::<Lang>(), Ok(*lang));
        }
        assert_eq!("OCaml".parse::<Lang>(), Ok(Lang::OCaml));
    }

    #[test]
    fn unknown_language_lists_the_available_ones() {
        let err = "cobol".parse::<Lang>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown language 'cobol' (available: rust, python, ocaml)"
        );
    }
}
