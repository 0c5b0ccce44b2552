//! Property tests over the example schema and a schema of awkward shapes:
//! - any value round-trips through `encode_value`/`decode_value`, passes the validator, and
//!   survives the JSON mapping;
//! - on truncated, mutated or random bytes, `decode_value` and `Validator::validate` never
//!   panic and agree on accept/reject (and on the error kind and offset).
//!
//! Case count: `PROPTEST_CASES` (read by proptest itself); CI runs 10 000.

use std::mem::discriminant;
use std::sync::OnceLock;

use mycelium_protocol::{
    decode_value, encode_value, DecodeError, FieldType, MessageDef, Scalar, Schema, Validator,
    Value,
};
use proptest::prelude::*;

/// Shapes the example schema lacks: a variable-size message nested directly, an empty
/// message nested directly, lists of strings in lists, lists of fixed arrays, and bools
/// between fixed-size fields.
const AWKWARD: &str = "
schema: awkward
version: 1
messages:
  Empty:
    id: 1
    fields: []
  Inner:
    id: 2
    fields:
      - name: string
      - flag: bool
  Outer:
    id: 3
    fields:
      - a: u16
      - on: bool
      - b: i32
      - inner: Inner
      - nothing: Empty
      - words: list<list<string>>
      - codes: list<bytes[3]>
      - blob: bytes
      - tail: list<Inner>
      - last: bool
";

fn example() -> &'static (Schema, Validator) {
    static CELL: OnceLock<(Schema, Validator)> = OnceLock::new();
    CELL.get_or_init(|| {
        let schema =
            Schema::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml"))
                .expect("example schema loads");
        let validator = Validator::new(&schema);
        (schema, validator)
    })
}

fn awkward() -> &'static (Schema, Validator) {
    static CELL: OnceLock<(Schema, Validator)> = OnceLock::new();
    CELL.get_or_init(|| {
        let schema = Schema::from_yaml_str(AWKWARD).expect("awkward schema loads");
        let validator = Validator::new(&schema);
        (schema, validator)
    })
}

fn schemas() -> [&'static (Schema, Validator); 2] {
    [example(), awkward()]
}

fn value_strategy(schema: &'static Schema, ty: &FieldType) -> BoxedStrategy<Value> {
    use prop::collection::vec;
    match ty {
        FieldType::Scalar(s) => match s {
            Scalar::U8 => any::<u8>().prop_map(Value::U8).boxed(),
            Scalar::U16 => any::<u16>().prop_map(Value::U16).boxed(),
            Scalar::U32 => any::<u32>().prop_map(Value::U32).boxed(),
            Scalar::U64 => any::<u64>().prop_map(Value::U64).boxed(),
            Scalar::I8 => any::<i8>().prop_map(Value::I8).boxed(),
            Scalar::I16 => any::<i16>().prop_map(Value::I16).boxed(),
            Scalar::I32 => any::<i32>().prop_map(Value::I32).boxed(),
            Scalar::I64 => any::<i64>().prop_map(Value::I64).boxed(),
            // Every bit pattern, NaN payloads and negative zero included.
            Scalar::F32 => any::<u32>()
                .prop_map(|b| Value::F32(f32::from_bits(b)))
                .boxed(),
            Scalar::F64 => any::<u64>()
                .prop_map(|b| Value::F64(f64::from_bits(b)))
                .boxed(),
            Scalar::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        },
        // Mostly ASCII with some multi-byte characters; regex strategies are too slow here.
        FieldType::String => vec(
            prop_oneof![3 => (0x20u8..0x7F).prop_map(char::from), 1 => any::<char>()],
            0..6,
        )
        .prop_map(|chars| Value::String(chars.into_iter().collect()))
        .boxed(),
        FieldType::Bytes => vec(any::<u8>(), 0..6).prop_map(Value::Bytes).boxed(),
        FieldType::Array(n) => vec(any::<u8>(), usize::from(*n))
            .prop_map(Value::Array)
            .boxed(),
        FieldType::List(inner) => vec(value_strategy(schema, inner), 0..4)
            .prop_map(Value::List)
            .boxed(),
        FieldType::Message(name) => {
            message_strategy(schema, schema.message_by_name(name).expect("resolved"))
        }
    }
}

fn message_strategy(schema: &'static Schema, def: &'static MessageDef) -> BoxedStrategy<Value> {
    let fields: Vec<BoxedStrategy<Value>> = def
        .fields
        .iter()
        .map(|f| value_strategy(schema, &f.ty))
        .collect();
    fields
        .prop_map(move |values| Value::Message {
            name: def.name.clone(),
            fields: def
                .fields
                .iter()
                .map(|f| f.name.clone())
                .zip(values)
                .collect(),
        })
        .boxed()
}

