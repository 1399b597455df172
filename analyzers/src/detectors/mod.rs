//! J-CRAT detectors (see `docs/detectors.md`): each one a pure [`crate::Analyzer`] with its own
//! config section, allowlist, dedupe/cooldown and bounded state. This module holds what they
//! share: host keys, allowlists, the dedupe table, a bounded LRU map and name helpers.

pub mod bypass;
pub mod direct_ip;
pub mod dnstunnel;
pub mod escalate;
pub mod mail;
pub mod mail_attachment;
pub mod names;
#[cfg(test)]
pub(crate) mod testutil;

use crate::lru::Lru;
use crate::net::CidrSet;
use crate::{Alert, Severity, TsNanos, Vlans, NANOS_PER_SEC};
use serde::{Deserialize, Serialize};
use std::hash::Hash;
use std::net::IpAddr;

/// A host as the sensor sees it: the same address on two VLANs is two hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostKey {
    pub vlan: Vlans,
    pub ip: IpAddr,
}

/// Two words instead of the derived field-by-field hashing (five writes for an IPv4 host):
/// the address as 128 bits, the family and both VLAN tags packed in one word. Equal keys
/// hash alike; different keys differ in at least one of the two words.
impl Hash for HostKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let (v6, bits) = match self.ip {
            IpAddr::V4(a) => (0u64, u128::from(u32::from(a))),
            IpAddr::V6(a) => (1u64, u128::from(a)),
        };
        let tag = |t: Option<u16>| t.map_or(0u64, |v| u64::from(v) + 1);
        h.write_u128(bits);
        h.write_u64(v6 | tag(self.vlan.outer) << 1 | tag(self.vlan.inner) << 18);
    }
}

impl HostKey {
    pub fn new(vlan: Vlans, ip: IpAddr) -> Self {
        HostKey { vlan, ip }
    }
    /// `10.0.0.5` or `10.0.0.5@vlan10` / `10.0.0.5@vlan10.20` (for dedupe keys and reports).
    pub fn label(&self) -> String {
        let mut s = String::with_capacity(24);
        self.push_label(&mut s);
        s
    }

    /// Appends [`HostKey::label`] to `out`.
    pub fn push_label(&self, out: &mut String) {
        use std::fmt::Write;
        crate::net::push_ip(out, self.ip);
        let _ = match (self.vlan.outer, self.vlan.inner) {
            (None, _) => Ok(()),
            (Some(o), None) => write!(out, "@vlan{o}"),
            (Some(o), Some(i)) => write!(out, "@vlan{o}.{i}"),
        };
    }
}

/// Adds `vlan: [ids]` to an alert's evidence when the traffic was tagged.
pub fn add_vlan(a: &mut Alert, vlan: Vlans) {
    if !vlan.is_empty() {
        a.evidence.insert(
            "vlan".into(),
            serde_json::Value::from(vlan.ids().collect::<Vec<u16>>()),
        );
    }
}

/// Per-detector allowlist (config `allow = { src = [...], dest = [...], names = [...] }`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AllowConfig {
    /// Source hosts/CIDRs never alerted on.
    pub src: Vec<String>,
    /// Destination hosts/CIDRs never alerted on.
    pub dest: Vec<String>,
    /// Names (DNS/SNI/Host) never alerted on: the name itself and everything under it.
    pub names: Vec<String>,
}

