//! `mycelium request` and `mycelium reply`: request/reply from the command line, as `nats
//! request` / `nats reply` and `ros2 service call` do. Both join a running bus through a socket
//! bridge like the other tools (`tools.rs`): `request` asks a service some process serves and
//! prints the answer; `reply` serves one with a fixed answer, to stand in for a service that
//! is not written yet or to smoke-test a client.
//!
//! Standard output carries only JSON lines; notices and errors go to standard error. Exit
//! codes: 0 answered, 1 an error (no responder, timeout, the responder failed, a bad value),
//! 2 bad arguments, 3 `reply` stopped before `--count` requests were answered.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mycelium_protocol::{decode_value, encode_value, MessageDef, Schema, Value};
use mycelium_transport::{MessageBus, RequestError, ServeOptions};

use crate::cli::CliError;
use crate::tools::{message_def, say, with_bus, PeerArgs};

/// How long `reply` keeps the bridges up after its last answer, so that answer reaches them.
const REPLY_GRACE: Duration = Duration::from_millis(300);

/// `mycelium request SERVICE [JSON]`: sends a request and prints the reply.
#[derive(Debug, Clone, clap::Args)]
pub struct RequestArgs {
    /// A service of the schema (e.g. RiskCheck), or, with --reply, the request message.
    pub service: String,
    /// The request as a JSON object; "-" or nothing reads standard input.
    pub json: Option<String>,
    #[command(flatten)]
    pub peer: PeerArgs,
    /// The reply message, when SERVICE names a request message instead of a declared service.
    #[arg(long, value_name = "MESSAGE")]
    pub reply: Option<String>,
    /// Seconds to wait for a responder to be announced, then for each answer.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Ask every responder and print every answer that arrives within --timeout (the default
    /// takes the first successful answer).
    #[arg(long)]
    pub all: bool,
    /// Send the request this many times, one after the other.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub count: u64,
}

/// `mycelium reply SERVICE [JSON]`: serves a service with a fixed answer.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplyArgs {
    /// A service of the schema (e.g. RiskCheck), or, with --reply, the request message.
    pub service: String,
    /// The answer as a JSON object (not needed with --fail).
    pub json: Option<String>,
    #[command(flatten)]
    pub peer: PeerArgs,
    /// The reply message, when SERVICE names a request message instead of a declared service.
    #[arg(long, value_name = "MESSAGE")]
    pub reply: Option<String>,
    /// Copy this field from each request into the answer (same name and type in both, e.g.
    /// order_id, so answers correlate); repeatable.
    #[arg(long, value_name = "FIELD")]
    pub copy: Vec<String>,
    /// Answer every request as failed with this reason instead (the requester gets "the
    /// responder failed: REASON").
    #[arg(long, value_name = "REASON", conflicts_with = "json")]
    pub fail: Option<String>,
    /// Exit after answering this many requests.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// What `reply` answers.
enum Answer {
    /// This JSON value (with the `--copy` fields taken from each request).
    Fixed(serde_json::Value),
    /// A failure with this reason.
    Fail(String),
}

/// The (request, reply) pair a command addresses, and the name it prints.
#[derive(Debug)]
struct Target<'s> {
    name: String,
    request: &'s MessageDef,
    reply: &'s MessageDef,
}

fn target<'s>(
    schema: &'s Schema,
    service: &str,
    reply: Option<&str>,
) -> Result<Target<'s>, CliError> {
    if let Some(def) = schema.service_by_name(service) {
        if let Some(r) = reply.filter(|r| *r != def.reply) {
            return Err(CliError::Usage(format!(
                "service {service} answers with {}, not --reply {r}",
                def.reply
            )));
        }
        return Ok(Target {
            name: def.name.clone(),
            request: message_def(schema, &def.request)?,
            reply: message_def(schema, &def.reply)?,
        });
    }
    let Some(reply) = reply else {
        let declared: Vec<&str> = schema.services.iter().map(|s| s.name.as_str()).collect();
        return Err(CliError::Usage(format!(
            "no service named '{service}' in the schema (it declares: {}); to address a \
             request message directly, give it with --reply MESSAGE",
            if declared.is_empty() {
                "none".to_owned()
            } else {
                declared.join(", ")
            }
        )));
    };
    let request = message_def(schema, service)?;
    let reply = message_def(schema, reply)?;
    Ok(Target {
        name: format!("{} -> {}", request.name, reply.name),
        request,
        reply,
    })
}

