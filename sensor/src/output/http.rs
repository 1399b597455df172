//! `/metrics` (Prometheus text) and `/healthz` over HTTP on one thread (tiny_http).

use super::metrics::Metrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl MetricsServer {
    pub fn start(addr: &str, metrics: Metrics) -> Result<Self, String> {
        let server = Arc::new(
            tiny_http::Server::http(addr).map_err(|e| format!("metrics listen {addr}: {e}"))?,
        );
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
