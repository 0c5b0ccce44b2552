//! A tiny indented-text builder shared by the generators.

/// Accumulates generated source one line at a time, indenting by four spaces per level.
#[derive(Debug, Default)]
pub(crate) struct CodeWriter {
    out: String,
    indent: usize,
}

impl CodeWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends one line at the current indentation; an empty `text` gives an empty line
    /// without trailing spaces, so generated files stay `rustfmt`-clean.
    pub(crate) fn line(&mut self, text: impl AsRef<str>) {
        let text = text.as_ref();
        if !text.is_empty() {
            for _ in 0..self.indent {
                self.out.push_str("    ");
            }
            self.out.push_str(text);
        }
        self.out.push('\n');
    }

    /// Appends `open`, then runs `body` one level deeper, then appends `close`.
    pub(crate) fn block(
        &mut self,
        open: impl AsRef<str>,
        close: &str,
        body: impl FnOnce(&mut Self),
    ) {
        self.line(open);
        self.indent += 1;
        body(self);
        self.indent -= 1;
        self.line(close);
    }

    /// Appends `open`, then runs `body` one level deeper, with no closing line (for
    /// indentation-delimited languages such as Python).
    pub(crate) fn nest(&mut self, open: impl AsRef<str>, body: impl FnOnce(&mut Self)) {
        self.line(open);
        self.indent += 1;
        body(self);
        self.indent -= 1;
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_nested_blocks_and_keeps_blank_lines_bare() {
        let mut w = CodeWriter::new();
        w.block("fn f() {", "}", |w| {
            w.line("let a = 1;");
            w.line("");
            w.block("if a == 1 {", "}", |w| w.line("g();"));
        });
        assert_eq!(
            w.finish(),
            "fn f() {\n    let a = 1;\n\n    if a == 1 {\n        g();\n    }\n}\n"
        );
    }
}
