//! Detection and non-detection on synthetic streams.

use super::gen::*;
use crate::beacon::{BeaconAnalyzer, BeaconConfig, Candidate};
use crate::{Alert, Event, Severity, TsNanos};

const SRC: &str = "10.1.2.3";
const C2: &str = "203.0.113.10";

fn ev_f64(a: &Alert, k: &str) -> f64 {
    a.evidence[k]
        .as_f64()
        .unwrap_or_else(|| panic!("{k} in {:?}", a.evidence))
}

fn beacon_run(
    period: f64,
    n: usize,
    jitter: Jitter,
    miss: f64,
    seed: u64,
) -> (Vec<Alert>, BeaconAnalyzer) {
    let mut rng = Rng::new(seed);
    let t = beacon_times(&mut rng, T0, period, n, jitter, miss);
    let evs = by_time(flows(&t, SRC, C2, 443, 420));
    let mut a = analyzer();
    (run(&mut a, &evs), a)
}

/// Exactly one (non-update) alert; the first alert comes early (its estimate from the first
/// beats is within 35 % — under ±50 % jitter a dozen gaps do not pin P down better), the
/// refined estimate of the top candidate within `tol`.
fn assert_one_beacon<'a>(
    alerts: &'a [Alert],
    a: &BeaconAnalyzer,
    period: f64,
    tol: f64,
) -> (&'a Alert, Candidate) {
    let first = beacon_alerts(alerts);
    assert_eq!(first.len(), 1, "{alerts:#?}");
    let al = first[0];
    assert_eq!(al.detector, "beacon");
    let p = ev_f64(al, "period_s");
    assert!(
        (p - period).abs() <= 0.35 * period,
        "first alert period {p} vs {period}"
    );
    let c = a.top_candidates(1).pop().expect("a candidate");
    assert!(c.alerted && c.passes, "{c:?}");
    assert!(
        (c.period_s - period).abs() <= tol * period,
        "period {} vs {period}: {c:?}",
        c.period_s
    );
    (al, c)
}

#[test]
fn fixed_period_alerts_with_evidence() {
    let (alerts, an) = beacon_run(60.0, 30, Jitter::Symmetric(0.0), 0.0, 1);
    let (a, _) = assert_one_beacon(&alerts, &an, 60.0, 0.01);
    assert_eq!(a.src_ip, Some(ip(SRC)));
    assert_eq!(a.dest_ip, Some(ip(C2)));
    assert_eq!(a.dest_port, Some(443));
    assert_eq!(a.evidence["key_kind"], "pair");
    assert!(ev_f64(a, "jitter") < 0.02);
    assert!(a.evidence["score"]["total"].as_f64().unwrap() >= 0.8);
    for k in [
        "dispersion",
        "period",
        "size",
        "coverage",
        "prevalence_factor",
    ] {
        assert!(a.evidence["score"][k].is_number(), "{k}");
    }
    assert!(ev_f64(a, "first_seen") >= (T0 / S) as f64);
    assert!(ev_f64(a, "last_seen") > ev_f64(a, "first_seen"));
    // A clean beacon alerts as soon as min_beats (6) are in: within ~7 periods of the start.
    assert!(a.ts < T0 + 8 * 60 * S, "late alert at {}", (a.ts - T0) / S);
}

#[test]
fn symmetric_jitter_10_25_50() {
    for (j, seeds) in [(0.1, 1..4), (0.25, 1..4), (0.5, 1..4)] {
        for seed in seeds {
            let (alerts, an) = beacon_run(60.0, 64, Jitter::Symmetric(j), 0.0, seed);
            let (_, c) = assert_one_beacon(&alerts, &an, 60.0, 0.05);
            assert!((c.jitter - j).abs() <= 0.1, "jitter {} for ±{j}", c.jitter);
        }
    }
}

