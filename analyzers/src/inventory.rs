//! `inventory`: passive asset inventory (J-CRAT: know the whole system).
//!
//! Internal hosts seen (first/last seen), server roles inferred from *answered* inbound service
//! traffic (a TCP handshake completed, or a UDP reply), the number of distinct clients per
//! role, and the internet egress points (internal hosts talking to the most external
//! destinations). After the learning period (`learning_s` of packet time since the first
//! event), a host taking a new server role raises a `new_server` alert.
//!
//! With [`Inventory::with_events`] (config `output.inventory`), every change an operator cares
//! about becomes an [`InventoryChange`] record (EVE `event_type:"inventory"`): a new internal
//! host, a host taking a new server role (during learning too: only the alert waits for the
//! learning period). Hosts never age out by time; they leave only by LRU eviction when the
//! table is full, so there is no expiry event. A host that enters a full table (evicting
//! another) is never reported, nor are its roles: the change records of a run are bounded by
//! `max_hosts` × (1 + roles), however many addresses a flood brings; those left out are
//! counted (`inventory_events_suppressed` in the snapshot).
//!
//! Exposed through [`Inventory::snapshot`] (JSON, for `kizuki report` and diffing) and
//! [`Inventory::role_counts`] (for the `kizuki_inventory_hosts{role}` gauge). Every map is
//! capped: hosts (LRU), ports per role, clients per role (count saturates), destinations.

use crate::detectors::{
    add_vlan, check_common, direct_ip::established, new_alert, secs, AllowConfig, Allowlist,
    Bounded, Dedupe, HostKey,
};
use crate::net::Network;
use crate::{ipproto, Alert, Analyzer, CloseReason, Event, Flow, Record, Severity, TsNanos};
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

/// Server role of a (protocol, port) answered by an internal host.
pub fn role_of(proto: u8, port: u16) -> Option<&'static str> {
    let tcp = proto == ipproto::TCP;
    let udp = proto == ipproto::UDP;
    Some(match port {
        53 | 853 if tcp || udp => "dns",
        25 | 465 | 587 | 110 | 143 | 993 | 995 if tcp => "mail",
        80 | 443 | 8443 | 8000 if tcp => "web",
        443 if udp => "web",
        445 | 139 | 2049 if tcp => "file",
        2049 if udp => "file",
        88 | 389 | 636 | 3268 | 3269 if tcp || udp => "auth",
        1812 | 1813 if udp => "auth",
        3128 | 8080 if tcp => "proxy",
        67 if udp => "dhcp",
        123 if udp => "ntp",
        22 if tcp => "ssh",
        3389 if tcp || udp => "rdp",
        1433 | 1521 | 3306 | 5432 | 6379 | 27017 if tcp => "database",
        631 | 9100 if tcp => "print",
        _ => return None,
    })
}

/// Every role name, for gauges with a stable label set.
pub const ROLES: &[&str] = &[
    "dns", "mail", "web", "file", "auth", "proxy", "dhcp", "ntp", "ssh", "rdp", "database", "print",
];

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    pub enabled: bool,
    /// Packet time after the first event before new server roles alert (`new_server`).
    pub learning_s: f64,
    /// Raise `new_server` alerts at all.
    pub new_server_alerts: bool,
    /// Internal hosts tracked at most (LRU beyond, evictions counted).
    pub max_hosts: usize,
    /// Distinct clients remembered per role (the count saturates here).
    pub max_clients_per_role: usize,
    /// Hosts written to the snapshot at most.
    pub snapshot_max_hosts: usize,
    /// A new role is judged this long (packet time, after the next tick) after it is seen,
    /// so older records of the same server arriving late from other workers still count as
    /// "known before". Everything pending is judged at the end of a replay.
    pub decision_delay_s: f64,
    pub cooldown_s: f64,
    pub allow: AllowConfig,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            enabled: true,
            learning_s: 86_400.0,
            new_server_alerts: true,
            max_hosts: 100_000,
            max_clients_per_role: 1_000,
            snapshot_max_hosts: 10_000,
            decision_delay_s: 10.0,
            cooldown_s: 86_400.0,
            allow: AllowConfig::default(),
        }
    }
}

impl InventoryConfig {
    pub fn validate(&self) -> Result<(), String> {
        let w = "detectors.inventory";
        check_common(
            w,
            self.cooldown_s,
            &[
                ("max_hosts", self.max_hosts),
                ("max_clients_per_role", self.max_clients_per_role),
            ],
        )?;
        if !(self.decision_delay_s.is_finite() && self.decision_delay_s >= 0.0) {
            return Err(format!("{w}.decision_delay_s must be >= 0"));
        }
        if !(self.learning_s.is_finite() && self.learning_s >= 0.0) {
            return Err(format!(
                "{w}.learning_s must be >= 0, got {}",
                self.learning_s
            ));
        }
        self.allow.compile(w).map(|_| ())
    }
}

/// Addresses (clients of a role, external destinations), on seeded foldhash: one lookup a
/// flow, cheaper than SipHash and as resistant to flooding by chosen addresses.
type IpSet = HashSet<IpAddr, foldhash::fast::RandomState>;

struct RoleEntry {
    ports: BTreeSet<u16>,
    clients: IpSet,
    first_seen: TsNanos,
    last_seen: TsNanos,
    flows: u64,
}

struct HostEntry {
    first_seen: TsNanos,
    last_seen: TsNanos,
    roles: BTreeMap<&'static str, RoleEntry>,
    ext_flows: u64,
    ext_dests: IpSet,
    /// Entered a full table (by evicting another host): its changes are not reported, so a
    /// flood of addresses cannot turn into a flood of records.
    quiet: bool,
}

/// What changed in the inventory (`inventory.change` in EVE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// An internal host seen for the first time (as a client, or answering).
    NewHost,
    /// A host answered service traffic of a role it did not have.
    NewRole,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::NewHost => "new_host",
            Change::NewRole => "new_role",
        }
    }
}

