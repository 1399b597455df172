//! TOML configuration. Every key has a default (documented in `docs/config.md` and in
//! `kizuki.example.toml`); unknown keys are rejected with their name so typos never pass
//! silently.

use serde::Deserialize;
use std::path::Path;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub capture: CaptureConfig,
    pub pipeline: PipelineConfig,
    pub flow: FlowConfig,
    pub fragments: FragmentConfig,
    pub dns: DnsConfig,
    pub output: OutputConfig,
    pub metrics: MetricsConfig,
    pub alertmanager: AlertmanagerConfig,
    /// What is inside the monitored network (`[network]`, shared by the detectors).
    pub network: NetworkConfig,
    /// One section per detector (`[detectors.<id>]`).
    pub detectors: DetectorsConfig,
    /// Plaintext SMTP parsing for the `mail_attachment` detector (`docs/mail.md`).
    pub smtp: SmtpConfig,
}

/// `[smtp]`: sessions on these ports are reassembled and their messages parsed (MIME,
/// attachments, ZIP listings); see `docs/mail.md`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub enabled: bool,
    /// Server ports parsed as SMTP (plaintext or before STARTTLS).
    pub ports: Vec<u16>,
    /// Line, header and out-of-order segment buffers of one session.
    pub session_buffer_bytes: usize,
    /// All SMTP buffers and inspection windows together, over all workers.
    pub total_buffer_bytes: usize,
    /// Decoded bytes of one attachment kept for archive listing (hash and size cover all).
    pub inspect_bytes: usize,
    /// Message bytes parsed at most ("max message size to inspect"); the rest is counted.
    pub max_message_bytes: u64,
    /// Write an EVE `smtp` record per message.
    pub log: bool,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ports: vec![25, 587],
            session_buffer_bytes: 256 << 10,
            total_buffer_bytes: 256 << 20,
            inspect_bytes: 8 << 20,
            max_message_bytes: 64 << 20,
            log: true,
        }
    }
}