#[test]
fn one_sided_cobalt_strike_jitter() {
    for seed in 1..4 {
        // sleep = 120·(1 − U[0, 0.5]) → mean interval 90 s
        let (alerts, an) = beacon_run(120.0, 64, Jitter::OneSided(0.5), 0.0, seed);
        assert_one_beacon(&alerts, &an, 90.0, 0.05);
    }
}

#[test]
fn missed_beats_10_and_30_percent() {
    for (miss, seed) in [(0.1, 3), (0.1, 4), (0.3, 5), (0.3, 6)] {
        let (alerts, an) = beacon_run(300.0, 80, Jitter::Symmetric(0.2), miss, seed);
        let (_, c) = assert_one_beacon(&alerts, &an, 300.0, 0.05);
        let m = c.missed_beats_ratio;
        assert!((m - miss).abs() < 0.12, "missed {m} vs {miss}");
    }
}

#[test]
fn two_alternating_periods() {
    let mut t = Vec::new();
    let mut ts = T0;
    let mut rng = Rng::new(9);
    for i in 0..40 {
        t.push(ts);
        let p = if i % 2 == 0 { 30.0 } else { 90.0 };
        ts += ((p * (1.0 + rng.range(-0.05, 0.05))) * 1e9) as i64;
    }
    let mut an = analyzer();
    let alerts = run(&mut an, &by_time(flows(&t, SRC, C2, 8443, 600)));
    assert_eq!(beacon_alerts(&alerts).len(), 1, "{alerts:#?}");
    let c = an.top_candidates(1).pop().unwrap();
    let p1 = c.period_s;
    let p2 = c.secondary_period_s.expect("secondary period");
    let (lo, hi) = if p1 < p2 { (p1, p2) } else { (p2, p1) };
    assert!(
        (lo - 30.0).abs() < 3.0 && (hi - 90.0).abs() < 6.0,
        "{p1} {p2}"
    );
}

#[test]
fn ip_rotation_behind_one_name_is_one_name_alert() {
    let ips = [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
        "198.51.100.5",
    ];
    let mut rng = Rng::new(11);
    let times = beacon_times(&mut rng, T0, 120.0, 40, Jitter::Symmetric(0.2), 0.0);
    let mut evs = Vec::new();
    for (i, &t) in times.iter().enumerate() {
        let addr = ips[i % ips.len()];
        evs.push(Event::Dns(dns(
            SRC,
            "Rotate.C2.example.",
            t - S / 10,
            0,
            &[(addr, 60)],
        )));
        evs.push(Event::Flow(flow(SRC, addr, 443, t, 512)));
    }
    let alerts = run(&mut analyzer(), &by_time(evs));
    let first = beacon_alerts(&alerts);
    assert_eq!(first.len(), 1, "{alerts:#?}");
    let a = first[0];
    assert_eq!(a.evidence["key_kind"], "name");
    assert_eq!(a.name.as_deref(), Some("rotate.c2.example"));
    assert_eq!(a.dest_ip, None);
    assert_eq!(a.dest_port, Some(443));
    assert!((ev_f64(a, "period_s") - 120.0).abs() < 30.0, "{a:?}");
    assert!(a.evidence["dest_ips"].as_array().unwrap().len() >= 4);
}

#[test]
fn sni_beacon_alerts_once_by_name_not_also_by_pair() {
    let mut rng = Rng::new(12);
    let t = beacon_times(&mut rng, T0, 45.0, 40, Jitter::Symmetric(0.1), 0.0);
    let evs: Vec<Event> = t
        .iter()
        .map(|&ts| {
            Event::Flow(named(
                flow(SRC, C2, 443, ts, 700),
                "cdn.update-check.example",
            ))
        })
        .collect();
    let alerts = run(&mut analyzer(), &by_time(evs));
    let first = beacon_alerts(&alerts);
    assert_eq!(first.len(), 1, "{alerts:#?}");
    assert_eq!(first[0].evidence["key_kind"], "name");
}

