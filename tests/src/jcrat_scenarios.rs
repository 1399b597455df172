//! Scenario pcaps for the J-CRAT detectors: for every detector id a positive capture (which
//! must raise exactly the listed alerts of that detector) and a negative one (look-alike
//! traffic that must raise none). All replayed with `pcaps/jcrat.toml`.
//!
//! Files: `pcaps/jcrat-<detector>-{pos,neg}.pcap` and `.alerts.json` (the expectation, see
//! [`AlertExpect`]); regenerate with `kizuki-gen jcrat --out pcaps/`. Deterministic.

use crate::appproto::{self, ClientHello};
use crate::dnsmsg::{rcode, rtype, DnsMsg, RData, Rr};
use crate::scenario::{Path, Scenario};
use crate::tcpconn::TcpConn;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The sensor configuration every J-CRAT scenario is replayed with (short buckets and learning
/// so the captures stay small).
pub const CONFIG: &str = r#"# Replay configuration of the jcrat-* scenario pcaps (written by `kizuki-gen jcrat`).
[network]
internal = ["10.0.0.0/8", "fd00::/8"]
proxies = ["10.1.0.3"]
resolvers = ["10.1.0.53"]
mail_servers = ["10.1.0.25"]

[detectors.volume]
bucket_s = 60.0
settle_s = 3600.0
min_buckets = 5
min_bucket_bytes = 50000
large_upload_bytes = 250000

[detectors.mail_bruteforce]
min_connections = 20
window_s = 300.0

[detectors.inventory]
learning_s = 60.0
"#;

/// One expected alert: every present field must match the EVE alert.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpAlert {
    pub src_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// `kizuki.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `kizuki.kind` (volume: `spike` / `large_upload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `<name>.alerts.json`: the alerts (non-update) of `detector` the replay must produce —
/// exactly these, in any order; an empty list means the detector must stay silent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertExpect {
    pub name: String,
    pub pcap: String,
    pub config: String,
    pub description: String,
    pub detector: String,
    pub alerts: Vec<ExpAlert>,
}

impl AlertExpect {
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let t = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&t).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Differences between the expectation and the EVE events of a replay (empty = pass).
    pub fn compare(&self, events: &[serde_json::Value]) -> Vec<String> {
        let got: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| {
                e["event_type"] == "alert"
                    && e["kizuki"]["detector"] == self.detector.as_str()
                    && e["kizuki"]["update"] != true
            })
            .collect();
        let mut used = vec![false; got.len()];
        let mut errs = Vec::new();
        for want in &self.alerts {
            let hit = got.iter().enumerate().position(|(i, e)| {
                !used[i]
                    && e["src_ip"] == want.src_ip.as_str()
                    && want
                        .dest_ip
                        .as_ref()
                        .is_none_or(|d| e["dest_ip"] == d.as_str())
                    && want.dest_port.is_none_or(|p| e["dest_port"] == p)
                    && want
                        .name
                        .as_ref()
                        .is_none_or(|n| e["kizuki"]["name"] == n.as_str())
                    && want
                        .kind
                        .as_ref()
                        .is_none_or(|k| e["kizuki"]["kind"] == k.as_str())
            });
            match hit {
                Some(i) => used[i] = true,
                None => errs.push(format!(
                    "[{}] missing {} alert {want:?}",
                    self.name, self.detector
                )),
            }
        }
        for (i, e) in got.iter().enumerate() {
            if !used[i] {
                errs.push(format!(
                    "[{}] unexpected {} alert {e}",
                    self.name, self.detector
                ));
            }
        }
        errs
    }
}

/// Detector ids covered, in generation order.
pub const DETECTORS: &[&str] = &[
    "direct_ip",
    "proxy_bypass",
    "dns_bypass",
    "ddns",
    "paas",
    "dns_tunnel",
    "dga",
    "volume",
    "long_connection",
    "op25b",
    "mail_bruteforce",
    "new_server",
];

/// All scenario names (`jcrat-<detector>-pos`, `jcrat-<detector>-neg`).
pub fn names() -> Vec<String> {
    DETECTORS
        .iter()
        .flat_map(|d| [format!("jcrat-{d}-pos"), format!("jcrat-{d}-neg")])
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip literal")
}

const RESOLVER: &str = "10.1.0.53";

/// Builder state: a scenario plus counters for ports, ids and ISNs.
struct B {
    sc: Scenario,
    p: Path,
    port: u16,
    id: u16,
    isn: u32,
}

