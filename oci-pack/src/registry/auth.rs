//! Authentication as registries ask for it: the `WWW-Authenticate` challenge of a 401 answer,
//! then Basic credentials on each request, or a Bearer token from the token server the
//! challenge names (Docker's token protocol, with a refresh token when the credentials are an
//! identity token). Secrets go to the registry's host and its token server only, and never over
//! plain HTTP to a host that is not allowed it.

use std::io::Read as _;

use base64::Engine as _;

use super::transport::{Failure, Limits, Paced};

/// How to authenticate; secrets are never shown by `Debug` or in errors.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// None: only what anyone may pull.
    Anonymous,
    /// A user name and password (or access token), sent as Basic or exchanged for a Bearer
    /// token, as the registry asks.
    Basic {
        /// The user name, e.g. `"ci-bot"`.
        username: String,
        /// The password or a personal access token.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in Docker's `config.json`), exchanged at the
    /// registry's token server for an access token.
    IdentityToken {
        /// The refresh token.
        token: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken { .. } => f.write_str("IdentityToken(***)"),
        }
    }
}

/// What a registry's 401 answer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry says the refused request needed.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Reads a `WWW-Authenticate` value: `Bearer realm="…",service="…",scope="…"` or
    /// `Basic realm="…"`. Other schemes are not ones a registry uses.
    pub(super) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let parameters = parameters(rest);
        let get = |key: &str| {
            parameters
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            })
        } else {
            None
        }
    }
}

/// `key="quoted, \"escaped\" value",key2=token` as pairs.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_owned();
        if key.is_empty() {
            return pairs;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
            value = value.trim().to_owned();
        }
        pairs.push((key, value));
    }
}

/// The `Authorization` header for Basic credentials.
pub(super) fn basic(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// The largest token answer read: tokens are a few KiB.
const MAX_TOKEN_ANSWER: u64 = 1 << 20;

/// What a token server answers.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

/// A Bearer token for `scopes`, from the token server at `realm`. `plain_http_ok` says of a
/// token server's `host[:port]` whether it may be asked over plain HTTP.
pub(super) fn token(
    agent: &ureq::Agent,
    limits: &Limits,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credentials: &Credentials,
    plain_http_ok: &dyn Fn(&str) -> bool,
) -> Result<String, Failure> {
    if !realm.starts_with("https://") {
        let authority = realm
            .strip_prefix("http://")
            .and_then(|rest| rest.split(['/', '?']).next());
        if !authority.is_some_and(plain_http_ok) {
            return Err(Failure::Refused(format!(
                "its token server `{realm}` is not an `https://` address; nothing is sent there"
            )));
        }
    }
    let answer = match credentials {
        // OAuth2's refresh-token grant, as Docker uses an identity token.
        Credentials::IdentityToken { token } => {
            let mut form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", token.clone()),
                ("client_id", "cargo-oci".to_owned()),
                ("scope", scopes.join(" ")),
            ];
            form.extend(service.map(|s| ("service", s.to_owned())));
            agent.post(realm).send_form(form)
        }
        _ => {
            let mut request = agent.get(realm);
            for scope in scopes {
                request = request.query("scope", scope);
            }
            if let Some(service) = service {
                request = request.query("service", service);
            }
            if let Credentials::Basic { username, password } = credentials {
                request = request
                    .query("account", username)
                    .header("Authorization", basic(username, password));
            }
            request.call()
        }
    };
    let mut response = answer.map_err(Failure::Transport)?;
    let status = response.status().as_u16();
    if status == 401 || status == 403 {
        return Err(Failure::AuthenticationFailed {
            status,
            anonymous: matches!(credentials, Credentials::Anonymous),
        });
    }
    if status != 200 {
        // A token server that is busy says for how long, as registries do.
        let retry_after = (response.headers().get("retry-after"))
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let detail = format!("from its token server `{realm}`");
        return Err(Failure::answered(status, detail, retry_after.as_deref()));
    }
    let mut bytes = Vec::new();
    Paced::new(response.body_mut().as_reader(), *limits)
        .take(MAX_TOKEN_ANSWER)
        .read_to_end(&mut bytes)
        .map_err(Failure::Io)?;
    let no_token = || {
        Failure::Refused(format!(
            "its token server `{realm}` answered without a token"
        ))
    };
    let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|_| no_token())?;
    answer
        .token
        .or(answer.access_token)
        .filter(|token| !token.is_empty())
        .ok_or_else(no_token)
}

#[cfg(test)]
mod tests {
    use super::super::transport;
    use super::*;

    #[test]
    fn challenges_are_read_as_registries_write_them() {
        assert_eq!(
            Challenge::parse(
                "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",\
                 scope=\"repository:library/debian:pull\""
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/debian:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"bearer realm="https://r/t?a=1,b=2", service=reg, error="x\"y""#),
            Some(Challenge::Bearer {
                realm: "https://r/t?a=1,b=2".into(),
                service: Some("reg".into()),
                scope: None,
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None, "no realm");
        assert_eq!(Challenge::parse("Negotiate abc"), None);
    }

    #[test]
    fn a_token_server_over_plain_http_gets_nothing_unless_allowed() {
        let agent = transport::agent(&Limits::default(), false, false);
        let credentials = Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        // Port 9 (discard) on the documentation network: refused before any connection.
        let refused = token(
            &agent,
            &Limits::default(),
            "http://192.0.2.1:9/token",
            None,
            &[],
            &credentials,
            &|_| false,
        );
        assert!(
            matches!(&refused, Err(Failure::Refused(why)) if why.contains("not an `https://`")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_busy_token_server_is_asked_again_when_it_says() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let answer = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\n\
                          content-length: 0\r\n\r\n";
            stream.write_all(answer.as_bytes()).unwrap();
        });
        let agent = transport::agent(&Limits::default(), true, false);
        let answer = token(
            &agent,
            &Limits::default(),
            &realm,
            None,
            &[],
            &Credentials::Anonymous,
            &|_| true,
        );
        assert!(
            matches!(&answer, Err(Failure::RetryAfter { wait, .. }) if wait.as_secs() == 7),
            "{answer:?}"
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let credentials = Credentials::Basic {
            username: "ferris".into(),
            password: "hunter2".into(),
        };
        assert_eq!(format!("{credentials:?}"), "Basic(ferris, ***)");
        let token = Credentials::IdentityToken {
            token: "refresh-me".into(),
        };
        assert_eq!(format!("{token:?}"), "IdentityToken(***)");
    }
}