#[test]
fn dns_nxdomain_every_60s_is_sinkhole_periodic() {
    let mut rng = Rng::new(13);
    let t = beacon_times(&mut rng, T0, 60.0, 30, Jitter::Symmetric(0.05), 0.0);
    let evs: Vec<Event> = t
        .iter()
        .map(|&ts| Event::Dns(dns(SRC, "parked-c2.example", ts, 3, &[])))
        .collect();
    let alerts = run(&mut analyzer(), &evs);
    let first = beacon_alerts(&alerts);
    assert_eq!(first.len(), 1, "{alerts:#?}");
    let a = first[0];
    assert_eq!(a.detector, "dns_sinkhole_periodic");
    assert_eq!(a.evidence["key_kind"], "dns");
    assert_eq!(a.name.as_deref(), Some("parked-c2.example"));
    assert_eq!(a.dest_ip, None);
    assert!(a.severity >= Severity::Medium);
    assert!(a.evidence["answers"]["nxdomain"].as_u64().unwrap() >= 6);
    assert!(a.evidence["score"]["size"].is_null());
    assert!(a.signature.contains("NXDOMAIN"));
}

#[test]
fn dns_loopback_answers_count_normal_answers_do_not() {
    let mut rng = Rng::new(14);
    let t = beacon_times(&mut rng, T0, 300.0, 20, Jitter::Symmetric(0.1), 0.0);
    let sink: Vec<Event> = t
        .iter()
        .map(|&ts| Event::Dns(dns(SRC, "sleepy.example", ts, 0, &[("127.0.0.1", 300)])))
        .collect();
    let alerts = run(&mut analyzer(), &sink);
    assert_eq!(beacon_alerts(&alerts).len(), 1);
    assert_eq!(alerts[0].detector, "dns_sinkhole_periodic");
    // The same lookups answered normally are TTL-driven re-resolution: not tracked.
    let normal: Vec<Event> = t
        .iter()
        .map(|&ts| Event::Dns(dns(SRC, "sleepy.example", ts, 0, &[("192.0.2.80", 300)])))
        .collect();
    let mut a = analyzer();
    assert!(run(&mut a, &normal).is_empty());
    assert_eq!(a.stats().tracked_keys, 0);
}

#[test]
fn poisson_arrivals_do_not_alert() {
    for seed in 1..=40 {
        let mut rng = Rng::new(seed * 7);
        let t = poisson_times(&mut rng, T0, 60.0, T0 + 4 * 3600 * S);
        let alerts = run(&mut analyzer(), &by_time(flows(&t, SRC, C2, 443, 420)));
        assert!(alerts.is_empty(), "seed {seed}: {alerts:#?}");
    }
}

#[test]
fn bursty_browsing_does_not_alert() {
    for seed in 1..=40 {
        let mut rng = Rng::new(seed * 13);
        let t = browsing_times(&mut rng, T0, 240.0, T0 + 4 * 3600 * S);
        let evs: Vec<Event> = t
            .iter()
            .map(|&ts| {
                Event::Flow(named(
                    flow(SRC, C2, 443, ts, 900 + (ts % 5000) as u64),
                    "news.example",
                ))
            })
            .collect();
        let alerts = run(&mut analyzer(), &by_time(evs));
        assert!(alerts.is_empty(), "seed {seed}: {alerts:#?}");
    }
}

