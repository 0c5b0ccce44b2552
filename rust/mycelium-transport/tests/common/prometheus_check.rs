//! A small line-by-line checker for the Prometheus text exposition format 0.0.4.
//!
//! Checks what a scraper relies on: comment syntax, metric and label name syntax, label value
//! escaping, numeric values, TYPE declared once and before a family's samples, families kept
//! contiguous, and histogram structure (`_bucket` with `le`, cumulative counts, `+Inf` equal
//! to `_count`, `_sum` present).

use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub types: HashMap<String, String>,
    pub helps: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Samples named `name` whose labels include every pair in `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The single sample named `name` with these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.find(name, labels);
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0].value
    }
}

fn is_name(s: &str, allow_colon: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (allow_colon && c == ':');
    match chars.next() {
        Some(c) if ok_first(c) => {}
        _ => return false,
    }
    chars.all(|c| ok_first(c) || c.is_ascii_digit())
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s
            .parse::<f64>()
            .map_err(|e| format!("bad value {s:?}: {e}")),
    }
}

/// Parses `{a="x",b="y"}` starting at the `{`; returns labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = &s[1..];
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = &rest[..eq];
        if !is_name(name, false) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) => return Err("raw newline in label value".into()),
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("duplicate label {name}"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after label".into());
        }
    }
}

/// The family a sample belongs to, given the declared histogram families.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).map(String::as_str) == Some("histogram") {
                return base;
            }
        }
    }
    name
}

/// Parses and checks a whole exposition; `Err` names the first offending line.
pub fn check(text: &str) -> Result<Exposition, String> {
    let mut exp = Exposition::default();
    let mut finished_families = HashSet::new();
    let mut current: Option<String> = None;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("exposition must end with a newline".into());
    }
    for (number, line) in text.lines().enumerate() {
        let fail = |msg: String| format!("line {}: {msg}: {line:?}", number + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let keyword = parts.next().unwrap_or_default();
            let name = parts.next().unwrap_or_default().to_owned();
            let rest = parts.next().unwrap_or_default().to_owned();
            match keyword {
                "HELP" | "TYPE" => {
                    if !is_name(&name, true) {
                        return Err(fail(format!("bad metric name {name:?}")));
                    }
                    if finished_families.contains(&name) {
                        return Err(fail("family is not contiguous".into()));
                    }
                    if current.as_deref() != Some(name.as_str()) {
                        if let Some(done) = current.replace(name.clone()) {
                            finished_families.insert(done);
                        }
                    }
                    if keyword == "TYPE" {
                        if !["counter", "gauge", "histogram", "summary", "untyped"]
                            .contains(&rest.as_str())
                        {
                            return Err(fail(format!("unknown type {rest:?}")));
                        }
                        if exp
                            .samples
                            .iter()
                            .any(|s| family_of(&s.name, &exp.types) == name)
                        {
                            return Err(fail("TYPE after the family's samples".into()));
                        }
                    }
                    let map = if keyword == "HELP" {
                        &mut exp.helps
                    } else {
                        &mut exp.types
                    };
                    if map.insert(name, rest).is_some() {
                        return Err(fail(format!("second {keyword}")));
                    }
                }
                _ => {} // other comments are allowed
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| fail("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(fail(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(fail)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| fail("expected a space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or_default()).map_err(fail)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|e| fail(format!("bad timestamp: {e}")))?;
        }
        if fields.next().is_some() {
            return Err(fail("trailing fields".into()));
        }
        let family = family_of(name, &exp.types).to_owned();
        if !exp.types.contains_key(&family) {
            return Err(fail(format!("sample before TYPE of {family}")));
        }
        if current.as_deref() != Some(family.as_str()) {
            return Err(fail(format!("sample of {family} outside its family block")));
        }
        if exp.types[&family] == "histogram" && name.ends_with("_bucket") {
            let le = labels
                .get("le")
                .ok_or_else(|| fail("bucket without le".into()))?;
            parse_value(le).map_err(fail)?;
        }
        exp.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    check_histograms(&exp)?;
    Ok(exp)
}

/// A sample's labels other than `le`, identifying one histogram series.
type LabelSet = Vec<(String, String)>;

fn check_histograms(exp: &Exposition) -> Result<(), String> {
    for (family, kind) in &exp.types {
        if kind != "histogram" {
            continue;
        }
        // Group buckets by their labels without `le`.
        let mut series: BTreeMap<LabelSet, Vec<(f64, f64)>> = BTreeMap::new();
        for s in exp
            .samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
        {
            let key: Vec<_> = s
                .labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let le = parse_value(&s.labels["le"])?;
            series.entry(key).or_default().push((le, s.value));
        }
        for (key, buckets) in series {
            let labels: Vec<(&str, &str)> =
                key.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            for pair in buckets.windows(2) {
                if pair[1].0 <= pair[0].0 || pair[1].1 < pair[0].1 {
                    return Err(format!(
                        "{family}{labels:?}: buckets not increasing: {pair:?}"
                    ));
                }
            }
            let last = buckets.last().ok_or("empty histogram")?;
            if last.0 != f64::INFINITY {
                return Err(format!("{family}{labels:?}: last bucket is not +Inf"));
            }
            let count = exp.find(&format!("{family}_count"), &labels);
            let sum = exp.find(&format!("{family}_sum"), &labels);
            if count.len() != 1 || sum.len() != 1 {
                return Err(format!("{family}{labels:?}: needs one _count and one _sum"));
            }
            if count[0].value != last.1 {
                return Err(format!("{family}{labels:?}: +Inf bucket != _count"));
            }
        }
    }
    Ok(())
}
