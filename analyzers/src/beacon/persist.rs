//! State file support: the keys that alerted (with their recent beats), so a restarted
//! sensor sends an ongoing beacon's next alert as an update of the same alert, never as a new
//! one. Candidates that never alerted are not kept: they rebuild from traffic.

use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;

use super::key::BeaconKey;
use super::state::{KeyState, MAX_ADDRS};
use super::BeaconAnalyzer;
use crate::TsNanos;

/// Alerted keys saved at most (the most recently alerted).
pub(super) const MAX_SAVED_KEYS: usize = 10_000;
/// Newest beats saved per key (enough to score again right away).
pub(super) const SAVED_BEATS: usize = 64;

fn key_json(k: &BeaconKey) -> Value {
    match k {
        BeaconKey::Pair {
            src,
            dst,
            port,
            proto,
        } => json!({"kind": "pair", "src": src.to_string(), "dst": dst.to_string(),
                    "port": port, "proto": proto}),
        BeaconKey::Name { src, name } => {
            json!({"kind": "name", "src": src.to_string(), "name": &**name})
        }
        BeaconKey::Dns { client, qname } => {
            json!({"kind": "dns", "src": client.to_string(), "name": &**qname})
        }
    }
}

fn ip(v: &Value) -> Option<IpAddr> {
    v.as_str()?.parse().ok()
}

fn key_of(v: &Value) -> Option<BeaconKey> {
    let src = ip(&v["src"])?;
    let name = || v["name"].as_str().map(Arc::<str>::from);
    Some(match v["kind"].as_str()? {
        "pair" => BeaconKey::Pair {
            src,
            dst: ip(&v["dst"])?,
            port: u16::try_from(v["port"].as_u64()?).ok()?,
            proto: u8::try_from(v["proto"].as_u64()?).ok()?,
        },
        "name" => BeaconKey::Name { src, name: name()? },
        "dns" => BeaconKey::Dns {
            client: src,
            qname: name()?,
        },
        _ => return None,
    })
}

impl BeaconAnalyzer {
    pub(super) fn save(&self) -> Value {
        let mut alerted: Vec<(TsNanos, u32)> = self
            .keys
            .indices()
            .into_iter()
            .filter_map(|i| {
                let (_, st) = self.keys.get(i)?;
                st.alerted.then_some((st.last_alert, i))
            })
            .collect();
        // Most recent alerts kept; written oldest first so a reload keeps the LRU order.
        alerted.sort_by(|a, b| b.cmp(a));
        alerted.truncate(MAX_SAVED_KEYS.min(self.cfg.max_keys));
        alerted.reverse();
        let keys: Vec<Value> = alerted
            .into_iter()
            .filter_map(|(_, i)| {
                let (k, st) = self.keys.get(i)?;
                Some(json!({
                    "key": key_json(k),
                    "first_seen": st.first_seen,
                    "last_seen": st.last_seen,
                    "beats": st.beats,
                    "beats_at_alert": st.beats_at_alert,
                    "last_alert": st.last_alert,
                    "alias": st.alias.as_deref(),
                    "port": st.port,
                    "proto": st.proto,
                    "addrs": st.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "answers": st.answers,
                    "ring": st.ring.export(SAVED_BEATS),
                }))
            })
            .collect();
        json!({ "alerted": keys })
    }

    pub(super) fn load(&mut self, v: &Value) {
        let cap = self.cfg.ring_cap();
        let merge_ns = (self.cfg.merge_window_s * 1e9) as i64;
        let rows = v["alerted"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let skip = rows.len().saturating_sub(MAX_SAVED_KEYS);
        for r in &rows[skip..] {
            let Some(key) = key_of(&r["key"]) else {
                continue;
            };
            let (Some(last_alert), Some(first_seen), Some(last_seen)) = (
                r["last_alert"].as_i64(),
                r["first_seen"].as_i64(),
                r["last_seen"].as_i64(),
            ) else {
                continue;
            };
            let num = |k: &str| r[k].as_u64().unwrap_or(0);
            let (idx, _) = self.keys.entry(key, KeyState::default);
            let Some((_, st)) = self.keys.get_mut(idx) else {
                continue;
            };
            st.alerted = true;
            st.last_alert = last_alert;
            st.first_seen = st.first_seen.min(first_seen);
            st.last_seen = st.last_seen.max(last_seen);
            st.beats = st
                .beats
                .max(u32::try_from(num("beats")).unwrap_or(u32::MAX));
            st.beats_at_alert = u32::try_from(num("beats_at_alert")).unwrap_or(u32::MAX);
            st.alias = r["alias"].as_str().map(Arc::from);
            st.port = u16::try_from(num("port")).unwrap_or(0);
            st.proto = u8::try_from(num("proto")).unwrap_or(0);
            st.addrs = r["addrs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(ip)
                .take(MAX_ADDRS)
                .collect();
            for (slot, n) in r["answers"].as_array().into_iter().flatten().enumerate() {
                if let (Some(a), Some(n)) = (st.answers.get_mut(slot), n.as_u64()) {
                    *a = u16::try_from(n).unwrap_or(u16::MAX);
                }
            }
            let beats = r["ring"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let from = beats.len().saturating_sub(SAVED_BEATS);
            for b in &beats[from..] {
                if let (Some(t), Some(size)) = (
                    b.get(0).and_then(Value::as_i64),
                    b.get(1)
                        .and_then(Value::as_u64)
                        .and_then(|s| u32::try_from(s).ok()),
                ) {
                    st.ring.import(t, size, merge_ns, cap);
                }
            }
        }
    }
}
