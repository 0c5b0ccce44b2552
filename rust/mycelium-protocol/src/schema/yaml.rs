//! Reading `contracts.yaml`. Shape errors (a missing `id`, an id that is not a u16, an unknown
//! key) come from serde and keep its line and column; rule violations are collected by
//! validation so they can all be reported at once.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_yaml_ng::Value;

use super::error::{SchemaError, ValidationError};
use super::field_type::FieldType;
use super::model::{FieldDef, MessageDef, Schema, ServiceDef, MAX_NESTING_DEPTH};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    schema: String,
    version: u32,
    messages: Option<Entries<RawMessage>>,
    services: Option<Entries<RawService>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    request: String,
    reply: String,
    #[serde(default)]
    doc: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    id: u16,
    #[serde(default)]
    doc: Option<String>,
    #[serde(default)]
    fields: Option<Vec<Value>>,
}

/// A YAML mapping read in document order with duplicate keys kept, so that a message
/// defined twice is reported by validation with its name instead of being silently merged.
struct Entries<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from message name to message definition")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((key, value)) = map.next_entry::<String, V>()? {
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

pub(crate) fn load(text: &str) -> Result<Schema, SchemaError> {
    // Before serde_yaml_ng: libyaml's time grows with the square of the nesting depth.
    super::nesting::check(text, MAX_NESTING_DEPTH).map_err(|deep| SchemaError::NestingTooDeep {
        limit: deep.limit,
        line: deep.line,
        column: deep.column,
    })?;
    let raw: RawSchema = serde_yaml_ng::from_str(text)?;
    let mut errors = Vec::new();
    let messages = raw
        .messages
        .map(|entries| entries.0)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, message)| convert_message(name, message, &mut errors))
        .collect();
    let services = raw
        .services
        .map(|entries| entries.0)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, s)| ServiceDef {
            name,
            request: s.request,
            reply: s.reply,
            doc: s.doc,
        })
        .collect();
    let mut schema = Schema {
        name: raw.schema,
        version: raw.version,
        messages,
        services,
    };
    schema.messages.sort_by_key(|m| m.type_id);
    // Stable: a service declared twice keeps both entries, for validation to report.
    schema.services.sort_by(|a, b| a.name.cmp(&b.name));
    errors.extend(super::validation::validate(&schema));
    if errors.is_empty() {
        Ok(schema)
    } else {
        let positions = errors
            .iter()
            .map(|e| super::locate::locate(text, e))
            .collect();
        Err(SchemaError::Located { errors, positions })
    }
}

/// Fields whose entry or type cannot be read are reported and left out, so the remaining
/// rules still run on the rest of the message.
fn convert_message(name: String, raw: RawMessage, errors: &mut Vec<ValidationError>) -> MessageDef {
    let mut fields = Vec::new();
    for (index, item) in raw.fields.unwrap_or_default().into_iter().enumerate() {
        match field_entry(&item) {
            Ok((field, spelling)) => match FieldType::parse(spelling) {
                Ok(ty) => fields.push(FieldDef::new(field, ty)),
                Err(source) => errors.push(ValidationError::BadType {
                    message: name.clone(),
                    field: field.to_owned(),
                    source,
                }),
            },
            Err(found) => errors.push(ValidationError::BadFieldEntry {
                message: name.clone(),
                position: index + 1,
                found,
            }),
        }
    }
    MessageDef {
        name,
        type_id: raw.id,
        doc: raw.doc,
        fields,
    }
}

/// `- name: type` -> (name, type spelling); otherwise a description of what was found.
fn field_entry(item: &Value) -> Result<(&str, &str), String> {
    let Value::Mapping(map) = item else {
        return Err(describe(item));
    };
    let mut pairs = map.iter();
    let (Some((key, value)), None) = (pairs.next(), pairs.next()) else {
        return Err(format!("a map with {} keys", map.len()));
    };
    let Value::String(field) = key else {
        return Err(format!("a map whose key is {}", describe(key)));
    };
    match value {
        Value::String(spelling) => Ok((field, spelling)),
        other => Err(format!("`{field}` with {} as its type", describe(other))),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the text '{s}'"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(m) => format!("a map with {} keys", m.len()),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}
