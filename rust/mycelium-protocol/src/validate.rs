//! A payload checker precomputed from a schema. The C ABI runs it on every publish from
//! Python, OCaml or C, so it walks the payload without allocating: runs of fixed-size
//! fields (including nested fixed-size messages) collapse into one bounds check, lists of
//! fixed-size elements are checked in O(1), and only bools, strings and variable-size
//! elements are visited one by one. It accepts exactly the payloads that
//! [`decode_value`](crate::value::decode_value) and generated decoders accept.

use crate::codec::{decode_frame, Reader, MAX_PAYLOAD};
use crate::message::DecodeError;
use crate::schema::{FieldType, MessageDef, Scalar, Schema, SchemaError, MAX_NESTING_DEPTH};

use std::collections::HashMap;

/// Checks payloads against a schema; cheap to share between threads (`Send + Sync`).
#[derive(Debug, Clone)]
pub struct Validator {
    /// Type id -> index into `messages` + 1; 0 = unknown. Indexed directly by the id.
    by_id: Vec<u32>,
    messages: Vec<KnownMessage>,
    plans: Vec<Plan>,
    /// Fixed-size runs, kept apart from the ops so that errors can name the exact field.
    runs: Vec<Vec<RunPart>>,
    /// Field labels for error messages, e.g. `TradeTick.symbol`.
    labels: Vec<String>,
}

#[derive(Debug, Clone)]
struct KnownMessage {
    type_id: u16,
    name: String,
    plan: u32,
}

/// The steps that check one value (a whole message, or one list element).
#[derive(Debug, Clone)]
struct Plan {
    ops: Box<[Op]>,
    /// Every value has exactly this size (nothing to check but the length).
    fixed: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// `len` bytes of fixed-size fields described by `runs[run]`.
    Skip {
        len: u32,
        run: u32,
    },
    Bool {
        label: u32,
    },
    Str {
        label: u32,
    },
    Bytes {
        label: u32,
    },
    Nested {
        plan: u32,
    },
    List {
        elem: Elem,
        min: u32,
        label: u32,
    },
}

#[derive(Debug, Clone, Copy)]
enum Elem {
    /// Elements of this exact size: the whole list is one bounds check.
    Fixed(u32),
    /// Each byte must be 0 or 1.
    Bool,
    /// Anything else: run the plan per element.
    Plan(u32),
}

#[derive(Debug, Clone)]
struct RunPart {
    offset: u32,
    size: u32,
    label: u32,
}

impl Validator {
    /// Precomputes a plan per message. The schema is expected to be valid (every loaded
    /// schema is); a message of a hand-built schema that refers to a missing message or
    /// nests recursively is left out, so `validate` reports its id as unknown. Use
    /// [`Validator::try_new`] to get the schema's errors instead.
    pub fn new(schema: &Schema) -> Validator {
        let mut builder = Builder {
            schema,
            out: Validator {
                by_id: Vec::new(),
                messages: Vec::new(),
                plans: Vec::new(),
                runs: Vec::new(),
                labels: Vec::new(),
            },
            message_plans: HashMap::new(),
        };
        for message in &schema.messages {
            if let Some(plan) = builder.message_plan(message, 0) {
                builder.out.messages.push(KnownMessage {
                    type_id: message.type_id,
                    name: message.name.clone(),
                    plan,
                });
            }
        }
        let mut out = builder.out;
        let max_id = out.messages.iter().map(|m| m.type_id).max();
        out.by_id = vec![0; max_id.map_or(0, |id| usize::from(id) + 1)];
        for (index, message) in out.messages.iter().enumerate() {
            let slot = &mut out.by_id[usize::from(message.type_id)];
            // Duplicate ids only occur in invalid schemas; the first definition wins.
            if *slot == 0 {
                *slot = index as u32 + 1;
            }
        }
        out
    }

    /// Validates the schema first and reports its errors.
    pub fn try_new(schema: &Schema) -> Result<Validator, SchemaError> {
        schema.validate()?;
        Ok(Validator::new(schema))
    }

    /// Whether `type_id` names a message of the schema.
    #[inline]
    pub fn knows(&self, type_id: u16) -> bool {
        self.lookup(type_id).is_some()
    }

    /// The message name for `type_id`.
    pub fn message_name(&self, type_id: u16) -> Option<&str> {
        self.lookup(type_id).map(|m| m.name.as_str())
    }

