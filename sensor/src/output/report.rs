//! `kizuki report`: an analyst's view of a capture — the alerts and each analyzer's top
//! candidates — for a terminal, or as JSON. Everything that came off the wire is escaped
//! before printing: a hostile DNS name or SNI never reaches the terminal as a control
//! sequence.

use serde_json::{json, Value};
use std::fmt::Write as _;

/// Printable form of untrusted text: control characters (C0, DEL, C1) and the Unicode
/// bidirectional overrides become `\u{..}` escapes.
pub fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => safe(s),
        Value::Null => "-".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.3}"),
            _ => n.to_string(),
        },
        other => safe(&other.to_string()),
    }
}

/// The machine form.
pub fn report_json(summary: &Value, alerts: &[Value], analyzers: &Value) -> Value {
    json!({ "summary": summary, "alerts": alerts, "analyzers": analyzers })
}

/// The terminal form.
pub fn render(summary: &Value, alerts: &[Value], analyzers: &Value, top: usize) -> String {
    let mut o = String::new();
    let n = |k: &str| summary.get(k).and_then(Value::as_u64).unwrap_or(0);
    let _ = writeln!(
        o,
        "Kizuki report: {}",
        summary
            .get("inputs")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "  {} packets, {} flows, {} DNS transactions, {} .. {}",
        n("packets"),
        n("flows"),
        n("dns_transactions"),
        text(summary.get("first_packet").unwrap_or(&Value::Null)),
        text(summary.get("last_packet").unwrap_or(&Value::Null)),
    );
    let _ = writeln!(o, "\nAlerts ({} distinct)", alerts.len());
    if alerts.is_empty() {
        let _ = writeln!(o, "  none");
    }
    for a in alerts.iter().take(top.max(1) * 10) {
        let k = &a["kizuki"];
        let dest = match (a.get("dest_ip"), a.get("dest_port")) {
            (Some(ip), Some(p)) => format!("{}:{}", text(ip), text(p)),
            (Some(ip), None) => text(ip),
            _ => "-".into(),
        };
        let mut extra = String::new();
        for f in ["period_s", "jitter", "beats"] {
            if let Some(v) = k.get(f) {
                let _ = write!(extra, " {f}={}", text(v));
            }
        }
        if let Some(sc) = k.get("score") {
            let total = sc.get("total").unwrap_or(sc);
            let _ = write!(extra, " score={}", text(total));
        }
        let _ = writeln!(
            o,
            "  {:<8} {:<22} {} -> {} {}{}",
            text(&k["severity"]),
            text(&k["detector"]),
            text(a.get("src_ip").unwrap_or(&Value::Null)),
            dest,
            k.get("name").map(text).unwrap_or_default(),
            extra
        );
    }
    if let Some(map) = analyzers.as_object() {
        for (name, snap) in map {
            let Some(cands) = snap.get("candidates").and_then(Value::as_array) else {
                continue;
            };
            let _ = writeln!(
                o,
                "\nTop {} candidates ({})",
                safe(name),
                cands.len().min(top)
            );
            for c in cands.iter().take(top) {
                let mut line = String::new();
                if let Some(obj) = c.as_object() {
                    for (k, v) in obj {
                        let v = match v {
                            Value::Object(inner) => {
                                inner.get("total").map(text).unwrap_or_else(|| text(v))
                            }
                            other => text(other),
                        };
                        let _ = write!(line, "{}={} ", safe(k), v);
                    }
                }
                let _ = writeln!(o, "  {}", line.trim_end());
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_escaped() {
        assert_eq!(safe("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(safe("evil\u{202e}exe.txt"), "evil\\u{202e}exe.txt");
        assert_eq!(safe("日本.example"), "日本.example");
        let alerts = vec![json!({
            "src_ip": "10.0.0.1",
            "dest_ip": "192.0.2.1",
            "dest_port": 443,
            "kizuki": {"detector": "beacon", "severity": "high", "name": "x\x07\x1b]0;pwn\x07"}
        })];
        let out = render(&json!({}), &alerts, &Value::Null, 5);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(out.contains("beacon"));
    }
}
