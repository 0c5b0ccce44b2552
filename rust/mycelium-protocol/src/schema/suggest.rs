//! "Did you mean ...?": the known name nearest to a misspelt one.

/// The built-in type spellings.
pub(crate) const BUILT_IN: &[&str] = &[
    "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64", "bool", "string", "bytes",
];

/// The candidate closest to `name` (ignoring case), if it is within a third of the name's
/// length in edits (at least one); the first of equally close candidates wins.
pub(crate) fn nearest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    let name = name.to_lowercase();
    candidates
        .map(|c| (edit_distance(&name, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "; did you mean X?" for the built-in type nearest to `name`, or nothing.
pub(crate) fn built_in_hint(name: &str) -> String {
    nearest(name, BUILT_IN.iter().copied())
        .map(|s| format!("; did you mean {s}?"))
        .unwrap_or_default()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_are_found_and_far_ones_are_not() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(nearest("strng", BUILT_IN.iter().copied()), Some("string"));
        assert_eq!(
            nearest("Tradetik", ["TradeTick", "Quote"].into_iter()),
            Some("TradeTick")
        );
        assert_eq!(nearest("Missing", ["TradeTick", "Quote"].into_iter()), None);
        assert_eq!(built_in_hint("uint32"), "");
        assert_eq!(built_in_hint("strin"), "; did you mean string?");
    }
}
