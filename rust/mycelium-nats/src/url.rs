//! Credentials inside server URLs (`nats://user:password@host:port`, `nats://token@host`).
//!
//! async-nats 0.52 parses such URLs but never sends what is in them: a server that wants
//! credentials refuses the connection, and one that does not quietly accepts a client that
//! believes it authenticated. So the join takes them out of the URL and passes them as
//! [`NatsAuth`], the way every other NATS client treats them.

use crate::{DeliverFrom, JetStreamOptions, NatsAuth, NatsConfig, NatsError, StreamLimits};
use mycelium_transport::OverflowPolicy;

/// The options a URL may carry after `?`, for callers that have only an address string.
pub const URL_OPTIONS: &str =
    "prefix, jetstream, durable, deliver (all, new or a stream sequence), replicas (1 to 5), \
     max_msgs, max_bytes (a count, K/M/G suffixes allowed), max_age (e.g. 90s, 15m, 12h, 7d), \
     ack_wait, ack_timeout, duplicate_window (durations), batch, max_in_flight (counts), \
     publisher_id, \
     outgoing, overflow, \
     ca (a PEM file), cert and key (PEM files, together), nkey_seed_file (a file holding an \
     nkey seed)";

/// [`NatsConfig::from_url`]: the address without its `?options`, and the configuration they
/// describe. Options after the last `?` of the whole string (one set for a cluster list).
pub(crate) fn config_from_url(address: &str) -> Result<NatsConfig, NatsError> {
    let (url, query) = match address.rsplit_once('?') {
        Some((url, query)) => (url, query),
        None => (address, ""),
    };
    let mut config = NatsConfig::new(url);
    let mut jetstream: Option<JetStreamOptions> = None;
    let mut durable = None;
    let mut deliver = None;
    let mut replicas = None;
    let mut limits = StreamLimits::default();
    // JetStream tuning, applied once `jetstream=` is known (the options may come in any order).
    let mut tuning = Tuning::default();
    let mut cert = None;
    let mut key = None;
    let bad = |name: &str, why: String| {
        NatsError::Config(format!("URL option {name}: {why} (options: {URL_OPTIONS})"))
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).map_err(|_| bad(name, "malformed %-escape".into()))?;
        if value.is_empty() {
            return Err(bad(name, "needs a value".into()));
        }
        match name {
            "prefix" => config.prefix = value,
            "jetstream" => jetstream = Some(JetStreamOptions::new(value)),
            "durable" => durable = Some(value),
            "replicas" => {
                replicas = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|&n: &usize| (1..=5).contains(&n))
                        .ok_or_else(|| {
                            bad(
                                name,
                                format!("{value:?} is not a replica count from 1 to 5"),
                            )
                        })?,
                )
            }
            "max_msgs" | "max_bytes" => {
                let n = count_with_suffix(&value)
                    .ok_or_else(|| bad(name, format!("{value:?} is not a positive count")))?;
                if name == "max_msgs" {
                    limits.max_messages = Some(n);
                } else {
                    limits.max_bytes = Some(n);
                }
            }
            "max_age" => {
                limits.max_age = Some(duration(&value).ok_or_else(|| {
                    bad(
                        name,
                        format!("{value:?} is not a positive duration such as 90s, 15m, 12h or 7d"),
                    )
                })?)
            }
            "ack_wait" | "ack_timeout" | "duplicate_window" => {
                let d = duration(&value).ok_or_else(|| {
                    bad(
                        name,
                        format!("{value:?} is not a positive duration such as 90s, 15m, 12h or 7d"),
                    )
                })?;
                *match name {
                    "ack_wait" => &mut tuning.ack_wait,
                    "ack_timeout" => &mut tuning.ack_timeout,
                    _ => &mut tuning.duplicate_window,
                } = Some(d);
            }
            "batch" | "max_in_flight" => {
                let n = value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(name, format!("{value:?} is not a positive count")))?;
                *match name {
                    "batch" => &mut tuning.batch,
                    _ => &mut tuning.max_in_flight,
                } = Some(n);
            }
            "publisher_id" => tuning.publisher_id = Some(value),
            "deliver" => {
                deliver = Some(match value.as_str() {
                    "all" => DeliverFrom::All,
                    "new" => DeliverFrom::New,
                    seq => DeliverFrom::Sequence(seq.parse().map_err(|_| {
                        bad(
                            name,
                            format!("{seq:?} is not all, new or a stream sequence"),
                        )
                    })?),
                })
            }
            "outgoing" => {
                config.queue_capacity = value
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .ok_or_else(|| bad(name, format!("{value:?} is not a positive count")))?
            }
            "overflow" => {
                config.queue_overflow = OverflowPolicy::from_name(&value)
                    .map_err(|e| bad(name, e))?
                    .0
            }
            "ca" => config.tls.ca_file = Some(value.into()),
            "cert" => cert = Some(std::path::PathBuf::from(value)),
            "key" => key = Some(std::path::PathBuf::from(value)),
            // A file, not the seed itself: an address gets printed and logged (redacted only
            // where it holds user:password@).
            "nkey_seed_file" => {
                let seed = std::fs::read_to_string(&value)
                    .map_err(|e| bad(name, format!("cannot read {value}: {e}")))?;
                config.auth = crate::NatsAuth::Nkey(seed.trim().to_string());
            }
            other => return Err(bad(other, "unknown".into())),
        }
    }
    match (cert, key) {
        (Some(cert), Some(key)) => config.tls.client_cert = Some((cert, key)),
        (None, None) => {}
        _ => return Err(bad("cert/key", "give both or neither".into())),
    }
    match jetstream {
        Some(mut js) => {
            js.durable = durable;
            js.deliver = deliver.unwrap_or_default();
            js.replicas = replicas.unwrap_or(1);
            js.limits = limits;
            tuning.apply(&mut js);
            config.jetstream = Some(js);
        }
        None if durable.is_some()
            || deliver.is_some()
            || replicas.is_some()
            || limits != StreamLimits::default()
            || tuning != Tuning::default() =>
        {
            return Err(bad(
                "durable/deliver/replicas/max_*/ack_*/batch/max_in_flight/publisher_id/duplicate_window",
                "only with jetstream=<stream>".into(),
            ))
        }
        None => {}
    }
    Ok(config)
}

