//! How long refusing hostile schema text takes (issue 12, item 4): deeply nested YAML made
//! libyaml's time grow with the square of the depth (40 000 levels: 5 s). The pre-scan must
//! refuse 1 MB of it in well under 100 ms. Run with `cargo bench -p mycelium-protocol --bench
//! schema_hostile`; a normal `contracts.yaml` load is measured alongside for comparison.

use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mycelium_protocol::{Schema, SchemaError};

fn hostile() -> Vec<(String, String)> {
    let mb = 1 << 20;
    let mut cases = Vec::new();
    for (name, unit) in [
        ("[", "["),
        ("{a: ", "{a: "),
        ("mixed flow/block", "- {a: [\n"),
    ] {
        for (label, levels) in [("40k", 40_000), ("100k", 100_000)] {
            cases.push((format!("{name} x {label}"), unit.repeat(levels)));
        }
        cases.push((format!("{name} 1 MB"), unit.repeat(mb / unit.len())));
    }
    // Block nesting by indentation only (no flow): each line one level deeper.
    let mut block = String::new();
    let mut level = 0;
    while block.len() < mb {
        block.push_str(&" ".repeat(level));
        block.push_str("a:\n");
        level += 1;
    }
    cases.push(("block indentation 1 MB".to_owned(), block));
    cases.push(("compact '- ' 1 MB".to_owned(), "- ".repeat(mb / 2)));
    // The scan's worst case: a whole megabyte of brackets it must not count (in quotes,
    // comments, block scalars, allowed nesting) before the too-deep part at the very end.
    let line = "- [\"[{[{\", '[{[{', [[[[1]]]]]  # [{[{\n- |\n  [{[{[{[{\n";
    let tricky = format!("{}{}", line.repeat(mb / line.len()), "[".repeat(100));
    cases.push((
        "1 MB of brackets not nesting, then too deep".to_owned(),
        tricky,
    ));
    cases
}

fn bench(c: &mut Criterion) {
    let contracts =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml"))
            .expect("example schema");
    let start = Instant::now();
    Schema::from_yaml_str(&contracts).expect("example schema loads");
    println!(
        "contracts.yaml ({} bytes): loaded in {:?}",
        contracts.len(),
        start.elapsed()
    );
    for (name, text) in hostile() {
        let start = Instant::now();
        let result = Schema::from_yaml_str(&text);
        let took = start.elapsed();
        assert!(
            matches!(result, Err(SchemaError::NestingTooDeep { .. })),
            "{name}: {result:?}"
        );
        println!("{name} ({} bytes): refused in {took:?}", text.len());
    }

    c.bench_function("load contracts.yaml", |b| {
        b.iter(|| Schema::from_yaml_str(black_box(&contracts)))
    });
    for (name, text) in hostile()
        .into_iter()
        .filter(|(name, _)| name.contains("1 MB"))
    {
        c.bench_function(&format!("refuse {name}"), |b| {
            b.iter(|| Schema::from_yaml_str(black_box(&text)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
