//! `/metrics` hardening: HTTP basic auth (401 without or with wrong credentials, 200 with
//! them, `/healthz` open) and HTTPS with a self-signed certificate made by `openssl` in the
//! test, scraped with `curl --cacert`.

mod common;

use common::*;
use kizuki_tests::harness;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn get_with(port: u16, path: &str, auth: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr(port), Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

fn basic(user: &str, pw: &str) -> String {
    let o = Command::new("base64")
        .args(["-w0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{user}:{pw}").as_bytes())?;
            c.wait_with_output()
        })
        .expect("base64");
    format!("Basic {}", String::from_utf8_lossy(&o.stdout).trim())
}

#[test]
fn basic_auth_guards_metrics_and_inventory() {
    let dir = DirGuard::new("metrics-auth");
    let pw = dir.0.join("pw");
    std::fs::write(&pw, "s3cret-pass\n").unwrap();
    let cfg = write_config(
        &dir.0,
        "auth.toml",
        &format!(
            "[metrics]\nbasic_auth_user = \"prom\"\nbasic_auth_password_file = \"{}\"\n",
            pw.display()
        ),
    );
    let port = free_port();
    let demo = harness::workspace_root().join("pcaps/demo.pcap");
    // wait_healthy: /healthz stays open for liveness probes.
    let _k = start_replay("auth", &dir.0, port, Some(&cfg), &[&demo], 60);
    let (st, text) = get_with(port, "/metrics", None).expect("answer");
    assert_eq!(st, 401, "{text}");
    assert!(text.contains("WWW-Authenticate: Basic"), "{text}");
    assert!(!text.contains("kizuki_"), "no metrics leak: {text}");
    for wrong in [
        basic("prom", "s3cret-pas"),
        basic("prom", "s3cret-pass\n"),
        basic("prom", "s3cret-passs"),
        basic("other", "s3cret-pass"),
        "Basic".into(),
        "Bearer x".into(),
    ] {
        assert_eq!(
            get_with(port, "/metrics", Some(&wrong)).unwrap().0,
            401,
            "{wrong}"
        );
    }
    assert_eq!(get_with(port, "/inventory", None).unwrap().0, 401);
    let good = basic("prom", "s3cret-pass");
    let (st, text) = get_with(port, "/metrics", Some(&good)).unwrap();
    assert_eq!(st, 200, "{text}");
    assert!(text.contains("kizuki_build_info"), "{text}");
    assert_eq!(get_with(port, "/inventory", Some(&good)).unwrap().0, 200);

    // A password in the config itself is not a key; a missing password file is an error.
    let bad = write_config(
        &dir.0,
        "bad.toml",
        "[metrics]\nbasic_auth_user = \"prom\"\nbasic_auth_password = \"x\"\n",
    );
    let o = Command::new(harness::kizuki_bin())
        .args(["check-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let missing = write_config(
        &dir.0,
        "missing.toml",
        "[metrics]\nbasic_auth_user = \"prom\"\nbasic_auth_password_file = \"/nonexistent/pw\"\n",
    );
    let o = Command::new(harness::kizuki_bin())
        .args(["replay", "--out", dir.0.join("o2").to_str().unwrap()])
        .args(["-c", missing.to_str().unwrap()])
        .args(["--metrics-listen", &addr(free_port()).to_string()])
        .arg(&demo)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("basic_auth_password_file"), "{err}");
}

fn openssl_cert(dir: &Path) -> bool {
    Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn tls_scrape_with_self_signed_cert() {
    if skip_unless(
        "tls_scrape_with_self_signed_cert",
        false,
        &["openssl", "curl"],
    ) {
        return;
    }
    let dir = DirGuard::new("metrics-tls");
    assert!(openssl_cert(&dir.0), "openssl req failed");
    let pw = dir.0.join("pw");
    std::fs::write(&pw, "tls-pass").unwrap();
    let cfg = write_config(
        &dir.0,
        "tls.toml",
        &format!(
            "[metrics]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
             basic_auth_user = \"prom\"\nbasic_auth_password_file = \"{}\"\n",
            dir.0.join("cert.pem").display(),
            dir.0.join("key.pem").display(),
            pw.display()
        ),
    );
    let port = free_port();
    let demo = harness::workspace_root().join("pcaps/demo.pcap");
    let mut cmd = Command::new(harness::kizuki_bin());
    cmd.args(["replay", "--out"])
        .arg(dir.0.join("out"))
        .args(["-c", cfg.to_str().unwrap()])
        .args([
            "--metrics-listen",
            &addr(port).to_string(),
            "--linger",
            "60",
        ])
        .arg(&demo);
    let mut k = ChildGuard::spawn("tls", &mut cmd, &dir.0);
    let cacert = dir.0.join("cert.pem");
    let curl = |extra: &[&str]| -> (String, String) {
        let o = Command::new("curl")
            .args(["-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}"])
            .arg("--cacert")
            .arg(&cacert)
            .args(extra)
            .arg(format!("https://localhost:{port}/metrics"))
            .output()
            .expect("curl");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", ""));
        (
            code.to_string(),
            body.to_string() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let body = wait_for(Duration::from_secs(30), "HTTPS /metrics", || {
        if let Some(st) = k.exited() {
            panic!("kizuki exited ({st}): {}", k.log_text());
        }
        let (code, body) = curl(&["-u", "prom:tls-pass"]);
        (code == "200").then_some(body)
    });
    assert!(body.contains("kizuki_build_info"), "{body}");
    assert_eq!(curl(&[]).0, "401");
    assert_eq!(curl(&["-u", "prom:nope"]).0, "401");
    // Plain HTTP on the TLS port gets nothing.
    assert!(!matches!(http_get(addr(port), "/metrics"), Some((200, _))));
    // Without the CA, curl refuses the self-signed certificate.
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-u", "prom:tls-pass"])
        .arg(format!("https://localhost:{port}/metrics"))
        .output()
        .unwrap();
    assert!(!o.status.success());

    // An unusable key is a one-line error at start, not a panic.
    std::fs::write(
        dir.0.join("ec.pem"),
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    let bad = write_config(
        &dir.0,
        "bad.toml",
        &format!(
            "[metrics]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cacert.display(),
            dir.0.join("ec.pem").display()
        ),
    );
    let o = Command::new(harness::kizuki_bin())
        .args(["replay", "--out", dir.0.join("o2").to_str().unwrap()])
        .args(["-c", bad.to_str().unwrap()])
        .args(["--metrics-listen", &addr(free_port()).to_string()])
        .arg(&demo)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("tls_key") && !err.contains("panicked"),
        "{err}"
    );
}