impl B {
    fn new(name: &str, desc: &str) -> Self {
        B {
            sc: Scenario::new(name, desc),
            p: Path::plain(),
            port: 40000,
            id: 0x1000,
            isn: 0x1000_0000,
        }
    }

    fn next_port(&mut self) -> u16 {
        self.port = self.port.wrapping_add(1).max(1024);
        self.port
    }

    fn secs(&mut self, s: u64) {
        self.sc.advance_ms(s * 1000);
    }

    /// A DNS query and response over UDP to `server`.
    fn dns(
        &mut self,
        client: &str,
        server: &str,
        qname: &str,
        qtype: u16,
        rc: u8,
        answers: Vec<Rr>,
    ) {
        self.id = self.id.wrapping_add(1);
        let q = DnsMsg::query(self.id, qname, qtype, true);
        let r = DnsMsg::response(&q, rc, answers);
        let port = self.next_port();
        let p = self.p.clone();
        self.sc.dns_udp(
            &p,
            (ip(client), port),
            (ip(server), 53),
            &q,
            Some(&r),
            true,
            15,
            "",
        );
    }

    fn resolve_a(&mut self, client: &str, qname: &str, addr: &str, ttl: u32) {
        let a = Rr::new(qname, ttl, RData::A(addr.parse().expect("v4")));
        self.dns(client, RESOLVER, qname, rtype::A, rcode::NOERROR, vec![a]);
    }

    /// A TCP connection: handshake, optional TLS ClientHello (SNI) or request bytes, `up` bytes
    /// from the client, `down` bytes back, close.
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        client: &str,
        server: &str,
        port: u16,
        first: Option<Vec<u8>>,
        up: usize,
        down: usize,
    ) {
        self.isn = self.isn.wrapping_add(0x0101_0101);
        let cport = self.next_port();
        let mut c = TcpConn::new(
            (ip(client), cport),
            (ip(server), port),
            self.isn,
            self.isn ^ 0x5555_0000,
        );
        let p = self.p.clone();
        self.sc.tcp(&p, c.handshake());
        if let Some(f) = first {
            self.sc.tcp(&p, c.send(true, &f));
        }
        if up > 0 {
            self.sc.tcp(&p, c.send(true, &vec![b'u'; up]));
        }
        if down > 0 {
            self.sc.tcp(&p, c.send(false, &vec![b'd'; down]));
        }
        self.sc.tcp(&p, c.close(true));
        self.sc.advance_ms(5);
    }

    fn tls(&mut self, client: &str, server: &str, port: u16, sni: &str) {
        let ch = appproto::tls_client_hello(&ClientHello {
            sni: Some(sni),
            seed: self.isn as u64,
            pq_key_share: false,
            alpn: &["h2"],
        });
        self.tcp(client, server, port, Some(ch), 300, 2000);
    }

    /// A connection attempt the server rejects (RST).
    fn rejected(&mut self, client: &str, server: &str, port: u16) {
        self.isn = self.isn.wrapping_add(0x0101_0101);
        let cport = self.next_port();
        let mut c = TcpConn::new((ip(client), cport), (ip(server), port), self.isn, 7);
        let p = self.p.clone();
        self.sc.tcp(&p, vec![c.syn(), c.reject()]);
    }

    fn udp_exchange(&mut self, client: &str, server: &str, port: u16, len: usize) {
        let cport = self.next_port();
        let p = self.p.clone();
        let q = crate::pkt::udp_packet(ip(client), cport, ip(server), port, 0x77, &vec![0x23; len]);
        self.sc.send(&p, true, &q);
        self.sc.advance_ms(10);
        let r = crate::pkt::udp_packet(ip(server), port, ip(client), cport, 0x78, &vec![0x24; len]);
        self.sc.send(&p, false, &r);
        self.sc.advance_ms(5);
    }

    /// Ends with idle time so every flow closes inside the capture.
    fn done(mut self) -> Scenario {
        self.secs(10);
        self.sc
    }
}

fn exp(src: &str, dst: Option<&str>, port: Option<u16>, name: Option<&str>) -> ExpAlert {
    ExpAlert {
        src_ip: src.into(),
        dest_ip: dst.map(str::to_string),
        dest_port: port,
        name: name.map(str::to_string),
        kind: None,
    }
}

/// Deterministic pseudo-random label.
fn rand_label(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize] as char
        })
        .collect()
}

