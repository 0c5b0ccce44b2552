//! The validated schema: messages sorted by type id, each with its ordered fields.

use std::path::Path;

use super::error::SchemaError;
use super::field_type::FieldType;

/// How deeply messages and lists may nest inside one message (`Quote` holding a `PriceLevel`
/// is depth 1, `list<list<u8>>` is depth 2). The bound keeps every recursive walk over a
/// schema or a payload far from the stack limit.
pub const MAX_NESTING_DEPTH: usize = 64;

/// A whole `contracts.yaml`. Values returned by [`Schema::from_yaml_str`], [`Schema::from_path`]
/// and [`Schema::new`] are validated: every nested message exists, nothing nests recursively,
/// ids and names are unique, and `messages` is sorted by type id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub name: String,
    pub version: u32,
    /// Sorted by type id.
    pub messages: Vec<MessageDef>,
    /// Request/reply services (`services:`), sorted by name; empty when none are declared.
    pub services: Vec<ServiceDef>,
}

/// One request/reply service: requests of one message type answered by replies of another
/// (`RiskCheck: { request: Order, reply: OrderDecision }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDef {
    pub name: String,
    /// Name of the request message.
    pub request: String,
    /// Name of the reply message.
    pub reply: String,
    pub doc: Option<String>,
}

impl ServiceDef {
    pub fn new(
        name: impl Into<String>,
        request: impl Into<String>,
        reply: impl Into<String>,
    ) -> ServiceDef {
        ServiceDef {
            name: name.into(),
            request: request.into(),
            reply: reply.into(),
            doc: None,
        }
    }
}

/// One message definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDef {
    pub name: String,
    pub type_id: u16,
    pub doc: Option<String>,
    /// In wire order.
    pub fields: Vec<FieldDef>,
}

/// One field of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    pub name: String,
    pub ty: FieldType,
}

impl FieldDef {
    pub fn new(name: impl Into<String>, ty: FieldType) -> FieldDef {
        FieldDef {
            name: name.into(),
            ty,
        }
    }
}

impl MessageDef {
    /// The field called `name`, if any.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

impl Schema {
    /// Builds a schema from parts (e.g. in tests or generators), validating it exactly like
    /// a loaded file and sorting the messages by type id.
    pub fn new(
        name: impl Into<String>,
        version: u32,
        messages: Vec<MessageDef>,
    ) -> Result<Schema, SchemaError> {
        let mut schema = Schema {
            name: name.into(),
            version,
            messages,
            services: Vec::new(),
        };
        schema.messages.sort_by_key(|m| m.type_id);
        schema.validate()?;
        Ok(schema)
    }

    /// This schema with `services` declared (sorted by name), validated again.
    pub fn with_services(mut self, mut services: Vec<ServiceDef>) -> Result<Schema, SchemaError> {
        services.sort_by(|a, b| a.name.cmp(&b.name));
        self.services = services;
        self.validate()?;
        Ok(self)
    }

    /// The service called `name`.
    pub fn service_by_name(&self, name: &str) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Parses and validates the YAML text of a `contracts.yaml`.
    pub fn from_yaml_str(text: &str) -> Result<Schema, SchemaError> {
        super::yaml::load(text)
    }

    /// Reads, parses and validates a schema file; errors name the path.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Schema, SchemaError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Schema::from_yaml_str(&text).map_err(|source| SchemaError::File {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// Re-runs validation, e.g. after editing the public fields by hand.
    pub fn validate(&self) -> Result<(), SchemaError> {
        let errors = super::validation::validate(self);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SchemaError::Invalid(errors))
        }
    }

    /// The message with type id `id`.
    pub fn message_by_id(&self, id: u16) -> Option<&MessageDef> {
        match self.messages.binary_search_by_key(&id, |m| m.type_id) {
            Ok(index) => Some(&self.messages[index]),
            // `messages` is public and may have been reordered by hand.
            Err(_) => self.messages.iter().find(|m| m.type_id == id),
        }
    }

    /// The message called `name`.
    pub fn message_by_name(&self, name: &str) -> Option<&MessageDef> {
        self.messages.iter().find(|m| m.name == name)
    }

    /// The fewest bytes a value of `ty` can encode to. Decoders multiply a list's element
    /// count by this before allocating (see `Reader::get_count`).
    pub fn min_encoded_size(&self, ty: &FieldType) -> usize {
        self.min_size_at(ty, 0)
    }

    /// The fewest bytes a payload of `message` can encode to.
    pub fn message_min_size(&self, message: &MessageDef) -> usize {
        self.message_min_size_at(message, 0)
    }

    /// The exact encoded size of `ty` when every value has the same size (scalars, `bytes[N]`,
    /// and messages made only of those), else `None`.
    pub fn fixed_size(&self, ty: &FieldType) -> Option<usize> {
        self.fixed_size_at(ty, 0)
    }

    /// The exact payload size of `message` if it is the same for every value.
    pub fn message_fixed_size(&self, message: &MessageDef) -> Option<usize> {
        self.message_fixed_size_at(message, 0)
    }

    // The depth argument stops the walk on hand-built schemas that nest recursively; a
    // validated schema never reaches the bound.
    fn min_size_at(&self, ty: &FieldType, depth: usize) -> usize {
        match ty {
            FieldType::Scalar(s) => s.size(),
            FieldType::String | FieldType::Bytes | FieldType::List(_) => 4,
            FieldType::Array(n) => usize::from(*n),
            FieldType::Message(name) => match self.message_by_name(name) {
                Some(def) if depth < MAX_NESTING_DEPTH => self.message_min_size_at(def, depth + 1),
                _ => 0,
            },
        }
    }

    fn message_min_size_at(&self, message: &MessageDef, depth: usize) -> usize {
        message
            .fields
            .iter()
            .map(|f| self.min_size_at(&f.ty, depth))
            .fold(0usize, usize::saturating_add)
    }

    fn fixed_size_at(&self, ty: &FieldType, depth: usize) -> Option<usize> {
        match ty {
            FieldType::Scalar(s) => Some(s.size()),
            FieldType::Array(n) => Some(usize::from(*n)),
            FieldType::String | FieldType::Bytes | FieldType::List(_) => None,
            FieldType::Message(name) => {
                let def = self.message_by_name(name)?;
                if depth >= MAX_NESTING_DEPTH {
                    return None;
                }
                self.message_fixed_size_at(def, depth + 1)
            }
        }
    }

    fn message_fixed_size_at(&self, message: &MessageDef, depth: usize) -> Option<usize> {
        message.fields.iter().try_fold(0usize, |acc, f| {
            acc.checked_add(self.fixed_size_at(&f.ty, depth)?)
        })
    }
}
