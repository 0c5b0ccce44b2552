//! The cross-language test vectors (`tests/vectors/contracts.json`): for every message
//! of a schema, a fixed set of edge-case values with their exact frames.
//!
//! Generation is deterministic: the same schema always yields byte-identical output,
//! so CI can regenerate the file and fail when it drifts from the committed copy.

mod cases;
mod render;
mod rng;

use mycelium_protocol::{
    decode_frame, decode_value, encode_frame, encode_value, MessageDef, Schema, Value,
};
use serde_json::Value as Json;

use cases::{cases_for, ValueBuilder};

/// One test vector: a message value and the exact frame it encodes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector {
    /// `<Message>-<case>`, e.g. `TradeTick-neg-inf`; unique within a file.
    pub name: String,
    pub message: String,
    pub type_id: u16,
    /// The value in the documented JSON mapping.
    pub value: Json,
    /// The full frame: header and payload.
    pub frame: Vec<u8>,
}

/// Why vectors could not be built or checked.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// A generated value was rejected by the protocol's JSON mapping or encoder.
    #[error("vector {name}: cannot encode the generated value: {reason}")]
    Encode { name: String, reason: String },
    /// The vectors text is not the expected JSON shape.
    #[error("vectors file: {0}")]
    Format(String),
    /// A vector's frame does not match its value.
    #[error("vector {name}: {reason}")]
    Mismatch { name: String, reason: String },
}

/// Every vector for `schema`, messages in type-id order, cases in a fixed order.
/// Cases whose frame repeats an earlier case of the same message are left out.
///
/// # Errors
/// Only if the protocol crate rejects a generated value, which indicates a bug in the
/// generator or the protocol crate; the error names the vector.
pub fn build_vectors(schema: &Schema) -> Result<Vec<Vector>, VectorError> {
    let mut vectors = Vec::new();
    for message in &schema.messages {
        let mut seen_frames: Vec<Vec<u8>> = Vec::new();
        for case in cases_for(schema, message) {
            let name = format!("{}-{}", message.name, case.label());
            let value = ValueBuilder::new(schema, message, case).message(message);
            let frame =
                encode_json(schema, message, &value).map_err(|reason| VectorError::Encode {
                    name: name.clone(),
                    reason,
                })?;
            if seen_frames.contains(&frame) {
                continue;
            }
            seen_frames.push(frame.clone());
            vectors.push(Vector {
                name,
                message: message.name.clone(),
                type_id: message.type_id,
                value,
                frame,
            });
        }
    }
    Ok(vectors)
}

/// Encodes a JSON value of `message` as a complete frame, through the protocol crate's
/// JSON mapping and dynamic encoder.
///
/// # Errors
/// A description of what the value got wrong.
pub fn encode_json(schema: &Schema, message: &MessageDef, json: &Json) -> Result<Vec<u8>, String> {
    let value = Value::message_from_json(schema, message, json).map_err(|e| e.to_string())?;
    let payload = encode_value(schema, message, &value).map_err(|e| e.to_string())?;
    let mut frame = Vec::with_capacity(payload.len() + mycelium_protocol::FRAME_HEADER_LEN);
    encode_frame(message.type_id, &payload, &mut frame).map_err(|e| e.to_string())?;
    Ok(frame)
}

/// The vectors file for `schema`: `{"schema_digest": ..., "vectors": [...]}` with one
/// vector per line and sorted keys inside values, ending in a newline.
///
/// # Errors
/// As for [`build_vectors`].
pub fn vectors_json(schema: &Schema) -> Result<String, VectorError> {
    Ok(render_vectors(&schema.digest(), &build_vectors(schema)?))
}

