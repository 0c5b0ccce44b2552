//! Shared by the cross-language conformance tests: paths, the golden vectors, the Rust
//! decoder's verdicts on mutated payloads, and running external tools.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mycelium_codegen::vectors::{parse_vectors, vectors_json, Vector};
use mycelium_protocol::{decode_value, Schema, FRAME_HEADER_LEN};

/// Payloads longer than this get no mutation verdicts: the long-list vectors would make
/// the file and the run large without exercising anything new.
const MUTATED_PAYLOAD_MAX: usize = 512;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A schema the conformance tests run on, and where its vectors come from.
pub struct Case {
    pub label: &'static str,
    pub path: PathBuf,
    pub schema: Schema,
    /// The committed golden vectors, if any; otherwise vectors are built fresh.
    pub golden: Option<PathBuf>,
}

impl Case {
    fn load(label: &'static str, path: PathBuf, golden: Option<PathBuf>) -> Case {
        let schema = Schema::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
        Case {
            label,
            path,
            schema,
            golden,
        }
    }

    /// The vectors file: the golden one, or vectors built by the Rust encoder into `dir`.
    pub fn vectors(&self, dir: &TempDir) -> PathBuf {
        if let Some(golden) = self.golden.as_ref().filter(|g| g.exists()) {
            return golden.clone();
        }
        if self.golden.is_some() {
            eprintln!(
                "note: golden vectors missing for {}; using freshly built ones",
                self.label
            );
        }
        let path = dir.path(&format!("{}-vectors.json", self.label));
        let text = vectors_json(&self.schema).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, text).expect("write vectors");
        path
    }
}

/// contracts.yaml with its golden vectors.
pub fn contracts() -> Case {
    let root = repo_root();
    Case::load(
        "contracts",
        root.join("contracts.yaml"),
        Some(root.join("tests/vectors/contracts.json")),
    )
}

/// tests/fixtures/exotic.yaml: the shapes and names contracts.yaml lacks.
pub fn exotic() -> Case {
    Case::load(
        "exotic",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exotic.yaml"),
        None,
    )
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("mycelium-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The mutations the checkers replay (same definitions as in tests/conformance/check_*).
fn mutate(kind: &str, payload: &[u8], at: usize) -> Vec<u8> {
    let mut out = payload.to_vec();
    match kind {
        "ff4" => out[at..at + 4].copy_from_slice(&[0xff; 4]),
        "byte02" => out[at] = 0x02,
        _ => out[at] = 0xff,
    }
    out
}

fn positions(kind: &str, payload: &[u8]) -> usize {
    if kind == "ff4" {
        payload.len().saturating_sub(3)
    } else {
        payload.len()
    }
}

/// For every vector with a small payload and each mutation kind, a string with one
/// character per position: '1' where the Rust decoder accepts the mutated payload.
pub fn verdicts_json(schema: &Schema, vectors_path: &Path) -> String {
    let text = std::fs::read_to_string(vectors_path).expect("read vectors");
    let (_, vectors) = parse_vectors(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut entries = Vec::new();
    for vector in vectors
        .iter()
        .filter(|v| v.frame.len() - FRAME_HEADER_LEN <= MUTATED_PAYLOAD_MAX)
    {
        entries.push(verdicts_for(schema, vector));
    }
    serde_json::json!({ "mutations": entries }).to_string()
}

fn verdicts_for(schema: &Schema, vector: &Vector) -> serde_json::Value {
    let message = schema
        .message_by_name(&vector.message)
        .unwrap_or_else(|| panic!("vector {} names an unknown message", vector.name));
    let payload = &vector.frame[FRAME_HEADER_LEN..];
    let mut kinds = serde_json::Map::new();
    for kind in ["ff4", "byte02", "byteff"] {
        let verdicts: String = (0..positions(kind, payload))
            .map(
                |at| match decode_value(schema, message, &mutate(kind, payload, at)) {
                    Ok(_) => '1',
                    Err(_) => '0',
                },
            )
            .collect();
        kinds.insert(kind.to_owned(), verdicts.into());
    }
    serde_json::json!({ "vector": vector.name, "verdicts": kinds })
}

/// Runs `command`; panics with its output unless it succeeds. Returns stdout.
pub fn run(command: &mut Command) -> String {
    let shown = format!("{command:?}");
    let output: Output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout
}

/// Whether `program args...` runs and exits 0 (used to probe for optional tools).
pub fn works(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the environment variable `name` is set to 1 (the suite scripts set the
/// MYCELIUM_REQUIRE_* variables so a missing tool fails instead of skipping).
pub fn required(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// The checker's closing line must report failures as zero.
pub fn assert_all_passed(stdout: &str) {
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        last.ends_with(" 0 failed") && !last.starts_with("0 passed"),
        "checker summary: {last}"
    );
}

/// tests/conformance/decode_errors.json: hand-made bad payloads of contracts.yaml messages
/// with the exact error the Rust decoder gives.
pub fn decode_errors_path() -> PathBuf {
    repo_root().join("tests/conformance/decode_errors.json")
}

/// The checker arguments that add the exact-message cases (contracts.yaml only).
pub fn error_cases(case: &Case) -> Vec<std::ffi::OsString> {
    if case.label == "contracts" {
        vec!["--errors".into(), decode_errors_path().into()]
    } else {
        Vec::new()
    }
}
