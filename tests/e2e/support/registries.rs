//! Registries the tests start on loopback and stop again: a real one (distribution, Debian's
//! `docker-registry`) with htpasswd, token auth or TLS; proxies in front of it that cut
//! connections or record the `Authorization` headers it receives; a token server; and small
//! servers that misbehave in one chosen way.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{assert_success, run, tool};

/// A private registry (distribution, Debian's `docker-registry`) on a free loopback port,
/// optionally with htpasswd Basic auth, token auth, TLS or on IPv6; stopped when dropped.
pub struct Registry {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    /// `127.0.0.1:PORT`, or `[::1]:PORT`
    pub host: String,
    auth: Option<(String, String)>,
}

/// How a [`Registry`] is set up.
#[derive(Default)]
pub struct RegistrySetup<'a> {
    /// htpasswd Basic auth with this user and password (or the token server's, with `token`).
    pub auth: Option<(&'a str, &'a str)>,
    /// Send clients to this token server for a Bearer token.
    pub token: Option<&'a TokenServer>,
    /// Listen on `[::1]` rather than `127.0.0.1`.
    pub ipv6: bool,
    /// Serve HTTPS with a certificate of this authority.
    pub tls: Option<&'a TestAuthority>,
}

impl Registry {
    /// `None` when the registry is missing outside CI.
    pub fn start(auth: Option<(&str, &str)>) -> Option<Registry> {
        Registry::start_with(RegistrySetup {
            auth,
            ..Default::default()
        })
    }

    /// A registry that sends clients to `token` for a Bearer token (`auth: token`).
    pub fn start_with_tokens(token: &TokenServer, credentials: (&str, &str)) -> Option<Registry> {
        Registry::start_with(RegistrySetup {
            auth: Some(credentials),
            token: Some(token),
            ..Default::default()
        })
    }