impl SmtpConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.session_buffer_bytes < 16 << 10 {
            return Err("smtp.session_buffer_bytes must be at least 16384".into());
        }
        if self.total_buffer_bytes < self.session_buffer_bytes {
            return Err(
                "smtp.total_buffer_bytes must be at least smtp.session_buffer_bytes".into(),
            );
        }
        if self.inspect_bytes < 1024 {
            return Err("smtp.inspect_bytes must be at least 1024".into());
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Live interface (`kizuki run -i` overrides).
    pub interface: Option<String>,
    /// BPF filter expression; empty = everything.
    pub bpf: String,
    pub snaplen: i32,
    pub promisc: bool,
    /// Kernel capture buffer in MiB.
    pub buffer_mb: i32,
    /// `kizuki run` as root switches to this user once the capture is open ("" = stay).
    pub user: String,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            interface: None,
            bpf: String::new(),
            snaplen: 65_535,
            promisc: true,
            buffer_mb: 64,
            user: "nobody".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Worker shards; 0 = number of cores.
    pub workers: usize,
    /// Packets per batch handed to a worker.
    pub batch_size: usize,
    /// Batches queued per worker before back-pressure (replay) or drops (live).
    pub queue_batches: usize,
    /// Threads the analyzers are split over for each epoch (1 = all on the analyze thread).
    /// More only pays where cores are idle: on a 2-core box, 2 was 1.06× slower. Whatever
    /// the value, the work left after the last packet (queued epochs, the final tick) runs
    /// on every core (at most 4).
    pub analyze_threads: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            batch_size: 128,
            queue_batches: 64,
            analyze_threads: 1,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Cap on live flows over all shards; the oldest-idle flow is evicted (and counted) when full.
    pub max_flows: usize,
    /// Idle timeouts in seconds of packet time (Zeek: tcp 5 min, udp/icmp 1 min).
    pub tcp_timeout_s: f64,
    pub udp_timeout_s: f64,
    /// UDP flows on a name-service port (DNS 53, NBNS 137, mDNS 5353, LLMNR 5355): one or two
    /// transactions each, so they leave the table sooner (Zeek's dns_session_timeout, 10 s).
    pub dns_timeout_s: f64,
    pub icmp_timeout_s: f64,
    pub other_timeout_s: f64,
    /// A TCP flow seen closed (FIN both ways, or RST) is emitted after this linger, so late
    /// packets still count (Zeek's tcp_close_delay).
    pub tcp_close_linger_s: f64,
    /// Long flows emit an `update` record this often (0 = never).
    pub update_interval_s: f64,
    /// Activity resuming after this much idle time inside a flow is a burst, handed to the
    /// analyzers (keep-alive beacons inside one long session); 0 = off.
    pub burst_gap_s: f64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            max_flows: 1_000_000,
            tcp_timeout_s: 300.0,
            udp_timeout_s: 60.0,
            dns_timeout_s: 10.0,
            icmp_timeout_s: 60.0,
            other_timeout_s: 60.0,
            tcp_close_linger_s: 5.0,
            update_interval_s: 300.0,
            burst_gap_s: 1.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FragmentConfig {
    /// Datagrams being reassembled at once, over all shards.
    pub max_datagrams: usize,
    /// Bytes buffered for reassembly, over all shards.
    pub max_bytes: usize,
    /// A datagram not completed within this many seconds of packet time is dropped.
    pub timeout_s: f64,
}

impl Default for FragmentConfig {
    fn default() -> Self {
        Self {
            max_datagrams: 16_384,
            max_bytes: 64 << 20,
            timeout_s: 30.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Server ports parsed as DNS (UDP and TCP).
    pub ports: Vec<u16>,
    /// A query without response after this many seconds is logged unanswered.
    pub timeout_s: f64,
    /// Pending (unanswered) queries over all shards; the oldest is flushed when full.
    pub max_pending: usize,
    /// Bytes buffered per direction of a DNS-over-TCP stream.
    pub tcp_buffer_bytes: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            ports: vec![53],
            timeout_s: 10.0,
            max_pending: 200_000,
            tcp_buffer_bytes: 65_537,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Directory for `eve.json` (`--out` overrides).
    pub dir: String,
    pub eve_file: String,
    /// Event types written to EVE.
    pub flow: bool,
    pub dns: bool,
    /// `inventory` events: a new internal host, a host taking a new server role (J-CRAT:
    /// know the whole system; on by default, bounded by `detectors.inventory.max_hosts`).
    pub inventory: bool,
    /// Rotate eve.json at this size in MiB (0 = never by size).
    pub rotate_size_mb: u64,
    /// Rotate eve.json after this many seconds of event (packet) time (0 = never by time).
    pub rotate_interval_s: f64,
    /// Compression of rotated files: "gzip" or "none".
    pub compress: String,
    /// Delete rotated files older than this many days (J-CRAT: keep 3-6 months; 0 = keep).
    pub retention_days: f64,
    /// Delete the oldest rotated files while they total more than this many GiB (0 = no limit).
    pub retention_max_gb: f64,
    /// Analyzer state (alert cooldowns, alerted beacons, inventory) kept across restarts in
    /// this file of the output directory ("" = off).
    pub state_file: String,
    /// The state file is also written this often (wall clock, seconds; 0 = only at exit).
    pub state_save_interval_s: f64,
}

impl OutputConfig {
    /// The rotation policy these settings describe.
    pub fn rotate_policy(&self) -> crate::output::rotate::RotatePolicy {
        use crate::output::rotate::{Compression, RotatePolicy};
        RotatePolicy {
            max_bytes: self.rotate_size_mb.saturating_mul(1 << 20),
            max_age_ns: secs_to_ns(self.rotate_interval_s),
            compression: if self.compress == "gzip" {
                Compression::Gzip
            } else {
                Compression::None
            },
            retention: std::time::Duration::from_secs_f64(self.retention_days * 86_400.0),
            retention_bytes: (self.retention_max_gb * (1u64 << 30) as f64) as u64,
        }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: "kizuki-out".into(),
            eve_file: "eve.json".into(),
            flow: true,
            dns: true,
            inventory: true,
            rotate_size_mb: 512,
            rotate_interval_s: 86_400.0,
            compress: "gzip".into(),
            retention_days: 180.0,
            retention_max_gb: 0.0,
            state_file: "kizuki-state.json".into(),
            state_save_interval_s: 300.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `kizuki run` serves /metrics here (loopback by default); `replay` only with
    /// `--metrics-listen`. Empty = off.
    pub listen: String,
    /// Serve HTTPS with this PEM certificate (chain) and PEM private key (both or neither).
    pub tls_cert: String,
    pub tls_key: String,
    /// Require HTTP basic auth with this user ("" = no auth) and the password stored in
    /// `basic_auth_password_file` (never in the config itself; trailing newline ignored).
    pub basic_auth_user: String,
    pub basic_auth_password_file: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:19100".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            basic_auth_user: String::new(),
            basic_auth_password_file: String::new(),
        }
    }
}

/// `[alertmanager]`: push analyzer alerts to Alertmanager (`POST /api/v2/alerts`). Off while
/// `url` is empty. See `output::alertmanager` and docs/deployment.md.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// `http://host:port[/prefix]` of an Alertmanager; empty = off. Plain HTTP only.
    pub url: String,
    /// `sensor` label on every alert; empty = the host name.
    pub sensor: String,
    /// An alert not updated by its detector for this many (wall-clock) seconds is resolved.
    pub resolve_after_s: f64,
    /// Active alerts are re-sent this often (a restarted Alertmanager learns them again).
    pub resend_interval_s: f64,
    /// Queued alerts are sent at most this often (batching window).
    pub send_interval_s: f64,
    /// Alerts per POST.
    pub batch_size: usize,
    /// Alerts buffered between the sink and the client thread; beyond, dropped and counted.
    pub queue_size: usize,
    /// Alerts tracked (firing, or waiting to be sent / retried); beyond, dropped and counted.
    pub max_pending: usize,
    /// Connect/read/write timeout of one POST, seconds.
    pub timeout_s: f64,
    /// `generatorURL` of the alerts (e.g. a Kibana/Grafana link); empty = none.
    pub generator_url: String,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            sensor: String::new(),
            resolve_after_s: 900.0,
            resend_interval_s: 60.0,
            send_interval_s: 1.0,
            batch_size: 64,
            queue_size: 1024,
            max_pending: 10_000,
            timeout_s: 5.0,
            generator_url: String::new(),
        }
    }
}