impl AllowConfig {
    pub fn compile(&self, what: &str) -> Result<Allowlist, String> {
        Ok(Allowlist {
            src: CidrSet::parse(&self.src).map_err(|e| format!("{what}.allow.src: {e}"))?,
            dest: CidrSet::parse(&self.dest).map_err(|e| format!("{what}.allow.dest: {e}"))?,
            names: self.names.iter().map(|n| normalize_name(n)).collect(),
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    pub src: CidrSet,
    pub dest: CidrSet,
    pub names: Vec<String>,
}

impl Allowlist {
    pub fn src(&self, ip: IpAddr) -> bool {
        self.src.contains(ip)
    }
    pub fn dest(&self, ip: IpAddr) -> bool {
        self.dest.contains(ip)
    }
    /// `name` (normalised) equals or falls under an allowlisted name.
    pub fn name(&self, name: &str) -> bool {
        self.names.iter().any(|s| under_suffix(name, s))
    }
    /// Any of the three.
    pub fn any(&self, src: Option<IpAddr>, dst: Option<IpAddr>, name: Option<&str>) -> bool {
        src.is_some_and(|ip| self.src(ip))
            || dst.is_some_and(|ip| self.dest(ip))
            || name.is_some_and(|n| self.name(n))
    }
}

/// `name` is `suffix` or ends with `.suffix` (both normalised).
pub fn under_suffix(name: &str, suffix: &str) -> bool {
    if suffix.is_empty() {
        return false;
    }
    name == suffix
        || (name.len() > suffix.len()
            && name.ends_with(suffix)
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.')
}

/// Lower case, no trailing dot, no surrounding whitespace.
pub fn normalize_name(s: &str) -> String {
    normalized(s).into_owned()
}

/// [`normalize_name`] without the copy when the name is already normal (lower case, no
/// trailing dot): the common case on the per-event path.
pub fn normalized(s: &str) -> std::borrow::Cow<'_, str> {
    // Printable ASCII at both ends and no trailing dot (the usual name): nothing to trim.
    let plain = |b: u8| (0x21..=0x7e).contains(&b);
    let t = match s.as_bytes() {
        [first, .., last] if plain(*first) && plain(*last) && *last != b'.' => s,
        [only] if plain(*only) && *only != b'.' => s,
        _ => s.trim().trim_end_matches('.'),
    };
    if has_ascii_uppercase(t) {
        std::borrow::Cow::Owned(t.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(t)
    }
}

/// Any byte of `s` in `A..=Z`. It runs on every name of every event, several times (one per
/// analyzer): eight bytes at a time, about 10 instructions a word, where the byte fold the
/// compiler vectorised took ~80 instructions a name and `any` ~4 a byte.
pub fn has_ascii_uppercase(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(last) = b.last_chunk::<8>() else {
        // Shorter than a word.
        return b.iter().fold(false, |up, c| up | c.is_ascii_uppercase());
    };
    // The whole words, then the last eight bytes (overlapping the words already read, which
    // changes nothing for an "any" test) instead of copying the tail out.
    let (words, _) = b.as_chunks::<8>();
    let found = words
        .iter()
        .fold(0, |acc, w| acc | uppercase_bytes(u64::from_le_bytes(*w)));
    (found | uppercase_bytes(u64::from_le_bytes(*last))) != 0
}

/// The top bit of each byte of `w` that is in `A..=Z`, the other bits clear. With each
/// byte's top bit masked off, adding 0x3f (or 0x25) to every byte cannot carry into the
/// next one, and sets a byte's top bit exactly when it is at least `A` (or above `Z`).
fn uppercase_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    let x = w & !HIGH;
    let from_a = x.wrapping_add(ONES * (0x80 - b'A' as u64));
    let past_z = x.wrapping_add(ONES * (0x80 - b'Z' as u64 - 1));
    from_a & !past_z & !w & HIGH
}

/// The registrable domain (eTLD+1) of a normalised name by the Public Suffix List, if any.
pub fn registrable(name: &str) -> Option<&str> {
    psl::domain_str(name)
}

/// Shannon entropy of a string's bytes, bits per symbol.
pub fn entropy(s: &str) -> f64 {
    entropy_skipping(s, None).0
}

/// Shannon entropy of `s`'s bytes other than `skip` (bits per symbol), and how many bytes
/// that was: the entropy of `s` with every `skip` removed, without building that string.
pub fn entropy_skipping(s: &str, skip: impl Into<Option<u8>>) -> (f64, usize) {
    let skip = skip.into();
    let mut counts = [0u32; 256];
    // The distinct bytes, in order of first appearance: only their counts are summed.
    let mut seen = [0u8; 256];
    let mut distinct = 0usize;
    let mut total = 0usize;
    for &c in s.as_bytes() {
        if Some(c) != skip {
            let n = &mut counts[c as usize];
            if *n == 0 {
                seen[distinct] = c;
                distinct += 1;
            }
            *n += 1;
            total += 1;
        }
    }
    if total == 0 {
        return (0.0, 0);
    }
    // H = -sum p log2 p = log2 n - (sum c log2 c) / n: one table read per symbol seen instead
    // of a division and a log2 (this runs on every DNS query).
    let t = xlog2x_table();
    let xlog2x = |c: usize| {
        t.get(c)
            .copied()
            .unwrap_or_else(|| c as f64 * (c as f64).log2())
    };
    let sum: f64 = seen[..distinct]
        .iter()
        .map(|&c| xlog2x(counts[c as usize] as usize))
        .sum();
    let n = total as f64;
    ((n.log2() - sum / n).max(0.0), total)
}

/// `c * log2(c)` for the counts a DNS name can have (`0 log2 0` = 0).
fn xlog2x_table() -> &'static [f64; 256] {
    static TABLE: std::sync::OnceLock<[f64; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0.0; 256];
        for (c, v) in t.iter_mut().enumerate().skip(2) {
            *v = c as f64 * (c as f64).log2();
        }
        t
    })
}

