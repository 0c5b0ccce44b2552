//! The schema language of `contracts.yaml`: the model, its loader and its rules.

mod error;
mod field_type;
mod keywords;
mod locate;
mod model;
mod nesting;
mod suggest;
mod validation;
mod yaml;

#[cfg(test)]
mod tests;

pub use error::{Position, SchemaError, ValidationError};
pub use field_type::{FieldType, Scalar, TypeParseError, MAX_TYPE_NESTING};
pub use model::{FieldDef, MessageDef, Schema, ServiceDef, MAX_NESTING_DEPTH};
pub use validation::is_reserved_type_id;

/// The deepest nesting (flow collections plus block indentation levels) that the loader's
/// pre-scan sees in `text`. For the fuzz target that checks the scan against libyaml's
/// scanner; not a stable API.
#[doc(hidden)]
pub fn nesting_depth(text: &str) -> usize {
    nesting::max_depth(text)
}
