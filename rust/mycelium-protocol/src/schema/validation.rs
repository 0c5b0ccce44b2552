//! The schema rules. Every rule is checked and every violation reported, so one run of the
//! CLI shows all the problems in a file. The walks over the message graph are iterative: a
//! hostile schema with a ten-thousand-message chain must produce an error, not a stack overflow.

use std::collections::HashMap;

use super::error::ValidationError;
use super::field_type::{is_field_name, is_message_name, FieldType};
use super::keywords::keyword_languages;
use super::model::{Schema, MAX_NESTING_DEPTH};

/// Ids 0 and 0xFF00..=0xFFFF are reserved for control frames.
pub fn is_reserved_type_id(id: u16) -> bool {
    id == 0 || id >= 0xFF00
}

/// Checks every rule and returns all violations (empty when the schema is valid).
pub(crate) fn validate(schema: &Schema) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    if schema.name.trim().is_empty() {
        errors.push(ValidationError::EmptySchemaName);
    }
    let index_of = check_messages(schema, &mut errors);
    check_fields(schema, &mut errors);
    let edges = resolve_references(schema, &index_of, &mut errors);
    let unresolved = errors
        .iter()
        .any(|e| matches!(e, ValidationError::UnknownMessage { .. }));
    let cyclic = check_cycles(schema, &edges, &mut errors);
    if !cyclic && !unresolved {
        check_sizes_and_depth(schema, &index_of, &edges, &mut errors);
    }
    check_services(schema, &index_of, &mut errors);
    errors
}

/// Service names (syntax, duplicates, clashes with messages) and the messages they name.
fn check_services(
    schema: &Schema,
    index_of: &HashMap<&str, usize>,
    errors: &mut Vec<ValidationError>,
) {
    let mut seen: Vec<&str> = Vec::with_capacity(schema.services.len());
    for service in &schema.services {
        if !is_message_name(&service.name) {
            errors.push(ValidationError::BadServiceName {
                service: service.name.clone(),
            });
        } else if index_of.contains_key(service.name.as_str()) {
            errors.push(ValidationError::ServiceNamedLikeMessage {
                service: service.name.clone(),
            });
        }
        if seen.contains(&service.name.as_str()) {
            errors.push(ValidationError::DuplicateServiceName {
                service: service.name.clone(),
            });
        } else {
            seen.push(&service.name);
        }
        for (role, name) in [("request", &service.request), ("reply", &service.reply)] {
            if !index_of.contains_key(name.as_str()) {
                let messages = schema.messages.iter().map(|m| m.name.as_str());
                errors.push(ValidationError::UnknownServiceMessage {
                    service: service.name.clone(),
                    role,
                    name: name.clone(),
                    suggestion: super::suggest::nearest(name, messages).map(str::to_owned),
                });
            }
        }
    }
}

/// Message names and type ids. Returns name -> index of its first definition.
fn check_messages<'s>(
    schema: &'s Schema,
    errors: &mut Vec<ValidationError>,
) -> HashMap<&'s str, usize> {
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    let mut owner_of_id: HashMap<u16, &str> = HashMap::new();
    for (index, message) in schema.messages.iter().enumerate() {
        if !is_message_name(&message.name) {
            errors.push(ValidationError::BadMessageName {
                message: message.name.clone(),
            });
        }
        if index_of.contains_key(message.name.as_str()) {
            errors.push(ValidationError::DuplicateMessageName {
                message: message.name.clone(),
            });
        } else {
            index_of.insert(&message.name, index);
        }
        if is_reserved_type_id(message.type_id) {
            errors.push(ValidationError::ReservedTypeId {
                message: message.name.clone(),
                id: message.type_id,
            });
        } else if let Some(other) = owner_of_id.get(&message.type_id) {
            errors.push(ValidationError::DuplicateTypeId {
                message: message.name.clone(),
                other: (*other).to_owned(),
                id: message.type_id,
            });
        } else {
            owner_of_id.insert(message.type_id, &message.name);
        }
    }
    index_of
}

/// Field names: syntax, keywords, duplicates.
fn check_fields(schema: &Schema, errors: &mut Vec<ValidationError>) {
    for message in &schema.messages {
        let mut seen: Vec<&str> = Vec::with_capacity(message.fields.len());
        for field in &message.fields {
            if !is_field_name(&field.name) {
                errors.push(ValidationError::BadFieldName {
                    message: message.name.clone(),
                    field: field.name.clone(),
                });
            } else if let Some(languages) = keyword_languages(&field.name) {
                errors.push(ValidationError::KeywordFieldName {
                    message: message.name.clone(),
                    field: field.name.clone(),
                    languages,
                });
            }
            if seen.contains(&field.name.as_str()) {
                errors.push(ValidationError::DuplicateFieldName {
                    message: message.name.clone(),
                    field: field.name.clone(),
                });
            } else {
                seen.push(&field.name);
            }
        }
    }
}

/// One "message `from` contains message `to` through field `field`" edge.
struct Edge<'s> {
    field: &'s str,
    to: usize,
}

