//! The `<scenario>.expected.json` format and its comparison with what the sensor wrote.
//!
//! A scenario lists the flows and DNS transactions a correct sensor must report. Each expected
//! record must match exactly one EVE record (flows: 5-tuple + VLAN ids; DNS: client/server
//! endpoints + VLAN ids + id + rrname + rrtype); any other EVE flow/dns record is an error
//! unless it matches one of the scenario's `allowed_extra_*` patterns.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::IpAddr;

/// Counts of a flow (for the `alt_counts` alternative).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
}

/// One expected flow record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpFlow {
    pub src_ip: String,
    pub src_port: u16,
    pub dest_ip: String,
    pub dest_port: u16,
    pub proto: String,
    /// VLAN ids, outer first; empty = untagged (EVE `vlan` absent).
    pub vlan: Vec<u16>,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    /// IP bytes (sum of IP total lengths).
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub conn_state: String,
    /// TLS SNI / HTTP Host; `None` = the flow must have no server name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name_source: Option<String>,
    /// Compared when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_depth: Option<u8>,
    /// Another set of counts a correct sensor may report instead (e.g. counting IP fragments
    /// one by one instead of the reassembled datagram).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_counts: Option<Counts>,
    /// When the originator is debatable (e.g. a DNS response without its query): the sensor may
    /// report the flow the other way round, with this conn_state (counts swapped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_conn_state: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// One expected DNS answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpAnswer {
    pub rrname: String,
    pub rrtype: String,
    pub ttl: u32,
    pub rdata: String,
}

/// One expected DNS transaction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpDns {
    /// The client (sender of the query).
    pub src_ip: String,
    pub src_port: u16,
    pub dest_ip: String,
    pub dest_port: u16,
    /// `UDP` or `TCP`.
    pub proto: String,
    pub vlan: Vec<u16>,
    pub id: u16,
    pub rrname: String,
    pub rrtype: String,
    /// Absent when unanswered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    pub answers: Vec<ExpAnswer>,
    /// Compared when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tc: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A whole expected file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    pub scenario: String,
    pub pcap: String,
    pub description: String,
    /// pcap link type (DLT) of the file.
    pub linktype: u32,
    pub flows: Vec<ExpFlow>,
    pub dns: Vec<ExpDns>,
    /// Patterns of flow records that may appear besides `flows` (tunnel outer flows, flows a
    /// lenient decoder may build from malformed packets...). A pattern is an object whose
    /// every key must match: `src_ip`, `dest_ip`, `src_port`, `dest_port`, `proto`, or
    /// `any_ip` (src or dest).
    pub allowed_extra_flows: Vec<Value>,
    /// Same for DNS records.
    pub allowed_extra_dns: Vec<Value>,
    /// At least this many packets should be counted as decode errors (checked when the
    /// sensor's summary exposes a decode-error counter).
    pub min_decode_errors: u64,
    pub notes: Vec<String>,
}

impl Expected {
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn to_pretty_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("serialize expected");
        s.push('\n');
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison

fn ip_of(v: &Value) -> Option<IpAddr> {
    v.as_str()?.parse().ok()
}

fn vlan_of(ev: &Value) -> Vec<u16> {
    match ev.get("vlan") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u16)
            .collect(),
        _ => Vec::new(),
    }
}

fn u64_at(v: &Value, k: &str) -> Option<u64> {
    v.get(k)?.as_u64()
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    proto: String,
    vlan: Vec<u16>,
}

fn eve_key(ev: &Value) -> Option<Key> {
    Some(Key {
        src: ip_of(&ev["src_ip"])?,
        sport: u64_at(ev, "src_port").unwrap_or(0) as u16,
        dst: ip_of(&ev["dest_ip"])?,
        dport: u64_at(ev, "dest_port").unwrap_or(0) as u16,
        proto: ev["proto"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| ev["proto"].to_string()),
        vlan: vlan_of(ev),
    })
}