/// JetStream options an address may set; `None`: the default.
#[derive(Default, PartialEq)]
struct Tuning {
    ack_wait: Option<std::time::Duration>,
    ack_timeout: Option<std::time::Duration>,
    duplicate_window: Option<std::time::Duration>,
    batch: Option<usize>,
    max_in_flight: Option<usize>,
    publisher_id: Option<String>,
}

impl Tuning {
    fn apply(self, js: &mut JetStreamOptions) {
        js.ack_wait = self.ack_wait.unwrap_or(js.ack_wait);
        js.ack_timeout = self.ack_timeout.unwrap_or(js.ack_timeout);
        js.duplicate_window = self.duplicate_window.unwrap_or(js.duplicate_window);
        js.batch = self.batch.unwrap_or(js.batch);
        js.max_in_flight_acks = self.max_in_flight.unwrap_or(js.max_in_flight_acks);
        js.publisher_id = self.publisher_id.or(js.publisher_id.take());
    }
}

/// `1000`, `64K`, `10M`, `2G` (powers of 1024 for K/M/G); positive.
fn count_with_suffix(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&text[..i], 1 << 20),
        (i, 'G' | 'g') => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n > 0)
}

/// `90s`, `15m`, `12h`, `7d`, or plain seconds; positive.
fn duration(text: &str) -> Option<std::time::Duration> {
    let (digits, seconds) = match text.char_indices().last()? {
        (i, 's') => (&text[..i], 1u64),
        (i, 'm') => (&text[..i], 60),
        (i, 'h') => (&text[..i], 3600),
        (i, 'd') => (&text[..i], 86_400),
        _ => (text, 1),
    };
    let n = digits.parse::<u64>().ok()?.checked_mul(seconds)?;
    (n > 0).then(|| std::time::Duration::from_secs(n))
}

