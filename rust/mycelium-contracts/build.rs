//! Generates the typed messages from the workspace's `contracts.yaml`, plus an edge-case
//! schema that only the tests include (it keeps the generator honest under clippy).

use std::path::Path;

const SCHEMAS: &[(&str, &str)] = &[
    ("../../contracts.yaml", "contracts.rs"),
    ("tests/schemas/edge_cases.yaml", "edge_cases.rs"),
    ("tests/schemas/services.yaml", "services.rs"),
];

fn main() {
    for (schema, out_file) in SCHEMAS {
        if let Err(error) = mycelium_codegen::build_rs_generate(Path::new(schema), out_file) {
            // Cargo shows a failing build script's stderr; a panic would add a useless trace.
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