fn exp_flow_key(f: &ExpFlow) -> Key {
    Key {
        src: f.src_ip.parse().expect("expected src_ip"),
        sport: f.src_port,
        dst: f.dest_ip.parse().expect("expected dest_ip"),
        dport: f.dest_port,
        proto: f.proto.clone(),
        vlan: f.vlan.clone(),
    }
}

fn reversed(k: &Key) -> Key {
    Key {
        src: k.dst,
        sport: k.dport,
        dst: k.src,
        dport: k.sport,
        proto: k.proto.clone(),
        vlan: k.vlan.clone(),
    }
}

fn key_str(k: &Key) -> String {
    let v = if k.vlan.is_empty() {
        String::new()
    } else {
        format!(" vlan {:?}", k.vlan)
    };
    format!(
        "{} {}:{} -> {}:{}{}",
        k.proto, k.src, k.sport, k.dst, k.dport, v
    )
}

/// Does an EVE record match an `allowed_extra_*` pattern?
pub fn pattern_matches(pat: &Value, ev: &Value) -> bool {
    let Some(obj) = pat.as_object() else {
        return false;
    };
    obj.iter().all(|(k, want)| match k.as_str() {
        "src_ip" | "dest_ip" => {
            ip_of(&ev[k.as_str()]).is_some() && ip_of(&ev[k.as_str()]) == ip_of(want)
        }
        "any_ip" => {
            let w = ip_of(want);
            w.is_some() && (ip_of(&ev["src_ip"]) == w || ip_of(&ev["dest_ip"]) == w)
        }
        "proto" => match want {
            Value::Array(alts) => alts.iter().any(|a| a == &ev["proto"]),
            w => w == &ev["proto"],
        },
        other => want == &ev[other],
    })
}

/// A flow record is final unless it is a periodic `update` of a still-open flow.
fn is_final_flow(ev: &Value) -> bool {
    ev["event_type"] == "flow" && ev["flow"]["reason"] != "update"
}

fn counts_of(flow: &Value, swap: bool) -> Counts {
    let g = |k: &str| u64_at(flow, k).unwrap_or(u64::MAX);
    let c = Counts {
        pkts_toserver: g("pkts_toserver"),
        pkts_toclient: g("pkts_toclient"),
        bytes_toserver: g("bytes_toserver"),
        bytes_toclient: g("bytes_toclient"),
    };
    if swap {
        Counts {
            pkts_toserver: c.pkts_toclient,
            pkts_toclient: c.pkts_toserver,
            bytes_toserver: c.bytes_toclient,
            bytes_toclient: c.bytes_toserver,
        }
    } else {
        c
    }
}