/// (schema index, message index, value) for every message of both schemas.
fn any_message() -> impl Strategy<Value = (usize, usize, Value)> {
    let mut options = Vec::new();
    for (si, (schema, _)) in schemas().into_iter().enumerate() {
        for (mi, def) in schema.messages.iter().enumerate() {
            options.push(
                message_strategy(schema, def)
                    .prop_map(move |v| (si, mi, v))
                    .boxed(),
            );
        }
    }
    prop::strategy::Union::new(options)
}

fn failure_shape(e: &DecodeError) -> (std::mem::Discriminant<DecodeError>, Option<usize>) {
    let offset = match e {
        DecodeError::Truncated { offset, .. }
        | DecodeError::TrailingBytes { offset, .. }
        | DecodeError::InvalidUtf8 { offset, .. }
        | DecodeError::InvalidBool { offset, .. }
        | DecodeError::CountTooLarge { offset, .. } => Some(*offset),
        _ => None,
    };
    (discriminant(e), offset)
}

/// Decodes and validates `bytes` as message `mi` and checks the two agree.
fn check_agreement(si: usize, mi: usize, bytes: &[u8]) -> Result<(), TestCaseError> {
    let (schema, validator) = schemas()[si];
    let def = &schema.messages[mi];
    let decoded = decode_value(schema, def, bytes);
    let validated = validator.validate(def.type_id, bytes);
    match (&decoded, &validated) {
        (Ok(_), Ok(())) => {}
        (Err(d), Err(v)) => prop_assert_eq!(
            failure_shape(d),
            failure_shape(v),
            "{}: decoder {:?} vs validator {:?}",
            def.name,
            d,
            v
        ),
        _ => prop_assert!(
            false,
            "{}: decoder {:?} vs validator {:?}",
            def.name,
            decoded.map(|_| ()),
            validated
        ),
    }
    if let Ok(value) = decoded {
        // Whatever decodes re-encodes to the same bytes.
        prop_assert_eq!(encode_value(schema, def, &value).expect("re-encode"), bytes);
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(prop::sample::Index),
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Remove),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        if let Mutation::Insert(_, b) = mutation {
            bytes.push(*b);
        }
        return;
    }
    match mutation {
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Set(i, b) => {
            let at = i.index(bytes.len());
            bytes[at] = *b;
        }
        Mutation::Insert(i, b) => {
            let at = i.index(bytes.len() + 1);
            bytes.insert(at, *b);
        }
        Mutation::Remove(i) => {
            let at = i.index(bytes.len());
            bytes.remove(at);
        }
    }
}

proptest! {
    #[test]
    fn values_round_trip_and_validate((si, mi, value) in any_message()) {
        let (schema, validator) = schemas()[si];
        let def = &schema.messages[mi];
        let bytes = encode_value(schema, def, &value).expect("encode");
        prop_assert_eq!(&decode_value(schema, def, &bytes).expect("decode"), &value);
        prop_assert_eq!(validator.validate(def.type_id, &bytes), Ok(()));

        // Through JSON text, as the CLI and other languages see it: floats must keep their bits,
        // NaN payloads and signalling NaNs included.
        let json = value.to_json();
        let reparsed: serde_json::Value =
            serde_json::from_str(&json.to_string()).expect("JSON text parses");
        let back = Value::message_from_json(schema, def, &reparsed).expect("from json");
        prop_assert_eq!(&back, &value);
        prop_assert_eq!(back.to_json(), json);
    }

    #[test]
    fn mutated_payloads_agree(
        (si, mi, value) in any_message(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let (schema, _) = schemas()[si];
        let def = &schema.messages[mi];
        let mut bytes = encode_value(schema, def, &value).expect("encode");
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_agreement(si, mi, &bytes)?;
    }

    #[test]
    fn random_bytes_agree(
        si in 0usize..2,
        mi in any::<prop::sample::Index>(),
        bytes in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let mi = mi.index(schemas()[si].0.messages.len());
        check_agreement(si, mi, &bytes)?;
    }

    #[test]
    fn every_truncation_of_a_valid_payload_fails_in_both((si, mi, value) in any_message()) {
        let (schema, validator) = schemas()[si];
        let def = &schema.messages[mi];
        let bytes = encode_value(schema, def, &value).expect("encode");
        for len in 0..bytes.len() {
            prop_assert!(validator.validate(def.type_id, &bytes[..len]).is_err());
            check_agreement(si, mi, &bytes[..len])?;
        }
    }
}
