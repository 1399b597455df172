//! Shared by the Prometheus / Alertmanager / dashboard tests: child processes that are always
//! killed (Drop), free loopback ports, a tiny HTTP client, dnsmasq and a DNS load generator,
//! and wrappers for the real `prometheus` and `prometheus-alertmanager` binaries.
//!
//! Everything listens on 127.0.0.1 only. Missing tools or no root: the test prints why and
//! passes, except under `CI=true`, where it fails instead.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kizuki_tests::harness;
use serde_json::Value;

/// Kills (SIGKILL) and reaps a child when dropped, whatever path the test takes.
pub struct ChildGuard {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl ChildGuard {
    pub fn spawn(name: &str, cmd: &mut Command, dir: &Path) -> Self {
        let log = dir.join(format!("{name}.log"));
        let f = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        ChildGuard {
            name: name.to_string(),
            child,
            log,
        }
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn log_text(&self) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let n = t.len();
        t[n.saturating_sub(4000)..].to_string()
    }

    /// SIGKILL and reap now.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Removes the test's directory when dropped (unless KIZUKI_KEEP_TEST_DIR is set).
pub struct DirGuard(pub PathBuf);

impl DirGuard {
    pub fn new(tag: &str) -> Self {
        DirGuard(harness::tempdir(tag))
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if std::env::var_os("KIZUKI_KEEP_TEST_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("kept {}", self.0.display());
        }
    }
}

/// Sets a flag and joins a thread when dropped.
pub struct ThreadGuard {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Finds a program on PATH (plus the sbin dirs).
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file());
    found
}

/// Skips (prints, returns true) when a requirement is missing; fails under CI=true.
pub fn skip_unless(test: &str, need_root: bool, progs: &[&str]) -> bool {
    let mut why = None;
    if need_root && !is_root() {
        why = Some("not root (capture on lo and dnsmasq on port 53 need root)".to_string());
    }
    for p in progs {
        if why.is_none() && which(p).is_none() {
            why = Some(format!("{p} not installed (run `make deps`)"));
        }
    }
    match why {
        None => false,
        Some(w) if in_ci() => panic!("{test}: cannot run under CI=true: {w}"),
        Some(w) => {
            println!("SKIPPED {test}: {w}");
            eprintln!("SKIPPED {test}: {w}");
            true
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn addr(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

/// Percent-encoding for query strings and form bodies.
pub fn urlencode(s: &str) -> String {
    let mut o = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// Minimal HTTP/1.1 request; returns (status, body). Handles chunked bodies.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(1000)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some((ct, b)) = body {
        req.push_str(&format!(
            "Content-Type: {ct}\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    if let Some((_, b)) = body {
        s.write_all(b).ok()?;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(len.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http(addr, "GET", path, None)
}

/// Waits until `f` returns Some, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------- DNS: dnsmasq + load

pub const ZONE: &str = "e2e.test";

fn port_free(ip: Ipv4Addr, port: u16) -> bool {
    UdpSocket::bind((ip, port)).is_ok() && TcpListener::bind((ip, port)).is_ok()
}

/// A DNS query message for `name`/`qtype`.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// One query, waiting for the answer; returns the rcode.
pub fn ask(server: Ipv4Addr, name: &str, qtype: u16) -> Option<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let id = (Instant::now().elapsed().subsec_nanos() & 0xffff) as u16;
    s.send_to(&dns_query(id, name, qtype), (server, 53)).ok()?;
    let mut buf = [0u8; 1500];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    (n >= 4).then_some(buf[3] & 0x0f)
}

/// Starts dnsmasq on the first 127.0.0.x (x = 30..=60) whose port 53 is free and that answers.
pub fn start_dnsmasq(dir: &Path) -> (ChildGuard, Ipv4Addr) {
    let dnsmasq = which("dnsmasq").expect("dnsmasq");
    let mut tried = Vec::new();
    for last in 30..=60u8 {
        let ip = Ipv4Addr::new(127, 0, 0, last);
        if !port_free(ip, 53) {
            continue;
        }
        let mut guard = ChildGuard::spawn(
            &format!("dnsmasq-{last}"),
            Command::new(&dnsmasq)
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--user=root",
                    "--pid-file=",
                    "--bind-interfaces",
                    "--port=53",
                    "--local-ttl=60",
                    "--log-facility=-",
                ])
                .arg(format!("--listen-address={ip}"))
                .arg(format!("--local=/{ZONE}/"))
                .arg(format!("--host-record=www.{ZONE},127.0.0.21,fd00::21"))
                .arg(format!("--txt-record={ZONE},kizuki e2e")),
            dir,
        );
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if guard.exited().is_some() {
                break;
            }
            if ask(ip, &format!("www.{ZONE}"), 1) == Some(0) {
                return (guard, ip);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        tried.push(format!("{ip}: {}", guard.log_text().trim()));
    }
    panic!(
        "could not start dnsmasq on 127.0.0.x:53:\n{}",
        tried.join("\n")
    );
}

/// Background DNS load on `server` (A, AAAA, TXT, NXDOMAIN, and now and then an unanswered
/// query to a silent port-53 address) until dropped.
pub fn dns_load(server: Ipv4Addr) -> ThreadGuard {
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let handle = std::thread::spawn(move || {
        let names = [
            (format!("www.{ZONE}"), 1u16),
            (format!("www.{ZONE}"), 28),
            (ZONE.to_string(), 16),
            (format!("missing.{ZONE}"), 1),
        ];
        let mut i = 0usize;
        while !st.load(Ordering::Relaxed) {
            let (n, t) = &names[i % names.len()];
            let _ = ask(server, n, *t);
            i += 1;
            std::thread::sleep(Duration::from_millis(40));
        }
    });
    ThreadGuard {
        stop,
        handle: Some(handle),
    }
}

// ---------------------------------------------------------------- kizuki

/// Writes a kizuki config (TOML text) into `dir/name`.
pub fn write_config(dir: &Path, name: &str, toml: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, toml).expect("write config");
    p
}

/// Waits for /healthz of a sensor, failing with its log if it exits first.
pub fn wait_healthy(k: &mut ChildGuard, port: u16) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = k.exited() {
            panic!("{} exited early ({st}): {}", k.name, k.log_text());
        }
        if matches!(http_get(addr(port), "/healthz"), Some((200, _))) {
            return;
        }
        assert!(
            Instant::now() < end,
            "{}: /healthz never answered: {}",
            k.name,
            k.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `kizuki replay --linger` of `pcaps`, serving /metrics on `port`.
pub fn start_replay(
    name: &str,
    dir: &Path,
    port: u16,
    config: Option<&Path>,
    pcaps: &[&Path],
    linger_s: u32,
) -> ChildGuard {
    let out = dir.join(format!("{name}-out"));
    let mut cmd = Command::new(harness::kizuki_bin());
    cmd.arg("replay").arg("--out").arg(&out);
    if let Some(c) = config {
        cmd.arg("-c").arg(c);
    }
    cmd.args(["--metrics-listen", &addr(port).to_string()])
        .args(["--linger", &linger_s.to_string()])
        .args(pcaps);
    let mut g = ChildGuard::spawn(name, &mut cmd, dir);
    wait_healthy(&mut g, port);
    g
}

/// `kizuki run -i lo` limited to DNS with `server`, serving /metrics on `port`.
pub fn start_live(
    name: &str,
    dir: &Path,
    port: u16,
    server: Ipv4Addr,
    config: Option<&Path>,
) -> ChildGuard {
    let out = dir.join(format!("{name}-out"));
    let mut cmd = Command::new(harness::kizuki_bin());
    cmd.args(["run", "-i", "lo", "--out"]).arg(&out);
    if let Some(c) = config {
        cmd.arg("-c").arg(c);
    }
    cmd.args(["--metrics-listen", &addr(port).to_string()])
        .args(["--bpf", &format!("host {server} and port 53")]);
    let mut g = ChildGuard::spawn(name, &mut cmd, dir);
    wait_healthy(&mut g, port);
    g
}

/// Committed pcaps on which the sensor (with its default config) raises alerts, with the
/// alert events, most alerts first. Empty when no detector fires on any of them.
pub fn detection_pcaps() -> Vec<(PathBuf, Vec<Value>)> {
    let dir = harness::workspace_root().join("pcaps");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "pcap"));
    files.sort();
    let mut found = Vec::new();
    for f in files {
        let r = harness::replay_raw(&[&f], &[]);
        let alerts: Vec<Value> = r.of_type("alert").cloned().collect();
        let _ = std::fs::remove_dir_all(&r.dir);
        if !alerts.is_empty() {
            found.push((f, alerts));
        }
    }
    found.sort_by_key(|(_, a)| std::cmp::Reverse(a.len()));
    found
}

// ---------------------------------------------------------------- Prometheus

pub struct Prometheus {
    pub guard: ChildGuard,
    pub port: u16,
}

/// One scrape target: `(port, sensor label)`.
pub fn start_prometheus(
    dir: &Path,
    targets: &[(u16, &str)],
    rule_files: &[PathBuf],
    alertmanager: Option<u16>,
) -> Prometheus {
    let port = free_port();
    let mut cfg = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
    );
    if !rule_files.is_empty() {
        cfg.push_str("rule_files:\n");
        for r in rule_files {
            cfg.push_str(&format!("  - {}\n", r.display()));
        }
    }
    if let Some(am) = alertmanager {
        cfg.push_str(&format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am}']\n"
        ));
    }
    cfg.push_str("scrape_configs:\n  - job_name: kizuki\n    static_configs:\n");
    for (p, sensor) in targets {
        cfg.push_str(&format!(
            "      - targets: ['127.0.0.1:{p}']\n        labels:\n          sensor: {sensor}\n"
        ));
    }
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, &cfg).expect("prometheus.yml");
    let data = dir.join("prom-data");
    let mut g = ChildGuard::spawn(
        "prometheus",
        Command::new(which("prometheus").expect("prometheus"))
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle")
            .arg("--log.level=warn"),
        dir,
    );
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = g.exited() {
            panic!("prometheus exited ({st}): {}\nconfig:\n{cfg}", g.log_text());
        }
        if matches!(http_get(addr(port), "/-/ready"), Some((200, _))) {
            break;
        }
        assert!(
            Instant::now() < end,
            "prometheus not ready: {}",
            g.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Prometheus { guard: g, port }
}

impl Prometheus {
    /// Instant query; Err(message) when Prometheus rejects it.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let body = format!("query={}", urlencode(expr));
        let (status, text) = http(
            addr(self.port),
            "POST",
            "/api/v1/query",
            Some(("application/x-www-form-urlencoded", body.as_bytes())),
        )
        .ok_or("no answer from prometheus")?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("HTTP {status}: {e}: {text}"))?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        match &v["data"]["result"] {
            Value::Array(a) => Ok(a.clone()),
            // Scalars and strings: one value.
            other => Ok(vec![other.clone()]),
        }
    }

    pub fn api(&self, path: &str) -> Value {
        let (_, text) = http_get(addr(self.port), path).expect("prometheus api");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Waits until every target of job kizuki is up and has `samples` scrapes.
    pub fn wait_targets_up(&self, n: usize, scrapes: u32) {
        wait_for(Duration::from_secs(60), "all targets up", || {
            let r = self.query("up{job=\"kizuki\"} == 1").ok()?;
            (r.len() == n).then_some(())
        });
        std::thread::sleep(Duration::from_secs(scrapes as u64));
    }
}