    pub fn start_with(setup: RegistrySetup<'_>) -> Option<Registry> {
        if !tool("docker-registry")
            || (setup.auth.is_some() && !tool("htpasswd"))
            || (setup.tls.is_some() && !tool("openssl"))
        {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ip = if setup.ipv6 { "[::1]" } else { "127.0.0.1" };
        let port = std::net::TcpListener::bind(format!("{ip}:0"))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("{ip}:{port}");
        let mut config = format!(
            "version: 0.1\nstorage:\n  filesystem: {{ rootdirectory: {} }}\n\
             http:\n  addr: \"{host}\"\n",
            dir.path().join("data").display()
        );
        if let Some(authority) = setup.tls {
            let (certificate, key) = authority.issue(dir.path(), ip);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certificate.display(),
                key.display()
            ));
        }
        if let Some(token) = setup.token {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                 rootcertbundle: {}\n",
                token.realm,
                TokenServer::SERVICE,
                TokenServer::ISSUER,
                token.certificate.display()
            ));
        } else if let Some((user, password)) = setup.auth {
            let htpasswd = run(Command::new("htpasswd").args(["-Bbn", user, password]));
            fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd: {{ realm: test, path: {} }}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        fs::write(dir.path().join("registry.yml"), config).unwrap();
        let mut registry = Registry {
            dir,
            child: None,
            host,
            auth: setup.auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
        };
        registry.resume();
        Some(registry)
    }

    /// Copies the only image of the OCI layout `layout` into this registry as `name:tag`.
    pub fn put(&self, layout: &Path, name_tag: &str) {
        self.put_as(layout, name_tag, None);
    }

    /// [`Registry::put`], the manifest converted to skopeo's `format` (`oci` or `v2s2`) if given.
    pub fn put_as(&self, layout: &Path, name_tag: &str, format: Option<&str>) {
        let mut command = Command::new("skopeo");
        command.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if let Some(format) = format {
            command.args(["--format", format]);
        }
        if let Some((user, password)) = &self.auth {
            command
                .arg("--dest-creds")
                .arg(format!("{user}:{password}"));
        }
        run(command
            .arg(format!("oci:{}", layout.display()))
            .arg(format!("docker://{}/{name_tag}", self.host)));
    }

    /// Starts the registry process (again, after [`Registry::stop`]), with the same storage.
    pub fn resume(&mut self) {
        let log = fs::File::create(self.dir.path().join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("registry.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(&self.host).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the registry did not listen on {}", self.host);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `skopeo inspect --raw docker://HOST/NAME`, with this registry's credentials.
    pub fn raw_manifest(&self, name: &str) -> Vec<u8> {
        let mut command = Command::new("skopeo");
        command.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some((user, password)) = &self.auth {
            command.arg("--creds").arg(format!("{user}:{password}"));
        }
        let output = command
            .arg(format!("docker://{}/{name}", self.host))
            .output()
            .unwrap();
        assert_success(
            &output,
            &format!("skopeo inspect --raw docker://{}/{name}", self.host),
        );
        output.stdout
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy in front of a registry that cuts every connection, mid-transfer, once a number
/// of bytes has gone through, and refuses new ones until [`CuttingProxy::resume`]: a registry
/// that goes away in the middle of a push (or a pull), deterministically.
pub struct CuttingProxy {
    /// `127.0.0.1:PORT` to talk to instead of the registry.
    pub host: String,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
}

struct ProxyState {
    open: bool,
    /// Count what the registry sends (a pull) rather than what it receives (a push).
    downloads: bool,
    /// After a cut, let connections through again this much later.
    reopen_after: Option<std::time::Duration>,
    cut_after: Option<u64>,
    forwarded: u64,
    streams: Vec<std::net::TcpStream>,
    stopped: bool,
}

impl CuttingProxy {
    pub fn start(upstream: &str, cut_after: u64) -> CuttingProxy {
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(ProxyState {
            open: true,
            downloads: false,
            reopen_after: None,
            cut_after: Some(cut_after),
            forwarded: 0,
            streams: Vec::new(),
            stopped: false,
        }));
        let upstream = upstream.to_owned();
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let mut guard = shared.lock().unwrap();
                if guard.stopped {
                    return;
                }
                if !guard.open {
                    continue; // dropped: the connection is refused
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                guard
                    .streams
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (up, down) = match guard.downloads {
                    false => (Some(shared.clone()), None),
                    true => (None, Some(shared.clone())),
                };
                drop(guard);
                std::thread::spawn(move || Self::pump(client, server, up));
                std::thread::spawn(move || Self::pump(s2, c2, down));
            }
        });
        CuttingProxy { host, state }
    }

    /// Copies `from` to `to`; counting the bytes towards the cut when `counting` is given.
    fn pump(
        mut from: std::net::TcpStream,
        mut to: std::net::TcpStream,
        counting: Option<std::sync::Arc<std::sync::Mutex<ProxyState>>>,
    ) {
        use std::io::{Read, Write};
        let mut buffer = [0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(state_arc) = &counting {
                let mut state = state_arc.lock().unwrap();
                state.forwarded += n as u64;
                if state.cut_after.is_some_and(|limit| state.forwarded > limit) {
                    state.open = false;
                    for stream in state.streams.drain(..) {
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                    }
                    if let Some(pause) = state.reopen_after {
                        let shared = state_arc.clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(pause);
                            let mut state = shared.lock().unwrap();
                            state.open = true;
                            state.cut_after = None;
                        });
                    }
                    return;
                }
            }
            if to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    }

    /// Like [`CuttingProxy::start`], but a cut lasts only `pause`: a transient failure.
    pub fn start_transient(
        upstream: &str,
        cut_after: u64,
        pause: std::time::Duration,
    ) -> CuttingProxy {
        let proxy = CuttingProxy::start(upstream, cut_after);
        proxy.state.lock().unwrap().reopen_after = Some(pause);
        proxy
    }

    /// Like [`CuttingProxy::start_transient`], counting what the registry sends: a pull cut
    /// in the middle of a blob.
    pub fn start_transient_download(
        upstream: &str,
        cut_after: u64,
        pause: std::time::Duration,
    ) -> CuttingProxy {
        let proxy = CuttingProxy::start_transient(upstream, cut_after, pause);
        proxy.state.lock().unwrap().downloads = true;
        proxy
    }

    /// The bytes counted so far, the cut connection's included.
    pub fn forwarded(&self) -> u64 {
        self.state.lock().unwrap().forwarded
    }

    /// Lets connections through again, with no further cut.
    pub fn resume(&self) {
        let mut state = self.state.lock().unwrap();
        state.open = true;
        state.cut_after = None;
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.state.lock().unwrap().stopped = true;
        let _ = std::net::TcpStream::connect(&self.host); // wakes the accept loop to end it
    }
}

/// A token server for a registry with `auth: token`: it checks HTTP Basic credentials (or, on a
/// `POST`, an OAuth2 refresh token, [`TokenServer::REFRESH_TOKEN`]) and answers with a JWT
/// (RS256, signed by `openssl`, its certificate in `x5c`) granting pull and push on
/// one repository, as Docker Hub and most hosted registries do. Runs until the test ends.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`
    pub realm: String,
    /// The certificate the registry trusts (`rootcertbundle`).
    pub certificate: PathBuf,
}

