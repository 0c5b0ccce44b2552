//! Credentials inside server URLs (`nats://user:password@host:port`, `nats://token@host`).
//!
//! async-nats 0.52 parses such URLs but never sends what is in them: a server that wants
//! credentials refuses the connection, and one that does not quietly accepts a client that
//! believes it authenticated. So the join takes them out of the URL and passes them as
//! [`NatsAuth`], the way every other NATS client treats them.

use crate::{NatsAuth, NatsError};

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
    fn bad_credentials_are_config_errors_that_do_not_quote_them() {
        for url in ["nats://a:b@h1:1,nats://a:c@h2:2", "nats://a:%zzsecret@h:1"] {
            let err = split_credentials(url).unwrap_err();
            assert!(matches!(err, NatsError::Config(_)), "{url}: {err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }
}
