//! The bridge handshake with bytes a peer sent. First byte: 0 = server side without a token,
//! 1 = server side expecting the token "secret", anything else = client side (the bytes are
//! the server's answer). The rest is the stream from the peer.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mycelium_bridge::fuzzing::{client_handshake, server_handshake};
use mycelium_protocol::Schema;

static SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| Schema::from_yaml_str(include_str!("../../contracts.yaml")).expect("schema"));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let _ = match mode {
        0 => server_handshake(stream, &SCHEMA, None),
        1 => server_handshake(stream, &SCHEMA, Some(b"secret")),
        _ => client_handshake(stream, &SCHEMA),
    };
});