impl TokenServer {
    pub const SERVICE: &'static str = "test-registry";
    pub const ISSUER: &'static str = "test-issuer";
    /// The identity token it accepts in a `grant_type=refresh_token` request.
    pub const REFRESH_TOKEN: &'static str = "test-refresh-token";

    pub fn start(dir: &Path, repository: &str, user: &str, password: &str) -> TokenServer {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let key = dir.join("token.key");
        let certificate = dir.join("token.crt");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&certificate));
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&certificate)
            .output()
            .unwrap()
            .stdout;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)]});
        let claims = serde_json::json!({
            "iss": Self::ISSUER, "sub": user, "aud": Self::SERVICE, "jti": "test",
            "iat": now, "nbf": now - 60, "exp": now + 3600,
            "access": [{"type": "repository", "name": repository, "actions": ["pull", "push"]}]
        });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let input_file = dir.join("token.input");
        fs::write(&input_file, &signing_input).unwrap();
        let signature = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&key)
            .arg(&input_file)
            .output()
            .unwrap()
            .stdout;
        let token = format!("{signing_input}.{}", b64(&signature));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            use std::io::Write;
            for stream in listener.incoming().flatten() {
                let Some(request) = Request::read(&stream) else {
                    continue;
                };
                let refresh = format!("refresh_token={}", Self::REFRESH_TOKEN);
                let authorized = match request.method.as_str() {
                    "POST" => {
                        let body = String::from_utf8_lossy(&request.body).into_owned();
                        body.contains("grant_type=refresh_token")
                            && body.split('&').any(|pair| pair == refresh)
                    }
                    _ => request.header("authorization") == Some(expected.as_str()),
                };
                let (status, body) = if authorized {
                    (
                        "200 OK",
                        serde_json::json!({"token": token, "access_token": token}).to_string(),
                    )
                } else {
                    ("401 Unauthorized", "{}".to_owned())
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer { realm, certificate }
    }
}

