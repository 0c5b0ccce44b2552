//! Target languages of the code generators.

use std::fmt;
use std::str::FromStr;

/// A language the `mycelium codegen` command can target.
///
/// Python and OCaml generators are planned; they are named here so the CLI can
/// tell a user that they exist but are not built yet, rather than calling the
/// name unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lang {
    /// Rust structs implementing `mycelium_protocol::Message`.
    Rust,
}

impl Lang {
    /// Every language with a working generator, in the order shown to users.
    pub const ALL: &'static [Lang] = &[Lang::Rust];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Languages that have a planned generator which does not exist yet.
const PLANNED: &[&str] = &["python", "ocaml"];

/// Why a language name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LangError {
    /// The language is planned but its generator is not written yet.
    #[error("the {0} code generator is not built yet (available: {avail})", avail = available())]
    NotBuiltYet(String),
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
        if PLANNED.contains(&lower.as_str()) {
            Err(LangError::NotBuiltYet(lower))
        } else {
            Err(LangError::Unknown(s.to_owned()))
        }
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
    fn planned_languages_say_not_built_yet() {
        let err = "python".parse::<Lang>().unwrap_err();
        assert_eq!(err, LangError::NotBuiltYet("python".into()));
        assert!(err.to_string().contains("not built yet"), "{err}");
        assert!(matches!(
            "ocaml".parse::<Lang>(),
            Err(LangError::NotBuiltYet(_))
        ));
    }

    #[test]
    fn unknown_language_lists_the_available_ones() {
        let err = "cobol".parse::<Lang>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown language 'cobol' (available: rust)"
        );
    }
}