fn seconds(flag: &str, s: f64) -> Result<Duration, CliError> {
    if s.is_finite() && s > 0.0 && s <= 86_400.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(CliError::Usage(format!(
            "{flag} {s}: give seconds above 0 and at most 86400"
        )))
    }
}

/// `json` as a value of `message`, encoded as a payload.
fn payload_from_json(
    what: &str,
    schema: &Schema,
    message: &MessageDef,
    json: &serde_json::Value,
) -> Result<Bytes, CliError> {
    let bad = |reason: String| {
        CliError::Usage(format!("{what} is not a valid {}: {reason}", message.name))
    };
    let value = Value::message_from_json(schema, message, json).map_err(|e| bad(e.to_string()))?;
    let payload = encode_value(schema, message, &value).map_err(|e| bad(e.to_string()))?;
    Ok(Bytes::from(payload))
}

fn parse_json(text: &str, what: &str) -> Result<serde_json::Value, CliError> {
    serde_json::from_str(text).map_err(|e| CliError::Usage(format!("{what} is not JSON: {e}")))
}

fn to_json(schema: &Schema, message: &MessageDef, payload: &[u8]) -> serde_json::Value {
    decode_value(schema, message, payload)
        .map(|v| v.to_json())
        .unwrap_or_else(|e| serde_json::json!({ "undecodable": e.to_string() }))
}