/// Resolves nested message names; reports unknown ones. Returns the containment edges of
/// each message, in field order.
fn resolve_references<'s>(
    schema: &'s Schema,
    index_of: &HashMap<&str, usize>,
    errors: &mut Vec<ValidationError>,
) -> Vec<Vec<Edge<'s>>> {
    let mut edges: Vec<Vec<Edge<'s>>> = Vec::with_capacity(schema.messages.len());
    for message in &schema.messages {
        let mut out = Vec::new();
        for field in &message.fields {
            let Some(name) = field.ty.message_name() else {
                continue;
            };
            match index_of.get(name) {
                Some(&to) => out.push(Edge {
                    field: &field.name,
                    to,
                }),
                None => errors.push(ValidationError::UnknownMessage {
                    message: message.name.clone(),
                    field: field.name.clone(),
                    ty: field.ty.to_string(),
                    name: name.to_owned(),
                    suggestion: nearest_name(name, schema),
                }),
            }
        }
        edges.push(out);
    }
    edges
}

/// Depth-first search with an explicit stack; every back edge is one cycle, reported at the
/// message where the cycle is entered. Returns whether any cycle exists.
fn check_cycles(
    schema: &Schema,
    edges: &[Vec<Edge<'_>>],
    errors: &mut Vec<ValidationError>,
) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        Unvisited,
        OnStack,
        Done,
    }
    let mut color = vec![Color::Unvisited; schema.messages.len()];
    let mut found = false;
    for root in 0..schema.messages.len() {
        if color[root] != Color::Unvisited {
            continue;
        }
        // (message index, index of the next edge to follow)
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        color[root] = Color::OnStack;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let Some(edge) = edges[node].get(*next) else {
                color[node] = Color::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            match color[edge.to] {
                Color::Unvisited => {
                    color[edge.to] = Color::OnStack;
                    stack.push((edge.to, 0));
                }
                Color::OnStack => {
                    found = true;
                    let start = stack
                        .iter()
                        .position(|&(n, _)| n == edge.to)
                        .unwrap_or(stack.len() - 1);
                    let mut cycle: Vec<String> = stack[start..]
                        .iter()
                        .map(|&(n, _)| schema.messages[n].name.clone())
                        .collect();
                    cycle.push(schema.messages[edge.to].name.clone());
                    // The field through which the cycle leaves its first message: the edge
                    // just taken from that message (its cursor was advanced past it).
                    let (first, cursor) = stack[start];
                    let field = edges[first][cursor - 1].field;
                    errors.push(ValidationError::RecursiveNesting {
                        message: schema.messages[first].name.clone(),
                        field: field.to_owned(),
                        cycle,
                    });
                }
                Color::Done => {}
            }
        }
    }
    found
}

/// Zero-sized list elements and the nesting bound. Only runs on an acyclic, fully resolved
/// graph; sizes and depths are computed bottom-up in topological order (no recursion).
fn check_sizes_and_depth(
    schema: &Schema,
    index_of: &HashMap<&str, usize>,
    edges: &[Vec<Edge<'_>>],
    errors: &mut Vec<ValidationError>,
) {
    let count = schema.messages.len();
    // Kahn's algorithm on "contains" edges, leaves first.
    let mut pending: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut containers: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (from, out) in edges.iter().enumerate() {
        for edge in out {
            containers[edge.to].push(from);
        }
    }
    let mut ready: Vec<usize> = (0..count).filter(|&i| pending[i] == 0).collect();
    let mut min_size = vec![0usize; count];
    let mut depth = vec![0usize; count];
    while let Some(index) = ready.pop() {
        let message = &schema.messages[index];
        let mut size = 0usize;
        let mut deepest = 0usize;
        let mut child_too_deep = false;
        for field in &message.fields {
            // Peel list layers without recursing: hand-built types may nest arbitrarily.
            let mut ty = &field.ty;
            let mut layers = 0usize;
            while let FieldType::List(inner) = ty {
                layers += 1;
                ty = inner;
            }
            let (leaf_size, leaf_depth) = match ty {
                FieldType::Message(name) => match index_of.get(name.as_str()) {
                    Some(&target) => {
                        child_too_deep |= depth[target] > MAX_NESTING_DEPTH;
                        (min_size[target], depth[target].saturating_add(1))
                    }
                    // Unreachable after resolve_references reported nothing; skip, don't panic.
                    None => continue,
                },
                other => (schema.min_encoded_size(other), 0),
            };
            if layers > 0 && leaf_size == 0 {
                errors.push(ValidationError::ZeroSizedListElement {
                    message: message.name.clone(),
                    field: field.name.clone(),
                    element: ty.to_string(),
                });
            }
            size = size.saturating_add(if layers > 0 { 4 } else { leaf_size });
            deepest = deepest.max(leaf_depth.saturating_add(layers));
        }
        min_size[index] = size;
        depth[index] = deepest;
        // Report only where the bound is first crossed, not again for every container.
        if deepest > MAX_NESTING_DEPTH && !child_too_deep {
            errors.push(ValidationError::TooDeep {
                message: message.name.clone(),
                depth: deepest,
            });
        }
        for &container in &containers[index] {
            pending[container] -= 1;
            if pending[container] == 0 {
                ready.push(container);
            }
        }
    }
}

/// The message or built-in type name closest to `name` (a typo such as `Tradetick`).
fn nearest_name(name: &str, schema: &Schema) -> Option<String> {
    let messages = schema.messages.iter().map(|m| m.name.as_str());
    super::suggest::nearest(
        name,
        messages.chain(super::suggest::BUILT_IN.iter().copied()),
    )
    .map(str::to_owned)
}