/// Builds one scenario and its expectation.
pub fn build(name: &str) -> Option<(Scenario, AlertExpect)> {
    let rest = name.strip_prefix("jcrat-")?;
    let (det, pos) = if let Some(d) = rest.strip_suffix("-pos") {
        (d, true)
    } else {
        (rest.strip_suffix("-neg")?, false)
    };
    let det = *DETECTORS.iter().find(|d| **d == det)?;
    let (sc, desc, alerts) = match (det, pos) {
        ("direct_ip", true) => {
            let mut b = B::new(name, "");
            b.resolve_a("10.1.0.10", "www.example.com", "93.184.215.14", 300);
            b.secs(1);
            b.tls("10.1.0.10", "93.184.215.14", 443, "www.example.com");
            b.secs(2);
            b.tcp("10.1.0.10", "198.51.100.77", 443, None, 500, 800);
            b.secs(2);
            b.tcp("fd00:1::10", "2001:db8:77::1", 8443, None, 500, 800);
            (
                b.done(),
                "connections to external addresses no DNS answer pointed to (IPv4 and IPv6), \
                 next to a resolved one",
                vec![
                    exp("10.1.0.10", Some("198.51.100.77"), Some(443), None),
                    exp("fd00:1::10", Some("2001:db8:77::1"), Some(8443), None),
                ],
            )
        }
        ("direct_ip", false) => {
            let mut b = B::new(name, "");
            let chain = vec![
                Rr::new(
                    "shop.example.net",
                    3600,
                    RData::Cname("shop.cdn.example.net".into()),
                ),
                Rr::new(
                    "shop.cdn.example.net",
                    60,
                    RData::Cname("edge-7.cdnprovider.example".into()),
                ),
                Rr::new(
                    "edge-7.cdnprovider.example",
                    20,
                    RData::A("203.0.113.10".parse().unwrap()),
                ),
            ];
            b.dns(
                "10.1.0.10",
                RESOLVER,
                "shop.example.net",
                rtype::A,
                rcode::NOERROR,
                chain,
            );
            let v6 = vec![Rr::new(
                "v6.example.com",
                300,
                RData::Aaaa("2001:db8:66::1".parse().unwrap()),
            )];
            b.dns(
                "fd00:1::10",
                "fd00:1::53",
                "v6.example.com",
                rtype::AAAA,
                rcode::NOERROR,
                v6,
            );
            b.secs(1);
            b.tls("10.1.0.10", "203.0.113.10", 443, "shop.example.net");
            b.tcp("fd00:1::10", "2001:db8:66::1", 443, None, 200, 200);
            b.udp_exchange("10.1.0.10", "198.51.100.123", 123, 48);
            b.tcp("10.1.0.10", "10.1.0.80", 8080, None, 100, 100);
            b.rejected("10.1.0.10", "198.51.100.78", 443);
            (
                b.done(),
                "resolved destinations (CNAME chain, AAAA), NTP, internal and refused \
                 connections: no direct_ip",
                vec![],
            )
        }
        ("proxy_bypass", true) => {
            let mut b = B::new(name, "");
            let get = appproto::http_get("example.org", "/", "curl/8.5");
            b.tcp("10.1.0.11", "203.0.113.20", 80, Some(get), 0, 1200);
            (
                b.done(),
                "a workstation fetches a web page directly, not through the proxy 10.1.0.3",
                vec![exp(
                    "10.1.0.11",
                    Some("203.0.113.20"),
                    Some(80),
                    Some("example.org"),
                )],
            )
        }
        ("proxy_bypass", false) => {
            let mut b = B::new(name, "");
            let req = b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n".to_vec();
            b.tcp("10.1.0.11", "10.1.0.3", 3128, Some(req), 500, 3000);
            b.tcp("10.1.0.3", "203.0.113.20", 443, None, 500, 3000);
            b.tcp("10.1.0.11", "203.0.113.21", 22, None, 500, 500);
            (
                b.done(),
                "web through the proxy, the proxy's own upstream, and non-web SSH",
                vec![],
            )
        }
        ("dns_bypass", true) => {
            let mut b = B::new(name, "");
            let a = vec![Rr::new(
                "www.example.com",
                300,
                RData::A("93.184.215.14".parse().unwrap()),
            )];
            b.dns(
                "10.1.0.12",
                "8.8.8.8",
                "www.example.com",
                rtype::A,
                rcode::NOERROR,
                a,
            );
            b.secs(1);
            b.tls("10.1.0.13", "1.1.1.1", 443, "cloudflare-dns.com");
            (
                b.done(),
                "a host queries 8.8.8.8 directly; another uses DoH (SNI cloudflare-dns.com)",
                vec![
                    exp("10.1.0.12", Some("8.8.8.8"), Some(53), None),
                    exp(
                        "10.1.0.13",
                        Some("1.1.1.1"),
                        Some(443),
                        Some("cloudflare-dns.com"),
                    ),
                ],
            )
        }
        ("dns_bypass", false) => {
            let mut b = B::new(name, "");
            b.resolve_a("10.1.0.12", "www.example.com", "93.184.215.14", 300);
            let a = vec![Rr::new(
                "www.example.com",
                300,
                RData::A("93.184.215.14".parse().unwrap()),
            )];
            b.dns(
                RESOLVER,
                "8.8.8.8",
                "www.example.com",
                rtype::A,
                rcode::NOERROR,
                a,
            );
            b.tls("10.1.0.13", "93.184.215.14", 443, "www.example.com");
            (
                b.done(),
                "queries go to the internal resolver, which forwards upstream",
                vec![],
            )
        }
        ("ddns", true) => {
            let mut b = B::new(name, "");
            b.resolve_a("10.1.0.14", "c2.evil.duckdns.org", "203.0.113.30", 60);
            b.secs(1);
            b.tls("10.1.0.14", "203.0.113.30", 443, "c2.evil.duckdns.org");
            (
                b.done(),
                "a host resolves and connects to a DuckDNS name (one alert from whichever record the sink sees \
                 first: the query and the SNI are the same behaviour)",
                vec![exp("10.1.0.14", None, None, Some("c2.evil.duckdns.org"))],
            )
        }
        ("ddns", false) => {
            let mut b = B::new(name, "");
            b.resolve_a("10.1.0.14", "duckdns.org", "203.0.113.31", 60);
            b.resolve_a("10.1.0.14", "www.notduckdns.org", "203.0.113.32", 60);
            b.secs(1);
            b.tls("10.1.0.14", "203.0.113.31", 443, "www.duckdns.org");
            (
                b.done(),
                "the provider's own site and a look-alike domain: no ddns",
                vec![],
            )
        }
        ("paas", true) => {
            let mut b = B::new(name, "");
            b.tls(
                "10.1.0.15",
                "203.0.113.40",
                443,
                "quiet-river-1234.trycloudflare.com",
            );
            (
                b.done(),
                "TLS to a Cloudflare quick-tunnel name",
                vec![exp(
                    "10.1.0.15",
                    Some("203.0.113.40"),
                    Some(443),
                    Some("quiet-river-1234.trycloudflare.com"),
                )],
            )
        }
        ("paas", false) => {
            let mut b = B::new(name, "");
            b.tls("10.1.0.15", "203.0.113.41", 443, "www.github.com");
            b.tls("10.1.0.15", "203.0.113.42", 443, "herokuapp.com");
            (
                b.done(),
                "github.com and the bare herokuapp.com site: no paas",
                vec![],
            )
        }
        ("dns_tunnel", true) => {
            let mut b = B::new(name, "");
            for i in 0..110u64 {
                let q = format!(
                    "{}.{}.t.tunnel-c2.example",
                    rand_label(i, 40),
                    rand_label(i + 1000, 20)
                );
                let ans = vec![Rr::new(
                    &q,
                    0,
                    RData::Txt(vec![rand_label(i + 5000, 60).into_bytes()]),
                )];
                b.dns("10.1.0.16", RESOLVER, &q, rtype::TXT, rcode::NOERROR, ans);
                b.sc.advance_ms(200);
            }
            (
                b.done(),
                "110 TXT queries with unique long random subdomains of one domain",
                vec![exp(
                    "10.1.0.16",
                    Some(RESOLVER),
                    Some(53),
                    Some("tunnel-c2.example"),
                )],
            )
        }
        ("dns_tunnel", false) => {
            let mut b = B::new(name, "");
            let hosts = [
                "www", "mail", "api", "cdn", "static", "login", "img", "news",
            ];
            for i in 0..110usize {
                let q = format!("{}.example.com", hosts[i % hosts.len()]);
                b.resolve_a("10.1.0.16", &q, "93.184.215.14", 300);
                b.sc.advance_ms(200);
            }
            (
                b.done(),
                "110 queries for 8 ordinary names of one domain: no dns_tunnel",
                vec![],
            )
        }
        ("dga", true) => {
            let mut b = B::new(name, "");
            let tlds = ["com", "net", "org", "info", "biz"];
            for i in 0..15u64 {
                let q = format!("{}.{}", rand_label(i + 77, 13), tlds[i as usize % 5]);
                b.dns("10.1.0.17", RESOLVER, &q, rtype::A, rcode::NXDOMAIN, vec![]);
                b.sc.advance_ms(500);
            }
            (
                b.done(),
                "15 random-looking names over 5 TLDs, all NXDOMAIN",
                vec![exp("10.1.0.17", Some(RESOLVER), Some(53), None)],
            )
        }
        ("dga", false) => {
            let mut b = B::new(name, "");
            let typos = [
                "gogle.com",
                "faceboook.com",
                "wikipedai.org",
                "printer.corp.example",
                "exampel.com",
                "micorsoft.com",
                "yahooo.com",
                "amazn.com",
            ];
            for i in 0..16usize {
                b.dns(
                    "10.1.0.17",
                    RESOLVER,
                    typos[i % typos.len()],
                    rtype::A,
                    rcode::NXDOMAIN,
                    vec![],
                );
                b.sc.advance_ms(500);
            }
            (
                b.done(),
                "typos and a stale internal name: NXDOMAIN but not random",
                vec![],
            )
        }
        ("volume", true) => {
            let mut b = B::new(name, "");
            // Six minutes of ~3 kB/min, then 150 kB in one minute, then one 300 kB upload.
            for _ in 0..6 {
                b.tcp("10.1.0.18", "203.0.113.50", 443, None, 3000, 1000);
                b.secs(60);
            }
            for _ in 0..5 {
                b.tcp("10.1.0.18", "203.0.113.50", 443, None, 30_000, 1000);
            }
            b.secs(61);
            b.tcp("10.1.0.18", "203.0.113.51", 443, None, 300_000, 1000);
            b.secs(61);
            let mut spike = exp("10.1.0.18", None, None, None);
            spike.kind = Some("spike".into());
            let mut up = exp("10.1.0.18", Some("203.0.113.51"), Some(443), None);
            up.kind = Some("large_upload".into());
            (
                b.done(),
                "a host's outbound bytes jump 50x over its baseline; then a 300 kB single upload",
                vec![spike, up],
            )
        }
        ("volume", false) => {
            let mut b = B::new(name, "");
            for i in 0..9usize {
                b.tcp(
                    "10.1.0.18",
                    "203.0.113.50",
                    443,
                    None,
                    3000 + (i % 3) * 500,
                    20_000,
                );
                b.secs(60);
            }
            (
                b.done(),
                "steady ~3 kB/min uploads with larger downloads: no volume",
                vec![],
            )
        }
        ("long_connection", true | false) => {
            let mut b = B::new(name, "");
            let minutes = if pos { 65 } else { 50 };
            b.isn = b.isn.wrapping_add(0x0101_0101);
            let mut c = TcpConn::new(
                (ip("10.1.0.19"), 41000),
                (ip("203.0.113.60"), 443),
                b.isn,
                0x2222_0000,
            );
            let p = b.p.clone();
            b.sc.tcp(&p, c.handshake());
            let mut elapsed = 0;
            while elapsed < minutes * 60 {
                b.sc.tcp(&p, c.send(true, b"keepalive"));
                b.sc.tcp(&p, c.send(false, b"ok"));
                b.secs(240);
                elapsed += 240;
            }
            b.sc.tcp(&p, c.close(true));
            let alerts = if pos {
                vec![exp("10.1.0.19", Some("203.0.113.60"), Some(443), None)]
            } else {
                vec![]
            };
            (
                b.done(),
                if pos {
                    "one TCP session with keep-alives lasting over an hour"
                } else {
                    "a 50-minute session: below the 1 h grade"
                },
                alerts,
            )
        }
        ("op25b", true) => {
            let mut b = B::new(name, "");
            b.tcp(
                "10.1.0.20",
                "198.51.100.25",
                25,
                Some(b"EHLO pc20\r\n".to_vec()),
                2000,
                300,
            );
            (
                b.done(),
                "a workstation speaks SMTP to an outside server",
                vec![exp("10.1.0.20", Some("198.51.100.25"), Some(25), None)],
            )
        }
        ("op25b", false) => {
            let mut b = B::new(name, "");
            b.tcp(
                "10.1.0.25",
                "198.51.100.25",
                25,
                Some(b"EHLO mx\r\n".to_vec()),
                2000,
                300,
            );
            b.tcp(
                "10.1.0.20",
                "10.1.0.25",
                587,
                Some(b"EHLO pc20\r\n".to_vec()),
                2000,
                300,
            );
            (
                b.done(),
                "the mail server relays out; the workstation submits to it on 587",
                vec![],
            )
        }
        ("mail_bruteforce", true | false) => {
            let mut b = B::new(name, "");
            let n = if pos { 25 } else { 8 };
            for _ in 0..n {
                b.tcp(
                    "203.0.113.99",
                    "10.1.0.25",
                    993,
                    Some(b"a1 LOGIN x y\r\n".to_vec()),
                    0,
                    60,
                );
                b.sc.advance_ms(4000);
            }
            let alerts = if pos {
                vec![exp("203.0.113.99", Some("10.1.0.25"), Some(993), None)]
            } else {
                vec![]
            };
            (
                b.done(),
                if pos {
                    "25 IMAPS logins from one outside address in 2 minutes"
                } else {
                    "8 IMAPS sessions: below the threshold"
                },
                alerts,
            )
        }
        ("new_server", pos) => {
            let mut b = B::new(name, "");
            b.tcp("10.1.0.21", "10.1.0.80", 80, None, 300, 1500);
            b.udp_exchange("10.1.0.21", "10.1.0.80", 123, 48);
            for i in 0..9 {
                // Heartbeats: packet time (and so the sensor's clock) moves on.
                b.secs(10);
                b.udp_exchange("10.1.0.250", "10.1.0.251", 9000 + i, 8);
            }
            // After the 60 s learning period.
            b.tcp("10.1.0.22", "10.1.0.80", 80, None, 300, 1500);
            if pos {
                let a = vec![Rr::new(
                    "www.example.com",
                    60,
                    RData::A("93.184.215.14".parse().unwrap()),
                )];
                b.dns(
                    "10.1.0.21",
                    "10.1.0.81",
                    "www.example.com",
                    rtype::A,
                    rcode::NOERROR,
                    a,
                );
            }
            let alerts = if pos {
                vec![exp("10.1.0.21", Some("10.1.0.81"), Some(53), None)]
            } else {
                vec![]
            };
            (
                b.done(),
                if pos {
                    "after learning, 10.1.0.81 starts answering DNS"
                } else {
                    "after learning, only known roles of known servers are used"
                },
                alerts,
            )
        }
        _ => return None,
    };
    let mut sc = sc;
    sc.description = desc.to_string();
    let e = AlertExpect {
        name: name.to_string(),
        pcap: format!("{name}.pcap"),
        config: "jcrat.toml".into(),
        description: desc.to_string(),
        detector: det.to_string(),
        alerts,
    };
    Some((sc, e))
}