// ---------------------------------------------------------------- Alertmanager

pub struct Alertmanager {
    pub guard: ChildGuard,
    pub port: u16,
}

pub fn start_alertmanager(dir: &Path) -> Alertmanager {
    let port = free_port();
    let cfg = "route:\n  receiver: null\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: 'null'\n";
    let cfg = cfg.replace("receiver: null", "receiver: 'null'");
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, &cfg).expect("alertmanager.yml");
    let bin = which("prometheus-alertmanager")
        .or_else(|| which("alertmanager"))
        .expect("alertmanager binary");
    let mut g = ChildGuard::spawn(
        "alertmanager",
        Command::new(bin)
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip cluster: it would listen on 0.0.0.0:9094.
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn"),
        dir,
    );
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = g.exited() {
            panic!("alertmanager exited ({st}): {}", g.log_text());
        }
        if matches!(http_get(addr(port), "/-/ready"), Some((200, _))) {
            break;
        }
        assert!(
            Instant::now() < end,
            "alertmanager not ready: {}",
            g.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Alertmanager { guard: g, port }
}

impl Alertmanager {
    /// Active (unresolved) alerts.
    pub fn alerts(&self) -> Vec<Value> {
        http_get(addr(self.port), "/api/v2/alerts")
            .and_then(|(s, b)| (s == 200).then_some(b))
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    pub fn alerts_named(&self, alertname: &str) -> Vec<Value> {
        self.alerts()
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == alertname)
            .collect()
    }
}