/// A map with a size cap: the least recently touched entry is evicted (and counted) when
/// full. Hostile input can fill it but never grow it. Built on the crate's slab LRU
/// ([`crate::lru::Lru`]): entries live in fixed slots (no allocation per insert), keys are
/// hashed once per lookup with foldhash, randomly seeded (fast on the per-event path and
/// resistant to hash flooding).
pub struct Bounded<K: Hash + Eq, V> {
    lru: Lru<K, V>,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    pub fn new(cap: usize) -> Self {
        Bounded {
            lru: Lru::new(cap.max(1)),
        }
    }

    /// Entries evicted to make room (not counting `remove`, `retain` or `pop_front`).
    pub fn evictions(&self) -> u64 {
        self.lru.evicted()
    }

    /// The entry for `k`, created with `f` if absent (evicting the oldest if full); touches it.
    pub fn entry(&mut self, k: K, f: impl FnOnce() -> V) -> &mut V {
        let (idx, _) = self.lru.entry(k, f);
        self.lru.value_mut(idx)
    }

    /// [`Bounded::entry`] for a key given in borrowed form: `q` must hash as the key would
    /// and `is_key` must recognise it; the key is only built (`make_key`) when absent, so a
    /// hit allocates nothing.
    pub fn entry_by<Q: Hash + ?Sized>(
        &mut self,
        q: &Q,
        is_key: impl Fn(&K) -> bool,
        make_key: impl FnOnce() -> K,
        f: impl FnOnce() -> V,
    ) -> &mut V {
        let hash = self.lru.hash(q);
        let (idx, _) = self.lru.entry_by(hash, is_key, || (make_key(), f()));
        self.lru.value_mut(idx)
    }

    /// Sets `k` to `v`, touched (evicting the oldest if full). Two lookups: for tables
    /// written rarely (alerts), where the hot paths use [`Bounded::entry`].
    pub fn insert(&mut self, k: K, v: V) {
        self.remove(&k);
        self.entry(k, move || v);
    }

    /// The value of `k` (not touched).
    pub fn get(&self, k: &K) -> Option<&V> {
        let idx = self.lru.index_of(k)?;
        self.lru.get(idx).map(|(_, v)| v)
    }

