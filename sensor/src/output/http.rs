//! `/metrics` (Prometheus text), `/inventory` and `/healthz` over HTTP on one thread
//! (tiny_http), optionally over TLS (`[metrics] tls_cert`, `tls_key`) and behind HTTP basic
//! auth (`basic_auth_user`, `basic_auth_password_file`). `/healthz` stays open for liveness
//! probes; everything else needs the credentials when auth is configured.

use super::metrics::Metrics;
use crate::config::MetricsConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

/// TLS and basic auth of the metrics server, read from the files the config names (at
/// start, before privileges are dropped).
#[derive(Default)]
pub struct HttpSecurity {
    /// PEM certificate chain and private key.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// The whole expected `Authorization` header value (`Basic base64(user:password)`).
    pub basic_auth: Option<Vec<u8>>,
}

impl HttpSecurity {
    pub fn from_config(c: &MetricsConfig) -> Result<Self, String> {
        let read =
            |what: &str, p: &str| std::fs::read(p).map_err(|e| format!("metrics.{what} {p}: {e}"));
        let tls = if c.tls_cert.is_empty() {
            None
        } else {
            let key = read("tls_key", &c.tls_key)?;
            // tiny_http panics on keys it cannot use: check the PEM kind first.
            let k = String::from_utf8_lossy(&key);
            if !(k.contains("-----BEGIN PRIVATE KEY-----")
                || k.contains("-----BEGIN RSA PRIVATE KEY-----"))
            {
                return Err(format!(
                    "metrics.tls_key {}: need an unencrypted PKCS#8 or RSA PEM key \
                     (convert: openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8)",
                    c.tls_key
                ));
            }
            Some((read("tls_cert", &c.tls_cert)?, key))
        };
        let basic_auth = if c.basic_auth_user.is_empty() {
            None
        } else {
            let pw = read("basic_auth_password_file", &c.basic_auth_password_file)?;
            let pw = String::from_utf8(pw)
                .map_err(|_| "metrics.basic_auth_password_file: not UTF-8".to_string())?;
            let pw = pw.trim_end_matches(['\n', '\r']);
            if pw.is_empty() {
                return Err("metrics.basic_auth_password_file: empty password".into());
            }
            if c.basic_auth_user.contains(':') {
                return Err("metrics.basic_auth_user must not contain ':'".into());
            }
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{pw}", c.basic_auth_user));
            Some(format!("Basic {token}").into_bytes())
        };
        Ok(HttpSecurity { tls, basic_auth })
    }
}

/// Equality that takes the same time wherever the first difference is (and for any
/// length of `given`): no timing oracle on the password.
pub fn ct_eq(expected: &[u8], given: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != given.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(!e);
    }
    std::hint::black_box(diff) == 0
}

fn authorized(req: &tiny_http::Request, expected: &[u8]) -> bool {
    let given = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_bytes())
        .unwrap_or(b"");
    // Clamp what is compared: a huge header costs no more than a right-sized one.
    ct_eq(expected, &given[..given.len().min(expected.len() + 1)])
}

impl MetricsServer {
    /// Plain HTTP, no auth.
    pub fn start(addr: &str, metrics: Metrics) -> Result<Self, String> {
        Self::start_with(addr, metrics, HttpSecurity::default())
    }

    pub fn start_with(addr: &str, metrics: Metrics, sec: HttpSecurity) -> Result<Self, String> {
        let server = match sec.tls {
            None => tiny_http::Server::http(addr),
            Some((certificate, private_key)) => {
                // A key rustls cannot parse panics inside tiny_http: report it instead.
                std::panic::catch_unwind(|| {
                    tiny_http::Server::https(
                        addr,
                        tiny_http::SslConfig {
                            certificate,
                            private_key,
                        },
                    )
                })
                .unwrap_or_else(|_| Err("unusable TLS certificate or key".into()))
            }
        }
        .map_err(|e| format!("metrics listen {addr}: {e}"))?;
        let server = Arc::new(server);
        metrics.inventory_view_wanted.store(true, Ordering::Relaxed);
        let auth = sec.basic_auth;
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (server.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    let Ok(Some(req)) = s.recv_timeout(std::time::Duration::from_millis(200))
                    else {
                        continue;
                    };
                    let path = req.url().split('?').next().unwrap_or("").to_string();
                    let open = matches!(path.as_str(), "/healthz" | "/-/healthy");
                    if let Some(expected) = auth.as_deref().filter(|_| !open) {
                        if !authorized(&req, expected) {
                            let _ = req.respond(
                                tiny_http::Response::from_string("unauthorized\n")
                                    .with_status_code(401)
                                    .with_header(header(
                                        "WWW-Authenticate",
                                        "Basic realm=\"kizuki\", charset=\"UTF-8\"",
                                    )),
                            );
                            continue;
                        }
                    }
                    let resp = match path.as_str() {
                        "/metrics" => tiny_http::Response::from_string(metrics.render())
                            .with_header(header(
                                "Content-Type",
                                "text/plain; version=0.0.4; charset=utf-8",
                            )),
                        "/healthz" | "/-/healthy" => tiny_http::Response::from_string("ok\n"),
                        // The passive inventory (J-CRAT: know the whole system), as JSON.
                        "/inventory" => {
                            let body = metrics
                                .inventory_view
                                .lock()
                                .map(|v| serde_json::to_string_pretty(&*v).unwrap_or_default())
                                .unwrap_or_default();
                            tiny_http::Response::from_string(body + "\n")
                                .with_header(header("Content-Type", "application/json"))
                        }
                        _ => tiny_http::Response::from_string("not found\n").with_status_code(404),
                    };
                    let _ = req.respond(resp);
                }
            })
            .map_err(|e| format!("metrics thread: {e}"))?;
        Ok(Self {
            server,
            thread: Some(thread),
            stop,
        })
    }

    pub fn local_addr(&self) -> String {
        self.server.server_addr().to_string()
    }
}

fn header(k: &str, v: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("static header")
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"Basic abc", b"Basic abc"));
        assert!(!ct_eq(b"Basic abc", b"Basic abd"));
        assert!(!ct_eq(b"Basic abc", b"Basic ab"));
        assert!(!ct_eq(b"Basic abc", b"Basic abcd"));
        assert!(!ct_eq(b"Basic abc", b""));
        assert!(!ct_eq(b"", b"x"));
        assert!(ct_eq(b"", b""));
    }
}