impl AlertmanagerConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.url.is_empty() {
            crate::output::alertmanager::Endpoint::parse(&self.url)?;
        }
        for (name, v) in [
            ("alertmanager.resolve_after_s", self.resolve_after_s),
            ("alertmanager.resend_interval_s", self.resend_interval_s),
            ("alertmanager.send_interval_s", self.send_interval_s),
            ("alertmanager.timeout_s", self.timeout_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "{name} must be a positive number of seconds, got {v}"
                ));
            }
        }
        if self.batch_size == 0 || self.queue_size == 0 || self.max_pending == 0 {
            return Err(
                "alertmanager.batch_size, queue_size and max_pending must be at least 1".into(),
            );
        }
        Ok(())
    }
}

pub use analyzers::net::NetworkConfig;

/// `[detectors.<id>]`: every detector has `enabled`, its thresholds, `cooldown_s` and an
/// `allow = { src = [...], dest = [...], names = [...] }` allowlist; defaults are documented in
/// `docs/detectors.md` and `kizuki.example.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorsConfig {
    pub direct_ip: analyzers::detectors::direct_ip::DirectIpConfig,
    pub proxy_bypass: analyzers::detectors::bypass::ProxyBypassConfig,
    pub dns_bypass: analyzers::detectors::bypass::DnsBypassConfig,
    pub ddns: analyzers::detectors::names::SuffixConfig,
    pub paas: analyzers::detectors::names::SuffixConfig,
    pub dns_tunnel: analyzers::detectors::dnstunnel::DnsTunnelConfig,
    pub dga: analyzers::detectors::dnstunnel::DgaConfig,
    pub volume: analyzers::volume::VolumeConfig,
    pub long_connection: analyzers::volume::LongConnectionConfig,
    pub op25b: analyzers::detectors::mail::Op25bConfig,
    pub mail_bruteforce: analyzers::detectors::mail::MailBruteforceConfig,
    /// Disguised executables in mail attachments (`docs/mail.md`).
    pub mail_attachment: analyzers::detectors::mail_attachment::MailAttachmentConfig,
    pub inventory: analyzers::inventory::InventoryConfig,
    /// Periodic callbacks and dormant-C2 DNS polling (`docs/beacon.md`).
    pub beacon: analyzers::beacon::BeaconConfig,
    /// ddns/paas alerts raised to `high` when beacon or direct_ip alerts share their name.
    pub escalation: analyzers::detectors::escalate::EscalationConfig,
}