/// One HTTP/1.1 request as a test server reads it.
pub struct Request {
    pub method: String,
    /// With its query.
    pub path: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Reads a request from `stream`; `None` when the connection ends first, or when it starts
    /// a TLS handshake (the client trying HTTPS first, which these servers do not speak).
    pub fn read(stream: &std::net::TcpStream) -> Option<Request> {
        use std::io::Read;
        let mut first = [0u8; 1];
        if stream.peek(&mut first).ok()? == 0 || first[0] == 0x16 {
            return None;
        }
        // Byte by byte, so nothing of the next request on the connection is read ahead.
        let mut reader = stream;
        let mut line = || -> Option<String> {
            let mut bytes = Vec::new();
            let mut byte = [0u8; 1];
            while !bytes.ends_with(b"\r\n") {
                (reader.read(&mut byte).ok()? == 1).then_some(())?;
                bytes.push(byte[0]);
            }
            bytes.truncate(bytes.len() - 2);
            String::from_utf8(bytes).ok()
        };
        let request_line = line()?;
        let mut words = request_line.split_whitespace();
        let (method, path) = (words.next()?.to_owned(), words.next()?.to_owned());
        let mut headers = Vec::new();
        loop {
            let header = line()?;
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let mut request = Request {
            method,
            path,
            headers,
            body: Vec::new(),
        };
        let length: u64 = request
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        stream.take(length).read_to_end(&mut request.body).ok()?;
        Some(request)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A certificate authority of the test's own, trusted through `SSL_CERT_FILE`.
pub struct TestAuthority {
    dir: tempfile::TempDir,
    /// The authority's certificate (PEM), to trust.
    pub certificate: PathBuf,
}

impl TestAuthority {
    pub fn new() -> TestAuthority {
        let dir = tempfile::tempdir().unwrap();
        let certificate = dir.path().join("ca.crt");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=cargo-oci test authority", "-keyout"])
            .arg(dir.path().join("ca.key"))
            .arg("-out")
            .arg(&certificate));
        TestAuthority { dir, certificate }
    }

    /// A server certificate and key in `dir` for the address `ip` (`127.0.0.1` or `[::1]`).
    pub fn issue(&self, dir: &Path, ip: &str) -> (PathBuf, PathBuf) {
        let (key, request, certificate) = (
            dir.join("server.key"),
            dir.join("server.csr"),
            dir.join("server.crt"),
        );
        run(Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=registry",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&request));
        let extensions = dir.join("server.ext");
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        fs::write(&extensions, format!("subjectAltName = IP:{ip}\n")).unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(&request)
            .arg("-CA")
            .arg(&self.certificate)
            .arg("-CAkey")
            .arg(self.dir.path().join("ca.key"))
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(&extensions)
            .arg("-out")
            .arg(&certificate));
        (certificate, key)
    }
}

/// A TCP proxy in front of a registry that records every request the registry receives through
/// it (proof of where credentials went, and of what was asked), and how many connections were
/// open at once.
pub struct RecordingProxy {
    /// `127.0.0.1:PORT` to talk to instead of the registry.
    pub host: String,
    sent: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Connections open now, and the most open at once.
    connections: std::sync::Arc<std::sync::Mutex<(usize, usize)>>,
}

impl RecordingProxy {
    pub fn start(upstream: &str) -> RecordingProxy {
        use std::io::{Read, Write};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new((0, 0)));
        let upstream = upstream.to_owned();
        let (recording, counting) = (sent.clone(), connections.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let counting = counting.clone();
                {
                    let mut open = counting.lock().unwrap();
                    open.0 += 1;
                    open.1 = open.1.max(open.0);
                }
                let (mut client_in, mut server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut server_in, mut client_out) = (server, client);
                let recording = recording.clone();
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 64 << 10];
                    while let Ok(n @ 1..) = client_in.read(&mut buffer) {
                        recording.lock().unwrap().extend_from_slice(&buffer[..n]);
                        if server_out.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    counting.lock().unwrap().0 -= 1;
                    let _ = server_out.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_in, &mut client_out);
                    let _ = client_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        RecordingProxy {
            host,
            sent,
            connections,
        }
    }

    /// The most connections that were open at once.
    pub fn most_connections(&self) -> usize {
        self.connections.lock().unwrap().1
    }

    /// The `Authorization` headers of every request so far.
    pub fn authorizations(&self) -> Vec<String> {
        let sent = self.sent.lock().unwrap();
        String::from_utf8_lossy(&sent)
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .map(|(_, value)| value.trim().to_owned())
            .collect()
    }

    /// The request line (`METHOD PATH`) of every request so far, in order. A request may
    /// follow a body on the same connection with no line break between them.
    pub fn request_lines(&self) -> Vec<String> {
        const METHODS: [&str; 6] = ["GET /", "HEAD /", "PUT /", "POST /", "PATCH /", "DELETE /"];
        let sent = self.sent.lock().unwrap();
        let text = String::from_utf8_lossy(&sent);
        let mut pieces: Vec<&str> = text.split(" HTTP/1.1\r\n").collect();
        pieces.pop(); // what follows the last request line
        pieces
            .iter()
            .filter_map(|piece| {
                let start = METHODS.iter().filter_map(|m| piece.rfind(m)).max()?;
                Some(piece[start..].to_owned())
            })
            .collect()
    }

    /// How many requests went through.
    pub fn requests(&self) -> usize {
        let sent = self.sent.lock().unwrap();
        String::from_utf8_lossy(&sent)
            .matches(" HTTP/1.1\r\n")
            .count()
    }
}

/// The one way a [`MisbehavingRegistry`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Accepts connections and reads requests, and never answers.
    Silent,
    /// As [`Self::Silent`], but a TLS handshake is answered as Go's plain HTTP servers answer
    /// it: a plain HTTP registry that stalls.
    SilentPlain,
    /// Answers blob requests with the right headers, then one byte a second.
    Trickle,
    /// Sends a blob without end, saying no length.
    EndlessBlob,
    /// Says a blob is larger than its descriptor says.
    OversizeBlob,
    /// Sends the manifest without end, saying no length.
    EndlessManifest,
    /// Says the manifest has 5 MiB.
    OversizeManifest,
    /// Redirects every repository request to itself.
    RedirectLoop,
    /// Gives a token to anyone, and refuses every request made with it.
    AuthenticationLoop,
    /// Asks for Basic credentials, then redirects blobs to another origin (a "CDN", under the
    /// name `localhost`) that answers 401 naming a token server of its own: a request there
    /// is counted in `token_requests`.
    RedirectToChallenger,
    /// Sends the headers of `GET /v2/` a byte a second.
    TrickleHeaders,
    /// Answers the manifest with a 404 whose body comes a byte a second.
    TrickleErrorBody,
    /// Answers `HEAD` of a manifest without `Docker-Content-Digest`, as some registries do.
    NoDigestOnHead,
    /// Still starting: answers `GET /v2/` 503 with `Retry-After: 1` the first two times. It
    /// answers a TLS handshake as Go's plain HTTP servers (distribution's among them) do, with
    /// a 400 in plain HTTP.
    StartingUp,
    /// Answers `HEAD` of a manifest 501 Not Implemented; `GET` as it should.
    HeadFails,
    /// Sends each blob whole but chunked, and hangs up before the chunk that ends it; answers a
    /// `Range` with 416.
    CutAfterLastByte,
    /// Hangs up halfway through the first blobs asked for, answers a `Range` with 416, and sends
    /// a blob asked for again from byte 0 whole.
    CutOnceAndNoRanges,
}

