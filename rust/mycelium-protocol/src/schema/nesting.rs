//! A linear pre-scan that refuses deeply nested YAML before the YAML parser sees it.
//!
//! libyaml (through serde_yaml_ng) takes time quadratic in the nesting depth of what it is
//! given: 40 000 levels of `[` took 5 s, 100 000 more than 30 s. A valid schema nests about
//! six levels (schema, messages, message, fields, field), so anything deeper than the schema's
//! own limit, [`MAX_NESTING_DEPTH`](super::MAX_NESTING_DEPTH), cannot be a schema and is
//! refused here, in one pass, without allocating per byte.
//!
//! The scan mirrors libyaml's scanner (unsafe-libyaml 0.2, a port of libyaml 0.2.5) token by
//! token: each token is classified by its first character exactly as libyaml does, so a `[`
//! is counted precisely when libyaml would open a flow collection for it, and the block depth
//! follows libyaml's own indentation stack (`roll_indent` / `unroll_indent`). Quoted scalars,
//! plain scalars, block scalars (`|`, `>`), comments, tags and anchors are skipped with
//! libyaml's rules, so brackets inside them are not nesting. Where libyaml would stop with a
//! syntax error the scan simply carries on: libyaml never reads past that point, so whatever
//! the scan decides about the rest cannot let a deep input through.

/// Where the text first nests deeper than the limit (1-based, columns in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep {
    pub limit: usize,
    pub line: usize,
    pub column: usize,
}

/// Checks that no point of `text` nests more than `limit` collections deep (flow collections
/// plus block indentation levels), in time linear in the length of `text`.
pub(crate) fn check(text: &str, limit: usize) -> Result<(), TooDeep> {
    Scanner::new(text.as_bytes(), limit).run().map(|_| ())
}

/// The deepest nesting the scan sees in `text` (for tests and the fuzz target that compares
/// the scan with libyaml's own tokens).
pub(crate) fn max_depth(text: &str) -> usize {
    Scanner::new(text.as_bytes(), usize::MAX)
        .run()
        .expect("no limit")
}

/// A simple key (`key: value` without `?`) at flow level 0: only those roll the block
/// indentation, at the key's column, when their `:` arrives.
#[derive(Clone, Copy)]
struct SimpleKey {
    line: usize,
    index: usize,
    column: usize,
}