/// `url` (one server, or a comma-separated list) without credentials, and the credentials
/// found in it ([`NatsAuth::None`] if none). Every server of a list must carry the same ones.
pub(crate) fn split_credentials(url: &str) -> Result<(String, NatsAuth), NatsError> {
    let mut found: Option<NatsAuth> = None;
    let mut clean = Vec::new();
    for server in url.split(',') {
        let server = server.trim();
        let (scheme, rest) = match server.split_once("://") {
            Some((scheme, rest)) => (format!("{scheme}://"), rest),
            None => (String::new(), server),
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else {
            clean.push(server.to_string());
            continue;
        };
        let userinfo = &rest[..at];
        let auth = match userinfo.split_once(':') {
            Some((user, password)) => NatsAuth::UserPassword {
                user: percent_decode(user)?,
                password: percent_decode(password)?,
            },
            None => NatsAuth::Token(percent_decode(userinfo)?),
        };
        if let Some(previous) = &found {
            if !same(previous, &auth) {
                return Err(NatsError::Config(
                    "the servers of one URL list carry different credentials".to_string(),
                ));
            }
        }
        found = Some(auth);
        clean.push(format!("{scheme}{}", &rest[at + 1..]));
    }
    Ok((clean.join(","), found.unwrap_or_default()))
}

fn same(a: &NatsAuth, b: &NatsAuth) -> bool {
    match (a, b) {
        (NatsAuth::None, NatsAuth::None) => true,
        (
            NatsAuth::UserPassword { user, password },
            NatsAuth::UserPassword {
                user: u2,
                password: p2,
            },
        ) => user == u2 && password == p2,
        (NatsAuth::Token(a), NatsAuth::Token(b)) => a == b,
        _ => false,
    }
}

/// `%XX` escapes, as URLs carry reserved characters (`@`, `:`, `/`) inside user names and
/// passwords. The error never quotes the text: it is a secret.
fn percent_decode(text: &str) -> Result<String, NatsError> {
    let bad = || {
        NatsError::Config(
            "the credentials in the URL have a malformed %-escape or are not UTF-8".to_string(),
        )
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, String) {
        let (clean, auth) = split_credentials(url).unwrap();
        let auth = match auth {
            NatsAuth::None => "none".to_string(),
            NatsAuth::UserPassword { user, password } => format!("user {user} / {password}"),
            NatsAuth::Token(t) => format!("token {t}"),
            NatsAuth::Nkey(seed) => format!("nkey {seed}"),
        };
        (clean, auth)
    }

    #[test]
    fn credentials_leave_the_url() {
        assert_eq!(
            split("nats://127.0.0.1:4222"),
            ("nats://127.0.0.1:4222".into(), "none".into())
        );
        assert_eq!(
            split("nats://alice:s%40cret@h:1"),
            ("nats://h:1".into(), "user alice / s@cret".into())
        );
        assert_eq!(
            split("tls://tok@h:1/x"),
            ("tls://h:1/x".into(), "token tok".into())
        );
        assert_eq!(
            split("nats://a:b@h1:1, nats://a:b@h2:2"),
            ("nats://h1:1,nats://h2:2".into(), "user a / b".into())
        );
    }

    #[test]
    fn url_options_configure_the_join() {
        let c = config_from_url(
            "nats://h:1?jetstream=ORDERS&durable=risk&deliver=7&prefix=p.q&outgoing=64&overflow=drop_oldest",
        )
        .unwrap();
        assert_eq!(c.url, "nats://h:1");
        assert_eq!(c.prefix, "p.q");
        assert_eq!(c.queue_capacity, 64);
        assert_eq!(c.queue_overflow, OverflowPolicy::DropOldest);
        let js = c.jetstream.unwrap();
        assert_eq!(js.stream, "ORDERS");
        assert_eq!(js.durable.as_deref(), Some("risk"));
        assert_eq!(js.deliver, DeliverFrom::Sequence(7));
        let t = config_from_url("nats://h:1?ca=/c.pem&cert=/me.pem&key=/me.key").unwrap();
        assert_eq!(
            t.tls.ca_file.as_deref(),
            Some(std::path::Path::new("/c.pem"))
        );
        assert_eq!(
            t.tls.client_cert,
            Some(("/me.pem".into(), "/me.key".into()))
        );
        assert!(
            config_from_url("nats://h:1?cert=/me.pem").is_err(),
            "cert without key"
        );
        let js = config_from_url("nats://h:1?jetstream=S&max_msgs=10K&max_bytes=1G&max_age=7d")
            .unwrap()
            .jetstream
            .unwrap();
        assert_eq!(
            js.limits,
            crate::StreamLimits {
                max_messages: Some(10 * 1024),
                max_bytes: Some(1 << 30),
                max_age: Some(std::time::Duration::from_secs(7 * 86_400)),
            }
        );
        let js = config_from_url(
            "nats://h:1?ack_wait=2s&jetstream=S&ack_timeout=1m&duplicate_window=10m&batch=32\
             &max_in_flight=8&publisher_id=feed-1",
        )
        .unwrap()
        .jetstream
        .unwrap();
        assert_eq!(
            js.ack_wait,
            std::time::Duration::from_secs(2),
            "before jetstream= too"
        );
        assert_eq!(js.ack_timeout, std::time::Duration::from_secs(60));
        assert_eq!(js.duplicate_window, std::time::Duration::from_secs(600));
        assert_eq!((js.batch, js.max_in_flight_acks), (32, 8));
        assert_eq!(js.publisher_id.as_deref(), Some("feed-1"));
        for bad in [
            "max_msgs=0",
            "max_bytes=-1",
            "max_age=0s",
            "max_age=1w",
            "max_msgs=1T",
            "batch=0",
            "max_in_flight=x",
            "ack_wait=soon",
        ] {
            assert!(
                config_from_url(&format!("nats://h:1?jetstream=S&{bad}")).is_err(),
                "{bad}"
            );
        }
        assert!(
            config_from_url("nats://h:1?max_age=1h").is_err(),
            "limits without a stream"
        );
        assert!(
            config_from_url("nats://h:1?batch=8").is_err(),
            "tuning without a stream"
        );
        let r = config_from_url("nats://h:1?jetstream=S&replicas=3").unwrap();
        assert_eq!(r.jetstream.unwrap().replicas, 3);
        assert!(
            config_from_url("nats://h:1?replicas=3").is_err(),
            "replicas without a stream"
        );
        assert!(config_from_url("nats://h:1?jetstream=S&replicas=9").is_err());
        assert!(config_from_url("nats://h:1?nkey_seed_file=/no/such/file").is_err());
        let plain = config_from_url("nats://a:pw@h:1,nats://h:2").unwrap();
        assert_eq!(plain.url, "nats://a:pw@h:1,nats://h:2");
        assert!(plain.jetstream.is_none());
        assert_eq!(plain.queue_overflow, OverflowPolicy::Block);
        for (url, names) in [
            ("nats://h:1?colour=red", "colour"),
            ("nats://h:1?durable=x", "only with jetstream"),
            ("nats://h:1?jetstream=S&deliver=soon", "\"soon\""),
            ("nats://h:1?outgoing=0", "positive"),
            ("nats://h:1?overflow=maybe", "maybe"),
            ("nats://h:1?prefix=", "needs a value"),
        ] {
            let err = config_from_url(url).unwrap_err().to_string();
            assert!(err.contains(names), "{url}: {err}");
        }
    }

    #[test]
    fn bad_credentials_are_config_errors_that_do_not_quote_them() {
        for url in ["nats://a:b@h1:1,nats://a:c@h2:2", "nats://a:%zzsecret@h:1"] {
            let err = split_credentials(url).unwrap_err();
            assert!(matches!(err, NatsError::Config(_)), "{url}: {err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }
}
