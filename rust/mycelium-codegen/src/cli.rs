//! The `mycelium` command line: argument definitions and one function per subcommand.
//!
//! Exit codes: 0 success, 1 invalid input (bad schema, JSON, hex or frame, I/O
//! failure), 2 usage errors (reported by clap), 101 an internal bug (panic hook).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mycelium_codegen::vectors::{self, VectorError};
use mycelium_codegen::{companion_files, generate, name_problems, Lang, LangError};
use mycelium_protocol::{
    decode_frame, decode_value, encode_frame, encode_value, DecodeError, Schema, SchemaError,
    Value, ValueError, FRAME_HEADER_LEN,
};

#[derive(Debug, Parser)]
#[command(
    name = "mycelium",
    version,
    about = "Check schemas, print digests, generate code and encode/decode Mycelium frames"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a schema; prints "ok: N messages[, M services], digest ..." or every problem
    /// found.
    Check {
        /// The schema file (contracts.yaml).
        file: PathBuf,
    },
    /// Compare two schemas: prints each difference per message ("Order: field qty u32 -> u64",
    /// "Quote missing on the other side"), exit 1 when they differ, 0 when equal.
    Diff {
        /// The schema as it was.
        old: PathBuf,
        /// The schema as it is now.
        new: PathBuf,
    },
    /// Print the schema digest (64 hex characters).
    Digest {
        /// The schema file (contracts.yaml).
        file: PathBuf,
        /// Also print one "Name id fingerprint" line per message, in type-id order.
        #[arg(long)]
        messages: bool,
    },
    /// Generate code for a schema.
    Codegen {
        /// Target language: rust, python or ocaml (ocaml also writes FILE.mli next to --out).
        #[arg(long, value_parser = parse_lang)]
        lang: Lang,
        /// The schema file (contracts.yaml).
        #[arg(long)]
        schema: PathBuf,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Encode a JSON value of a message as a frame, printed as hex.
    Encode {
        /// The schema file (contracts.yaml).
        #[arg(long)]
        schema: PathBuf,
        /// The message name, e.g. TradeTick.
        #[arg(long)]
        message: String,
        /// The value as a JSON object; "-" or nothing reads standard input.
        json: Option<String>,
    },
    /// Decode a hex frame and print {"message", "type_id", "value"} as JSON.
    Decode {
        /// The schema file (contracts.yaml).
        #[arg(long)]
        schema: PathBuf,
        /// The whole frame (header and payload) as hex; whitespace and separate
        /// arguments are joined. "-" or nothing reads standard input.
        hex: Vec<String>,
    },
    /// Generate the cross-language test vectors file for a schema.
    Vectors {
        /// The schema file (contracts.yaml).
        #[arg(long)]
        schema: PathBuf,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Connect buses across processes over Unix sockets or TCP (see docs/bridges.md), or
    /// through NATS with --nats (docs/distributed.md).
    Bridge(Box<crate::nats_join::BridgeCommand>),
    /// Print every message of one type on a bus as a JSON line (through a socket bridge).
    Echo(Box<mycelium_bridge::tools::EchoArgs>),
    /// Show the rate of one message type on a bus, and its latency if it carries a time.
    Hz(Box<mycelium_bridge::tools::HzArgs>),
    /// Record messages from a bus to a file (format in docs/cli.md).
    Record(Box<mycelium_bridge::tools::RecordArgs>),
    /// Publish a recording's messages on a bus with their original timing.
    Replay(Box<mycelium_bridge::tools::ReplayArgs>),
    /// Ask a service on a bus and print the answer (see docs/request-reply.md).
    Request(Box<mycelium_bridge::request_tools::RequestArgs>),
    /// Serve a service on a bus with a fixed answer (or a failure), printing each request.
    Reply(Box<mycelium_bridge::request_tools::ReplyArgs>),
}

fn parse_lang(text: &str) -> Result<Lang, LangError> {
    text.parse()
}

/// Everything a subcommand can fail with; all of it is the user's input, so exit code 1.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Schema(#[from] SchemaError),
    #[error("cannot read {what}: {source}")]
    Read { what: String, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot write to standard output: {0}")]
    Stdout(io::Error),
    #[error("{schema}: no message named '{name}' (the schema defines: {known})")]
    UnknownMessage {
        schema: String,
        name: String,
        known: String,
    },
    #[error("input is not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("{0}")]
    Value(#[from] ValueError),
    #[error("input is not a hex frame: {0}")]
    Hex(String),
    #[error("cannot decode frame: {0}")]
    Frame(DecodeError),
    #[error("cannot decode frame: type id {type_id} is not defined by {schema} (known: {known})")]
    UnknownTypeId {
        schema: String,
        type_id: u16,
        known: String,
    },
    #[error("cannot decode {message} payload: {source}")]
    Payload {
        message: String,
        source: DecodeError,
    },
    #[error("cannot encode frame: {0}")]
    Encode(String),
    #[error("{}: cannot generate {lang} code: {}", schema.display(), problems.join("; "))]
    Unsupported {
        schema: PathBuf,
        lang: Lang,
        problems: Vec<String>,
    },
    #[error("{0}")]
    Vectors(#[from] VectorError),
    /// The problems were already printed one per line; this is the summary.
    #[error("{}: {count} problem(s) found", schema.display())]
    Reported { schema: PathBuf, count: usize },
    #[error("the schemas differ in {count} place(s)")]
    Differ { count: usize },
    #[error("{0}")]
    Bridge(#[from] mycelium_bridge::cli::CliError),
}

/// Parses arguments, runs the subcommand and maps the outcome to an exit code.
pub fn run() -> ExitCode {
    // clap prints help/version (exit 0) and usage errors (exit 2) itself.
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Stdout(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            // The reader went away (e.g. `| head`); nothing left to tell anyone.
            ExitCode::SUCCESS
        }
        Err(CliError::Bridge(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Replaces Rust's panic report (message plus backtrace hint) with one line, so a bug
/// never shows a user a trace, and exits with 101 like an uncaught panic would.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".to_owned());
        let place = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error in mycelium, please report it: {message}{place}");
        std::process::exit(101);
    }));
}

fn execute(command: Command) -> Result<(), CliError> {
    match command {
        Command::Check { file } => check(&file),
        Command::Diff { old, new } => diff(&old, &new),
        Command::Digest { file, messages } => digest(&file, messages),
        Command::Codegen { lang, schema, out } => codegen(lang, &schema, out.as_deref()),
        Command::Encode {
            schema,
            message,
            json,
        } => encode(&schema, &message, json.as_deref()),
        Command::Decode { schema, hex } => {
            let joined = (!hex.is_empty()).then(|| hex.concat());
            decode(&schema, joined.as_deref())
        }
        Command::Vectors { schema, out } => write_vectors(&schema, out.as_deref()),
        Command::Bridge(args) => Ok(args.run()?),
        Command::Echo(args) => Ok(mycelium_bridge::tools::echo(*args)?),
        Command::Hz(args) => Ok(mycelium_bridge::tools::hz(*args)?),
        Command::Record(args) => Ok(mycelium_bridge::tools::record(*args)?),
        Command::Replay(args) => Ok(mycelium_bridge::tools::replay(*args)?),
        Command::Request(args) => Ok(mycelium_bridge::request_tools::request(*args)?),
        Command::Reply(args) => Ok(mycelium_bridge::request_tools::reply(*args)?),
    }
}

fn check(file: &Path) -> Result<(), CliError> {
    match Schema::from_path(file) {
        Ok(schema) => {
            // "ok" promises that codegen works in every language, not only that the schema
            // is valid: what any generator would refuse is reported here too.
            let problems = generator_problems(&schema);
            if !problems.is_empty() {
                for problem in &problems {
                    eprintln!("error: {}: {problem}", file.display());
                }
                return Err(CliError::Reported {
                    schema: file.to_path_buf(),
                    count: problems.len(),
                });
            }
            // Services only when declared, so the line for other schemas is unchanged.
            let services = match schema.services.len() {
                0 => String::new(),
                1 => ", 1 service".to_owned(),
                n => format!(", {n} services"),
            };
            print(&format!(
                "ok: {} messages{services}, digest {}\n",
                schema.messages.len(),
                schema.digest()
            ))
        }
        Err(e) => {
            let problems = e.validation_errors();
            if problems.is_empty() {
                return Err(e.into());
            }
            let positions = e.positions();
            for (i, problem) in problems.iter().enumerate() {
                match positions.get(i).and_then(Option::as_ref) {
                    // file:line:column, as compilers write it, then the line itself
                    Some(p) => eprintln!(
                        "error: {}:{}:{}: {problem}\n      | {}",
                        file.display(),
                        p.line,
                        p.column,
                        p.snippet
                    ),
                    None => eprintln!("error: {}: {problem}", file.display()),
                }
            }
            Err(CliError::Reported {
                schema: file.to_path_buf(),
                count: problems.len(),
            })
        }
    }
}

/// What would stop a generator, or make a useless bus: an empty schema, and each language's
/// name problems (a message called `Self`, a field called `to_bytes`, ...).
fn generator_problems(schema: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    if schema.messages.is_empty() {
        problems.push("the schema defines no messages; a bus needs at least one".to_owned());
    }
    for &lang in Lang::ALL {
        for p in name_problems(lang, schema) {
            problems.push(format!("{} code: {p}", lang.name()));
        }
    }
    problems
}

/// `mycelium diff OLD NEW`: what differs, per message, as bridges report it.
fn diff(old: &Path, new: &Path) -> Result<(), CliError> {
    let (a, b) = (Schema::from_path(old)?, Schema::from_path(new)?);
    let diffs =
        mycelium_protocol::diff_canonical(&a.canonical_description(), &b.canonical_description());
    if diffs.is_empty() {
        return print(&format!("same digest {}\n", a.digest()));
    }
    let mut text = String::new();
    for d in &diffs {
        text.push_str(d);
        text.push('\n');
    }
    print(&text)?;
    Err(CliError::Differ { count: diffs.len() })
}

fn digest(file: &Path, with_messages: bool) -> Result<(), CliError> {
    let schema = Schema::from_path(file)?;
    let mut text = format!("{}\n", schema.digest());
    if with_messages {
        for message in &schema.messages {
            let fingerprint = schema.fingerprint(&message.name).unwrap_or_default();
            text.push_str(&format!(
                "{} {} {fingerprint}\n",
                message.name, message.type_id
            ));
        }
    }
    print(&text)
}

fn codegen(lang: Lang, schema_path: &Path, out: Option<&Path>) -> Result<(), CliError> {
    let schema = Schema::from_path(schema_path)?;
    let problems = name_problems(lang, &schema);
    if !problems.is_empty() {
        return Err(CliError::Unsupported {
            schema: schema_path.to_path_buf(),
            lang,
            problems,
        });
    }
    emit(&generate(lang, &schema), out)?;
    let companions = companion_files(lang, &schema);
    match out {
        // Each companion (the OCaml .mli) goes next to the main file.
        Some(path) => companions
            .iter()
            .try_for_each(|(extension, text)| emit(text, Some(&path.with_extension(extension)))),
        None => {
            for (extension, _) in &companions {
                eprintln!("note: the .{extension} file is written only with --out FILE");
            }
            Ok(())
        }
    }
}

fn encode(schema_path: &Path, message_name: &str, input: Option<&str>) -> Result<(), CliError> {
    let schema = Schema::from_path(schema_path)?;
    let message = schema
        .message_by_name(message_name)
        .ok_or_else(|| CliError::UnknownMessage {
            schema: schema_path.display().to_string(),
            name: message_name.to_owned(),
            known: message_names(&schema),
        })?;
    let text = argument_or_stdin(input, "JSON value")?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(CliError::Json)?;
    let value = Value::message_from_json(&schema, message, &json)?;
    let payload = encode_value(&schema, message, &value)?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    encode_frame(message.type_id, &payload, &mut frame)
        .map_err(|e| CliError::Encode(e.to_string()))?;
    print(&format!("{}\n", hex::encode(frame)))
}

fn decode(schema_path: &Path, input: Option<&str>) -> Result<(), CliError> {
    let schema = Schema::from_path(schema_path)?;
    let text = argument_or_stdin(input, "hex frame")?;
    let frame = parse_hex(&text)?;
    let (type_id, payload) = decode_frame(&frame).map_err(CliError::Frame)?;
    let message = schema
        .message_by_id(type_id)
        .ok_or_else(|| CliError::UnknownTypeId {
            schema: schema_path.display().to_string(),
            type_id,
            known: schema
                .messages
                .iter()
                .map(|m| format!("{} {}", m.type_id, m.name))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let value = decode_value(&schema, message, payload).map_err(|source| CliError::Payload {
        message: message.name.clone(),
        source,
    })?;
    let mut document = serde_json::Map::new();
    document.insert("message".into(), message.name.clone().into());
    document.insert("type_id".into(), type_id.into());
    document.insert("value".into(), value.to_json());
    let pretty = serde_json::to_string_pretty(&serde_json::Value::Object(document))
        .map_err(|e| CliError::Encode(e.to_string()))?;
    print(&format!("{pretty}\n"))
}

fn write_vectors(schema_path: &Path, out: Option<&Path>) -> Result<(), CliError> {
    let schema = Schema::from_path(schema_path)?;
    emit(&vectors::vectors_json(&schema)?, out)
}

fn message_names(schema: &Schema) -> String {
    schema
        .messages
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Accepts `0x` prefixes and any whitespace (so `xxd -p` output pastes in as is).
fn parse_hex(text: &str) -> Result<Vec<u8>, CliError> {
    let digits: String = text.split_whitespace().collect();
    let digits = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .unwrap_or(&digits);
    if digits.is_empty() {
        return Err(CliError::Hex("no hex digits given".into()));
    }
    hex::decode(digits).map_err(|e| CliError::Hex(e.to_string()))
}

fn argument_or_stdin(argument: Option<&str>, what: &str) -> Result<String, CliError> {
    match argument {
        Some(text) if text != "-" => Ok(text.to_owned()),
        _ => {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| CliError::Read {
                    what: format!("{what} from standard input"),
                    source,
                })?;
            Ok(text)
        }
    }
}

/// Writes `text` to `out`, or to standard output when no path is given.
fn emit(text: &str, out: Option<&Path>) -> Result<(), CliError> {
    match out {
        Some(path) => std::fs::write(path, text).map_err(|source| CliError::Write {
            path: path.to_path_buf(),
            source,
        }),
        None => print(text),
    }
}

/// `print!` panics when stdout is closed; this reports the error instead.
fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CliError::Stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn argument_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn hex_input_tolerates_whitespace_and_prefix() {
        assert_eq!(parse_hex("0x01 02\n0a\t").unwrap(), [1, 2, 10]);
        assert!(matches!(parse_hex("  "), Err(CliError::Hex(_))));
        assert!(matches!(parse_hex("abc"), Err(CliError::Hex(_))));
        assert!(matches!(parse_hex("zz"), Err(CliError::Hex(_))));
    }

    #[test]
    fn unknown_languages_are_usage_errors_with_the_reason() {
        let err = Cli::try_parse_from([
            "mycelium", "codegen", "--lang", "cobol", "--schema", "x.yaml",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            err.to_string().contains("unknown language 'cobol'"),
            "{err}"
        );
    }
}
