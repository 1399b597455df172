//! The analyzers the sink runs, built from the configuration.

use crate::config::Config;
use analyzers::beacon::BeaconAnalyzer;
use analyzers::detectors::bypass::Bypass;
use analyzers::detectors::direct_ip::DirectIp;
use analyzers::detectors::dnstunnel::{Dga, DnsTunnel};
use analyzers::detectors::escalate::Escalation;
use analyzers::detectors::mail::{MailBruteforce, Op25b};
use analyzers::detectors::mail_attachment::MailAttachmentDetector;
use analyzers::detectors::names::{Category, SuffixDetector};
use analyzers::inventory::Inventory;
use analyzers::volume::Volume;
use analyzers::Analyzer;

/// Every enabled analyzer, in a fixed order.
pub fn build(cfg: &Config) -> Vec<Box<dyn Analyzer>> {
    let mut v: Vec<Box<dyn Analyzer>> = Vec::new();
    add_beacon(cfg, &mut v);
    add_jcrat(cfg, &mut v);
    v
}

/// The pass over all analyzers' alerts that raises ddns/paas alerts sharing a name with
/// beacon or direct_ip alerts (`docs/detectors.md`); None when off.
pub fn escalation(cfg: &Config) -> Option<Escalation> {
    let e = &cfg.detectors.escalation;
    if !e.enabled {
        return None;
    }
    match Escalation::new(e.clone()) {
        Ok(x) => Some(x),
        Err(err) => {
            eprintln!("kizuki: warning: alert escalation left out: {err}");
            None
        }
    }
}

/// Beaconing and dormant-C2 DNS polling (`docs/beacon.md`). The network-wide sinkhole list
/// adds to the detector's own.
fn add_beacon(cfg: &Config, v: &mut Vec<Box<dyn Analyzer>>) {
    let mut b = cfg.detectors.beacon.clone();
    if !b.enable {
        return;
    }
    for s in &cfg.network.sinkholes {
        if !b.sinkholes.contains(s) {
            b.sinkholes.push(s.clone());
        }
    }
    if !b.internal_destinations {
        b.allow_dest_cidrs
            .extend(cfg.network.internal.iter().cloned());
    }
    match BeaconAnalyzer::new(b) {
        Ok(a) => v.push(Box::new(a)),
        Err(e) => eprintln!("kizuki: warning: detector left out: beacon: {e}"),
    }
}

/// The J-CRAT detectors, flow volume and inventory (`docs/detectors.md`). The configuration
/// was validated when loaded, so construction cannot fail here; if it ever does, the detector
/// is left out with a warning rather than stopping the sensor.
fn add_jcrat(cfg: &Config, v: &mut Vec<Box<dyn Analyzer>>) {
    let net = match cfg.network.compile() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("kizuki: warning: {e}; J-CRAT detectors disabled");
            return;
        }
    };
    let d = &cfg.detectors;
    let mut add = |r: Result<Box<dyn Analyzer>, String>| match r {
        Ok(a) => v.push(a),
        Err(e) => eprintln!("kizuki: warning: detector left out: {e}"),
    };
    if d.direct_ip.enabled {
        let doh = d.dns_bypass.all_doh_names();
        add(DirectIp::new(d.direct_ip.clone(), net.clone(), &doh).map(|a| Box::new(a) as _));
    }
    if d.proxy_bypass.enabled && !net.proxies.is_empty() {
        add(Bypass::proxy(d.proxy_bypass.clone(), net.clone()).map(|a| Box::new(a) as _));
    }
    if d.dns_bypass.enabled && !net.resolvers.is_empty() {
        add(Bypass::dns(d.dns_bypass.clone(), net.clone()).map(|a| Box::new(a) as _));
    }
    if d.ddns.enabled {
        add(
            SuffixDetector::new(Category::Ddns, d.ddns.clone(), net.clone())
                .map(|a| Box::new(a) as _),
        );
    }
    if d.paas.enabled {
        add(
            SuffixDetector::new(Category::Paas, d.paas.clone(), net.clone())
                .map(|a| Box::new(a) as _),
        );
    }
    if d.dns_tunnel.enabled {
        add(DnsTunnel::new(d.dns_tunnel.clone()).map(|a| Box::new(a) as _));
    }
    if d.dga.enabled {
        add(Dga::new(d.dga.clone()).map(|a| Box::new(a) as _));
    }
    if d.volume.enabled || d.long_connection.enabled {
        add(
            Volume::new(d.volume.clone(), d.long_connection.clone(), net.clone())
                .map(|a| Box::new(a) as _),
        );
    }
    if d.op25b.enabled {
        add(Op25b::new(d.op25b.clone(), net.clone()).map(|a| Box::new(a) as _));
    }
    if d.mail_bruteforce.enabled {
        add(MailBruteforce::new(d.mail_bruteforce.clone()).map(|a| Box::new(a) as _));
    }
    if d.mail_attachment.enabled && cfg.smtp.enabled {
        add(MailAttachmentDetector::new(d.mail_attachment.clone()).map(|a| Box::new(a) as _));
    }
    if d.inventory.enabled {
        let events = cfg.output.inventory;
        add(Inventory::new(d.inventory.clone(), net).map(|a| Box::new(a.with_events(events)) as _));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build_every_unconditional_detector() {
        let names: Vec<&str> = build(&Config::default()).iter().map(|a| a.name()).collect();
        for n in [
            "direct_ip",
            "ddns",
            "paas",
            "dns_tunnel",
            "dga",
            "volume",
            "op25b",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert!(!names.contains(&"proxy_bypass"), "needs network.proxies");
        let c = Config::parse(
            "[network]\nproxies = [\"10.0.0.3\"]\nresolvers = [\"10.0.0.53\"]\n\
             [detectors.dga]\nenabled = false\n",
        )
        .unwrap();
        let names: Vec<&str> = build(&c).iter().map(|a| a.name()).collect();
        assert!(names.contains(&"proxy_bypass") && names.contains(&"dns_bypass"));
        assert!(!names.contains(&"dga"));
    }
}