/// Captures for the severity escalation of ddns alerts (`[detectors.escalation]`), built by
/// the tests themselves (not committed):
/// - `"direct_ip"`: one TLS connection straight to an address, SNI a DuckDNS name, no lookup;
/// - `"beacon"`: a host resolving and calling a DuckDNS name every 60–62 s, 12 times.
pub fn escalation_scenario(with: &str) -> Option<Scenario> {
    let mut b = B::new(&format!("escalation-{with}"), "");
    match with {
        "direct_ip" => b.tls("10.1.0.14", "203.0.113.50", 443, "c2.evil.duckdns.org"),
        "beacon" => {
            for i in 0..12 {
                b.resolve_a("10.1.0.14", "c2.evil.duckdns.org", "203.0.113.30", 30);
                b.secs(1);
                b.tls("10.1.0.14", "203.0.113.30", 443, "c2.evil.duckdns.org");
                b.secs(59 + i % 3);
            }
        }
        _ => return None,
    }
    Some(b.done())
}

/// Writes every scenario (`.pcap` + `.alerts.json`) and `jcrat.toml` into `dir`.
pub fn write_all(dir: &std::path::Path) -> std::io::Result<Vec<(String, usize)>> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("jcrat.toml"), CONFIG)?;
    let mut out = Vec::new();
    for n in names() {
        let (sc, e) = build(&n).expect("known scenario");
        std::fs::write(dir.join(&e.pcap), sc.pcap_bytes())?;
        let mut j = serde_json::to_string_pretty(&e).expect("serialise");
        j.push('\n');
        std::fs::write(dir.join(format!("{n}.alerts.json")), j)?;
        out.push((n, sc.frame_count()));
    }
    Ok(out)
}