impl DetectorsConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.direct_ip.validate()?;
        self.proxy_bypass.validate()?;
        self.dns_bypass.validate()?;
        self.ddns.validate("detectors.ddns")?;
        self.paas.validate("detectors.paas")?;
        self.dns_tunnel.validate()?;
        self.dga.validate()?;
        self.volume.validate()?;
        self.long_connection.validate()?;
        self.op25b.validate()?;
        self.mail_bruteforce.validate()?;
        self.mail_attachment.validate()?;
        self.inventory.validate()?;
        self.escalation.validate()?;
        self.beacon.validate()
    }
}

/// A config problem, rendered as one line naming the file.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {}", path.display(), e)))?;
        Self::parse(&text).map_err(|msg| ConfigError(format!("{}: {msg}", path.display())))
    }

    /// Parses TOML text; the error is one line with the line number.
    pub fn parse(text: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let msg = e.message().replace('\n', " ");
            let Some(span) = e.span() else {
                return msg;
            };
            let start = span.start.min(text.len());
            let line_no = text[..start].matches('\n').count() + 1;
            // Name the key even when the parser's message does not (wrong value types).
            let line = text.lines().nth(line_no - 1).unwrap_or("");
            match line.split_once('=') {
                Some((k, _)) if !msg.contains(k.trim()) => {
                    format!("line {line_no}: key `{}`: {msg}", k.trim())
                }
                _ => format!("line {line_no}: {msg}"),
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        self.alertmanager.validate()?;
        let pos = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!(
                    "{name} must be a positive number of seconds, got {v}"
                ))
            }
        };
        pos("flow.tcp_timeout_s", self.flow.tcp_timeout_s)?;
        pos("flow.udp_timeout_s", self.flow.udp_timeout_s)?;
        pos("flow.dns_timeout_s", self.flow.dns_timeout_s)?;
        pos("flow.icmp_timeout_s", self.flow.icmp_timeout_s)?;
        pos("flow.other_timeout_s", self.flow.other_timeout_s)?;
        pos("flow.tcp_close_linger_s", self.flow.tcp_close_linger_s)?;
        pos("fragments.timeout_s", self.fragments.timeout_s)?;
        pos("dns.timeout_s", self.dns.timeout_s)?;
        for (name, v) in [
            ("flow.update_interval_s", self.flow.update_interval_s),
            ("flow.burst_gap_s", self.flow.burst_gap_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be >= 0, got {v}"));
            }
        }
        if self.flow.max_flows == 0 {
            return Err("flow.max_flows must be at least 1".into());
        }
        if !(1..=16).contains(&self.pipeline.analyze_threads) {
            return Err("pipeline.analyze_threads must be 1 to 16".into());
        }
        if self.pipeline.batch_size == 0 || self.pipeline.queue_batches == 0 {
            return Err("pipeline.batch_size and pipeline.queue_batches must be at least 1".into());
        }
        if self.capture.snaplen <= 0 {
            return Err("capture.snaplen must be positive".into());
        }
        if !matches!(self.output.compress.as_str(), "gzip" | "none") {
            return Err(format!(
                "output.compress must be \"gzip\" or \"none\", got {:?}",
                self.output.compress
            ));
        }
        for (name, v) in [
            ("output.rotate_interval_s", self.output.rotate_interval_s),
            ("output.retention_days", self.output.retention_days),
            ("output.retention_max_gb", self.output.retention_max_gb),
            (
                "output.state_save_interval_s",
                self.output.state_save_interval_s,
            ),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be >= 0, got {v}"));
            }
        }
        if self.output.state_file.contains('/') || self.output.state_file == ".." {
            return Err(format!(
                "output.state_file must be a file name inside the output directory, got {:?}",
                self.output.state_file
            ));
        }
        let m = &self.metrics;
        if m.tls_cert.is_empty() != m.tls_key.is_empty() {
            return Err("metrics.tls_cert and metrics.tls_key must be set together".into());
        }
        if m.basic_auth_user.is_empty() != m.basic_auth_password_file.is_empty() {
            return Err(
                "metrics.basic_auth_user and metrics.basic_auth_password_file must be set together"
                    .into(),
            );
        }
        if self.dns.tcp_buffer_bytes < 2 {
            return Err("dns.tcp_buffer_bytes must be at least 2".into());
        }
        self.network.compile()?;
        self.detectors.validate()?;
        self.smtp.validate()?;
        Ok(())
    }
}

