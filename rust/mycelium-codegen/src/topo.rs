//! Definition order for languages that need a nested message defined before the message
//! that contains it (Python class defaults, OCaml modules).

use mycelium_protocol::{MessageDef, Schema};

/// Every message of `schema`, each after all the messages it nests (directly or through
/// lists); otherwise in type-id order. A validated schema has no cycles; should a hand-built
/// one have some, the messages on a cycle are appended in type-id order so the output still
/// lists every message once.
pub(crate) fn dependency_order(schema: &Schema) -> Vec<&MessageDef> {
    let mut placed: Vec<&MessageDef> = Vec::with_capacity(schema.messages.len());
    let is_placed = |placed: &[&MessageDef], name: &str| placed.iter().any(|m| m.name == name);
    loop {
        // Each pass places the lowest-id message whose dependencies are all placed; a
        // quadratic walk is fine for the few hundred messages a schema holds.
        let next = schema.messages.iter().find(|m| {
            !is_placed(&placed, &m.name)
                && m.fields.iter().all(|f| match f.ty.message_name() {
                    Some(dep) => {
                        dep == m.name
                            || is_placed(&placed, dep)
                            || schema.message_by_name(dep).is_none()
                    }
                    None => true,
                })
        });
        match next {
            Some(message) => placed.push(message),
            None => break,
        }
    }
    for message in &schema.messages {
        if !is_placed(&placed, &message.name) {
            placed.push(message);
        }
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_messages_come_first_and_the_rest_keeps_id_order() {
        let schema = Schema::from_yaml_str(concat!(
            "schema: t\nversion: 1\nmessages:\n",
            "  Outer:\n    id: 1\n    fields:\n      - inner: list<Inner>\n      - leaf: Leaf\n",
            "  Plain:\n    id: 2\n    fields:\n      - x: u8\n",
            "  Inner:\n    id: 3\n    fields:\n      - leaf: Leaf\n",
            "  Leaf:\n    id: 4\n    fields:\n      - y: u8\n",
        ))
        .unwrap();
        let names: Vec<&str> = dependency_order(&schema)
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["Plain", "Leaf", "Inner", "Outer"]);
    }
}