    /// The type ids this validator knows, ascending.
    pub fn type_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.by_id
            .iter()
            .enumerate()
            .filter(|(_, slot)| **slot != 0)
            .map(|(id, _)| id as u16)
    }

    /// Checks that `payload` (no frame header) is a complete, well-formed payload of message
    /// `type_id`: lengths and counts fit, bools are 0/1, strings are UTF-8, nothing trails,
    /// and it is at most [`MAX_PAYLOAD`] bytes.
    #[inline]
    pub fn validate(&self, type_id: u16, payload: &[u8]) -> Result<(), DecodeError> {
        let Some(message) = self.lookup(type_id) else {
            return Err(DecodeError::UnknownType(type_id));
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(DecodeError::TooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD,
            });
        }
        let plan = &self.plans[message.plan as usize];
        if plan
            .fixed
            .is_some_and(|size| size as usize == payload.len())
        {
            return Ok(());
        }
        let mut reader = Reader::new(payload);
        self.run(plan, &mut reader)?;
        reader.finish()
    }

    /// Checks a complete frame and returns its type id.
    pub fn validate_frame(&self, frame: &[u8]) -> Result<u16, DecodeError> {
        let (type_id, payload) = decode_frame(frame)?;
        self.validate(type_id, payload)?;
        Ok(type_id)
    }

    #[inline]
    fn lookup(&self, type_id: u16) -> Option<&KnownMessage> {
        match self.by_id.get(usize::from(type_id)) {
            Some(&slot) if slot != 0 => self.messages.get(slot as usize - 1),
            _ => None,
        }
    }

    fn run(&self, plan: &Plan, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        for op in plan.ops.iter() {
            match *op {
                Op::Skip { len, run } => {
                    if reader.remaining() < len as usize {
                        return Err(self.run_truncated(run, reader));
                    }
                    reader.take(len as usize, "")?;
                }
                Op::Bool { label } => {
                    reader.get_bool(self.label(label))?;
                }
                Op::Str { label } => {
                    reader.get_str(self.label(label))?;
                }
                Op::Bytes { label } => {
                    reader.get_bytes(self.label(label))?;
                }
                Op::Nested { plan } => self.run(&self.plans[plan as usize], reader)?,
                Op::List { elem, min, label } => {
                    let count = reader.get_count(min as usize, self.label(label))?;
                    self.run_list(elem, count, label, reader)?;
                }
            }
        }
        Ok(())
    }

    fn run_list(
        &self,
        elem: Elem,
        count: usize,
        label: u32,
        reader: &mut Reader<'_>,
    ) -> Result<(), DecodeError> {
        match elem {
            Elem::Fixed(size) => {
                // get_count already checked count * size <= remaining.
                reader.take(count * size as usize, self.label(label))?;
            }
            Elem::Bool => {
                let start = reader.position();
                let bytes = reader.take(count, self.label(label))?;
                if let Some(bad) = bytes.iter().position(|&b| b > 1) {
                    return Err(DecodeError::InvalidBool {
                        offset: start + bad,
                        value: bytes[bad],
                        what: self.label(label).to_owned(),
                    });
                }
            }
            Elem::Plan(plan) => {
                let plan = &self.plans[plan as usize];
                for _ in 0..count {
                    self.run(plan, reader)?;
                }
            }
        }
        Ok(())
    }

    /// Names the field inside a fixed-size run where the payload ends, with the same offset
    /// and byte count a field-by-field decoder would report.
    #[cold]
    #[inline(never)]
    fn run_truncated(&self, run: u32, reader: &Reader<'_>) -> DecodeError {
        let available = reader.remaining();
        let start = reader.position();
        let parts = &self.runs[run as usize];
        let part = parts
            .iter()
            .find(|p| (p.offset + p.size) as usize > available)
            .or(parts.last());
        match part {
            Some(p) => DecodeError::Truncated {
                offset: start + p.offset as usize,
                needed: (p.offset + p.size) as usize - available,
                what: self.label(p.label).to_owned(),
            },
            None => DecodeError::Truncated {
                offset: start,
                needed: 0,
                what: String::new(),
            },
        }
    }

    fn label(&self, label: u32) -> &str {
        self.labels.get(label as usize).map_or("", String::as_str)
    }
}

struct Builder<'s> {
    schema: &'s Schema,
    out: Validator,
    message_plans: HashMap<&'s str, Option<u32>>,
}

impl<'s> Builder<'s> {
    fn label(&mut self, text: String) -> u32 {
        self.out.labels.push(text);
        (self.out.labels.len() - 1) as u32
    }

    fn add_plan(&mut self, plan: Plan) -> u32 {
        self.out.plans.push(plan);
        (self.out.plans.len() - 1) as u32
    }

