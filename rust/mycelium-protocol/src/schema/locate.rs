//! Where in the schema text a rule is broken: the line of the message, or of its field, that a
//! [`ValidationError`] names, so an error reads like a compiler's (line, column, the line
//! itself) for semantic rules too, not only for YAML syntax.
//!
//! The YAML parser keeps no positions for values, so this scans the text for the message's key
//! inside the `messages:` block and, for a field error, for the field's entry inside that
//! message. It understands the block style every schema here is written in; in flow style
//! (`{TradeTick: {...}}`) it may find nothing, and the error is reported without a position.

use super::error::{Position, ValidationError};

/// The position `error` points at in `text`, if it can be found.
pub(crate) fn locate(text: &str, error: &ValidationError) -> Option<Position> {
    let lines: Vec<&str> = text.lines().collect();
    if let Some(service) = error.service() {
        return locate_service(&lines, service, error);
    }
    let messages_at = lines
        .iter()
        .position(|l| l.trim_end() == "messages:" || l.starts_with("messages:"))?;
    let Some(message) = error.message() else {
        // Only the schema name is a message-less rule.
        return find_key(&lines, 0, lines.len(), 0, "schema");
    };
    let message_at = find_key(&lines, messages_at + 1, lines.len(), 1, message)?;
    let Some(field) = error.field() else {
        if let ValidationError::ReservedTypeId { .. } | ValidationError::DuplicateTypeId { .. } =
            error
        {
            let end = block_end(&lines, message_at.line - 1);
            if let Some(id) = find_key(&lines, message_at.line, end, 1, "id") {
                return Some(id);
            }
        }
        return Some(message_at);
    };
    let end = block_end(&lines, message_at.line - 1);
    find_field(&lines, message_at.line, end, field).or(Some(message_at))
}

/// A service error: the service's key inside `services:`, or for an unknown message the
/// `request:` / `reply:` line that names it.
fn locate_service(lines: &[&str], service: &str, error: &ValidationError) -> Option<Position> {
    let services_at = lines.iter().position(|l| l.starts_with("services:"))?;
    let end = block_end(lines, services_at);
    let service_at = find_key(lines, services_at + 1, end, 1, service)?;
    if let ValidationError::UnknownServiceMessage { role, .. } = error {
        let own_end = block_end(lines, service_at.line - 1);
        if let Some(at) = find_key(lines, service_at.line, own_end, 1, role) {
            return Some(at);
        }
    }
    Some(service_at)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// The line index after the block that starts at `start` (lines indented deeper than it).
fn block_end(lines: &[&str], start: usize) -> usize {
    let own = indent(lines[start]);
    (start + 1..lines.len())
        .find(|&i| is_content(lines[i]) && indent(lines[i]) <= own)
        .unwrap_or(lines.len())
}

/// The first line in `from..to`, indented at least `min_indent`, whose key is `key`.
fn find_key(
    lines: &[&str],
    from: usize,
    to: usize,
    min_indent: usize,
    key: &str,
) -> Option<Position> {
    (from..to).find_map(|i| {
        let line = lines[i];
        let col = indent(line);
        let rest = &line[col..];
        let is_key = col >= min_indent
            && rest
                .strip_prefix(key)
                .is_some_and(|after| after.starts_with(':') || after.starts_with(" :"));
        is_key.then(|| position(i, col, line))
    })
}

/// The `- name: type` entry (or a `name:` key in a flow map on one line) of `field`.
fn find_field(lines: &[&str], from: usize, to: usize, field: &str) -> Option<Position> {
    (from..to).find_map(|i| {
        let line = lines[i];
        let at = line
            .find(&format!("- {field}:"))
            .map(|c| c + 2)
            .or_else(|| line.find(&format!("{{{field}:")).map(|c| c + 1))?;
        Some(position(i, at, line))
    })
}

fn position(index: usize, column: usize, line: &str) -> Position {
    Position {
        line: index + 1,
        column: column + 1,
        snippet: line.trim_end().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Schema, SchemaError};

    const TEXT: &str = "\
schema: s
version: 1
messages:
  TradeTick:
    id: 1
    fields:
      - price: f64
      - tick: Tradetik
  Quote:
    id: 0xFF00
    fields:
      - bid: f64
";

    #[test]
    fn semantic_errors_point_at_their_line_and_column() {
        let err = Schema::from_yaml_str(TEXT).unwrap_err();
        let SchemaError::Located { errors, positions } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(errors.len(), 2, "{errors:?}");
        let text = err.to_string();
        // the unknown type, at its field's entry, with a suggestion
        assert!(text.contains("unknown type 'Tradetik'"), "{text}");
        assert!(text.contains("did you mean TradeTick?"), "{text}");
        assert!(text.contains("line 8, column 9"), "{text}");
        assert!(text.contains("      - tick: Tradetik"), "{text}");
        // the reserved id, at its `id:` line, shown as written and in decimal
        assert!(
            text.contains("type id 0xFF00 (65280) is reserved"),
            "{text}"
        );
        assert!(text.contains("line 10, column 5"), "{text}");
        assert_eq!(positions.iter().flatten().count(), 2);
    }

    #[test]
    fn service_errors_point_at_the_service_or_its_role() {
        let text = "\
schema: s
version: 1
messages:
  Order:
    id: 1
  Decision:
    id: 2
services:
  RiskCheck:
    request: Order
    reply: Decisoin
  riskCheck:
    request: Order
    reply: Decision
";
        let err = Schema::from_yaml_str(text).unwrap_err();
        let SchemaError::Located { errors, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(errors.len(), 2, "{errors:?}");
        let text = err.to_string();
        assert!(
            text.contains("service RiskCheck, reply: no message named Decisoin is defined; did you mean Decision?"),
            "{text}"
        );
        assert!(text.contains("line 11, column 5"), "{text}");
        assert!(text.contains("service riskCheck: bad name"), "{text}");
        assert!(text.contains("line 12, column 3"), "{text}");
    }
}