    /// The value of `k`, mutable (not touched).
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let idx = self.lru.index_of(k)?;
        self.lru.get_mut(idx).map(|(_, v)| v)
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let idx = self.lru.index_of(k)?;
        self.lru.remove(idx).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lru.len() == 0
    }

    /// Least recently touched first, most recently touched last.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.lru.iter()
    }

    /// The least recently touched entry.
    pub fn front(&self) -> Option<(&K, &V)> {
        self.lru.get(self.lru.oldest()?)
    }

    /// Removes the least recently touched entry (not counted as an eviction).
    pub fn pop_front(&mut self) -> Option<(K, V)> {
        let idx = self.lru.oldest()?;
        self.lru.remove(idx)
    }
}

/// What [`Dedupe::hit`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// True when the key alerted before (emit as an update).
    pub update: bool,
    /// Occurrences of the behaviour so far (including suppressed ones).
    pub count: u64,
    pub first_ts: TsNanos,
}

struct DedupeEntry {
    first_ts: TsNanos,
    last_emit: TsNanos,
    last_seen: TsNanos,
    count: u64,
}

/// One ongoing behaviour = one alert: the first occurrence alerts, later ones are counted and
/// emitted as updates at most once per cooldown. A key quiet for `forget` starts over.
pub struct Dedupe {
    map: Bounded<String, DedupeEntry>,
    cooldown: i64,
    forget: i64,
    pub suppressed: u64,
}

impl Dedupe {
    /// `cooldown_s`: minimum packet time between two emissions for one key.
    pub fn new(cooldown_s: f64, cap: usize) -> Self {
        let cooldown = secs(cooldown_s).max(0);
        Dedupe {
            map: Bounded::new(cap),
            cooldown,
            // A behaviour silent for 4 cooldowns (at least a day) is over.
            forget: cooldown.saturating_mul(4).max(86_400 * NANOS_PER_SEC),
            suppressed: 0,
        }
    }

    /// Records an occurrence at `now`; `Some` when an alert (new or update) should be emitted.
    pub fn hit(&mut self, key: &str, now: TsNanos) -> Option<Hit> {
        let (cooldown, forget) = (self.cooldown, self.forget);
        // The key is copied only when new (a `str` hashes as its `String`).
        let e = self.map.entry_by(
            key,
            |k| k == key,
            || key.to_string(),
            || DedupeEntry {
                first_ts: now,
                last_emit: i64::MIN,
                last_seen: now,
                count: 0,
            },
        );
        if e.last_emit != i64::MIN && now.saturating_sub(e.last_seen) > forget {
            *e = DedupeEntry {
                first_ts: now,
                last_emit: i64::MIN,
                last_seen: now,
                count: 0,
            };
        }
        e.count += 1;
        e.last_seen = e.last_seen.max(now);
        if e.last_emit == i64::MIN {
            e.last_emit = now;
            return Some(Hit {
                update: false,
                count: e.count,
                first_ts: e.first_ts,
            });
        }
        if now.saturating_sub(e.last_emit) >= cooldown {
            e.last_emit = now;
            return Some(Hit {
                update: true,
                count: e.count,
                first_ts: e.first_ts,
            });
        }
        self.suppressed += 1;
        None
    }

    /// Forces the next occurrence of `key` to be emitted (as an update), e.g. on escalation.
    pub fn escalate(&mut self, key: &str) {
        if let Some(e) = self.map.get_mut(&key.to_string()) {
            if e.last_emit != i64::MIN {
                e.last_emit = i64::MIN + 1;
            }
        }
    }

    pub fn evictions(&self) -> u64 {
        self.map.evictions()
    }