/// Renders vectors in the file layout (see [`vectors_json`]).
pub fn render_vectors(schema_digest: &str, vectors: &[Vector]) -> String {
    let mut out = String::from("{\n  \"schema_digest\": ");
    render::push_string(&mut out, schema_digest);
    out.push_str(",\n  \"vectors\": [");
    for (i, vector) in vectors.iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        out.push_str("{\"name\": ");
        render::push_string(&mut out, &vector.name);
        out.push_str(", \"message\": ");
        render::push_string(&mut out, &vector.message);
        out.push_str(&format!(", \"type_id\": {}, \"value\": ", vector.type_id));
        render::write_sorted(&mut out, &vector.value);
        out.push_str(", \"frame_hex\": ");
        render::push_string(&mut out, &hex::encode(&vector.frame));
        out.push('}');
    }
    out.push_str(if vectors.is_empty() {
        "]\n}\n"
    } else {
        "\n  ]\n}\n"
    });
    out
}

/// Parses a vectors file back into its digest and vectors.
///
/// # Errors
/// Invalid JSON or a missing/ill-typed key, naming the vector.
pub fn parse_vectors(text: &str) -> Result<(String, Vec<Vector>), VectorError> {
    let format = |what: String| VectorError::Format(what);
    let root: Json = serde_json::from_str(text).map_err(|e| format(e.to_string()))?;
    let digest = root["schema_digest"]
        .as_str()
        .ok_or_else(|| format("missing string \"schema_digest\"".into()))?
        .to_owned();
    let items = root["vectors"]
        .as_array()
        .ok_or_else(|| format("missing array \"vectors\"".into()))?;
    let mut vectors = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let text_field = |key: &str| {
            item[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format(format!("vectors[{index}]: missing string \"{key}\"")))
        };
        let name = text_field("name")?;
        let type_id = item["type_id"]
            .as_u64()
            .and_then(|id| u16::try_from(id).ok())
            .ok_or_else(|| format(format!("vector {name}: \"type_id\" is not a u16")))?;
        let frame = hex::decode(text_field("frame_hex")?)
            .map_err(|e| format(format!("vector {name}: bad \"frame_hex\": {e}")))?;
        vectors.push(Vector {
            message: text_field("message")?,
            type_id,
            value: item["value"].clone(),
            frame,
            name,
        });
    }
    Ok((digest, vectors))
}

/// Checks one vector against `schema` both ways: the frame decodes (via
/// [`decode_value`]) to the listed value, and the listed value encodes to the frame.
///
/// # Errors
/// What disagrees, naming the vector.
pub fn check_vector(schema: &Schema, vector: &Vector) -> Result<(), VectorError> {
    let mismatch = |reason: String| VectorError::Mismatch {
        name: vector.name.clone(),
        reason,
    };
    let message = schema
        .message_by_name(&vector.message)
        .ok_or_else(|| mismatch(format!("message {} is not in the schema", vector.message)))?;
    if message.type_id != vector.type_id {
        return Err(mismatch(format!(
            "type_id {} but the schema gives {} id {}",
            vector.type_id, message.name, message.type_id
        )));
    }
    let (frame_type, payload) =
        decode_frame(&vector.frame).map_err(|e| mismatch(format!("bad frame: {e}")))?;
    if frame_type != vector.type_id {
        return Err(mismatch(format!(
            "frame header carries type id {frame_type}"
        )));
    }
    let decoded = decode_value(schema, message, payload)
        .map_err(|e| mismatch(format!("frame does not decode: {e}")))?;
    let decoded_json = decoded.to_json();
    if decoded_json != vector.value {
        return Err(mismatch(format!(
            "frame decodes to {decoded_json}, the file lists {}",
            vector.value
        )));
    }
    let listed = Value::message_from_json(schema, message, &vector.value)
        .map_err(|e| mismatch(format!("listed value is invalid: {e}")))?;
    // JSON numbers compare -0.0 equal to 0.0; comparing `Value`s (by bits) does not.
    if listed != decoded {
        return Err(mismatch(
            "listed value and decoded frame differ in float bits".into(),
        ));
    }
    let reencoded = encode_json(schema, message, &vector.value).map_err(mismatch)?;
    if reencoded != vector.frame {
        return Err(mismatch(format!(
            "listed value encodes to {}",
            hex::encode(&reencoded)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