    /// The plan of a whole message, built once per message. `None` if it (transitively)
    /// refers to an unknown message or nests deeper than any valid schema can.
    fn message_plan(&mut self, message: &'s MessageDef, depth: usize) -> Option<u32> {
        if let Some(known) = self.message_plans.get(message.name.as_str()) {
            return *known;
        }
        if depth > MAX_NESTING_DEPTH {
            return None;
        }
        // Marks the message as in progress: a recursive reference (only possible in an
        // invalid hand-built schema) then resolves to `None` instead of looping.
        self.message_plans.insert(&message.name, None);
        let mut ops = Vec::new();
        let mut run: Vec<RunPart> = Vec::new();
        let mut run_len: u32 = 0;
        for field in &message.fields {
            let label = format!("{}.{}", message.name, field.name);
            if let Some(size) = self.fixed_size(&field.ty, depth) {
                match self.nested_run(&field.ty) {
                    // A fixed-size nested message contributes its own parts, relabelled
                    // `Quote.bid.price`, so errors point at the exact inner field.
                    Some(inner) => {
                        for part in inner {
                            let inner_label = self.out.labels[part.label as usize].clone();
                            let suffix = inner_label.split_once('.').map_or("", |(_, s)| s);
                            let label = self.label(format!("{label}.{suffix}"));
                            run.push(RunPart {
                                offset: run_len.checked_add(part.offset)?,
                                size: part.size,
                                label,
                            });
                        }
                    }
                    None => {
                        let label = self.label(label);
                        run.push(RunPart {
                            offset: run_len,
                            size,
                            label,
                        });
                    }
                }
                run_len = run_len.checked_add(size)?;
                continue;
            }
            self.flush_run(&mut ops, &mut run, &mut run_len);
            let op = self.field_op(&field.ty, label, depth)?;
            ops.push(op);
        }
        self.flush_run(&mut ops, &mut run, &mut run_len);
        let fixed = match ops.as_slice() {
            [] => Some(0),
            [Op::Skip { len, .. }] => Some(*len),
            _ => None,
        };
        let plan = self.add_plan(Plan {
            ops: ops.into_boxed_slice(),
            fixed,
        });
        self.message_plans.insert(&message.name, Some(plan));
        Some(plan)
    }

    /// The run parts of a fixed-size nested message (already built by `fixed_size`).
    fn nested_run(&self, ty: &FieldType) -> Option<Vec<RunPart>> {
        let FieldType::Message(name) = ty else {
            return None;
        };
        let plan = (*self.message_plans.get(name.as_str())?)?;
        match self.out.plans[plan as usize].ops.as_ref() {
            [Op::Skip { run, .. }] => Some(self.out.runs[*run as usize].clone()),
            _ => Some(Vec::new()),
        }
    }

    fn flush_run(&mut self, ops: &mut Vec<Op>, run: &mut Vec<RunPart>, run_len: &mut u32) {
        if run.is_empty() {
            return;
        }
        self.out.runs.push(std::mem::take(run));
        ops.push(Op::Skip {
            len: *run_len,
            run: (self.out.runs.len() - 1) as u32,
        });
        *run_len = 0;
    }

    /// The size of `ty` if fixed and free of bools (which need a per-byte check).
    fn fixed_size(&mut self, ty: &FieldType, depth: usize) -> Option<u32> {
        match ty {
            FieldType::Scalar(Scalar::Bool) => None,
            FieldType::Scalar(s) => Some(s.size() as u32),
            FieldType::Array(n) => Some(u32::from(*n)),
            FieldType::Message(name) => {
                let def = self.schema.message_by_name(name)?;
                let plan = self.message_plan(def, depth + 1)?;
                self.out.plans[plan as usize].fixed
            }
            FieldType::String | FieldType::Bytes | FieldType::List(_) => None,
        }
    }

    fn field_op(&mut self, ty: &FieldType, label: String, depth: usize) -> Option<Op> {
        Some(match ty {
            FieldType::Scalar(Scalar::Bool) => Op::Bool {
                label: self.label(label),
            },
            FieldType::String => Op::Str {
                label: self.label(label),
            },
            FieldType::Bytes => Op::Bytes {
                label: self.label(label),
            },
            FieldType::Message(name) => {
                let def = self.schema.message_by_name(name)?;
                Op::Nested {
                    plan: self.message_plan(def, depth + 1)?,
                }
            }
            FieldType::List(inner) => {
                if depth > MAX_NESTING_DEPTH {
                    return None;
                }
                let min = u32::try_from(self.schema.min_encoded_size(inner)).ok()?;
                let elem = match self.fixed_size(inner, depth) {
                    Some(size) => Elem::Fixed(size),
                    None if **inner == FieldType::Scalar(Scalar::Bool) => Elem::Bool,
                    None => Elem::Plan(self.element_plan(inner, &label, depth + 1)?),
                };
                Op::List {
                    elem,
                    min,
                    label: self.label(label),
                }
            }
            // Fixed-size types never reach here (the caller folds them into a run), but
            // answering correctly costs nothing.
            FieldType::Scalar(_) | FieldType::Array(_) => {
                let size = self.fixed_size(ty, depth)?;
                let part = RunPart {
                    offset: 0,
                    size,
                    label: self.label(label),
                };
                self.out.runs.push(vec![part]);
                Op::Skip {
                    len: size,
                    run: (self.out.runs.len() - 1) as u32,
                }
            }
        })
    }

    /// The plan for one element of a list of variable-size values.
    fn element_plan(&mut self, ty: &FieldType, label: &str, depth: usize) -> Option<u32> {
        if let FieldType::Message(name) = ty {
            let def = self.schema.message_by_name(name)?;
            return self.message_plan(def, depth);
        }
        let op = self.field_op(ty, format!("{label}[]"), depth)?;
        Some(self.add_plan(Plan {
            ops: Box::new([op]),
            fixed: None,
        }))
    }
}

#[cfg(test)]
mod tests;