/// The flow that showed the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// How the host took part: `"client"` (it opened the flow) or `"server"` (it answered).
    pub seen_as: &'static str,
    /// The other end of the flow.
    pub peer: IpAddr,
    /// The service port (the server's side of the flow).
    pub port: u16,
    pub proto: u8,
    pub flow_id: u64,
}

/// One inventory change, written as an EVE `inventory` record.
#[derive(Clone, Debug, PartialEq)]
pub struct InventoryChange {
    /// Packet time the new host or role was first seen.
    pub ts: TsNanos,
    pub change: Change,
    pub host: HostKey,
    /// The role gained (`NewRole`).
    pub role: Option<&'static str>,
    /// The host's roles after the change (sorted).
    pub roles: Vec<&'static str>,
    pub first_seen: TsNanos,
    pub last_seen: TsNanos,
    /// Distinct clients of the role (`NewRole`), of all roles (`NewHost`); saturates at
    /// `max_clients_per_role` per role.
    pub clients: u64,
    /// Still in the learning period (a `NewRole` then raises no `new_server` alert).
    pub learning: bool,
    pub evidence: Evidence,
}

/// Records buffered between two drains, at most (a sink that never drains loses the rest,
/// counted as suppressed).
const MAX_BUFFERED_RECORDS: usize = 100_000;

/// When and how a change was seen.
#[derive(Clone, Copy)]
struct Seen {
    ts: TsNanos,
    learning: bool,
    ev: Evidence,
}

/// The inventory change records waiting for the sink, and their counts.
#[derive(Default)]
struct ChangeLog {
    on: bool,
    buf: Vec<Record>,
    written: u64,
    suppressed: u64,
}

impl ChangeLog {
    fn note(
        &mut self,
        change: Change,
        key: HostKey,
        h: &HostEntry,
        role: Option<&'static str>,
        seen: Seen,
    ) {
        if !self.on {
            return;
        }
        if h.quiet || self.buf.len() >= MAX_BUFFERED_RECORDS {
            self.suppressed += 1;
            return;
        }
        let clients = match role.and_then(|r| h.roles.get(r)) {
            Some(r) => r.clients.len() as u64,
            None => h.roles.values().map(|r| r.clients.len() as u64).sum(),
        };
        self.written += 1;
        self.buf.push(Record::Inventory(InventoryChange {
            ts: seen.ts,
            change,
            host: key,
            role,
            roles: h.roles.keys().copied().collect(),
            first_seen: h.first_seen,
            last_seen: h.last_seen,
            clients,
            learning: seen.learning,
            evidence: seen.ev,
        }));
    }
}

const MAX_PORTS_PER_ROLE: usize = 16;
const MAX_EXT_DESTS: usize = 1_024;
/// State file: the external destinations of only this many egress hosts (most destinations
/// first) are saved; the others keep their flow count.
const SAVED_EGRESS_HOSTS: usize = 100;

fn ip_of(v: &serde_json::Value) -> Option<IpAddr> {
    v.as_str()?.parse().ok()
}

fn vlans_of(v: &serde_json::Value) -> crate::Vlans {
    let mut vl = crate::Vlans::default();
    for id in v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_u64())
    {
        vl.push(u16::try_from(id).unwrap_or(0));
    }
    vl
}

pub struct Inventory {
    cfg: InventoryConfig,
    net: Network,
    allow: Allowlist,
    hosts: Bounded<HostKey, HostEntry>,
    dedupe: Dedupe,
    start: Option<TsNanos>,
    learning: i64,
    now: TsNanos,
    delay: i64,
    pending: std::collections::VecDeque<(TsNanos, PendingRole)>,
    pub alerts: u64,
    log: ChangeLog,
}

/// The state file's inventory, written straight from the tables by
/// [`Analyzer::write_state`]: the text `serde_json` prints for [`Analyzer::save_state`]'s
/// `Value` (objects' keys in sorted order), without building it. The serde derive it
/// replaces cost about 3.3k instructions a host on the bench capture, this about 1.2k.
mod state_text {
    use super::{sorted_ips, HostEntry, HostKey, IpSet, RoleEntry};
    use crate::TsNanos;
    use std::collections::BTreeMap;

    pub fn int(out: &mut Vec<u8>, v: impl itoa::Integer) {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    /// `start`: a timestamp or `null`.
    pub fn opt_ts(out: &mut Vec<u8>, v: Option<TsNanos>) {
        match v {
            Some(t) => int(out, t),
            None => out.extend_from_slice(b"null"),
        }
    }

    /// Addresses as an array of strings, in address order (none: `[]`).
    fn ips(out: &mut Vec<u8>, set: Option<&IpSet>) {
        out.push(b'[');
        for (i, a) in set
            .map(sorted_ips)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            crate::net::push_ip_bytes(out, a);
            out.push(b'"');
        }
        out.push(b']');
    }

    /// `[a,b]` of integers.
    fn ints<T: itoa::Integer>(out: &mut Vec<u8>, v: impl Iterator<Item = T>) {
        out.push(b'[');
        for (i, x) in v.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            int(out, x);
        }
        out.push(b']');
    }

    /// One host: `ext_dests` only when `keep` (else `[]`).
    pub fn host(out: &mut Vec<u8>, k: &HostKey, h: &HostEntry, keep: bool) {
        out.extend_from_slice(b"{\"ext_dests\":");
        ips(out, keep.then_some(&h.ext_dests));
        out.extend_from_slice(b",\"ext_flows\":");
        int(out, h.ext_flows);
        out.extend_from_slice(b",\"first_seen\":");
        int(out, h.first_seen);
        out.extend_from_slice(b",\"ip\":\"");
        crate::net::push_ip_bytes(out, k.ip);
        out.extend_from_slice(b"\",\"last_seen\":");
        int(out, h.last_seen);
        out.extend_from_slice(b",\"roles\":");
        roles(out, &h.roles);
        out.extend_from_slice(b",\"vlan\":");
        ints(out, k.vlan.ids());
        out.push(b'}');
    }

    fn roles(out: &mut Vec<u8>, roles: &BTreeMap<&'static str, RoleEntry>) {
        out.push(b'{');
        for (i, (r, e)) in roles.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Role names are the crate's own lower-case literals (`ROLES`): nothing to escape.
            out.push(b'"');
            out.extend_from_slice(r.as_bytes());
            out.extend_from_slice(b"\":{\"clients\":");
            ips(out, Some(&e.clients));
            out.extend_from_slice(b",\"first_seen\":");
            int(out, e.first_seen);
            out.extend_from_slice(b",\"flows\":");
            int(out, e.flows);
            out.extend_from_slice(b",\"last_seen\":");
            int(out, e.last_seen);
            out.extend_from_slice(b",\"ports\":");
            ints(out, e.ports.iter().copied());
            out.push(b'}');
        }
        out.push(b'}');
    }
}