    /// The table for a state file: `[[key, first_ts, last_emit, last_seen, count], ...]`,
    /// least recently touched first (packet-time ns; bounded by the table's cap).
    pub fn save(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.map
                .iter()
                .map(|(k, e)| serde_json::json!([k, e.first_ts, e.last_emit, e.last_seen, e.count]))
                .collect(),
        )
    }

    /// [`Dedupe::save`]'s rows, serialised straight from the table.
    pub fn rows(&self) -> DedupeRows<'_> {
        DedupeRows(self)
    }

    /// `{"dedupe":[...]}` (as `json!({"dedupe": self.save()})` prints) appended to `out`: the
    /// state of a detector that keeps only its dedupe table, for [`crate::Analyzer::write_state`].
    pub fn write_state(&self, out: &mut Vec<u8>) -> bool {
        #[derive(Serialize)]
        struct State<'a> {
            dedupe: DedupeRows<'a>,
        }
        serde_json::to_writer(
            out,
            &State {
                dedupe: self.rows(),
            },
        )
        .is_ok()
    }

    /// Restores what [`Dedupe::save`] wrote (merged into the current table, which keeps its
    /// cap); malformed entries are skipped. Returns the entries restored.
    pub fn load(&mut self, v: &serde_json::Value) -> usize {
        let Some(rows) = v.as_array() else { return 0 };
        let mut n = 0;
        for r in rows {
            let (Some(k), Some(first_ts), Some(last_emit), Some(last_seen), Some(count)) = (
                r.get(0).and_then(|x| x.as_str()),
                r.get(1).and_then(|x| x.as_i64()),
                r.get(2).and_then(|x| x.as_i64()),
                r.get(3).and_then(|x| x.as_i64()),
                r.get(4).and_then(|x| x.as_u64()),
            ) else {
                continue;
            };
            *self.map.entry(k.to_string(), || DedupeEntry {
                first_ts,
                last_emit,
                last_seen,
                count,
            }) = DedupeEntry {
                first_ts,
                last_emit,
                last_seen,
                count,
            };
            n += 1;
        }
        n
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The rows of [`Dedupe::save`], serialisable without building them.
pub struct DedupeRows<'a>(&'a Dedupe);

impl Serialize for DedupeRows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .map
                .iter()
                .map(|(k, e)| (k, e.first_ts, e.last_emit, e.last_seen, e.count)),
        )
    }
}

/// Seconds (config) to packet-time nanoseconds, saturating; NaN = 0.
pub fn secs(s: f64) -> i64 {
    if s.is_nan() {
        0
    } else {
        (s * 1e9).clamp(i64::MIN as f64, i64::MAX as f64) as i64
    }
}

/// An alert with the common fields filled; the detector adds addresses and evidence.
pub fn new_alert(
    ts: TsNanos,
    detector: &'static str,
    severity: Severity,
    signature: String,
    dedupe_key: String,
    hit: Hit,
) -> Alert {
    let mut evidence = serde_json::Map::new();
    evidence.insert("occurrences".into(), hit.count.into());
    evidence.insert(
        "first_seen".into(),
        serde_json::Value::from(hit.first_ts as f64 / 1e9),
    );
    Alert {
        ts,
        detector,
        severity,
        signature,
        src_ip: None,
        src_port: None,
        dest_ip: None,
        dest_port: None,
        proto: None,
        name: None,
        evidence,
        dedupe_key,
        update: hit.update,
    }
}

/// Checks shared by the config sections: positive caps, finite non-negative durations.
pub fn check_common(what: &str, cooldown_s: f64, caps: &[(&str, usize)]) -> Result<(), String> {
    if !(cooldown_s.is_finite() && cooldown_s >= 0.0) {
        return Err(format!("{what}.cooldown_s must be >= 0, got {cooldown_s}"));
    }
    for (k, v) in caps {
        if *v == 0 {
            return Err(format!("{what}.{k} must be at least 1"));
        }
    }
    Ok(())
}

