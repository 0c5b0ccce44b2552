//! Rust and OCaml in one process exchange messages both ways over one bus.

use mycelium_embed_ocaml::Host;

#[test]
#[ignore = "needs the dune-built OCaml object; scripts/test-ocaml.sh builds it and runs this with --ignored"]
fn rust_and_ocaml_exchange_messages_both_ways() {
    let mut host = Host::start().unwrap_or_else(|e| panic!("{e}"));
    let n = 300;
    let ex = host.exchange(n).unwrap_or_else(|e| panic!("{e}"));
    let want_echoes: Vec<String> = (1..=n).map(|i| format!("echo:T-{i}")).collect();
    let want_texts: Vec<String> = (1..=n).map(|i| format!("ocaml-{i}")).collect();
    assert_eq!(
        ex.echoes, want_echoes,
        "OCaml answers every Rust tick, in order"
    );
    assert_eq!(
        ex.texts, want_texts,
        "Rust receives what OCaml published, in order"
    );
    assert_eq!(ex.ticks_seen_by_ocaml, n as isize);
    assert_eq!(host.stop().unwrap_or_else(|e| panic!("{e}")), n as isize);
}