// ---------------------------------------------------------------- dashboards and rules

/// Every dashboard JSON under dashboards/grafana, parsed, with its file name.
pub fn dashboards() -> Vec<(String, Value)> {
    let dir = harness::workspace_root().join("dashboards/grafana");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read dashboard");
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

/// All panels, rows' nested panels included.
pub fn panels(d: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().cloned().unwrap_or_default() {
        for n in p["panels"].as_array().cloned().unwrap_or_default() {
            out.push(n);
        }
        out.push(p);
    }
    out
}

/// `(dashboard title, panel title, expr)` for every target of every panel.
pub fn dashboard_exprs() -> Vec<(String, String, String)> {
    let mut v = Vec::new();
    for (_, d) in dashboards() {
        let dt = d["title"].as_str().unwrap_or("").to_string();
        for p in panels(&d) {
            for t in p["targets"].as_array().cloned().unwrap_or_default() {
                if let Some(e) = t["expr"].as_str() {
                    v.push((
                        dt.clone(),
                        p["title"].as_str().unwrap_or("").to_string(),
                        e.to_string(),
                    ));
                }
            }
        }
    }
    v
}

/// Grafana's variables replaced the way Grafana would (All = `.*`).
pub fn grafana_subst(expr: &str) -> String {
    expr.replace("$__rate_interval", "15s")
        .replace("$__interval", "5s")
        .replace("$__range", "5m")
        .replace("$job", ".*")
        .replace("$sensor", ".*")
}

pub fn rules_path() -> PathBuf {
    harness::workspace_root().join("dashboards/rules/kizuki.rules.yml")
}

/// `(alert name, expr)` of every rule, read with a tiny YAML reader good for our file
/// (`- alert:` / `expr:` single-line or `|` block).
pub fn rule_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(rules_path()).expect("rules file");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut name = String::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_start();
        if let Some(n) = l
            .strip_prefix("- alert:")
            .or_else(|| l.strip_prefix("- record:"))
        {
            name = n.trim().to_string();
        } else if let Some(e) = l.strip_prefix("expr:") {
            let e = e.trim();
            if e == "|" || e == ">" {
                let indent = lines[i].len() - l.len();
                let mut block = Vec::new();
                while i + 1 < lines.len() {
                    let n = lines[i + 1];
                    let ni = n.len() - n.trim_start().len();
                    if !n.trim().is_empty() && ni <= indent {
                        break;
                    }
                    block.push(n.trim());
                    i += 1;
                }
                out.push((name.clone(), block.join("\n")));
            } else {
                out.push((name.clone(), e.trim_matches('\'').to_string()));
            }
        }
        i += 1;
    }
    out
}

/// Metric names a PromQL expression selects (ours: `kizuki_*`, `process_*`, `up`,
/// `scrape_*`).
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() || b[i] == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let w = &expr[start..i];
            // Skip label names inside braces and quoted strings roughly: label names are
            // followed by = or !~ or =~, and come after `{` or `,`.
            let next = expr[i..].trim_start();
            let is_label =
                next.starts_with('=') || next.starts_with("!=") || next.starts_with("!~");
            let ours = w.starts_with("kizuki_")
                || w.starts_with("process_")
                || w == "up"
                || w.starts_with("scrape_");
            if ours && !is_label && !names.iter().any(|n| n == w) {
                names.push(w.to_string());
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += 1;
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    names
}