/// A set's addresses in order: the set iterates in its random-seeded hash order, which
/// would make two runs over the same capture write different files.
fn sorted_ips(set: &IpSet) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = set.iter().copied().collect();
    v.sort_unstable();
    v
}

/// A role seen for the first time after learning, waiting for judgement.
struct PendingRole {
    key: HostKey,
    role: &'static str,
    client: IpAddr,
    port: u16,
    proto: u8,
    flow_id: u64,
    ts: TsNanos,
}

const MAX_PENDING_ROLES: usize = 10_000;

impl Inventory {
    pub fn new(cfg: InventoryConfig, net: Network) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Inventory {
            allow: cfg.allow.compile("detectors.inventory")?,
            net,
            hosts: Bounded::new(cfg.max_hosts),
            dedupe: Dedupe::new(cfg.cooldown_s, cfg.max_hosts),
            start: None,
            learning: secs(cfg.learning_s),
            now: i64::MIN,
            delay: secs(cfg.decision_delay_s),
            pending: std::collections::VecDeque::new(),
            alerts: 0,
            log: ChangeLog::default(),
            cfg,
        })
    }

    /// Produce an [`InventoryChange`] record for every change (off by default).
    pub fn with_events(mut self, on: bool) -> Self {
        self.log.on = on;
        self
    }

    fn learning_over(&self, t: TsNanos) -> bool {
        self.start
            .is_some_and(|s| t.saturating_sub(s) >= self.learning)
    }

    /// The entry of `key`, created if new (then `true`). A free function of the host table
    /// so that the caller can note a change in `self.log` while holding the entry.
    fn touch(
        hosts: &mut Bounded<HostKey, HostEntry>,
        max_hosts: usize,
        key: HostKey,
        t: TsNanos,
    ) -> (&mut HostEntry, bool) {
        // Full now: a new key evicts the least recently seen host to get in.
        let quiet = hosts.len() >= max_hosts.max(1);
        let mut created = false;
        let h = hosts.entry(key, || {
            created = true;
            HostEntry {
                first_seen: t,
                last_seen: t,
                roles: BTreeMap::new(),
                ext_flows: 0,
                ext_dests: IpSet::default(),
                quiet,
            }
        });
        h.first_seen = h.first_seen.min(t);
        h.last_seen = h.last_seen.max(t);
        (h, created)
    }

    /// The hosts whose external destinations the state file keeps: the
    /// [`SAVED_EGRESS_HOSTS`] with the most.
    fn saved_egress(&self) -> HashSet<&HostKey> {
        let mut egress: Vec<(usize, &HostKey)> = self
            .hosts
            .iter()
            .filter(|(_, h)| !h.ext_dests.is_empty())
            .map(|(k, h)| (h.ext_dests.len(), k))
            .collect();
        // Only which hosts, not their order: a selection, not a sort (keys are distinct, so
        // the order is total and the set the same).
        if egress.len() > SAVED_EGRESS_HOSTS {
            egress.select_nth_unstable_by(SAVED_EGRESS_HOSTS, |a, b| {
                b.0.cmp(&a.0).then(a.1.cmp(b.1))
            });
            egress.truncate(SAVED_EGRESS_HOSTS);
        }
        egress.into_iter().map(|(_, k)| k).collect()
    }

    /// Number of internal hosts per role (and `all` hosts).
    pub fn role_counts(&self) -> BTreeMap<&'static str, u64> {
        let mut m: BTreeMap<&'static str, u64> = ROLES.iter().map(|r| (*r, 0)).collect();
        m.insert("all", self.hosts.len() as u64);
        for (_, h) in self.hosts.iter() {
            for r in h.roles.keys() {
                *m.entry(r).or_default() += 1;
            }
        }
        m
    }

    fn on_flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        let t = f.last_ts;
        if self.start.is_none_or(|s| f.first_ts < s) {
            self.start = Some(f.first_ts);
        }
        let (src_in, dst_in) = (
            self.net.is_internal(f.src_ip),
            self.net.is_internal(f.dest_ip),
        );
        let max_hosts = self.cfg.max_hosts;
        let learning = !self.learning_over(f.first_ts);
        if src_in {
            let ext = self.net.is_external(f.dest_ip);
            let key = HostKey::new(f.vlan, f.src_ip);
            let (h, created) = Self::touch(&mut self.hosts, max_hosts, key, f.first_ts.min(t));
            h.last_seen = h.last_seen.max(t);
            if ext && f.reason != CloseReason::Update {
                h.ext_flows += 1;
                if h.ext_dests.len() < MAX_EXT_DESTS {
                    h.ext_dests.insert(f.dest_ip);
                }
            }
            if created {
                let ev = Evidence {
                    seen_as: "client",
                    peer: f.dest_ip,
                    port: f.dest_port,
                    proto: f.proto,
                    flow_id: f.flow_id,
                };
                let seen = Seen {
                    ts: f.first_ts,
                    learning,
                    ev,
                };
                self.log.note(Change::NewHost, key, h, None, seen);
            }
        }
        // A DHCP server answers from :67 to :68 (often to broadcast): the flow's originator.
        let (server, server_port, client) =
            if f.proto == ipproto::UDP && f.src_port == 67 && f.dest_port == 68 {
                (f.src_ip, 67, f.dest_ip)
            } else {
                (f.dest_ip, f.dest_port, f.src_ip)
            };
        let server_in = if server == f.src_ip { src_in } else { dst_in };
        let answered = if server == f.src_ip {
            true
        } else {
            established(f)
        };
        if !server_in || !answered {
            return;
        }
        let ev = Evidence {
            seen_as: "server",
            peer: client,
            port: server_port,
            proto: f.proto,
            flow_id: f.flow_id,
        };
        let seen = Seen {
            ts: f.first_ts,
            learning,
            ev,
        };
        let Some(role) = role_of(f.proto, server_port) else {
            // Still a host that answered: it exists.
            if dst_in && established(f) {
                let key = HostKey::new(f.vlan, f.dest_ip);
                let (h, created) = Self::touch(&mut self.hosts, max_hosts, key, f.first_ts);
                if created {
                    self.log.note(Change::NewHost, key, h, None, seen);
                }
            }
            return;
        };
        let key = HostKey::new(f.vlan, server);
        let learned = !learning;
        let cap = self.cfg.max_clients_per_role;
        let (h, created) = Self::touch(&mut self.hosts, max_hosts, key, f.first_ts);
        h.last_seen = h.last_seen.max(t);
        if created {
            self.log.note(Change::NewHost, key, h, None, seen);
        }
        let new_role = !h.roles.contains_key(role);
        let r = h.roles.entry(role).or_insert_with(|| RoleEntry {
            ports: BTreeSet::new(),
            clients: IpSet::default(),
            first_seen: f.first_ts,
            last_seen: t,
            flows: 0,
        });
        r.last_seen = r.last_seen.max(t);
        r.flows += 1;
        if r.ports.len() < MAX_PORTS_PER_ROLE {
            r.ports.insert(server_port);
        }
        if r.clients.len() < cap {
            r.clients.insert(client);
        }
        r.first_seen = r.first_seen.min(f.first_ts);
        if new_role {
            // Reported as seen, learning or not: the inventory is complete from the start,
            // only the alert waits for the learning period.
            self.log.note(Change::NewRole, key, h, Some(role), seen);
        }
        if !(new_role && learned && self.cfg.new_server_alerts)
            || self.allow.any(Some(client), Some(server), None)
        {
            return;
        }
        let p = PendingRole {
            key,
            role,
            client,
            port: server_port,
            proto: f.proto,
            flow_id: f.flow_id,
            ts: t,
        };
        if self.delay == 0 {
            return self.judge(p, out);
        }
        if self.pending.len() >= MAX_PENDING_ROLES {
            if let Some((_, old)) = self.pending.pop_front() {
                self.judge(old, out);
            }
        }
        let due = self.now.max(t).saturating_add(self.delay);
        self.pending.push_back((due, p));
    }

    /// Alerts when the role is still new once late records had their chance.
    fn judge(&mut self, p: PendingRole, out: &mut Vec<Alert>) {
        let Some(start) = self.start else { return };
        let Some(h) = self.hosts.get(&p.key) else {
            return;
        };
        let Some(r) = h.roles.get(p.role) else {
            return;
        };
        if r.first_seen.saturating_sub(start) < self.learning {
            return;
        }
        let roles: Vec<&str> = h.roles.keys().copied().collect();
        let first_seen = h.first_seen;
        let (role, server, server_port, client, t) = (p.role, p.key.ip, p.port, p.client, p.ts);
        let dkey = format!("new_server|{}|{role}", p.key.label());
        let Some(hit) = self.dedupe.hit(&dkey, t) else {
            return;
        };
        let sev = match role {
            "dns" | "dhcp" | "proxy" | "auth" => Severity::High,
            _ => Severity::Medium,
        };
        let mut a = new_alert(
            t,
            "new_server",
            sev,
            format!("KIZUKI new {role} server {server} (port {server_port}) after learning"),
            dkey,
            hit,
        );
        a.src_ip = Some(client);
        a.dest_ip = Some(server);
        a.dest_port = Some(server_port);
        a.proto = Some(p.proto);
        let ev = &mut a.evidence;
        ev.insert("role".into(), role.into());
        ev.insert("roles".into(), json!(roles));
        ev.insert("host_first_seen".into(), json!(first_seen as f64 / 1e9));
        ev.insert("flow_id".into(), p.flow_id.into());
        add_vlan(&mut a, p.key.vlan);
        self.alerts += 1;
        out.push(a);
    }
}

