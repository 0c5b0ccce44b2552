//! End-to-end tests of the `mycelium` binary: exit codes, messages and round trips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mycelium_protocol::{FieldType, Schema};

const BIN: &str = env!("CARGO_BIN_EXE_mycelium");
const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml");

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs and expects exit 1 with an `error:` line and no panic report.
fn run_invalid(args: &[&str], stdin: Option<&str>) -> String {
    let out = run(args, stdin);
    assert_eq!(
        out.code, 1,
        "{args:?}: stdout {} stderr {}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr.starts_with("error: "),
        "{args:?}: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    out.stderr
}

fn run_ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = run(args, stdin);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out.stdout
}

/// A scratch directory unique to this test process and test name.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mycelium-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The same schema written differently: top-level keys and message keys in another
/// order, messages in reverse, comments everywhere, 4-space indentation, quoted
/// scalars and flow-style field entries.
fn reformatted_yaml(schema: &Schema) -> String {
    let mut out = String::from("# A reformatted copy of contracts.yaml.\n\nmessages:\n");
    for message in schema.messages.iter().rev() {
        out.push_str(&format!(
            "    # --- {} ---\n    {}:\n",
            message.name, message.name
        ));
        out.push_str("        fields:   # fields come first here\n");
        for field in &message.fields {
            out.push_str(&format!(
                "            - {{ {}:   \"{}\" }}   # comment\n",
                field.name, field.ty
            ));
        }
        if message.fields.is_empty() {
            out.push_str("            []\n");
        }
        if let Some(doc) = &message.doc {
            // A JSON string is a valid YAML double-quoted scalar.
            out.push_str(&format!(
                "        doc: {}\n",
                serde_json::to_string(&format!("{doc} (reworded)")).unwrap()
            ));
        }
        out.push_str(&format!("        id:    {}\n\n", message.type_id));
    }
    if !schema.services.is_empty() {
        out.push_str("services:   # flow style, reversed\n");
        for service in schema.services.iter().rev() {
            out.push_str(&format!(
                "    {}: {{ reply: \"{}\", request: \"{}\" }}\n",
                service.name, service.reply, service.request
            ));
        }
    }
    out.push_str(&format!(
        "version: {}   # bumped versions do not change the digest\nschema: \"{}-copy\"\n",
        schema.version + 1,
        schema.name
    ));
    out
}

#[test]
fn digest_ignores_formatting_but_not_field_types() {
    let schema = Schema::from_path(SCHEMA).unwrap();
    let dir = scratch("digest");
    let copy = dir.join("reformatted.yaml");
    let text = reformatted_yaml(&schema);
    std::fs::write(&copy, &text).unwrap();
    let original = run_ok(&["digest", SCHEMA], None);
    assert_eq!(original, format!("{}\n", schema.digest()));
    assert_eq!(run_ok(&["digest", path_str(&copy)], None), original);

    // Retype the first f64 field in the copy: the digest must change.
    let (message, field) = schema
        .messages
        .iter()
        .find_map(|m| {
            m.fields
                .iter()
                .find(|f| f.ty == FieldType::Scalar(mycelium_protocol::Scalar::F64))
                .map(|f| (m.name.clone(), f.name.clone()))
        })
        .unwrap();
    let needle = format!("{{ {field}:   \"f64\" }}");
    let section = text.find(&format!("    {message}:\n")).unwrap();
    let at = section + text[section..].find(&needle).unwrap();
    let mut changed = text.clone();
    changed.replace_range(at..at + needle.len(), &format!("{{ {field}: \"f32\" }}"));
    let changed_path = dir.join("changed.yaml");
    std::fs::write(&changed_path, changed).unwrap();
    let other = run_ok(&["digest", path_str(&changed_path)], None);
    assert_eq!(other.trim().len(), 64);
    assert_ne!(
        other, original,
        "{message}.{field} f64 -> f32 must change the digest"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn digest_messages_lists_name_id_and_fingerprint() {
    let schema = Schema::from_path(SCHEMA).unwrap();
    let out = run_ok(&["digest", "--messages", SCHEMA], None);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), schema.messages.len() + 1);
    assert_eq!(lines[0], schema.digest());
    for (line, message) in lines[1..].iter().zip(&schema.messages) {
        let expected = format!(
            "{} {} {}",
            message.name,
            message.type_id,
            schema.fingerprint(&message.name).unwrap()
        );
        assert_eq!(*line, expected);
    }
}