fn opt_str(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Compares the EVE events of one replay with the expectation. Returns one line per
/// difference (empty = pass). Lines name the scenario and the record.
pub fn compare(exp: &Expected, events: &[Value]) -> Vec<String> {
    let mut errs = Vec::new();
    let sc = &exp.scenario;

    // ---- flows
    let flows: Vec<&Value> = events.iter().filter(|e| is_final_flow(e)).collect();
    let mut used = vec![false; flows.len()];
    for f in &exp.flows {
        let k = exp_flow_key(f);
        let rk = reversed(&k);
        let hits: Vec<(usize, bool)> = flows
            .iter()
            .enumerate()
            .filter_map(|(i, ev)| {
                let ek = eve_key(ev)?;
                if ek == k {
                    Some((i, false))
                } else if f.reversed_conn_state.is_some() && ek == rk {
                    Some((i, true))
                } else {
                    None
                }
            })
            .collect();
        let what = format!("[{sc}] flow {}", key_str(&k));
        let note = if f.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.note)
        };
        if hits.is_empty() {
            let rev: Vec<_> = flows
                .iter()
                .filter(|ev| eve_key(ev).as_ref() == Some(&rk))
                .collect();
            if rev.is_empty() {
                errs.push(format!("{what}{note}: missing"));
            } else {
                errs.push(format!(
                    "{what}{note}: missing; reported with originator and responder swapped"
                ));
                for (i, ev) in flows.iter().enumerate() {
                    if eve_key(ev).as_ref() == Some(&rk) {
                        used[i] = true;
                    }
                }
            }
            continue;
        }
        for &(i, _) in &hits {
            used[i] = true;
        }
        if hits.len() > 1 {
            errs.push(format!(
                "{what}{note}: reported {} times (want once)",
                hits.len()
            ));
        }
        let (i, swap) = hits[0];
        let ev = flows[i];
        let fl = &ev["flow"];
        let got = counts_of(fl, swap);
        let want = Counts {
            pkts_toserver: f.pkts_toserver,
            pkts_toclient: f.pkts_toclient,
            bytes_toserver: f.bytes_toserver,
            bytes_toclient: f.bytes_toclient,
        };
        if got != want && f.alt_counts.as_ref() != Some(&got) {
            let alt = f
                .alt_counts
                .as_ref()
                .map(|a| format!(" (or {a:?})"))
                .unwrap_or_default();
            errs.push(format!("{what}{note}: counts {got:?}, want {want:?}{alt}"));
        }
        let want_state = if swap {
            f.reversed_conn_state.clone().unwrap_or_default()
        } else {
            f.conn_state.clone()
        };
        let got_state = opt_str(&fl["conn_state"]);
        if got_state.as_deref() != Some(want_state.as_str()) {
            errs.push(format!(
                "{what}{note}: conn_state {got_state:?}, want {want_state:?} (history {})",
                fl["history"]
            ));
        }
        let got_name = opt_str(&fl["server_name"]);
        if got_name != f.server_name {
            errs.push(format!(
                "{what}{note}: server_name {got_name:?}, want {:?}",
                f.server_name
            ));
        }
        if let Some(src) = &f.server_name_source {
            let g = opt_str(&fl["server_name_source"]);
            if g.as_ref() != Some(src) {
                errs.push(format!(
                    "{what}{note}: server_name_source {g:?}, want {src:?}"
                ));
            }
        }
        if let Some(d) = f.tunnel_depth {
            let g = u64_at(fl, "tunnel_depth");
            if g != Some(d as u64) {
                errs.push(format!("{what}{note}: tunnel_depth {g:?}, want {d}"));
            }
        }
    }
    for (i, ev) in flows.iter().enumerate() {
        if used[i]
            || exp
                .allowed_extra_flows
                .iter()
                .any(|p| pattern_matches(p, ev))
        {
            continue;
        }
        let k = eve_key(ev)
            .map(|k| key_str(&k))
            .unwrap_or_else(|| ev.to_string());
        errs.push(format!(
            "[{sc}] unexpected flow {k} (state {}, pkts {}/{})",
            ev["flow"]["conn_state"], ev["flow"]["pkts_toserver"], ev["flow"]["pkts_toclient"]
        ));
    }

    // ---- DNS
    let dns: Vec<&Value> = events.iter().filter(|e| e["event_type"] == "dns").collect();
    let mut used = vec![false; dns.len()];
    for d in &exp.dns {
        let k = Key {
            src: d.src_ip.parse().expect("dns src_ip"),
            sport: d.src_port,
            dst: d.dest_ip.parse().expect("dns dest_ip"),
            dport: d.dest_port,
            proto: d.proto.clone(),
            vlan: d.vlan.clone(),
        };
        let what = format!(
            "[{sc}] dns id {} {} {} from {}",
            d.id,
            d.rrname,
            d.rrtype,
            key_str(&k)
        );
        let note = if d.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", d.note)
        };
        let hits: Vec<usize> = dns
            .iter()
            .enumerate()
            .filter(|(_, ev)| {
                let dd = &ev["dns"];
                eve_key(ev).as_ref() == Some(&k)
                    && u64_at(dd, "id") == Some(d.id as u64)
                    && dd["rrname"].as_str() == Some(d.rrname.as_str())
                    && dd["rrtype"].as_str() == Some(d.rrtype.as_str())
            })
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            // Help: same id and name but other endpoints?
            let near: Vec<String> = dns
                .iter()
                .filter(|ev| {
                    u64_at(&ev["dns"], "id") == Some(d.id as u64)
                        && ev["dns"]["rrname"].as_str() == Some(d.rrname.as_str())
                })
                .filter_map(|ev| eve_key(ev).map(|k| key_str(&k)))
                .collect();
            if near.is_empty() {
                errs.push(format!("{what}{note}: missing"));
            } else {
                errs.push(format!(
                    "{what}{note}: missing (same id/name reported as {})",
                    near.join(", ")
                ));
            }
            continue;
        }
        for &i in &hits {
            used[i] = true;
        }
        if hits.len() > 1 {
            errs.push(format!(
                "{what}{note}: reported {} times (want once)",
                hits.len()
            ));
        }
        let dd = &dns[hits[0]]["dns"];
        let got_rcode = opt_str(&dd["rcode"]);
        if got_rcode != d.rcode {
            errs.push(format!(
                "{what}{note}: rcode {got_rcode:?}, want {:?}",
                d.rcode
            ));
        }
        let answered = dd["answered"].as_bool();
        if answered != Some(d.rcode.is_some()) {
            errs.push(format!(
                "{what}{note}: answered {answered:?}, want {}",
                d.rcode.is_some()
            ));
        }
        if let Some(tc) = d.tc {
            if dd["tc"].as_bool() != Some(tc) {
                errs.push(format!("{what}{note}: tc {}, want {tc}", dd["tc"]));
            }
        }
        let got_answers: Vec<ExpAnswer> = match &dd["answers"] {
            Value::Array(a) => a
                .iter()
                .map(|x| ExpAnswer {
                    rrname: x["rrname"].as_str().unwrap_or("?").to_string(),
                    rrtype: x["rrtype"].as_str().unwrap_or("?").to_string(),
                    ttl: u64_at(x, "ttl").unwrap_or(u64::MAX) as u32,
                    rdata: opt_str(&x["rdata"]).unwrap_or_default(),
                })
                .collect(),
            _ => Vec::new(),
        };
        if got_answers != d.answers {
            errs.push(format!(
                "{what}{note}: answers {}, want {}",
                serde_json::to_string(&got_answers).unwrap(),
                serde_json::to_string(&d.answers).unwrap()
            ));
        }
    }
    for (i, ev) in dns.iter().enumerate() {
        if used[i] || exp.allowed_extra_dns.iter().any(|p| pattern_matches(p, ev)) {
            continue;
        }
        let k = eve_key(ev)
            .map(|k| key_str(&k))
            .unwrap_or_else(|| ev.to_string());
        errs.push(format!(
            "[{sc}] unexpected dns id {} {} {} from {k}",
            ev["dns"]["id"], ev["dns"]["rrname"], ev["dns"]["rrtype"]
        ));
    }
    errs
}

