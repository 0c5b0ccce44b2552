//! The committed `include/mycelium.h` must equal a fresh cbindgen generation, so the header can
//! never drift from the code. Run with `MYCELIUM_BLESS=1` to rewrite it after an API change.

use std::path::PathBuf;

#[test]
fn committed_header_matches_generated() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generation")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    let path = crate_dir.join("include/mycelium.h");
    if std::env::var_os("MYCELIUM_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/mycelium.h is stale: run `MYCELIUM_BLESS=1 cargo test -p mycelium-ffi --test header` and commit it"
    );
    for needle in [
        "mycelium_publish",
        "mycelium_subscribe",
        "MYCELIUM_ERR_PANIC",
        "Blocks:",
    ] {
        assert!(generated.contains(needle), "header lacks {needle}");
    }
}