#[test]
fn check_accepts_the_example_schema() {
    let schema = Schema::from_path(SCHEMA).unwrap();
    let out = run_ok(&["check", SCHEMA], None);
    assert_eq!(
        schema.services.len(),
        1,
        "contracts.yaml declares RiskCheck"
    );
    assert_eq!(
        out,
        format!(
            "ok: {} messages, 1 service, digest {}\n",
            schema.messages.len(),
            schema.digest()
        )
    );
}

#[test]
fn check_counts_declared_services() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mycelium-contracts/tests/schemas/services.yaml"
    );
    let schema = Schema::from_path(path).unwrap();
    let out = run_ok(&["check", path], None);
    assert_eq!(
        out,
        format!("ok: 2 messages, 2 services, digest {}\n", schema.digest())
    );
}

#[test]
fn check_reports_every_problem_by_message_and_field() {
    let dir = scratch("check");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "schema: t\nversion: 1\nmessages:\n  Alpha:\n    id: 1\n    fields:\n      - price: f65\n  Beta:\n    id: 1\n    fields:\n      - type: u8\n",
    )
    .unwrap();
    let stderr = run_invalid(&["check", path_str(&bad)], None);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert!(errors.len() >= 3, "{stderr}");
    for expected in [
        "message Alpha, field price",
        "f65",
        "type id 1",
        "message Beta, field type",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
    }
    assert!(errors.iter().all(|l| l.contains("bad.yaml")), "{stderr}");

    let missing = run_invalid(&["check", path_str(&dir.join("nope.yaml"))], None);
    assert!(missing.contains("nope.yaml"), "{missing}");
    let not_yaml = dir.join("not.yaml");
    std::fs::write(&not_yaml, "messages: [unclosed\n").unwrap();
    run_invalid(&["check", path_str(&not_yaml)], None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn encode_then_decode_round_trips() {
    let value = serde_json::json!({
        "symbol": "BTC-USD ✓",
        "bid": {"price": 63999.5, "qty": 7},
        "ask": {"price": "inf", "qty": 0},
        "ts_ns": 1_700_000_000_000_000_000u64,
    });
    let hex = run_ok(
        &[
            "encode",
            "--schema",
            SCHEMA,
            "--message",
            "Quote",
            &value.to_string(),
        ],
        None,
    );
    let hex = hex.trim();
    assert!(hex.starts_with("0600"), "{hex}");
    // The same value from standard input gives the same frame.
    let from_stdin = run_ok(
        &["encode", "--schema", SCHEMA, "--message", "Quote", "-"],
        Some(&value.to_string()),
    );
    assert_eq!(from_stdin.trim(), hex);

    let decoded = run_ok(&["decode", "--schema", SCHEMA, hex], None);
    let document: serde_json::Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(document["message"], "Quote");
    assert_eq!(document["type_id"], 6);
    assert_eq!(document["value"], value);
    // Hex from standard input, wrapped and spaced like `xxd -p` output.
    let wrapped: String = hex
        .as_bytes()
        .chunks(20)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    assert_eq!(
        run_ok(&["decode", "--schema", SCHEMA], Some(&wrapped)),
        decoded
    );
    // Or split over several arguments.
    let (head, tail) = hex.split_at(12);
    assert_eq!(
        run_ok(&["decode", "--schema", SCHEMA, head, tail], None),
        decoded
    );
}

#[test]
fn encode_rejects_bad_input_with_a_located_message() {
    let stderr = run_invalid(
        &["encode", "--schema", SCHEMA, "--message", "Nope", "{}"],
        None,
    );
    assert!(
        stderr.contains("Nope") && stderr.contains("TradeTick"),
        "{stderr}"
    );
    let stderr = run_invalid(
        &[
            "encode",
            "--schema",
            SCHEMA,
            "--message",
            "TradeTick",
            "{not json",
        ],
        None,
    );
    assert!(stderr.contains("JSON"), "{stderr}");
    let batch = r#"{"venue": "584e4153", "seq": 1, "ticks": [{"symbol": "A", "price": "cheap", "size": 1, "ts_ns": 2, "side": 0}]}"#;
    let stderr = run_invalid(
        &[
            "encode",
            "--schema",
            SCHEMA,
            "--message",
            "TickBatch",
            batch,
        ],
        None,
    );
    assert!(stderr.contains("TickBatch.ticks[0].price"), "{stderr}");
}

#[test]
fn decode_of_hostile_input_exits_1_without_panicking() {
    // A TickBatch frame whose 16-byte payload claims u32::MAX ticks.
    let mut huge = vec![7, 0, 16, 0, 0, 0];
    huge.extend_from_slice(b"XNAS");
    huge.extend_from_slice(&1u64.to_le_bytes());
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    let stderr = run_invalid(&["decode", "--schema", SCHEMA, &hex::encode(&huge)], None);
    assert!(stderr.contains("4294967295"), "{stderr}");

    let mut cases: Vec<(String, &str)> = vec![
        ("zz".into(), "hex"),
        ("".into(), "hex"),
        ("0100".into(), "truncated"),
        // Header claims 4 GiB of payload.
        ("0100ffffffff".into(), "exceeds"),
        // Unknown type id 999 with an empty payload.
        ("e70300000000".into(), "999"),
        // A TradeTick frame with one trailing byte.
        (
            format!("0100{}00", "1a000000".to_owned() + &"00".repeat(25)),
            "trailing",
        ),
    ];
    // Deterministic pseudo-random garbage of several lengths.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for len in [1usize, 6, 7, 31, 200, 4096] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        cases.push((hex::encode(bytes), ""));
    }
    for (input, expected) in &cases {
        let stderr = run_invalid(&["decode", "--schema", SCHEMA, input], None);
        assert!(stderr.contains(expected), "{input}: {stderr}");
    }
}