/// The EVE records a perfect sensor would write for `exp` (used to self-test [`compare`]).
pub fn synthesize_eve(exp: &Expected) -> Vec<Value> {
    let mut out = Vec::new();
    for f in &exp.flows {
        let mut ev = serde_json::json!({
            "event_type": "flow",
            "src_ip": f.src_ip, "src_port": f.src_port,
            "dest_ip": f.dest_ip, "dest_port": f.dest_port,
            "proto": f.proto,
            "flow": {
                "pkts_toserver": f.pkts_toserver, "pkts_toclient": f.pkts_toclient,
                "bytes_toserver": f.bytes_toserver, "bytes_toclient": f.bytes_toclient,
                "conn_state": f.conn_state, "reason": "shutdown",
                "tunnel_depth": f.tunnel_depth.unwrap_or(0),
            }
        });
        if !f.vlan.is_empty() {
            ev["vlan"] = serde_json::json!(f.vlan);
        }
        if let Some(n) = &f.server_name {
            ev["flow"]["server_name"] = n.clone().into();
        }
        if let Some(n) = &f.server_name_source {
            ev["flow"]["server_name_source"] = n.clone().into();
        }
        out.push(ev);
    }
    for d in &exp.dns {
        let mut ev = serde_json::json!({
            "event_type": "dns",
            "src_ip": d.src_ip, "src_port": d.src_port,
            "dest_ip": d.dest_ip, "dest_port": d.dest_port,
            "proto": d.proto,
            "dns": {
                "type": "transaction", "id": d.id, "rrname": d.rrname, "rrtype": d.rrtype,
                "answered": d.rcode.is_some(), "answers": d.answers,
                "tc": d.tc.unwrap_or(false),
            }
        });
        if !d.vlan.is_empty() {
            ev["vlan"] = serde_json::json!(d.vlan);
        }
        if let Some(r) = &d.rcode {
            ev["dns"]["rcode"] = r.clone().into();
        }
        out.push(ev);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Expected {
        Expected {
            scenario: "t".into(),
            flows: vec![ExpFlow {
                src_ip: "10.0.0.1".into(),
                src_port: 1000,
                dest_ip: "10.0.0.2".into(),
                dest_port: 53,
                proto: "UDP".into(),
                vlan: vec![10],
                pkts_toserver: 1,
                pkts_toclient: 1,
                bytes_toserver: 60,
                bytes_toclient: 80,
                conn_state: "SF".into(),
                ..Default::default()
            }],
            dns: vec![ExpDns {
                src_ip: "10.0.0.1".into(),
                src_port: 1000,
                dest_ip: "10.0.0.2".into(),
                dest_port: 53,
                proto: "UDP".into(),
                vlan: vec![10],
                id: 7,
                rrname: "a.example".into(),
                rrtype: "A".into(),
                rcode: Some("NOERROR".into()),
                answers: vec![ExpAnswer {
                    rrname: "a.example".into(),
                    rrtype: "A".into(),
                    ttl: 60,
                    rdata: "192.0.2.1".into(),
                }],
                ..Default::default()
            }],
            allowed_extra_flows: vec![serde_json::json!({"any_ip": "172.16.0.1"})],
            ..Default::default()
        }
    }

    #[test]
    fn perfect_eve_passes() {
        let e = sample();
        assert_eq!(compare(&e, &synthesize_eve(&e)), Vec::<String>::new());
    }

    #[test]
    fn differences_are_reported() {
        let e = sample();
        let mut eve = synthesize_eve(&e);
        eve[0]["flow"]["pkts_toclient"] = 2.into();
        eve[1]["dns"]["answers"][0]["rdata"] = "192.0.2.9".into();
        let mut extra = eve[0].clone();
        extra["vlan"] = serde_json::json!([11]);
        eve.push(extra);
        let mut allowed = eve[0].clone();
        allowed["src_ip"] = "172.16.0.1".into();
        eve.push(allowed);
        let errs = compare(&e, &eve);
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].contains("[t] flow UDP 10.0.0.1:1000 -> 10.0.0.2:53 vlan [10]: counts"));
        assert!(errs[1].contains("unexpected flow"));
        assert!(errs[2].contains("answers"));
    }

    #[test]
    fn reversed_orientation_allowed_only_when_declared() {
        let mut e = sample();
        let mut eve = synthesize_eve(&e);
        let f = &mut eve[0];
        f["src_ip"] = "10.0.0.2".into();
        f["src_port"] = 53.into();
        f["dest_ip"] = "10.0.0.1".into();
        f["dest_port"] = 1000.into();
        f["flow"]["pkts_toserver"] = 1.into();
        f["flow"]["bytes_toserver"] = 80.into();
        f["flow"]["bytes_toclient"] = 60.into();
        f["flow"]["conn_state"] = "SHR".into();
        assert!(compare(&e, &eve)[0].contains("swapped"));
        e.flows[0].reversed_conn_state = Some("SHR".into());
        assert_eq!(compare(&e, &eve), Vec::<String>::new());
    }
}