struct Scanner<'a> {
    text: &'a [u8],
    limit: usize,
    pos: usize,
    line: usize,
    column: usize,
    flow_level: usize,
    /// libyaml's indentation stack; the current indent is the last entry, -1 when empty.
    indents: Vec<isize>,
    simple_key_allowed: bool,
    key0: Option<SimpleKey>,
    max_depth: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a [u8], limit: usize) -> Self {
        Scanner {
            text,
            limit,
            pos: 0,
            line: 0,
            column: 0,
            flow_level: 0,
            indents: Vec::new(),
            // libyaml's stream start allows a simple key.
            simple_key_allowed: true,
            key0: None,
            max_depth: 0,
        }
    }

    fn at(&self, offset: usize) -> u8 {
        // Past the end reads as NUL, like libyaml's zero-padded buffer.
        self.text.get(self.pos + offset).copied().unwrap_or(0)
    }

    fn is_z(&self, offset: usize) -> bool {
        self.at(offset) == 0
    }

    fn is_blank(&self, offset: usize) -> bool {
        matches!(self.at(offset), b' ' | b'\t')
    }

    /// Line breaks as libyaml counts them: CR, LF, NEL, LS, PS.
    fn is_break(&self, offset: usize) -> bool {
        match self.at(offset) {
            b'\r' | b'\n' => true,
            0xC2 => self.at(offset + 1) == 0x85,
            0xE2 => self.at(offset + 1) == 0x80 && matches!(self.at(offset + 2), 0xA8 | 0xA9),
            _ => false,
        }
    }

    fn is_breakz(&self, offset: usize) -> bool {
        self.is_break(offset) || self.is_z(offset)
    }

    fn is_blankz(&self, offset: usize) -> bool {
        self.is_blank(offset) || self.is_breakz(offset)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// Advances over one character (one column).
    fn skip(&mut self) {
        let width = match self.at(0) {
            b if b < 0x80 => 1,
            b if b & 0xE0 == 0xC0 => 2,
            b if b & 0xF0 == 0xE0 => 3,
            _ => 4,
        };
        self.pos = (self.pos + width).min(self.text.len());
        self.column += 1;
    }

    /// Advances over one line break (CR LF counts as one).
    fn skip_line(&mut self) {
        if self.at(0) == b'\r' && self.at(1) == b'\n' {
            self.pos += 2;
        } else {
            self.skip();
        }
        self.line += 1;
        self.column = 0;
    }

    fn indent(&self) -> isize {
        self.indents.last().copied().unwrap_or(-1)
    }

    fn depth_check(&mut self, line: usize, column: usize) -> Result<(), TooDeep> {
        let depth = self.indents.len() + self.flow_level;
        self.max_depth = self.max_depth.max(depth);
        if depth > self.limit {
            return Err(TooDeep {
                limit: self.limit,
                line: line + 1,
                column: column + 1,
            });
        }
        Ok(())
    }

    fn roll_indent(&mut self, column: usize, line: usize) -> Result<(), TooDeep> {
        if self.flow_level == 0 && self.indent() < column as isize {
            self.indents.push(column as isize);
            self.depth_check(line, column)?;
        }
        Ok(())
    }

    fn unroll_indent(&mut self, column: isize) {
        if self.flow_level == 0 {
            while self.indent() > column {
                self.indents.pop();
            }
        }
    }

    /// Only the flow-level-0 key matters: keys inside flow collections never roll indents.
    fn save_simple_key(&mut self) {
        if self.flow_level == 0 && self.simple_key_allowed {
            self.key0 = Some(SimpleKey {
                line: self.line,
                index: self.pos,
                column: self.column,
            });
        }
    }

    fn remove_simple_key(&mut self) {
        if self.flow_level == 0 {
            self.key0 = None;
        }
    }

    fn is_document_indicator(&self) -> bool {
        self.column == 0
            && ((self.at(0) == b'-' && self.at(1) == b'-' && self.at(2) == b'-')
                || (self.at(0) == b'.' && self.at(1) == b'.' && self.at(2) == b'.'))
            && self.is_blankz(3)
    }

    /// Returns the deepest nesting seen.
    fn run(mut self) -> Result<usize, TooDeep> {
        loop {
            self.scan_to_next_token();
            // A simple key must sit on one line and within 1024 bytes of its `:`.
            if let Some(key) = self.key0 {
                if key.line < self.line || key.index + 1024 < self.pos {
                    self.key0 = None;
                }
            }
            self.unroll_indent(self.column as isize);
            if self.at_end() {
                return Ok(self.max_depth);
            }
            let (line, column) = (self.line, self.column);
            let c = self.at(0);
            if column == 0 && c == b'%' {
                self.unroll_indent(-1);
                self.remove_simple_key();
                self.simple_key_allowed = false;
                while !self.is_breakz(0) {
                    self.skip();
                }
                if self.is_break(0) {
                    self.skip_line();
                }
            } else if self.is_document_indicator() {
                self.unroll_indent(-1);
                self.remove_simple_key();
                self.simple_key_allowed = false;
                self.skip();
                self.skip();
                self.skip();
            } else if c == b'[' || c == b'{' {
                self.save_simple_key();
                self.flow_level += 1;
                self.depth_check(line, column)?;
                self.simple_key_allowed = true;
                self.skip();
            } else if c == b']' || c == b'}' {
                self.remove_simple_key();
                self.flow_level = self.flow_level.saturating_sub(1);
                self.simple_key_allowed = false;
                self.skip();
            } else if c == b',' {
                self.remove_simple_key();
                self.simple_key_allowed = true;
                self.skip();
            } else if c == b'-' && self.is_blankz(1) {
                self.roll_indent(column, line)?;
                self.simple_key_allowed = true;
                self.remove_simple_key();
                self.skip();
            } else if c == b'?' && (self.flow_level > 0 || self.is_blankz(1)) {
                self.roll_indent(column, line)?;
                self.remove_simple_key();
                self.simple_key_allowed = self.flow_level == 0;
                self.skip();
            } else if c == b':' && (self.flow_level > 0 || self.is_blankz(1)) {
                let key = if self.flow_level == 0 {
                    self.key0.take()
                } else {
                    None
                };
                match key {
                    Some(key) => {
                        self.roll_indent(key.column, key.line)?;
                        self.simple_key_allowed = false;
                    }
                    None => {
                        // In a flow collection the level's own key decides; either way
                        // nothing rolls there and `simple_key_allowed` ends up false.
                        self.roll_indent(column, line)?;
                        self.simple_key_allowed = self.flow_level == 0;
                    }
                }
                self.skip();
            } else if c == b'*' || c == b'&' {
                self.save_simple_key();
                self.simple_key_allowed = false;
                self.skip();
                while is_alpha(self.at(0)) {
                    self.skip();
                }
            } else if c == b'!' {
                self.save_simple_key();
                self.simple_key_allowed = false;
                self.scan_tag();
            } else if (c == b'|' || c == b'>') && self.flow_level == 0 {
                self.remove_simple_key();
                self.simple_key_allowed = true;
                self.scan_block_scalar();
            } else if c == b'\'' || c == b'"' {
                self.save_simple_key();
                self.simple_key_allowed = false;
                self.scan_quoted(c == b'\'');
            } else if self.plain_can_start() {
                self.save_simple_key();
                self.simple_key_allowed = false;
                if self.scan_plain() {
                    self.simple_key_allowed = true;
                }
            } else {
                // libyaml stops here ("cannot start any token"); nothing after matters.
                self.skip();
            }
        }
    }

    fn scan_to_next_token(&mut self) {
        loop {
            if self.column == 0 && self.at(0) == 0xEF && self.at(1) == 0xBB && self.at(2) == 0xBF {
                self.skip();
            }
            while self.at(0) == b' '
                || ((self.flow_level > 0 || !self.simple_key_allowed) && self.at(0) == b'\t')
            {
                self.skip();
            }
            if self.at(0) == b'#' {
                while !self.is_breakz(0) {
                    self.skip();
                }
            }
            if !self.is_break(0) {
                return;
            }
            self.skip_line();
            if self.flow_level == 0 {
                self.simple_key_allowed = true;
            }
        }
    }

    fn plain_can_start(&self) -> bool {
        let c = self.at(0);
        let indicator = self.is_blankz(0)
            || matches!(
                c,
                b'-' | b'?'
                    | b':'
                    | b','
                    | b'['
                    | b']'
                    | b'{'
                    | b'}'
                    | b'#'
                    | b'&'
                    | b'*'
                    | b'!'
                    | b'|'
                    | b'>'
                    | b'\''
                    | b'"'
                    | b'%'
                    | b'@'
                    | b'`'
            );
        !indicator
            || (c == b'-' && !self.is_blank(1))
            || (self.flow_level == 0 && (c == b'?' || c == b':') && !self.is_blankz(1))
    }

    /// A plain scalar, possibly over several lines. Returns whether it crossed a line break
    /// (libyaml then allows a simple key again).
    fn scan_plain(&mut self) -> bool {
        let indent = self.indent() + 1;
        let mut leading_blanks = false;
        loop {
            if self.is_document_indicator() || self.at(0) == b'#' {
                break;
            }
            while !self.is_blankz(0) {
                let c = self.at(0);
                if self.flow_level > 0
                    && c == b':'
                    && matches!(self.at(1), b',' | b'?' | b'[' | b']' | b'{' | b'}')
                {
                    // A libyaml error; stop the scalar and carry on.
                    return leading_blanks;
                }
                if (c == b':' && self.is_blankz(1))
                    || (self.flow_level > 0 && matches!(c, b',' | b'[' | b']' | b'{' | b'}'))
                {
                    break;
                }
                // libyaml clears its `leading_blanks` as soon as the scalar goes on after a line
                // break, so a tab later on that line is no indentation error there either.
                leading_blanks = false;
                self.skip();
            }
            if !(self.is_blank(0) || self.is_break(0)) {
                break;
            }
            while self.is_blank(0) || self.is_break(0) {
                if self.is_blank(0) {
                    if leading_blanks && (self.column as isize) < indent && self.at(0) == b'\t' {
                        // A libyaml error ("tab violates indentation"); carry on.
                        return leading_blanks;
                    }
                    self.skip();
                } else {
                    self.skip_line();
                    leading_blanks = true;
                }
            }
            if self.flow_level == 0 && (self.column as isize) < indent {
                break;
            }
        }
        leading_blanks
    }

    /// A single- or double-quoted scalar, through its closing quote (or the end).
    fn scan_quoted(&mut self, single: bool) {
        self.skip();
        while !self.at_end() {
            let c = self.at(0);
            if single && c == b'\'' {
                if self.at(1) == b'\'' {
                    self.skip();
                    self.skip();
                    continue;
                }
                self.skip();
                return;
            }
            if !single && c == b'"' {
                self.skip();
                return;
            }
            if !single && c == b'\\' {
                self.skip();
                if self.is_break(0) {
                    self.skip_line();
                } else if !self.at_end() {
                    // The escaped character; any hex digits after it cannot end the scalar.
                    self.skip();
                }
                continue;
            }
            if self.is_break(0) {
                self.skip_line();
            } else {
                self.skip();
            }
        }
    }

    /// `!tag`, `!handle!suffix` or `!<verbatim>`: the characters libyaml's tag scanner takes.
    fn scan_tag(&mut self) {
        if self.at(1) == b'<' {
            self.skip();
            self.skip();
            while is_uri_char(self.at(0)) || matches!(self.at(0), b',' | b'[' | b']') {
                self.skip();
            }
            if self.at(0) == b'>' {
                self.skip();
            }
        } else {
            self.skip();
            while is_uri_char(self.at(0)) {
                self.skip();
            }
        }
    }

    /// `|` or `>` with its header, then every line indented at least as far as its content.
    fn scan_block_scalar(&mut self) {
        self.skip();
        let mut increment: isize = 0;
        if matches!(self.at(0), b'+' | b'-') {
            self.skip();
            if self.at(0).is_ascii_digit() {
                increment = (self.at(0) - b'0') as isize;
                self.skip();
            }
        } else if self.at(0).is_ascii_digit() {
            increment = (self.at(0) - b'0') as isize;
            self.skip();
            if matches!(self.at(0), b'+' | b'-') {
                self.skip();
            }
        }
        while self.is_blank(0) {
            self.skip();
        }
        if self.at(0) == b'#' {
            while !self.is_breakz(0) {
                self.skip();
            }
        }
        if !self.is_breakz(0) {
            // A libyaml error (text after the header); carry on.
            return;
        }
        if self.is_break(0) {
            self.skip_line();
        }
        let mut indent: isize = 0;
        if increment > 0 {
            indent = if self.indent() >= 0 {
                self.indent() + increment
            } else {
                increment
            };
        }
        if !self.block_scalar_breaks(&mut indent) {
            return;
        }
        while self.column as isize == indent && !self.is_z(0) {
            while !self.is_breakz(0) {
                self.skip();
            }
            if self.is_break(0) {
                self.skip_line();
            }
            if !self.block_scalar_breaks(&mut indent) {
                return;
            }
        }
    }

    /// Indentation and empty lines of a block scalar; settles its indent when not given.
    /// Returns false where libyaml stops with an error (a tab as indentation).
    fn block_scalar_breaks(&mut self, indent: &mut isize) -> bool {
        let mut max_indent: isize = 0;
        loop {
            while (*indent == 0 || (self.column as isize) < *indent) && self.at(0) == b' ' {
                self.skip();
            }
            max_indent = max_indent.max(self.column as isize);
            if (*indent == 0 || (self.column as isize) < *indent) && self.at(0) == b'\t' {
                return false;
            }
            if !self.is_break(0) {
                break;
            }
            self.skip_line();
        }
        if *indent == 0 {
            *indent = max_indent.max(self.indent() + 1).max(1);
        }
        true
    }
}

fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Characters libyaml accepts in a tag outside `!<...>` (where `,[]` are accepted too).
fn is_uri_char(c: u8) -> bool {
    is_alpha(c)
        || matches!(
            c,
            b';' | b'/'
                | b'?'
                | b':'
                | b'@'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b'.'
                | b'%'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 64;

    fn refused(text: &str) -> TooDeep {
        check(text, LIMIT).expect_err("refused")
    }

    #[test]
    fn flow_nesting_is_counted_exactly() {
        assert_eq!(max_depth("[[[]]]"), 3);
        assert_eq!(max_depth("{a: {b: [1, {c: d}]}}"), 4);
        // The flow key closes before its `:` rolls the block mapping.
        assert_eq!(max_depth("[a, b]: c"), 1);
        assert_eq!(max_depth("[a, [b]]: [c]"), 2);
        let ok = format!("{}{}", "[".repeat(LIMIT), "]".repeat(LIMIT));
        assert_eq!(check(&ok, LIMIT), Ok(()));
        let deep = format!("{}{}", "[".repeat(LIMIT + 1), "]".repeat(LIMIT + 1));
        assert_eq!(
            refused(&deep),
            TooDeep {
                limit: LIMIT,
                line: 1,
                column: LIMIT + 1
            }
        );
    }

    #[test]
    fn block_nesting_is_counted() {
        assert_eq!(max_depth("a:\n  b:\n    c: 1\n"), 3);
        assert_eq!(max_depth("- - - x\n"), 3, "compact sequences");
        assert_eq!(
            max_depth("a:\n- b: 1\n  c: 2\nd: 3\n"),
            2,
            "indentless sequence"
        );
        let mut deep = String::new();
        for level in 0..100 {
            deep.push_str(&" ".repeat(level));
            deep.push_str("a:\n");
        }
        let error = refused(&deep);
        assert_eq!((error.line, error.column), (LIMIT + 1, LIMIT + 1));
        assert_eq!(refused(&"- ".repeat(1000)).column, 2 * LIMIT + 1);
    }

    #[test]
    fn hostile_inputs_are_refused_wherever_they_nest() {
        for text in [
            "[".repeat(100_000),
            "{a: ".repeat(100_000),
            "- [".repeat(50_000),
            "a:\n  - {b: [".repeat(20_000),
            format!(
                "schema: s\nversion: 1\nmessages:\n  A:\n    id: 1\n    doc: {}",
                "[".repeat(100)
            ),
        ] {
            assert_eq!(refused(&text).limit, LIMIT);
        }
    }

    #[test]
    fn brackets_in_scalars_and_comments_are_not_nesting() {
        let many = "[{".repeat(500);
        for text in [
            format!("a: \"{many}\"\n"),
            format!("a: \"\\\"{many}\\\\\"\n"),
            format!("a: '{many}'\n"),
            format!("a: 'it''s {many}'\n"),
            format!("a: \"line\n  {many}\"\n"),
            format!("a: 1 # {many}\n"),
            format!("# {many}\na: 1\n"),
            format!("a: plain{many}\n"),
            format!("a: plain\n  continued {many}\n"),
            format!("a: |\n  {many}\n  {many}\n\n  {many}\nb: 1\n"),
            format!("a: >-\n  {many}\nb: 1\n"),
            format!("- |2\n   {many}\n"),
            format!("a: it's {many}\n"),
            format!("[\"{many}\", '{many}']\n"),
            format!("a: !<tag:{}> x\n", "[,]".repeat(500)),
        ] {
            let depth = max_depth(&text);
            assert!(depth <= 2, "depth {depth} for {text:?}");
        }
    }

    #[test]
    fn a_tab_after_a_continued_plain_scalar_is_no_error() {
        // Found by the nesting fuzz target: libyaml reads `i\t'` as one plain scalar going on
        // after the line break and then opens two flow sequences (4 deep); the scan kept the
        // line break's "leading blanks" past the second `i`, took the tab for libyaml's
        // indentation error and stopped the scalar there, counting 2.
        assert_eq!(max_depth(" : {i\ni\t'[["), 4);
        assert_eq!(max_depth(" : {i\ni\t'[[]]}\n"), 4);
    }

    #[test]
    fn text_after_a_scalar_is_still_scanned() {
        let deep = "[".repeat(LIMIT + 1);
        for text in [
            format!("a: \"quoted\"\nb: {deep}"),
            format!("a: 'it''s'\nb: {deep}"),
            format!("a: |\n  text\nb: {deep}"),
            format!("a: plain # comment\nb: {deep}"),
            format!("a: !tag x\nb: {deep}"),
            format!("a: &x 1\nb: *x\nc: {deep}"),
            format!("%YAML 1.2\n---\n{deep}"),
            format!("a: \"\\\\\"\nb: {deep}"),
            format!("[a]#{deep}\n{deep}"),
        ] {
            assert_eq!(refused(&text).limit, LIMIT, "{text:?}");
        }
    }

    #[test]
    fn unicode_columns_and_breaks() {
        // Columns count characters; NEL, LS and PS are line breaks for libyaml.
        let error = refused(&format!("\u{e9}\u{e9}: {}", "[".repeat(LIMIT + 1)));
        // `éé:` is a block mapping: its level and 63 `[` make the limit, the 64th passes it.
        assert_eq!((error.line, error.column), (1, 4 + LIMIT));
        let error = refused(&format!("a: 1\u{2028}b: {}", "[".repeat(LIMIT + 1)));
        assert_eq!(error.line, 2);
    }

    /// JSON is YAML flow syntax: the scan's depth must be exactly the value's nesting.
    #[test]
    fn json_depth_matches_the_value() {
        fn nest(depth: usize, map: bool) -> serde_json::Value {
            (0..depth).fold(serde_json::json!("x[y]{z}'\""), |inner, i| {
                if map ^ (i % 3 == 0) {
                    serde_json::json!({ "k[": inner, "n": 1 })
                } else {
                    serde_json::json!([1, inner, "]"])
                }
            })
        }
        for depth in [0, 1, 2, 5, 17, 64] {
            for map in [false, true] {
                let value = nest(depth, map);
                assert_eq!(max_depth(&value.to_string()), depth);
                assert_eq!(
                    max_depth(&serde_json::to_string_pretty(&value).unwrap()),
                    depth
                );
            }
        }
    }
}