#[test]
fn too_short_beacon_does_not_alert() {
    let (alerts, _) = beacon_run(60.0, 5, Jitter::Symmetric(0.0), 0.0, 1);
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn allowlisted_name_and_cidr_do_not_alert() {
    let mut rng = Rng::new(15);
    let t = beacon_times(&mut rng, T0, 60.0, 30, Jitter::Symmetric(0.0), 0.0);
    let evs: Vec<Event> = t
        .iter()
        .map(|&ts| {
            Event::Flow(named(
                flow(SRC, C2, 443, ts, 420),
                "telemetry.Vendor.example",
            ))
        })
        .collect();
    let cfg = BeaconConfig {
        allow_name_suffixes: vec!["vendor.example".into()],
        ..BeaconConfig::default()
    };
    let mut a = BeaconAnalyzer::new(cfg).unwrap();
    assert!(run(&mut a, &evs).is_empty());
    assert_eq!(a.stats().tracked_keys, 0);
    let cfg = BeaconConfig {
        allow_dest_cidrs: vec!["203.0.113.0/24".into()],
        ..BeaconConfig::default()
    };
    let mut a = BeaconAnalyzer::new(cfg).unwrap();
    assert!(run(&mut a, &by_time(flows(&t, SRC, C2, 443, 420))).is_empty());
}

#[test]
fn high_prevalence_destination_is_scaled_down() {
    // Eight hosts poll the same service every 60 s (fleet software).
    let mut evs = Vec::new();
    for h in 0..8u64 {
        let mut rng = Rng::new(100 + h);
        let start = T0 + (h as i64) * 7 * S;
        let t = beacon_times(&mut rng, start, 60.0, 40, Jitter::Symmetric(0.05), 0.0);
        evs.extend(flows(&t, &format!("10.9.0.{}", h + 1), C2, 443, 420));
    }
    let mut a = analyzer();
    let alerts = run(&mut a, &by_time(evs));
    // The first hosts are held while other sources (fewer than 5) call the destination too,
    // and the whole fleet has shown up by the time the hold would end: no host alerts.
    let raised = beacon_alerts(&alerts).len();
    assert_eq!(raised, 0, "{alerts:#?}");
    let top = a.top_candidates(10);
    assert_eq!(top.len(), 8);
    for c in &top {
        assert!(c.score.prevalence_factor < 0.7, "{c:?}");
        assert!(c.score.total < 0.7, "{c:?}");
    }
}

#[test]
fn out_of_order_arrival_is_handled() {
    // Short flows are reported after their end; shards merge with a few seconds of skew.
    let mut rng = Rng::new(16);
    let t = beacon_times(&mut rng, T0, 20.0, 60, Jitter::Symmetric(0.2), 0.0);
    let mut evs: Vec<(i64, Event)> = t
        .iter()
        .map(|&ts| {
            let mut f = flow(SRC, C2, 443, ts, 420);
            f.last_ts = ts + (rng.range(0.0, 8.0) * 1e9) as i64; // reported up to 8 s late
            (f.last_ts, Event::Flow(f))
        })
        .collect();
    evs.sort_by_key(|e| e.0);
    // ... and swap neighbours at random.
    for i in 1..evs.len() {
        if rng.unit() < 0.3 {
            evs.swap(i - 1, i);
        }
    }
    let evs: Vec<Event> = evs.into_iter().map(|e| e.1).collect();
    let mut an = analyzer();
    let alerts = run(&mut an, &evs);
    assert_one_beacon(&alerts, &an, 20.0, 0.05);
}

#[test]
fn keepalive_bursts_inside_one_long_flow_are_a_beacon() {
    let mut rng = Rng::new(17);
    let t = beacon_times(&mut rng, T0 + 30 * S, 30.0, 40, Jitter::Symmetric(0.1), 0.0);
    let mut evs: Vec<Event> = t
        .iter()
        .map(|&ts| Event::Burst(burst(SRC, C2, 443, ts, 120)))
        .collect();
    // TCP keep-alive probes (no payload) between them are not beats.
    evs.extend(
        t.iter()
            .map(|&ts| Event::Burst(burst(SRC, C2, 443, ts + 11 * S, 52))),
    );
    // Periodic `update` records of the long flow and its final record: one start beat.
    for k in 1..5 {
        let mut f = flow(SRC, C2, 443, T0, 5000 * k);
        f.last_ts = T0 + k as i64 * 300 * S;
        f.reason = crate::CloseReason::Update;
        evs.push(Event::Flow(f));
    }
    let mut a = analyzer();
    let alerts = run(&mut a, &by_time(evs));
    let (_, c) = assert_one_beacon(&alerts, &a, 30.0, 0.05);
    assert_eq!(c.beats as usize, t.len() + 1);
}

#[test]
fn alert_then_update_not_repeat() {
    // 4 h of a 60 s beacon: one alert, then updates at most once per cooldown (900 s).
    let mut rng = Rng::new(18);
    let t = beacon_times(&mut rng, T0, 60.0, 240, Jitter::Symmetric(0.1), 0.0);
    let alerts = run(&mut analyzer(), &by_time(flows(&t, SRC, C2, 443, 420)));
    let first: Vec<_> = alerts.iter().filter(|a| !a.update).collect();
    let updates: Vec<_> = alerts.iter().filter(|a| a.update).collect();
    assert_eq!(first.len(), 1);
    assert!(
        !updates.is_empty() && updates.len() <= 16,
        "{} updates",
        updates.len()
    );
    for u in &updates {
        assert_eq!(u.dedupe_key, first[0].dedupe_key);
    }
    for w in alerts.windows(2) {
        assert!(w[1].ts - w[0].ts >= 900 * S);
    }
}

#[test]
fn restart_with_saved_state_updates_instead_of_realerting() {
    // 4 h of a 60 s beacon, the sensor restarted half-way: without state the second half
    // raises a new alert; with the saved state it is an update of the same alert.
    use crate::Analyzer;
    let mut rng = Rng::new(18);
    let t = beacon_times(&mut rng, T0, 60.0, 240, Jitter::Symmetric(0.1), 0.0);
    let evs = by_time(flows(&t, SRC, C2, 443, 420));
    let (a_half, b_half) = evs.split_at(evs.len() / 2);
    let mut first = analyzer();
    let alerts = run(&mut first, a_half);
    assert_eq!(beacon_alerts(&alerts).len(), 1);
    let saved = serde_json::to_string(&first.save_state()).unwrap();

    let fresh = run(&mut analyzer(), b_half);
    assert_eq!(beacon_alerts(&fresh).len(), 1, "no state: a new alert");

    let mut second = analyzer();
    second.load_state(&serde_json::from_str(&saved).unwrap());
    let again = run(&mut second, b_half);
    assert!(beacon_alerts(&again).is_empty(), "{again:#?}");
    assert!(!again.is_empty(), "the ongoing beacon is updated");
    assert_eq!(again[0].dedupe_key, alerts[0].dedupe_key);
    assert!(again[0].evidence["beats"].as_u64().unwrap() > 120);
    // Cooldown carried over: no update sooner than 900 s after the last alert before the
    // restart.
    let last = alerts.last().unwrap().ts;
    assert!(again[0].ts - last >= 900 * S);

    // Garbage or another version's layout: ignored, the analyzer still works.
    let mut junk = analyzer();
    junk.load_state(&serde_json::json!({"alerted": [1, {"key": {"kind": "pair"}}, "x"]}));
    junk.load_state(&serde_json::json!([1, 2]));
    assert_eq!(beacon_alerts(&run(&mut junk, b_half)).len(), 1);
}

/// One long flow's bursts at `times`: burst `i` lasts `dur_s(i)` and brings `down(i)` IP bytes
/// from the server; each burst event carries the flow's state before it, as the sensor does.
fn session_bursts(
    times: &[TsNanos],
    dur_s: impl Fn(usize) -> f64,
    down: impl Fn(usize) -> u64,
) -> Vec<Event> {
    let mut evs = Vec::new();
    let (mut prev_end, mut toclient) = (T0 - 10 * S, 2000u64);
    for (i, &ts) in times.iter().enumerate() {
        let mut b = burst(SRC, C2, 443, ts, 120);
        b.prev_ts = prev_end;
        b.flow_bytes_toclient = toclient;
        b.flow_bytes_toserver = 1000 + 150 * i as u64;
        evs.push(Event::Burst(b));
        prev_end = ts + (dur_s(i) * 1e9) as i64;
        toclient += down(i);
    }
    evs
}

fn segment_times() -> Vec<TsNanos> {
    let mut rng = Rng::new(31);
    beacon_times(&mut rng, T0, 6.0, 200, Jitter::Symmetric(0.25), 0.0)
}

#[test]
fn streaming_bursts_that_deliver_bulk_data_do_not_alert() {
    // A player fetching a segment every 6 s ± 25 % inside one TLS session: periodic, but
    // every burst brings kilobytes from the server.
    let t = segment_times();
    let mut a = analyzer();
    let alerts = run(&mut a, &session_bursts(&t, |_| 0.2, |_| 3000));
    assert!(beacon_alerts(&alerts).is_empty(), "{alerts:#?}");
    let c = a.top_candidates(1).pop().expect("a candidate");
    assert_eq!(c.session, Some("bulk"), "{c:?}");
    assert!(!c.passes, "{c:?}");
}

#[test]
fn keepalive_with_occasional_tasking_is_still_a_beacon() {
    // The same timing with small answers (a task now and then) is a callback.
    let t = segment_times();
    let mut a = analyzer();
    let evs = session_bursts(&t, |_| 0.05, |i| if i % 8 == 0 { 5000 } else { 90 });
    let alerts = run(&mut a, &evs);
    let (_, c) = assert_one_beacon(&alerts, &a, 6.0, 0.05);
    assert_eq!(c.session, None);
}

#[test]
fn interactive_session_bursts_do_not_alert() {
    // Typing: every burst is seconds of keystrokes and echoes, not one exchange.
    let t = segment_times();
    let mut a = analyzer();
    let alerts = run(
        &mut a,
        &session_bursts(&t, |i| 1.5 + (i % 5) as f64 * 0.4, |_| 400),
    );
    assert!(beacon_alerts(&alerts).is_empty(), "{alerts:#?}");
    let c = a.top_candidates(1).pop().expect("a candidate");
    assert_eq!(c.session, Some("interactive"), "{c:?}");
}

#[test]
fn shared_destination_alerts_are_held_until_prevalence_settles() {
    // Three hosts (fewer than prevalence_min_sources) call one C2 every 60 s for 2 h: held
    // until no new host has joined for 30 min, then each alerts — delayed, not dropped.
    let mut evs = Vec::new();
    for h in 0..3u64 {
        let mut rng = Rng::new(200 + h);
        let start = T0 + (h as i64) * 40 * S;
        let t = beacon_times(&mut rng, start, 60.0, 120, Jitter::Symmetric(0.1), 0.0);
        evs.extend(flows(&t, &format!("10.9.1.{}", h + 1), C2, 443, 420));
    }
    let mut a = analyzer();
    let alerts = run(&mut a, &by_time(evs));
    let first = beacon_alerts(&alerts);
    assert_eq!(first.len(), 3, "{alerts:#?}");
    for al in first {
        // The last host's third beat is at T0 + 200 s ± 12 s.
        assert!(al.ts >= T0 + 180 * S + 1800 * S, "{al:#?}");
        assert!(al.ts <= T0 + 220 * S + 1800 * S + 60 * S, "{al:#?}");
        assert_eq!(al.evidence["prevalence_sources"], 3);
    }
    // A lone host with the same schedule alerts within minutes.
    let mut rng = Rng::new(200);
    let t = beacon_times(&mut rng, T0, 60.0, 120, Jitter::Symmetric(0.1), 0.0);
    let mut a = analyzer();
    let alerts = run(&mut a, &by_time(flows(&t, SRC, C2, 443, 420)));
    let first = beacon_alerts(&alerts);
    assert_eq!(first.len(), 1);
    assert!(first[0].ts < T0 + 900 * S, "{:#?}", first[0]);
}