/// Seconds (config) to packet-time nanoseconds.
pub fn secs_to_ns(s: f64) -> i64 {
    (s * 1e9) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_empty() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.dns.ports, vec![53]);
        assert_eq!(c.flow.max_flows, 1_000_000);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[flow]\nbogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains('\n'));
        let e = Config::parse("[nonsense]\n").unwrap_err();
        assert!(e.contains("nonsense"), "{e}");
    }

    #[test]
    fn network_and_detectors() {
        let c = Config::parse(
            "[network]\ninternal = [\"10.0.0.0/8\"]\nproxies = [\"10.0.0.3\"]\n\
             [detectors.direct_ip]\nmemory_s = 3600.0\nallow = { dest = [\"192.0.2.0/24\"] }\n\
             [detectors.ddns]\nextra_suffixes = [\"dyn.example\"]\n",
        )
        .unwrap();
        assert_eq!(c.network.proxies, vec!["10.0.0.3"]);
        assert_eq!(c.detectors.direct_ip.memory_s, 3600.0);
        assert!(c.detectors.volume.enabled);
        let d = Config::parse("").unwrap();
        assert!(d.network.internal.iter().any(|s| s == "fc00::/7"));
        let e = Config::parse("[network]\nproxies = [\"10.0.0.300\"]\n").unwrap_err();
        assert!(e.contains("network.proxies"), "{e}");
        let e = Config::parse("[detectors.dga]\nbogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let e = Config::parse("[detectors.nonsense]\n").unwrap_err();
        assert!(e.contains("nonsense"), "{e}");
        let e = Config::parse("[detectors.volume]\nbucket_s = 0\n").unwrap_err();
        assert!(e.contains("detectors.volume.bucket_s"), "{e}");
    }

    #[test]
    fn beacon_takes_enabled_like_every_detector() {
        let c = Config::parse("[detectors.beacon]\nenabled = false\n").unwrap();
        assert!(!c.detectors.beacon.enable);
        assert!(
            Config::parse("[detectors.beacon]\nenable = true\n")
                .unwrap()
                .detectors
                .beacon
                .enable
        );
    }

    #[test]
    fn inventory_events_key() {
        assert!(Config::parse("").unwrap().output.inventory, "on by default");
        assert!(
            !Config::parse("[output]\ninventory = false\n")
                .unwrap()
                .output
                .inventory
        );
        let e = Config::parse("[output]\ninventory_events = true\n").unwrap_err();
        assert!(e.contains("inventory_events"), "{e}");
        let e = Config::parse("[output]\ninventory = 1\n").unwrap_err();
        assert!(e.contains("inventory"), "{e}");
    }

    #[test]
    fn bad_values_rejected() {
        assert!(Config::parse("[flow]\ntcp_timeout_s = -1\n").is_err());
        assert!(Config::parse("[flow]\nmax_flows = 0\n").is_err());
        assert!(Config::parse("[flow\n").is_err());
        let e = Config::parse("[flow]\nmax_flows = \"many\"\n").unwrap_err();
        assert!(e.contains("max_flows"), "{e}");
    }
}