#[test]
fn codegen_prints_rust_and_python_and_rejects_unknown_languages() {
    let schema = Schema::from_path(SCHEMA).unwrap();
    let out = run_ok(&["codegen", "--lang", "rust", "--schema", SCHEMA], None);
    assert_eq!(out, mycelium_codegen::generate_rust(&schema));

    let dir = scratch("codegen");
    let target = dir.join("contracts.rs");
    let printed = run_ok(
        &[
            "codegen",
            "--lang",
            "rust",
            "--schema",
            SCHEMA,
            "--out",
            path_str(&target),
        ],
        None,
    );
    assert!(printed.is_empty());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), out);
    std::fs::remove_dir_all(&dir).unwrap();

    let python = run_ok(&["codegen", "--lang", "python", "--schema", SCHEMA], None);
    assert_eq!(
        python,
        mycelium_codegen::generate_python(&Schema::from_path(SCHEMA).unwrap())
    );
    let unknown = run(&["codegen", "--lang", "cobol", "--schema", SCHEMA], None);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("unknown language"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn vectors_command_prints_the_library_output() {
    let schema = Schema::from_path(SCHEMA).unwrap();
    let out = run_ok(&["vectors", "--schema", SCHEMA], None);
    assert_eq!(
        out,
        mycelium_codegen::vectors::vectors_json(&schema).unwrap()
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["digest"][..],
        &["encode", "--schema", SCHEMA][..],
    ] {
        let out = run(args, None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    assert_eq!(run(&["--help"], None).code, 0);
}

/// Waits for `child` at most 30 s (a bridge peer that never shows up must not hang the
/// suite), then returns its exit code and output.
fn finish_within(mut child: std::process::Child) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("`mycelium bridge` did not finish within 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn bridge_connects_two_processes_through_a_unix_socket() {
    let dir = scratch("bridge");
    let address = format!("unix:{}", path_str(&dir.join("bus.sock")));
    let spawn = |args: &[&str]| {
        Command::new(BIN)
            .arg("bridge")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let json = r#"{"sender": "desk", "body": "hi {i}", "sent_at_ns": {i}}"#;
    let server = spawn(&[
        "--schema",
        SCHEMA,
        "--listen",
        &address,
        "--publish-json",
        "TextMessage",
        json,
        "--count",
        "2",
    ]);
    let client = spawn(&[
        "--schema",
        SCHEMA,
        "--connect",
        &address,
        "--subscribe",
        "TextMessage",
        "--expect",
        "2",
        "--backoff-min-ms",
        "20",
    ]);
    let client = finish_within(client);
    let server = finish_within(server);
    assert_eq!(client.code, 0, "{}", client.stderr);
    assert_eq!(server.code, 0, "{}", server.stderr);
    assert!(server.stdout.contains("published 2"), "{}", server.stdout);
    let lines: Vec<&str> = client.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", client.stdout);
    assert!(lines[0].contains(r#""body":"hi 0""#), "{}", lines[0]);
    assert!(lines[1].contains(r#""body":"hi 1""#), "{}", lines[1]);
    assert_eq!(lines[2], "received 2");
    std::fs::remove_dir_all(&dir).unwrap();

    let stderr = run_invalid(&["bridge", "--listen", "unix:/tmp/unused.sock"], None);
    assert!(stderr.contains("no schema"), "{stderr}");
}

/// `--nats` errors a user can make, without a server (the NATS suites test the joins):
/// nobody listening, credentials shown redacted, a token file without `--nats`.
#[test]
fn bridge_nats_errors_are_clear() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://alice:pw-42@127.0.0.1:{port}");
    let stderr = run_invalid(
        &[
            "bridge",
            "--schema",
            SCHEMA,
            "--nats",
            &url,
            "--subscribe",
            "TradeTick",
        ],
        None,
    );
    assert!(
        stderr.contains(&format!(
            "cannot connect to NATS at nats://<redacted>@127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-42"), "no secret in errors: {stderr}");
    let stderr = run_invalid(
        &[
            "bridge",
            "--schema",
            SCHEMA,
            "--listen",
            "unix:/tmp/unused.sock",
            "--nats-token-file",
            "/nonexistent",
        ],
        None,
    );
    assert!(stderr.contains("--nats-token-file"), "{stderr}");
}

#[test]
fn check_refuses_what_any_generator_refuses_so_ok_means_codegen_works() {
    let dir = scratch("check-generators");
    let reserved = dir.join("reserved.yaml");
    std::fs::write(
        &reserved,
        "schema: s\nversion: 1\nmessages:\n  Self:\n    id: 1\n    fields:\n      - to_bytes: u8\n",
    )
    .unwrap();
    let stderr = run_invalid(&["check", path_str(&reserved)], None);
    assert!(stderr.contains("rust code: message Self"), "{stderr}");
    assert!(
        stderr.contains("python code: message Self: a field called 'to_bytes'"),
        "{stderr}"
    );
    assert!(stderr.contains("2 problem(s) found"), "{stderr}");
    // and codegen indeed refuses it
    assert_eq!(
        run(
            &["codegen", "--lang", "rust", "--schema", path_str(&reserved)],
            None
        )
        .code,
        1
    );

    let empty = dir.join("empty.yaml");
    std::fs::write(&empty, "schema: s\nversion: 1\nmessages: {}\n").unwrap();
    let stderr = run_invalid(&["check", path_str(&empty)], None);
    assert!(stderr.contains("defines no messages"), "{stderr}");
}

#[test]
fn diff_names_each_difference_and_exits_1_only_when_there_is_one() {
    let dir = scratch("diff");
    let changed = dir.join("changed.yaml");
    let text = std::fs::read_to_string(SCHEMA).unwrap();
    std::fs::write(&changed, text.replacen("- size: u32", "- size: u64", 1)).unwrap();
    let out = run(&["diff", SCHEMA, path_str(&changed)], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "TradeTick: field size u32 -> u64"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("the schemas differ"), "{}", out.stderr);
    let same = run_ok(&["diff", SCHEMA, SCHEMA], None);
    assert!(same.starts_with("same digest "), "{same}");
}