impl Analyzer for Inventory {
    fn gauges(&self, out: &mut Vec<crate::GaugeReading>) {
        for (role, n) in self.role_counts() {
            out.push(crate::GaugeReading {
                metric: "kizuki_inventory_hosts",
                labels: vec![role.to_string()],
                value: n as f64,
            });
        }
    }

    fn name(&self) -> &'static str {
        "inventory"
    }

    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        if let Event::Flow(f) = ev {
            self.on_flow(f, out);
        }
    }

    fn drain_records(&mut self, out: &mut Vec<Record>) {
        // Into an empty buffer the two trade places: no copy, and each keeps its capacity.
        if out.is_empty() {
            std::mem::swap(out, &mut self.log.buf);
        } else {
            out.append(&mut self.log.buf);
        }
    }

    fn on_tick(&mut self, now: TsNanos, out: &mut Vec<Alert>) {
        // The same time twice is the end of the input (the sink's final tick): judge all.
        let flush_all = now <= self.now;
        self.now = self.now.max(now);
        while let Some((due, _)) = self.pending.front() {
            if !flush_all && *due > now {
                break;
            }
            if let Some((_, p)) = self.pending.pop_front() {
                self.judge(p, out);
            }
        }
        // Ticks come straight from the capture thread, ahead of the workers' records: the
        // first one marks the start of the learning period.
        if self.start.is_none_or(|s| now < s) {
            self.start = Some(now);
        }
    }

    /// Hosts (least recently seen first), roles with ports and clients, first/last seen, the
    /// learning start and the `new_server` dedupe table. Bounded by `max_hosts`,
    /// `max_clients_per_role` and [`SAVED_EGRESS_HOSTS`].
    fn save_state(&self) -> serde_json::Value {
        let keep = self.saved_egress();
        let hosts: Vec<serde_json::Value> = self
            .hosts
            .iter()
            .map(|(k, h)| {
                let roles: serde_json::Map<String, serde_json::Value> = h
                    .roles
                    .iter()
                    .map(|(r, e)| {
                        let clients: Vec<String> = sorted_ips(&e.clients)
                            .iter()
                            .map(|c| c.to_string())
                            .collect();
                        (
                            r.to_string(),
                            json!({
                                "ports": e.ports,
                                "clients": clients,
                                "first_seen": e.first_seen,
                                "last_seen": e.last_seen,
                                "flows": e.flows,
                            }),
                        )
                    })
                    .collect();
                let dests: Vec<String> = if keep.contains(k) {
                    sorted_ips(&h.ext_dests)
                        .iter()
                        .map(|d| d.to_string())
                        .collect()
                } else {
                    Vec::new()
                };
                json!({
                    "ip": k.ip.to_string(),
                    "vlan": k.vlan.ids().collect::<Vec<u16>>(),
                    "first_seen": h.first_seen,
                    "last_seen": h.last_seen,
                    "roles": roles,
                    "ext_flows": h.ext_flows,
                    "ext_dests": dests,
                })
            })
            .collect();
        json!({
            "start": self.start,
            "alerts": self.alerts,
            "hosts": hosts,
            "dedupe": self.dedupe.save(),
        })
    }

    /// What [`Analyzer::save_state`] gives, serialised straight from the host table (the
    /// state file's largest part: no `Value` tree, no address strings).
    fn write_state(&self, out: &mut Vec<u8>) -> bool {
        let keep = self.saved_egress();
        out.extend_from_slice(b"{\"alerts\":");
        state_text::int(out, self.alerts);
        out.extend_from_slice(b",\"dedupe\":");
        if serde_json::to_writer(&mut *out, &self.dedupe.rows()).is_err() {
            return false;
        }
        out.extend_from_slice(b",\"hosts\":[");
        for (i, (k, h)) in self.hosts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Only hosts with destinations can be kept: most skip the set lookup.
            let kept = !h.ext_dests.is_empty() && keep.contains(k);
            state_text::host(out, k, h, kept);
        }
        out.extend_from_slice(b"],\"start\":");
        state_text::opt_ts(out, self.start);
        out.push(b'}');
        true
    }

    fn load_state(&mut self, state: &serde_json::Value) {
        if let Some(s) = state["start"].as_i64() {
            self.start = Some(self.start.map_or(s, |t| t.min(s)));
        }
        self.alerts += state["alerts"].as_u64().unwrap_or(0);
        self.dedupe.load(&state["dedupe"]);
        let cap = self.cfg.max_clients_per_role;
        for h in state["hosts"].as_array().into_iter().flatten() {
            let (Some(ip), Some(first), Some(last)) = (
                ip_of(&h["ip"]),
                h["first_seen"].as_i64(),
                h["last_seen"].as_i64(),
            ) else {
                continue;
            };
            let key = HostKey::new(vlans_of(&h["vlan"]), ip);
            let (e, _) = Self::touch(&mut self.hosts, self.cfg.max_hosts, key, first);
            e.last_seen = e.last_seen.max(last);
            e.ext_flows += h["ext_flows"].as_u64().unwrap_or(0);
            for d in h["ext_dests"].as_array().into_iter().flatten() {
                if e.ext_dests.len() >= MAX_EXT_DESTS {
                    break;
                }
                if let Some(d) = ip_of(d) {
                    e.ext_dests.insert(d);
                }
            }
            for (name, r) in h["roles"].as_object().into_iter().flatten() {
                let Some(role) = ROLES.iter().find(|x| **x == name.as_str()) else {
                    continue;
                };
                let (Some(rf), Some(rl)) = (r["first_seen"].as_i64(), r["last_seen"].as_i64())
                else {
                    continue;
                };
                let re = e.roles.entry(role).or_insert_with(|| RoleEntry {
                    ports: BTreeSet::new(),
                    clients: IpSet::default(),
                    first_seen: rf,
                    last_seen: rl,
                    flows: 0,
                });
                re.first_seen = re.first_seen.min(rf);
                re.last_seen = re.last_seen.max(rl);
                re.flows += r["flows"].as_u64().unwrap_or(0);
                for p in r["ports"].as_array().into_iter().flatten() {
                    if let Some(p) = p.as_u64().and_then(|p| u16::try_from(p).ok()) {
                        if re.ports.len() < MAX_PORTS_PER_ROLE {
                            re.ports.insert(p);
                        }
                    }
                }
                for c in r["clients"].as_array().into_iter().flatten() {
                    if re.clients.len() >= cap {
                        break;
                    }
                    if let Some(c) = ip_of(c) {
                        re.clients.insert(c);
                    }
                }
            }
        }
    }

    fn snapshot(&self) -> serde_json::Value {
        let ts = |t: TsNanos| json!(t as f64 / 1e9);
        let mut keys: Vec<&HostKey> = self.hosts.iter().map(|(k, _)| k).collect();
        keys.sort();
        let hosts: Vec<serde_json::Value> = keys
            .iter()
            .take(self.cfg.snapshot_max_hosts)
            .filter_map(|k| {
                let h = self.hosts.get(k)?;
                let roles: serde_json::Map<String, serde_json::Value> = h
                    .roles
                    .iter()
                    .map(|(r, e)| {
                        (
                            r.to_string(),
                            json!({
                                "ports": e.ports,
                                "clients": e.clients.len(),
                                "clients_capped": e.clients.len() >= self.cfg.max_clients_per_role,
                                "flows": e.flows,
                                "first_seen": ts(e.first_seen),
                                "last_seen": ts(e.last_seen),
                            }),
                        )
                    })
                    .collect();
                let mut v = json!({
                    "ip": k.ip,
                    "first_seen": ts(h.first_seen),
                    "last_seen": ts(h.last_seen),
                    "roles": roles,
                    "external_flows": h.ext_flows,
                    "external_destinations": h.ext_dests.len(),
                });
                if !k.vlan.is_empty() {
                    v["vlan"] = json!(k.vlan.ids().collect::<Vec<u16>>());
                }
                Some(v)
            })
            .collect();
        let mut egress: Vec<(&HostKey, &HostEntry)> =
            self.hosts.iter().filter(|(_, h)| h.ext_flows > 0).collect();
        egress.sort_by(|a, b| {
            b.1.ext_dests
                .len()
                .cmp(&a.1.ext_dests.len())
                .then(b.1.ext_flows.cmp(&a.1.ext_flows))
                .then(a.0.cmp(b.0))
        });
        let egress: Vec<serde_json::Value> = egress
            .iter()
            .take(10)
            .map(|(k, h)| {
                json!({
                    "host": k.label(),
                    "external_destinations": h.ext_dests.len(),
                    "external_flows": h.ext_flows,
                    "configured_proxy": self.net.proxies.contains(k.ip),
                })
            })
            .collect();
        json!({
            "hosts_total": self.hosts.len(),
            "host_evictions": self.hosts.evictions(),
            "role_counts": self.role_counts(),
            "learning_until": self.start.map(|s| ts(s.saturating_add(self.learning))),
            "egress_points": egress,
            "hosts": hosts,
            "hosts_truncated": self.hosts.len() > self.cfg.snapshot_max_hosts,
            "new_server_alerts": self.alerts,
            "inventory_events": self.log.written,
            "inventory_events_suppressed": self.log.suppressed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testutil::*;
    use crate::ConnState;

    fn inv(learning_s: f64) -> Inventory {
        Inventory::new(
            InventoryConfig {
                learning_s,
                decision_delay_s: 0.0,
                ..Default::default()
            },
            Network::default_model(),
        )
        .unwrap()
    }

    #[test]
    fn roles_from_answered_inbound_traffic() {
        let mut i = inv(3600.0);
        let mut out = Vec::new();
        i.on_event(&udp_flow(1, "10.0.0.5", "10.0.0.53", 53), &mut out);
        i.on_event(&tcp_flow(2, "10.0.0.5", "10.0.0.80", 443, 1), &mut out);
        i.on_event(&tcp_flow(3, "10.0.0.6", "10.0.0.80", 443, 1), &mut out);
        let mut rej = flow(4, "10.0.0.5", "10.0.0.22", 22, 1, 6);
        rej.conn_state = ConnState::REJ;
        i.on_event(&Event::Flow(rej), &mut out); // not answered: no role
        let mut dhcp = flow(5, "10.0.0.1", "255.255.255.255", 68, 0, 17);
        dhcp.src_port = 67;
        i.on_event(&Event::Flow(dhcp), &mut out);
        i.on_event(&tcp_flow(6, "10.0.0.5", "203.0.113.9", 443, 1), &mut out); // egress
        assert!(out.is_empty(), "learning period");
        let c = i.role_counts();
        assert_eq!(c["dns"], 1);
        assert_eq!(c["web"], 1);
        assert_eq!(c["ssh"], 0);
        assert_eq!(c["dhcp"], 1);
        let s = i.snapshot();
        let web = s["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["ip"] == "10.0.0.80")
            .unwrap();
        assert_eq!(web["roles"]["web"]["clients"], json!(2));
        assert_eq!(s["egress_points"][0]["host"], json!("10.0.0.5"));
    }

    #[test]
    fn new_server_after_learning_and_vlan_separation() {
        let mut i = inv(100.0);
        let mut out = Vec::new();
        i.on_event(&udp_flow(0, "10.0.0.5", "10.0.0.53", 53), &mut out);
        i.on_event(&udp_flow(200, "10.0.0.5", "10.0.0.53", 53), &mut out);
        assert!(out.is_empty(), "known role");
        // Same address on VLAN 20 starts answering DNS: another host, a new server.
        let mut f = flow(210, "10.0.0.5", "10.0.0.53", 53, 0, 17);
        f.vlan.push(20);
        i.on_event(&Event::Flow(f), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].detector, "new_server");
        assert_eq!(out[0].dest_ip, Some(ip("10.0.0.53")));
        assert_eq!(out[0].dest_port, Some(53));
        assert_eq!(out[0].evidence["vlan"], json!([20]));
        assert_eq!(out[0].severity, Severity::High);
        // IPv6 web server appears; the allowlisted one does not alert.
        i.on_event(&tcp_flow(220, "fd00::5", "fd00::80", 80, 1), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].evidence["role"], json!("web"));
        let mut i2 = Inventory::new(
            InventoryConfig {
                learning_s: 0.0,
                decision_delay_s: 0.0,
                allow: AllowConfig {
                    dest: vec!["10.9.0.0/16".into()],
                    ..Default::default()
                },
                ..Default::default()
            },
            Network::default_model(),
        )
        .unwrap();
        out.clear();
        i2.on_event(&tcp_flow(1, "10.0.0.5", "10.9.0.80", 80, 1), &mut out);
        assert!(out.is_empty());
        // External servers are not inventoried (the allowlisted one still is, silently).
        i2.on_event(&tcp_flow(1, "10.0.0.5", "203.0.113.80", 80, 1), &mut out);
        assert_eq!(i2.role_counts()["web"], 1);
    }

    #[test]
    fn late_record_of_a_known_role_does_not_alert() {
        let mut i = Inventory::new(
            InventoryConfig {
                learning_s: 60.0,
                ..Default::default()
            },
            Network::default_model(),
        )
        .unwrap();
        let mut out = Vec::new();
        i.on_tick(ts(0), &mut out);
        i.on_tick(ts(100), &mut out);
        // The t=100 record arrives before the t=0 one of the same server.
        i.on_event(&tcp_flow(100, "10.0.0.6", "10.0.0.80", 80, 1), &mut out);
        i.on_event(&tcp_flow(0, "10.0.0.5", "10.0.0.80", 80, 1), &mut out);
        i.on_event(&udp_flow(100, "10.0.0.5", "10.0.0.81", 53), &mut out);
        i.on_tick(ts(100), &mut out); // end of input
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].dest_ip, Some(ip("10.0.0.81")));
    }

    #[test]
    fn state_round_trip_keeps_roles_and_learning() {
        let mut i = inv(100.0);
        let mut out = Vec::new();
        i.on_event(&udp_flow(0, "10.0.0.5", "10.0.0.53", 53), &mut out);
        i.on_event(&tcp_flow(5, "10.0.0.5", "203.0.113.9", 443, 1), &mut out);
        let mut f = flow(200, "10.0.0.5", "10.0.0.54", 53, 0, 17);
        f.vlan.push(20);
        i.on_event(&Event::Flow(f.clone()), &mut out);
        assert_eq!(out.len(), 1, "new server after learning");
        let before = i.snapshot();
        let text = serde_json::to_string(&i.save_state()).unwrap();
        // The streamed state file text is the same JSON, byte for byte.
        let mut streamed = Vec::new();
        assert!(i.write_state(&mut streamed));
        assert_eq!(String::from_utf8(streamed).unwrap(), text);

        let mut r = inv(100.0);
        r.load_state(&serde_json::from_str(&text).unwrap());
        assert_eq!(r.snapshot(), before, "same inventory after a restart");
        out.clear();
        // Learning is not restarted, the known server does not alert again, and a new one
        // still does.
        r.on_event(&Event::Flow(f), &mut out);
        r.on_event(&udp_flow(300, "10.0.0.5", "10.0.0.53", 53), &mut out);
        assert!(out.is_empty(), "{out:?}");
        r.on_event(&tcp_flow(310, "10.0.0.5", "10.0.0.22", 22, 1), &mut out);
        assert_eq!(out.len(), 1);
        assert!(!out[0].update);
        // Junk is ignored.
        let mut j = inv(100.0);
        j.load_state(&json!({"hosts": [1, {"ip": "x"}, {"ip": "10.0.0.1"}], "start": "y"}));
        j.load_state(&json!("garbage"));
        assert_eq!(j.role_counts()["all"], 0);
    }

    fn inv_events(learning_s: f64) -> Inventory {
        inv(learning_s).with_events(true)
    }

    /// The inventory changes recorded since the last call.
    fn changes(i: &mut Inventory) -> Vec<InventoryChange> {
        let mut v = Vec::new();
        i.drain_records(&mut v);
        v.into_iter()
            .map(|r| match r {
                Record::Inventory(c) => c,
            })
            .collect()
    }

    #[test]
    fn streamed_state_is_the_saved_json() {
        let mut i = inv(0.0);
        let mut w = Vec::new();
        assert!(i.write_state(&mut w), "empty inventory");
        assert_eq!(w, serde_json::to_vec(&i.save_state()).unwrap());
        let mut out = Vec::new();
        for n in 0..5u8 {
            let c = format!("10.0.1.{n}");
            i.on_event(&udp_flow(n as i64, &c, "10.0.0.53", 53), &mut out);
            i.on_event(&tcp_flow(n as i64, &c, "10.0.0.80", 8443, 1), &mut out);
            i.on_event(
                &tcp_flow(n as i64, &c, &format!("203.0.113.{n}"), 443, 1),
                &mut out,
            );
        }
        i.on_event(&tcp_flow(9, "fd00::5", "2001:db8::80", 80, 1), &mut out);
        let mut f = flow(10, "10.0.0.5", "10.0.0.54", 53, 0, 17);
        f.vlan.push(20);
        f.vlan.push(30);
        i.on_event(&Event::Flow(f), &mut out);
        assert!(!out.is_empty(), "new_server alerts: a dedupe table to save");
        w.clear();
        assert!(i.write_state(&mut w));
        assert_eq!(
            String::from_utf8(w.clone()).unwrap(),
            serde_json::to_string(&i.save_state()).unwrap()
        );
        // More egress hosts than are saved (the selection), v6 zero runs, v4-mapped.
        for n in 0..150u32 {
            let c = if n % 3 == 0 {
                format!("fd00:0:0:1::{n:x}")
            } else {
                format!("10.2.{}.{}", n / 200, n % 200)
            };
            for d in 0..(n % 7 + 1) {
                let dst = format!("198.51.{}.{}", d, n % 250);
                i.on_event(&tcp_flow(20 + n as i64, &c, &dst, 443, 1), &mut out);
            }
        }
        i.on_event(
            &tcp_flow(30, "::ffff:10.0.0.9", "10.0.0.80", 80, 1),
            &mut out,
        );
        w.clear();
        assert!(i.write_state(&mut w));
        assert_eq!(
            String::from_utf8(w).unwrap(),
            serde_json::to_string(&i.save_state()).unwrap()
        );
    }

    #[test]
    fn new_host_is_one_event_and_a_known_host_none() {
        let mut i = inv_events(3600.0);
        let mut out = Vec::new();
        i.on_event(&tcp_flow(1, "10.0.0.5", "203.0.113.9", 443, 1), &mut out);
        let c = changes(&mut i);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].change, Change::NewHost);
        assert_eq!(c[0].host.ip, ip("10.0.0.5"));
        assert_eq!(c[0].ts, ts(1));
        assert_eq!((c[0].first_seen, c[0].last_seen), (ts(1), ts(2)));
        assert!(c[0].roles.is_empty() && c[0].role.is_none());
        assert_eq!(c[0].evidence.seen_as, "client");
        assert_eq!(c[0].evidence.peer, ip("203.0.113.9"));
        assert_eq!(c[0].evidence.port, 443);
        assert!(c[0].learning);
        // The same host again, and an external one: nothing.
        i.on_event(&tcp_flow(5, "10.0.0.5", "203.0.113.10", 80, 1), &mut out);
        i.on_event(&tcp_flow(6, "203.0.113.7", "198.51.100.1", 80, 1), &mut out);
        i.on_tick(ts(10), &mut out);
        assert!(changes(&mut i).is_empty());
        // The same address on another VLAN is another host.
        let mut f = flow(7, "10.0.0.5", "203.0.113.9", 443, 1, ipproto::TCP);
        f.vlan.push(20);
        i.on_event(&Event::Flow(f), &mut out);
        let c = changes(&mut i);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].host.vlan.ids().collect::<Vec<_>>(), vec![20]);
        assert!(out.is_empty());
        assert_eq!(i.snapshot()["inventory_events"], json!(2));
    }

    #[test]
    fn new_role_during_learning_is_an_event_but_no_alert() {
        let mut i = inv_events(3600.0);
        let mut out = Vec::new();
        i.on_event(&udp_flow(1, "10.0.0.5", "10.0.0.53", 53), &mut out);
        let c = changes(&mut i);
        let kinds: Vec<(&str, IpAddr)> = c.iter().map(|c| (c.change.as_str(), c.host.ip)).collect();
        assert_eq!(
            kinds,
            vec![
                ("new_host", ip("10.0.0.5")),
                ("new_host", ip("10.0.0.53")),
                ("new_role", ip("10.0.0.53")),
            ]
        );
        let r = &c[2];
        assert_eq!(r.role, Some("dns"));
        assert_eq!(r.roles, vec!["dns"]);
        assert_eq!(r.clients, 1);
        assert!(r.learning);
        assert_eq!(r.evidence.seen_as, "server");
        assert_eq!(r.evidence.peer, ip("10.0.0.5"));
        assert_eq!((r.evidence.port, r.evidence.proto), (53, ipproto::UDP));
        assert!(
            c[1].roles.is_empty(),
            "new_host comes before its first role"
        );
        // More clients of a known role: no event, not on ticks either.
        i.on_event(&udp_flow(2, "10.0.0.6", "10.0.0.53", 53), &mut out);
        i.on_tick(ts(3), &mut out);
        i.on_tick(ts(4), &mut out);
        let c = changes(&mut i);
        assert_eq!(c.len(), 1, "only the new client host: {c:?}");
        assert_eq!(c[0].host.ip, ip("10.0.0.6"));
        // A second role of the same server: one event with both roles.
        i.on_event(&tcp_flow(5, "10.0.0.5", "10.0.0.53", 443, 1), &mut out);
        let c = changes(&mut i);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].change, Change::NewRole);
        assert_eq!(c[0].roles, vec!["dns", "web"]);
        assert!(out.is_empty(), "learning: no new_server alert");
    }

    #[test]
    fn new_role_after_learning_is_an_event_and_an_alert() {
        let mut i = inv_events(100.0);
        let mut out = Vec::new();
        i.on_event(&udp_flow(0, "10.0.0.5", "10.0.0.53", 53), &mut out);
        changes(&mut i);
        i.on_event(&tcp_flow(200, "10.0.0.5", "10.0.0.53", 22, 1), &mut out);
        let c = changes(&mut i);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].role, Some("ssh"));
        assert!(!c[0].learning);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].detector, "new_server");
    }

    #[test]
    fn off_by_default_and_restored_hosts_are_not_new() {
        let mut i = inv(100.0);
        let mut out = Vec::new();
        i.on_event(&udp_flow(0, "10.0.0.5", "10.0.0.53", 53), &mut out);
        assert!(changes(&mut i).is_empty(), "events off");
        assert_eq!(i.snapshot()["inventory_events"], json!(0));
        let state = i.save_state();
        let mut r = inv_events(100.0);
        r.load_state(&state);
        r.on_event(&udp_flow(10, "10.0.0.5", "10.0.0.53", 53), &mut out);
        assert!(changes(&mut r).is_empty(), "known before the restart");
        r.on_event(&udp_flow(20, "10.0.0.5", "10.0.0.54", 53), &mut out);
        assert_eq!(changes(&mut r).len(), 2, "new host and its role");
    }

    #[test]
    fn a_flood_of_hosts_is_bounded_by_the_table() {
        let mut i = Inventory::new(
            InventoryConfig {
                max_hosts: 50,
                ..Default::default()
            },
            Network::default_model(),
        )
        .unwrap()
        .with_events(true);
        let mut out = Vec::new();
        // 2000 internal addresses, each answering DNS to one fixed client.
        for n in 0..2000u32 {
            let s = std::net::Ipv4Addr::from(0x0a01_0000 + n).to_string();
            i.on_event(&udp_flow(1, "10.0.0.5", &s, 53), &mut out);
        }
        let c = changes(&mut i);
        let hosts = c.iter().filter(|c| c.change == Change::NewHost).count();
        let roles = c.iter().filter(|c| c.change == Change::NewRole).count();
        // The client and 49 servers fill the table; the rest enter by eviction, unreported.
        assert_eq!((hosts, roles), (50, 49), "{}", c.len());
        let s = i.snapshot();
        assert_eq!(s["inventory_events"], json!(99));
        assert_eq!(s["inventory_events_suppressed"], json!(2 * 1951));
        assert_eq!(s["host_evictions"], json!(1951));
        // A host that came in by eviction stays quiet when it gains a role.
        let last = std::net::Ipv4Addr::from(0x0a01_0000 + 1999u32).to_string();
        i.on_event(&tcp_flow(2, "10.0.0.5", &last, 443, 1), &mut out);
        assert!(changes(&mut i).is_empty());
    }

    #[test]
    fn bounded_hosts_and_clients() {
        let mut i = Inventory::new(
            InventoryConfig {
                max_hosts: 50,
                max_clients_per_role: 10,
                ..Default::default()
            },
            Network::default_model(),
        )
        .unwrap();
        let mut out = Vec::new();
        for n in 0..2000u32 {
            let c = std::net::Ipv4Addr::from(0x0a01_0000 + n).to_string();
            i.on_event(&tcp_flow(1, &c, "10.0.0.80", 443, 1), &mut out);
        }
        assert_eq!(i.hosts.len(), 50);
        let s = i.snapshot();
        assert_eq!(s["hosts_total"], json!(50));
        let web = i
            .hosts
            .get(&HostKey::new(Default::default(), ip("10.0.0.80")))
            .unwrap();
        assert_eq!(web.roles["web"].clients.len(), 10);
    }
}