/// Waits until someone serves (`request`, `reply`) on `bus`, at most `timeout`: a peer's
/// responders are announced by its bridge after the handshake, a moment after connecting.
async fn await_responder(bus: &MessageBus, request: u16, reply: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while bus.responder_count(request, reply) == 0 {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Runs `request`.
pub fn request(args: RequestArgs) -> Result<(), CliError> {
    let schema = Schema::from_path(&args.peer.schema)?;
    let target = target(&schema, &args.service, args.reply.as_deref())?;
    let timeout = seconds("--timeout", args.timeout)?;
    if args.count == 0 {
        return Err(CliError::Usage("--count 0: give 1 or more".into()));
    }
    let text = match args.json.as_deref() {
        None | Some("-") => std::io::read_to_string(std::io::stdin())?,
        Some(text) => text.to_owned(),
    };
    let payload = payload_from_json(
        "the request",
        &schema,
        target.request,
        &parse_json(&text, "the request")?,
    )?;
    let (req, rep) = (target.request.type_id, target.reply.type_id);
    let schema = &schema;
    let target = &target;
    with_bus(
        &args.peer,
        schema,
        |_| (),
        |bus, ()| async move {
            if !await_responder(&bus, req, rep, timeout).await {
                return Err(CliError::Request(format!(
                    "no responder serves {} on this bus (waited {:?} for one to be announced)",
                    target.name, timeout
                )));
            }
            let line = |payload: &[u8]| {
                serde_json::json!({
                    "service": target.name,
                    "message": target.reply.name,
                    "value": to_json(schema, target.reply, payload),
                })
                .to_string()
            };
            let failed = |e: RequestError| CliError::Request(format!("{}: {e}", target.name));
            for _ in 0..args.count {
                if args.all {
                    let gathered = bus
                        .request_all_raw_async(req, rep, payload.clone(), timeout)
                        .await
                        .map_err(failed)?;
                    for reply in &gathered.replies {
                        say(&line(reply))?;
                    }
                    for reason in &gathered.failures {
                        eprintln!("{}: a responder failed: {reason}", target.name);
                    }
                    if gathered.unanswered > 0 {
                        eprintln!(
                            "{}: {} responder(s) did not answer within {timeout:?}",
                            target.name, gathered.unanswered
                        );
                    }
                    if gathered.replies.is_empty() {
                        return Err(CliError::Request(format!(
                            "{}: no responder answered ({} failed, {} unanswered)",
                            target.name,
                            gathered.failures.len(),
                            gathered.unanswered
                        )));
                    }
                } else {
                    let reply = bus
                        .request_raw_async(req, rep, payload.clone(), timeout)
                        .await
                        .map_err(failed)?;
                    say(&line(&reply))?;
                }
            }
            Ok(args.count)
        },
        None,
    )
}

/// Runs `reply`.
pub fn reply(args: ReplyArgs) -> Result<(), CliError> {
    let schema = Schema::from_path(&args.peer.schema)?;
    let target = target(&schema, &args.service, args.reply.as_deref())?;
    for field in &args.copy {
        let in_request = target.request.fields.iter().find(|f| &f.name == field);
        let in_reply = target.reply.fields.iter().find(|f| &f.name == field);
        match (in_request, in_reply) {
            (Some(a), Some(b)) if a.ty == b.ty => {}
            _ => {
                return Err(CliError::Usage(format!(
                    "--copy {field}: {} and {} must both have a field {field} of one type",
                    target.request.name, target.reply.name
                )))
            }
        }
    }
    // The answer: a fixed JSON object, checked now so a typo fails before anyone asks.
    let answer = match (&args.fail, &args.json) {
        (Some(reason), _) => Answer::Fail(reason.clone()),
        (None, Some(text)) => {
            let json = parse_json(text, "the answer")?;
            payload_from_json("the answer", &schema, target.reply, &json)?;
            Answer::Fixed(json)
        }
        (None, None) => {
            return Err(CliError::Usage(format!(
                "give the answer as a JSON value of {}, or --fail REASON",
                target.reply.name
            )))
        }
    };
    let (req, rep) = (target.request.type_id, target.reply.type_id);
    let schema = &schema;
    let target = &target;
    with_bus(
        &args.peer,
        schema,
        |bus| {
            bus.serve_raw(
                req,
                rep,
                ServeOptions::default().with_label("mycelium reply"),
            )
        },
        |_, responder| async move {
            let mut answered = 0u64;
            while args.count.is_none_or(|n| answered < n) {
                let Some(incoming) = responder.recv().await else {
                    break;
                };
                let request = to_json(schema, target.request, incoming.payload());
                say(&serde_json::json!({
                    "service": target.name,
                    "message": target.request.name,
                    "value": request,
                })
                .to_string())?;
                match &answer {
                    Answer::Fixed(json) => {
                        let mut json = json.clone();
                        for field in &args.copy {
                            json[field.as_str()] = request[field.as_str()].clone();
                        }
                        match payload_from_json("the answer", schema, target.reply, &json) {
                            Ok(payload) => incoming.reply(payload),
                            Err(e) => incoming.fail(e.to_string()),
                        }
                    }
                    Answer::Fail(reason) => incoming.fail(reason.clone()),
                }
                answered += 1;
            }
            // A socket bridge writes an answer to its peer from its own task, a moment after
            // `reply`: closing the bridges at once could cut the last answers off.
            tokio::time::sleep(REPLY_GRACE).await;
            Ok(answered)
        },
        args.count,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "schema: t\nversion: 1\nmessages:\n  Ask:\n    id: 1\n    fields:\n      - n: u32\n  Answer:\n    id: 2\n    fields:\n      - n: u32\n      - ok: bool\nservices:\n  Check: {request: Ask, reply: Answer}\n";

    #[test]
    fn targets_are_services_or_message_pairs_and_errors_say_what_exists() {
        let schema = Schema::from_yaml_str(SCHEMA).unwrap();
        let t = target(&schema, "Check", None).unwrap();
        assert_eq!(
            (t.request.name.as_str(), t.reply.name.as_str()),
            ("Ask", "Answer")
        );
        let t = target(&schema, "Answer", Some("Ask")).unwrap();
        assert_eq!(t.name, "Answer -> Ask");
        let e = target(&schema, "Chek", None).unwrap_err().to_string();
        assert!(
            e.contains("no service named 'Chek'") && e.contains("declares: Check"),
            "{e}"
        );
        let e = target(&schema, "Check", Some("Ask"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("answers with Answer, not --reply Ask"), "{e}");
        assert!(seconds("--timeout", 0.0).is_err() && seconds("--timeout", f64::NAN).is_err());
    }
}
