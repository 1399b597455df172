//! The end-of-run summary: a human table on stdout and `--summary-json` with the final
//! counters.

use crate::output::metrics::Metrics;
use crate::pipeline::RunReport;
use crate::timefmt::eve_ts;
use serde_json::{json, Map, Value};

fn counter_vec(m: &prometheus::IntCounterVec, labels: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for l in labels {
        let v = m.with_label_values(&[l]).get();
        out.insert((*l).to_string(), json!(v));
    }
    out
}

/// Every series of a one-label counter vector, by label value.
fn counter_vec_all(m: &prometheus::IntCounterVec) -> Map<String, Value> {
    use prometheus::core::Collector;
    let mut out = Map::new();
    for family in m.collect() {
        for metric in family.get_metric() {
            if let Some(l) = metric.get_label().first() {
                out.insert(
                    l.value().to_string(),
                    json!(metric.get_counter().get_value() as u64),
                );
            }
        }
    }
    out
}

/// The final counters as JSON.
pub fn summary_json(r: &RunReport, m: &Metrics, inputs: &[String]) -> Value {
    let mut reasons: Vec<&str> = crate::decode::DropReason::ALL
        .iter()
        .map(|d| d.as_str())
        .collect();
    reasons.push("dns");
    let decode = counter_vec(&m.decode_errors, &reasons);
    let decode_total: u64 = decode.values().filter_map(Value::as_u64).sum();
    let drops = counter_vec(&m.capture_drops, &["kernel", "interface", "queue"]);
    let pps = if r.wall.as_secs_f64() > 0.0 {
        r.packets as f64 / r.wall.as_secs_f64()
    } else {
        0.0
    };
    json!({
        "inputs": inputs,
        "packets": r.packets,
        "bytes": m.bytes.get(),
        "non_ip_packets": m.non_ip.get(),
        "decode_errors_total": decode_total,
        "decode_errors": decode,
        "capture_drops": drops,
        "fragments_reassembled": m.fragments_reassembled.get(),
        "first_packet": r.first_ts.map(eve_ts),
        "last_packet": r.last_ts.map(eve_ts),
        "flows": r.sink.flows,
        "flows_by_proto": r.sink.flows_by_proto,
        "flows_by_conn_state": r.sink.flows_by_conn_state,
        "flow_updates": r.sink.flow_updates,
        "flows_evicted": r.sink.flows_evicted,
        "tcp_payload_bytes": r.sink.tcp_payload_bytes,
        "tcp_missed_bytes": r.sink.tcp_missed_bytes,
        "capture_loss_ratio": if r.sink.tcp_payload_bytes + r.sink.tcp_missed_bytes > 0 {
            r.sink.tcp_missed_bytes as f64
                / (r.sink.tcp_payload_bytes + r.sink.tcp_missed_bytes) as f64
        } else {
            0.0
        },
        "dns_transactions": r.sink.dns_transactions,
        "dns_answered": r.sink.dns_answered,
        "dns_unanswered": r.sink.dns_unanswered,
        "dns_rcodes": r.sink.dns_rcodes,
        "dns_parse_errors": m.dns_parse_errors.get(),
        "dns_pending_overflow": m.dns_pending_overflow.get(),
        "dns_rtt_ms": {
            "p50": r.sink.dns_rtt_ms_p50,
            "p90": r.sink.dns_rtt_ms_p90,
            "p99": r.sink.dns_rtt_ms_p99,
            "max": r.sink.dns_rtt_ms_max,
        },
        "smtp": {
            "sessions": m.smtp_sessions.get(),
            "messages": m.smtp_messages.get(),
            "attachments_inspected": m.smtp_attachments.get(),
            "starttls_sessions": m.smtp_starttls.get(),
            "give_ups": counter_vec(
                &m.smtp_give_ups,
                &crate::proto::smtp::GiveUp::ALL.map(|g| g.as_str()),
            ),
            "buffer_peak_bytes": m.smtp_buffer_peak_bytes.get(),
            "buffer_bytes_at_end": m.smtp_buffer_bytes.get(),
        },
        "alerts": r.sink.alerts,
        "alert_updates": r.sink.alert_updates,
        "alerts_by_detector": r.sink.alerts_by_detector,
        "alert_escalations": counter_vec_all(&m.alert_escalations),
        "eve_events": r.sink.eve_events,
        "eve_write_errors": r.sink.eve_write_errors,
        "eve_path": r.sink.eve_path,
        "interrupted": r.interrupted,
        "input_errors": r.source_errors,
        "wall_seconds": r.wall.as_secs_f64(),
        "packets_per_second": pps,
    })
}

/// A short human summary.
pub fn print_human(s: &Value) {
    use std::io::Write;
    // A closed stdout (`| head`) must not abort the run.
    let mut o = std::io::stdout().lock();
    let g = |k: &str| s.get(k).cloned().unwrap_or(Value::Null);
    let n = |k: &str| g(k).as_u64().unwrap_or(0);
    let _ = writeln!(o, "Kizuki summary");
    let _ = writeln!(
        o,
        "  packets          {:>12}   ({} bytes, {} non-IP, {} undecodable)",
        n("packets"),
        n("bytes"),
        n("non_ip_packets"),
        n("decode_errors_total")
    );
    if let (Some(a), Some(b)) = (g("first_packet").as_str(), g("last_packet").as_str()) {
        let _ = writeln!(o, "  packet time      {a} .. {b}");
    }
    let _ = writeln!(
        o,
        "  flows            {:>12}   {}",
        n("flows"),
        compact(&g("flows_by_proto"))
    );
    let _ = writeln!(
        o,
        "  conn states      {}",
        compact(&g("flows_by_conn_state"))
    );
    let _ = writeln!(
        o,
        "  dns transactions {:>12}   ({} answered, {} unanswered) {}",
        n("dns_transactions"),
        n("dns_answered"),
        n("dns_unanswered"),
        compact(&g("dns_rcodes"))
    );
    let rtt = g("dns_rtt_ms");
    if let Some(p50) = rtt.get("p50").and_then(Value::as_f64) {
        let _ = writeln!(
            o,
            "  dns rtt (ms)     p50 {:.3}  p90 {:.3}  p99 {:.3}",
            p50,
            rtt.get("p90").and_then(Value::as_f64).unwrap_or(0.0),
            rtt.get("p99").and_then(Value::as_f64).unwrap_or(0.0)
        );
    }
    if n("alerts") > 0 {
        let _ = writeln!(
            o,
            "  alerts           {:>12}   {}",
            n("alerts"),
            compact(&g("alerts_by_detector"))
        );
    }
    let drops = g("capture_drops");
    let dropped: u64 = drops
        .as_object()
        .map(|o| o.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    if dropped > 0 {
        let _ = writeln!(o, "  capture drops    {}", compact(&drops));
    }
    let _ = writeln!(
        o,
        "  events           {:>12}   -> {}",
        n("eve_events"),
        g("eve_path").as_str().unwrap_or("")
    );
    let _ = writeln!(
        o,
        "  wall time        {:>12.3} s ({:.0} packets/s)",
        g("wall_seconds").as_f64().unwrap_or(0.0),
        g("packets_per_second").as_f64().unwrap_or(0.0)
    );
}

fn compact(v: &Value) -> String {
    match v.as_object() {
        Some(o) => o
            .iter()
            .filter(|(_, v)| v.as_u64() != Some(0))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        None => String::new(),
    }
}