/// A registry server of a few lines that serves the only image of an OCI layout as
/// `base:1`, and misbehaves in one way. Counts the requests and bytes it answers.
pub struct MisbehavingRegistry {
    /// `127.0.0.1:PORT`
    pub host: String,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub token_requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Bytes of blob bodies written.
    pub blob_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// `GET /v2/` requests answered in plain HTTP.
    pub pings: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl MisbehavingRegistry {
    pub fn start(layout: &Path, misbehaviour: Misbehaviour) -> MisbehavingRegistry {
        use std::sync::atomic::{AtomicU64, AtomicUsize};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let index = super::read_json(&layout.join("index.json"));
        let manifest = index["manifests"][0].clone();
        let server = MisbehavingRegistry {
            host: host.clone(),
            requests: Arc::new(AtomicUsize::new(0)),
            token_requests: Arc::new(AtomicUsize::new(0)),
            blob_bytes: Arc::new(AtomicU64::new(0)),
            pings: Arc::new(AtomicUsize::new(0)),
        };
        let (requests, tokens, blob_bytes, pings) = (
            server.requests.clone(),
            server.token_requests.clone(),
            server.blob_bytes.clone(),
            server.pings.clone(),
        );
        let layout = layout.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (layout, manifest, host) = (layout.clone(), manifest.clone(), host.clone());
                let (requests, tokens, blob_bytes, pings) = (
                    requests.clone(),
                    tokens.clone(),
                    blob_bytes.clone(),
                    pings.clone(),
                );
                std::thread::spawn(move || {
                    if matches!(
                        misbehaviour,
                        Misbehaviour::StartingUp | Misbehaviour::SilentPlain
                    ) {
                        answer_tls_as_go_does(&stream);
                    }
                    while let Some(request) = Request::read(&stream) {
                        requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let answer = Answer {
                            stream: &stream,
                            layout: &layout,
                            manifest: &manifest,
                            host: &host,
                            tokens: &tokens,
                            blob_bytes: &blob_bytes,
                            pings: &pings,
                        };
                        if !answer.respond(&request, misbehaviour) {
                            break;
                        }
                    }
                });
            }
        });
        server
    }
}

/// What a [`MisbehavingRegistry`] needs to answer one request.
struct Answer<'a> {
    stream: &'a std::net::TcpStream,
    layout: &'a Path,
    manifest: &'a serde_json::Value,
    host: &'a str,
    tokens: &'a std::sync::atomic::AtomicUsize,
    blob_bytes: &'a std::sync::atomic::AtomicU64,
    pings: &'a std::sync::atomic::AtomicUsize,
}