/// `v` must be a finite number > 0.
pub fn check_pos(what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("{what} must be a positive number, got {v}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_matching() {
        assert!(under_suffix("a.duckdns.org", "duckdns.org"));
        assert!(under_suffix("duckdns.org", "duckdns.org"));
        assert!(!under_suffix("notduckdns.org", "duckdns.org"));
        assert!(!under_suffix("org", "duckdns.org"));
        assert!(!under_suffix("x", ""));
    }

    #[test]
    fn psl_registrable() {
        assert_eq!(registrable("a.b.example.co.uk"), Some("example.co.uk"));
        assert_eq!(registrable("x.duckdns.org"), Some("x.duckdns.org"));
        assert_eq!(registrable("duckdns.org"), None);
        assert_eq!(
            registrable("a.b.t.tunnel-c2.example"),
            Some("tunnel-c2.example")
        );
    }

    #[test]
    fn entropy_is_the_definition() {
        // -sum p log2 p over all 256 counts, as the textbook writes it.
        fn whole_table(s: &str) -> f64 {
            let mut counts = [0u32; 256];
            for &c in s.as_bytes() {
                counts[c as usize] += 1;
            }
            let n = s.len() as f64;
            counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = c as f64 / n;
                    -p * p.log2()
                })
                .sum()
        }
        for s in [
            "a",
            "zz",
            "a1b2c3d4e5f6-_x",
            "日本語",
            "\u{0}\u{ff}~",
            "qwertyuiopasdfgh",
            &format!("{}{}", "a".repeat(300), "b".repeat(20)), // counts beyond the table
        ] {
            assert!((entropy(s) - whole_table(s)).abs() < 1e-12, "{s:?}");
        }
    }

    #[test]
    fn entropy_values() {
        assert_eq!(entropy(""), 0.0);
        assert_eq!(entropy("aaaa"), 0.0);
        assert!((entropy("abcd") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn bounded_evicts_lru() {
        let mut b: Bounded<u32, u32> = Bounded::new(2);
        *b.entry(1, || 10) += 1;
        b.entry(2, || 20);
        b.entry(1, || 0); // touch 1
        b.entry(3, || 30); // evicts 2
        assert_eq!(b.len(), 2);
        assert!(b.get(&2).is_none());
        assert_eq!(b.get(&1), Some(&11));
        assert_eq!(b.evictions(), 1);
    }

    #[test]
    fn bounded_entry_by_finds_what_entry_made_and_evicts_alike() {
        let mut b: Bounded<(u8, String), u32> = Bounded::new(2);
        *b.entry((1, "a.example".into()), || 1) += 10;
        // The borrowed form finds the owned key: no second entry, no key built.
        let v = b.entry_by(
            &(1u8, "a.example"),
            |k| k.0 == 1 && k.1 == "a.example",
            || panic!("key must not be rebuilt on a hit"),
            || 0,
        );
        assert_eq!(*v, 11);
        b.entry_by(
            &(2u8, "b"),
            |k| k.0 == 2 && k.1 == "b",
            || (2, "b".into()),
            || 2,
        );
        b.entry((1, "a.example".into()), || 0); // touch a
        b.entry_by(
            &(3u8, "c"),
            |k| k.0 == 3 && k.1 == "c",
            || (3, "c".into()),
            || 3,
        );
        assert_eq!(b.len(), 2);
        assert_eq!(b.evictions(), 1);
        assert!(
            b.get(&(2, "b".into())).is_none(),
            "least recently used goes"
        );
        assert_eq!(b.get(&(3, "c".into())), Some(&3));
    }

    #[test]
    fn bounded_matches_a_vec_lru_model() {
        /// The reference: a vector, least recently touched first.
        struct Model {
            v: Vec<(String, u32)>,
            cap: usize,
            evictions: u64,
        }
        impl Model {
            fn pos(&self, k: &str) -> Option<usize> {
                self.v.iter().position(|e| e.0 == k)
            }
            fn entry(&mut self, k: &str, f: u32) -> &mut u32 {
                match self.pos(k) {
                    Some(i) => {
                        let e = self.v.remove(i);
                        self.v.push(e);
                    }
                    None => {
                        if self.v.len() >= self.cap {
                            self.v.remove(0);
                            self.evictions += 1;
                        }
                        self.v.push((k.to_string(), f));
                    }
                }
                &mut self.v.last_mut().unwrap().1
            }
        }
        // Fixed-seed LCG (Knuth's MMIX constants), top bits.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rnd = move |n: u32| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 33) as u32) % n
        };
        for cap in [1usize, 2, 7, 64] {
            let mut b: Bounded<String, u32> = Bounded::new(cap);
            let mut m = Model {
                v: Vec::new(),
                cap,
                evictions: 0,
            };
            for step in 0..5000u32 {
                let key = format!("k{}", rnd(cap as u32 * 4 + 3));
                let k = key.as_str();
                match rnd(100) {
                    0..=29 => {
                        let v = b.entry(key.clone(), || step);
                        *v = v.wrapping_add(1);
                        let w = m.entry(k, step);
                        *w = w.wrapping_add(1);
                    }
                    30..=49 => {
                        let v = b.entry_by(k, |x| x == k, || k.to_string(), || step);
                        *v = v.wrapping_mul(3);
                        let w = m.entry(k, step);
                        *w = w.wrapping_mul(3);
                    }
                    50..=59 => {
                        let want = m.pos(k).map(|i| m.v[i].1);
                        assert_eq!(b.get(&key).copied(), want);
                    }
                    60..=69 => {
                        if let Some(v) = b.get_mut(&key) {
                            *v = v.wrapping_add(7);
                        }
                        if let Some(i) = m.pos(k) {
                            m.v[i].1 = m.v[i].1.wrapping_add(7);
                        }
                    }
                    70..=79 => {
                        let want = m.pos(k).map(|i| m.v.remove(i).1);
                        assert_eq!(b.remove(&key), want);
                    }
                    80..=83 => {
                        let want = (!m.v.is_empty()).then(|| m.v.remove(0));
                        assert_eq!(b.pop_front(), want);
                    }
                    _ => {
                        assert_eq!(
                            b.front().map(|(k, v)| (k.clone(), *v)),
                            m.v.first().cloned()
                        );
                    }
                }
                let got: Vec<(String, u32)> = b.iter().map(|(k, v)| (k.clone(), *v)).collect();
                assert_eq!(got, m.v, "cap {cap}, step {step}");
                assert_eq!(b.len(), m.v.len());
                assert_eq!(b.is_empty(), m.v.is_empty());
                assert_eq!(b.evictions(), m.evictions, "cap {cap}, step {step}");
            }
            assert!(m.evictions > 0, "cap {cap}: the run must evict");
        }
    }

    #[test]
    fn normalized_is_trim_then_fold() {
        for n in [
            "",
            "a",
            ".",
            "A",
            " a",
            "a ",
            "a.",
            "a..",
            "\u{b}a\u{b}",
            "\u{a0}x.y\u{a0}",
            "\u{3000}Q.\u{3000}",
            "x.Y.z",
            "\u{1f}a\u{1f}",
            "~a~",
            "日本.語",
            "!.#",
        ] {
            let want = n.trim().trim_end_matches('.').to_ascii_lowercase();
            assert_eq!(normalized(n), want, "{n:?}");
        }
    }

    #[test]
    fn has_ascii_uppercase_matches_the_byte_test() {
        // Every byte value at every place of strings of 0 to 17 bytes (two words and a tail).
        for len in 0..=17usize {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v[at] = b;
                    // Not UTF-8 on its own: the test is on bytes, so build the str lossily
                    // only where needed and compare on the same bytes.
                    let s = String::from_utf8_lossy(&v).into_owned();
                    let want = s.bytes().any(|c| c.is_ascii_uppercase());
                    assert_eq!(has_ascii_uppercase(&s), want, "{s:?}");
                }
            }
            let s: String = "aZ\u{e9}@[`{".chars().cycle().take(len).collect();
            let want = s.bytes().any(|c| c.is_ascii_uppercase());
            assert_eq!(has_ascii_uppercase(&s), want, "{s:?}");
        }
    }

    #[test]
    fn normalized_borrows_normal_names_and_folds_others() {
        assert!(matches!(
            normalized("www.example.com"),
            std::borrow::Cow::Borrowed("www.example.com")
        ));
        assert_eq!(normalized(" WWW.Example.COM. "), "www.example.com");
        assert_eq!(normalize_name("A.b."), "a.b");
    }

    #[test]
    fn entropy_skipping_equals_entropy_of_the_string_without_it() {
        for s in ["a1b2.c3d4.e5f6", "aaaa.aaaa", "x.y.z", "...", "", "日本.語"] {
            let flat: String = s.chars().filter(|c| *c != '.').collect();
            let (h, n) = entropy_skipping(s, b'.');
            assert_eq!(n, flat.len(), "{s}");
            assert!((h - entropy(&flat)).abs() < 1e-12, "{s}");
        }
    }

    #[test]
    fn dedupe_updates_not_repeats() {
        let s = NANOS_PER_SEC;
        let mut d = Dedupe::new(60.0, 10);
        let h = d.hit("k", 0).unwrap();
        assert!(!h.update);
        assert!(d.hit("k", 10 * s).is_none());
        let h = d.hit("k", 61 * s).unwrap();
        assert!(h.update);
        assert_eq!(h.count, 3);
        assert_eq!(d.suppressed, 1);
        // Quiet for more than a day: a new alert.
        let h = d.hit("k", 200_000 * s).unwrap();
        assert!(!h.update);
        assert_eq!(h.count, 1);
    }

    #[test]
    fn dedupe_state_round_trip() {
        let s = NANOS_PER_SEC;
        let mut d = Dedupe::new(60.0, 2);
        d.hit("a", 0).unwrap();
        d.hit("b", s).unwrap();
        let saved = d.save();
        let text = serde_json::to_string(&saved).unwrap();
        let mut r = Dedupe::new(60.0, 2);
        assert_eq!(r.load(&serde_json::from_str(&text).unwrap()), 2);
        // Inside the cooldown: suppressed, as without the restart; after it: an update.
        assert!(r.hit("a", 30 * s).is_none());
        let h = r.hit("b", 70 * s).unwrap();
        assert!(h.update);
        assert_eq!(h.count, 2);
        assert_eq!(h.first_ts, s);
        // Bounded: a third key evicts the least recently touched; junk is skipped.
        assert_eq!(
            r.load(&serde_json::json!([["c", 0, 0, 0, 1], [1, 2], "x"])),
            1
        );
        assert_eq!(r.len(), 2);
        assert_eq!(Dedupe::new(1.0, 4).load(&serde_json::json!({"x": 1})), 0);
    }

    #[test]
    fn dedupe_write_state_is_the_saved_json() {
        let mut d = Dedupe::new(60.0, 4);
        let mut out = Vec::new();
        assert!(d.write_state(&mut out));
        assert_eq!(out, br#"{"dedupe":[]}"#);
        d.hit("a|\"q\"", -5).unwrap();
        d.hit("b", i64::MAX).unwrap();
        d.hit("a|\"q\"", 7);
        out.clear();
        assert!(d.write_state(&mut out));
        let want = serde_json::to_vec(&serde_json::json!({ "dedupe": d.save() })).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    #[test]
    fn host_labels() {
        let mut v = Vlans::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(HostKey::new(v, ip).label(), "10.0.0.1");
        v.push(10);
        assert_eq!(HostKey::new(v, ip).label(), "10.0.0.1@vlan10");
        v.push(20);
        assert_eq!(HostKey::new(v, ip).label(), "10.0.0.1@vlan10.20");
    }
}