/// What a Go HTTP server answers a TLS handshake with, as distribution's plain HTTP registry does.
fn answer_tls_as_go_does(stream: &std::net::TcpStream) {
    use std::io::Write;
    let mut first = [0u8; 1];
    if stream.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16 {
        let mut stream = stream;
        let _ = stream.write_all(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        );
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}

impl Answer<'_> {
    /// Answers `request`; `false` when the connection is to be closed.
    fn respond(&self, request: &Request, misbehaviour: Misbehaviour) -> bool {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        use Misbehaviour as M;
        let mut stream = self.stream;
        let head = |status: &str, headers: &str| format!("HTTP/1.1 {status}\r\n{headers}");
        // The answer to a `HEAD` has the headers of a `GET`'s, and no body.
        let head_only = request.method == "HEAD";
        let send = |status: &str, headers: &str, body: &[u8]| {
            let mut stream = self.stream;
            let head = head(
                status,
                &format!("{headers}content-length: {}\r\n\r\n", body.len()),
            );
            stream.write_all(head.as_bytes()).is_ok()
                && (head_only || stream.write_all(body).is_ok())
        };
        let challenge = format!(
            "www-authenticate: Bearer realm=\"http://{}/token\",service=test\r\n",
            self.host
        );
        let trickle = |text: &[u8]| {
            for byte in text {
                if (&*self.stream).write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        };
        if matches!(misbehaviour, M::Silent | M::SilentPlain) {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            return false;
        }
        if misbehaviour == M::TrickleHeaders && request.path == "/v2/" {
            trickle(&[b"HTTP/1.1 200 OK\r\n".as_slice(), &[b'x'; 4096]].concat());
            return false;
        }
        if misbehaviour == M::TrickleErrorBody && request.path.starts_with("/v2/base/manifests/") {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 65536\r\n\r\n");
            trickle(&[b' '; 65536]);
            return false;
        }
        if misbehaviour == M::RedirectToChallenger {
            let cdn = self.host.replace("127.0.0.1", "localhost");
            if request.path == "/steal" {
                self.tokens.fetch_add(1, Ordering::Relaxed);
                return send("200 OK", "", br#"{"token":"stolen"}"#);
            }
            if request.path.starts_with("/cdn/") {
                let challenge = format!(
                    "www-authenticate: Bearer realm=\"http://{cdn}/steal\",service=cdn\r\n"
                );
                return send("401 Unauthorized", &challenge, b"{}");
            }
            if request.header("authorization").is_none() {
                return send(
                    "401 Unauthorized",
                    "www-authenticate: Basic realm=\"registry\"\r\n",
                    b"{}",
                );
            }
            if request.path.starts_with("/v2/base/blobs/") {
                let location = format!("location: http://{cdn}/cdn{}\r\n", request.path);
                return send("307 Temporary Redirect", &location, b"");
            }
        }
        if request.path.starts_with("/token") {
            self.tokens.fetch_add(1, Ordering::Relaxed);
            return send("200 OK", "", br#"{"token":"t"}"#);
        }
        if request.path == "/v2/" {
            let ping = self.pings.fetch_add(1, Ordering::SeqCst);
            if misbehaviour == M::StartingUp && ping < 2 {
                return send("503 Service Unavailable", "retry-after: 1\r\n", b"{}");
            }
            return match misbehaviour {
                M::AuthenticationLoop => send("401 Unauthorized", &challenge, b"{}"),
                _ => send("200 OK", "", b"{}"),
            };
        }
        match misbehaviour {
            M::AuthenticationLoop => return send("401 Unauthorized", &challenge, b"{}"),
            M::RedirectLoop => {
                return send(
                    "307 Temporary Redirect",
                    &format!("location: {}\r\n", request.path),
                    b"",
                )
            }
            _ => {}
        }
        let digest_of = |path: &str| path.rsplit('/').next().unwrap_or_default().to_owned();
        if head_only && request.path.starts_with("/v2/base/manifests/") {
            // The misbehaviours of manifests are those of `GET`.
            let digest = self.manifest["digest"].as_str().unwrap();
            let bytes = fs::read(self.layout.join("blobs/sha256").join(&digest[7..])).unwrap();
            let named = match misbehaviour {
                M::TrickleErrorBody => return send("404 Not Found", "", b""),
                M::HeadFails => return send("501 Not Implemented", "", b""),
                M::NoDigestOnHead => String::new(),
                _ => format!("docker-content-digest: {digest}\r\n"),
            };
            let media = self.manifest["mediaType"].as_str().unwrap();
            return send(
                "200 OK",
                &format!("{named}content-type: {media}\r\n"),
                &bytes,
            );
        }
        if request.path.starts_with("/v2/base/manifests/") {
            let digest = self.manifest["digest"].as_str().unwrap();
            let bytes = fs::read(self.layout.join("blobs/sha256").join(&digest[7..])).unwrap();
            let media = format!(
                "content-type: {}\r\ndocker-content-digest: {digest}\r\n",
                self.manifest["mediaType"].as_str().unwrap()
            );
            return match misbehaviour {
                M::OversizeManifest => {
                    let head = head("200 OK", &format!("{media}content-length: 5242880\r\n\r\n"));
                    let _ = stream.write_all(head.as_bytes());
                    false
                }
                M::EndlessManifest => {
                    let head = head("200 OK", &format!("{media}connection: close\r\n\r\n"));
                    let _ = stream.write_all(head.as_bytes());
                    while stream.write_all(&[b' '; 64 << 10]).is_ok() {}
                    false
                }
                _ => send("200 OK", &media, &bytes),
            };
        }
        if request.path.starts_with("/v2/base/blobs/") {
            let digest = digest_of(&request.path);
            let Ok(bytes) = fs::read(self.layout.join("blobs/sha256").join(&digest[7..])) else {
                return send("404 Not Found", "", b"{}");
            };
            let count = |n: usize| self.blob_bytes.fetch_add(n as u64, Ordering::Relaxed);
            return match misbehaviour {
                M::Trickle => {
                    let head = head(
                        "200 OK",
                        &format!("content-length: {}\r\n\r\n", bytes.len()),
                    );
                    let _ = stream.write_all(head.as_bytes());
                    for byte in &bytes {
                        if stream.write_all(&[*byte]).is_err() {
                            break;
                        }
                        count(1);
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                    false
                }
                M::EndlessBlob => {
                    let _ =
                        stream.write_all(head("200 OK", "connection: close\r\n\r\n").as_bytes());
                    let chunk = [7u8; 64 << 10];
                    while stream.write_all(&chunk).is_ok() {
                        count(chunk.len());
                    }
                    false
                }
                M::OversizeBlob => {
                    let head = head(
                        "200 OK",
                        &format!("content-length: {}\r\n\r\n", bytes.len() * 2),
                    );
                    let _ = stream.write_all(head.as_bytes());
                    false
                }
                M::CutAfterLastByte | M::CutOnceAndNoRanges
                    if request.header("range").is_some() =>
                {
                    send("416 Range Not Satisfiable", "", b"")
                }
                M::CutAfterLastByte => {
                    let head = head("200 OK", "transfer-encoding: chunked\r\n\r\n");
                    let size = format!("{:x}\r\n", bytes.len());
                    let chunk = [size.as_bytes(), &bytes, b"\r\n"];
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&chunk.concat());
                    count(bytes.len());
                    false
                }
                M::CutOnceAndNoRanges if self.blob_bytes.load(Ordering::SeqCst) == 0 => {
                    let half = (bytes.len() / 2).max(1);
                    let head = head(
                        "200 OK",
                        &format!("content-length: {}\r\n\r\n", bytes.len()),
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&bytes[..half]);
                    count(half);
                    false
                }
                _ => {
                    count(bytes.len());
                    send("200 OK", "", &bytes)
                }
            };
        }
        send("404 Not Found", "", b"{}")
    }
}

/// A registry of a few lines serving `base:1`, an index of two platforms (`linux/amd64`,
/// `linux/arm64`), whose tag moves from one index to another right after it is first fetched,
/// as a tag does when a new release is pushed during a build. Each image has no layer, and a
/// config whose `Env` says which index it is from (`BASE=v1`, `BASE=v2`).
pub struct MovingTagRegistry {
    /// `127.0.0.1:PORT`
    pub host: String,
    /// The digest of each index, in the order the tag points at them.
    pub indexes: [String; 2],
    /// How many times the tag was fetched (`GET manifests/1`; a `HEAD` moves nothing).
    pub tag_requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl MovingTagRegistry {
    pub fn start() -> MovingTagRegistry {
        use sha2::Digest as _;
        use std::collections::BTreeMap;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let mut blobs: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
        let mut put = |media: &str, value: serde_json::Value| {
            let bytes = serde_json::to_vec(&value).unwrap();
            let digest = format!("sha256:{:x}", sha2::Sha256::digest(&bytes));
            let descriptor = serde_json::json!({
                "mediaType": media, "digest": digest, "size": bytes.len()
            });
            blobs.insert(digest, (media.to_owned(), bytes));
            descriptor
        };
        let indexes = ["v1", "v2"].map(|version| {
            let manifests: Vec<serde_json::Value> = ["amd64", "arm64"]
                .iter()
                .map(|arch| {
                    let config = put(
                        "application/vnd.oci.image.config.v1+json",
                        serde_json::json!({
                            "architecture": arch, "os": "linux",
                            "config": {"Env": [format!("BASE={version}")]},
                            "rootfs": {"type": "layers", "diff_ids": []},
                        }),
                    );
                    let mut manifest = put(
                        "application/vnd.oci.image.manifest.v1+json",
                        serde_json::json!({
                            "schemaVersion": 2,
                            "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "config": config, "layers": [],
                        }),
                    );
                    manifest["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
                    manifest
                })
                .collect();
            put(
                "application/vnd.oci.image.index.v1+json",
                serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": manifests,
                }),
            )["digest"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = MovingTagRegistry {
            host: listener.local_addr().unwrap().to_string(),
            indexes: indexes.clone(),
            tag_requests: std::sync::Arc::new(AtomicUsize::new(0)),
        };
        let blobs = std::sync::Arc::new(blobs);
        let tag_requests = server.tag_requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (blobs, indexes, tag_requests) =
                    (blobs.clone(), indexes.clone(), tag_requests.clone());
                std::thread::spawn(move || {
                    while let Some(request) = Request::read(&stream) {
                        let digest = match request.path.as_str() {
                            "/v2/" => None,
                            "/v2/base/manifests/1" if request.method == "HEAD" => {
                                let moved = tag_requests.load(Ordering::SeqCst) > 0;
                                Some(indexes[usize::from(moved)].clone())
                            }
                            "/v2/base/manifests/1" => {
                                let moved = tag_requests.fetch_add(1, Ordering::SeqCst) > 0;
                                Some(indexes[usize::from(moved)].clone())
                            }
                            path => Some(path.rsplit('/').next().unwrap_or_default().to_owned()),
                        };
                        let (status, media, body) = match digest.map(|d| (blobs.get(&d), d)) {
                            None => ("200 OK", String::new(), b"{}".to_vec()),
                            Some((Some((media, bytes)), digest)) => (
                                "200 OK",
                                format!(
                                    "content-type: {media}\r\ndocker-content-digest: {digest}\r\n"
                                ),
                                bytes.clone(),
                            ),
                            Some((None, _)) => ("404 Not Found", String::new(), b"{}".to_vec()),
                        };
                        let head = format!(
                            "HTTP/1.1 {status}\r\n{media}content-length: {}\r\n\r\n",
                            body.len()
                        );
                        let body = if request.method == "HEAD" {
                            Vec::new()
                        } else {
                            body
                        };
                        use std::io::Write;
                        let mut stream = &stream;
                        if stream.write_all(head.as_bytes()).is_err()
                            || stream.write_all(&body).is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        server
    }
}

/// A registry of a few lines that takes pushes to any repository, and answers each upload's
/// `PATCH` with a `Location` relative to the upload's own URL (`uuid?state=…`, as RFC 3986
/// allows): an upload closed anywhere else is answered 404. Records each blob upload it closed.
pub struct RelativeLocationRegistry {
    /// `127.0.0.1:PORT`
    pub host: String,
    /// The digest of each blob whose upload was closed where the `Location` said.
    pub closed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RelativeLocationRegistry {
    pub fn start() -> RelativeLocationRegistry {
        use std::io::Write;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = RelativeLocationRegistry {
            host: listener.local_addr().unwrap().to_string(),
            closed: Arc::new(Mutex::new(Vec::new())),
        };
        let closed = server.closed.clone();
        let uploads = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (closed, uploads) = (closed.clone(), uploads.clone());
                std::thread::spawn(move || {
                    while let Some(request) = Request::read(&stream) {
                        let path = request.path.as_str();
                        let (status, location) = match request.method.as_str() {
                            "GET" if path == "/v2/" => ("200 OK", String::new()),
                            "POST" if path.ends_with("/blobs/uploads/") => {
                                let n = uploads.fetch_add(1, Ordering::SeqCst);
                                ("202 Accepted", format!("{path}upload-{n}"))
                            }
                            "PATCH" if path.contains("/blobs/uploads/upload-") => {
                                let name = path.rsplit('/').next().unwrap();
                                ("202 Accepted", format!("{name}?state=patched"))
                            }
                            "PUT" if path.contains("/blobs/uploads/") => {
                                match path.split_once("?state=patched&digest=") {
                                    Some((_, digest)) => {
                                        closed.lock().unwrap().push(digest.replace("%3A", ":"));
                                        ("201 Created", String::new())
                                    }
                                    None => ("404 Not Found", String::new()),
                                }
                            }
                            "PUT" if path.contains("/manifests/") => ("201 Created", String::new()),
                            _ => ("404 Not Found", String::new()),
                        };
                        let location = match location.is_empty() {
                            true => String::new(),
                            false => format!("location: {location}\r\n"),
                        };
                        let head =
                            format!("HTTP/1.1 {status}\r\n{location}content-length: 2\r\n\r\n{{}}");
                        if (&stream).write_all(head.as_bytes()).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        server
    }
}
