//! Bounded state, evictions, memory, configuration and cost.

use super::gen::*;
use crate::beacon::{BeaconAnalyzer, BeaconConfig};
use crate::{Analyzer, Event};

fn key_flow(i: u32, ts: i64) -> Event {
    let src = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    Event::Flow(flow(&src, "203.0.113.9", 443, ts, 300))
}

#[test]
fn hundred_thousand_keys_then_lru_evictions() {
    let mut a = analyzer();
    let mut out = Vec::new();
    for i in 0..100_000u32 {
        a.on_event(&key_flow(i, T0 + i64::from(i) * 1000), &mut out);
    }
    let s = a.stats();
    assert_eq!(s.tracked_keys, 100_000);
    assert_eq!(s.evicted_keys, 0);
    for i in 100_000..110_000u32 {
        a.on_event(&key_flow(i, T0 + i64::from(i) * 1000), &mut out);
    }
    let s = a.stats();
    assert_eq!(s.tracked_keys, 100_000);
    assert_eq!(s.evicted_keys, 10_000);
    a.on_tick(T0 + 200 * S, &mut out);
    assert!(out.is_empty());
    // One-beat keys cost little.
    let per_key = a.approx_memory_bytes() / 100_000;
    assert!(per_key < 400, "{per_key} bytes per one-beat key");
}

#[test]
fn full_rings_stay_within_the_documented_bound() {
    // 2,000 keys with full rings (64 beats) and a name key each; extrapolate to 100 k keys.
    let mut a = analyzer();
    let mut out = Vec::new();
    for i in 0..1000u32 {
        let src = format!("10.0.{}.{}", i >> 8, i & 0xff);
        for b in 0..70i64 {
            let f = named(
                flow(
                    &src,
                    "203.0.113.9",
                    443,
                    T0 + b * 60 * S + i64::from(i),
                    300,
                ),
                "some-long-service-name.example.com",
            );
            a.on_event(&Event::Flow(f), &mut out);
        }
    }
    assert_eq!(a.stats().tracked_keys, 2000);
    let per_key = a.approx_memory_bytes() / 2000;
    eprintln!("{per_key} bytes per full key");
    // docs/beacon.md: ≤ 1000 bytes per full key, so 100 k keys < 100 MB.
    assert!(per_key <= 1000, "{per_key} bytes per full key");
    assert!(per_key * 100_000 < 100 << 20);
}

#[test]
fn idle_keys_expire() {
    let mut a = analyzer();
    let mut out = Vec::new();
    a.on_event(&key_flow(1, T0), &mut out);
    a.on_tick(T0 + S, &mut out);
    assert_eq!(a.stats().tracked_keys, 1);
    for m in 1..=(7 * 60) {
        a.on_tick(T0 + m * 60 * S, &mut out);
    }
    let s = a.stats();
    assert_eq!(s.tracked_keys, 0);
    assert_eq!(s.expired_keys, 1);
}

#[test]
fn config_rejects_unknown_keys_and_bad_values() {
    let cfg: BeaconConfig =
        serde_json::from_str(r#"{"min_beats": 8, "allow_name_suffixes": ["corp.example"]}"#)
            .unwrap();
    assert_eq!(cfg.min_beats, 8);
    assert_eq!(cfg.max_keys, 100_000);
    assert!(serde_json::from_str::<BeaconConfig>(r#"{"min_beatz": 8}"#).is_err());
    let bad = BeaconConfig {
        allow_dest_cidrs: vec!["10.0.0.0/40".into()],
        ..BeaconConfig::default()
    };
    assert!(BeaconAnalyzer::new(bad)
        .err()
        .unwrap()
        .contains("allow_dest_cidrs"));
    let bad = BeaconConfig {
        jitter_tolerance: 0.0,
        ..BeaconConfig::default()
    };
    assert!(BeaconAnalyzer::new(bad).is_err());
    assert!(BeaconConfig::default().validate().is_ok());
}

#[test]
fn disabled_does_nothing() {
    let mut a = BeaconAnalyzer::new(BeaconConfig {
        enable: false,
        ..BeaconConfig::default()
    })
    .unwrap();
    let t: Vec<i64> = (0..30).map(|i| T0 + i * 60 * S).collect();
    assert!(run(&mut a, &flows(&t, "10.0.0.1", "203.0.113.1", 443, 300)).is_empty());
    assert_eq!(a.stats().tracked_keys, 0);
}

/// Cost of one rescoring of a full (64-beat) key; run with `--release --ignored --nocapture`.
#[test]
#[ignore]
fn scoring_cost() {
    let mut rng = Rng::new(5);
    let n_keys = 2000u32;
    let mut evs = Vec::new();
    for i in 0..n_keys {
        let src = format!("10.0.{}.{}", i >> 8, i & 0xff);
        let t = beacon_times(
            &mut rng,
            T0,
            30.0 + f64::from(i % 50),
            120,
            Jitter::Symmetric(0.3),
            0.1,
        );
        evs.extend(flows(&t, &src, "203.0.113.9", 443, 300));
    }
    let evs = by_time(evs);
    let mut a = analyzer();
    let start = std::time::Instant::now();
    let alerts = run(&mut a, &evs);
    let el = start.elapsed();
    println!(
        "{} beats, {} alerts, {:.2} µs per beat (insert + rescore), {} MB est",
        evs.len(),
        alerts.len(),
        el.as_secs_f64() * 1e6 / evs.len() as f64,
        a.approx_memory_bytes() >> 20
    );
}

#[test]
#[ignore]
fn fit_cost() {
    let mut rng = Rng::new(5);
    let t = beacon_times(&mut rng, T0, 60.0, 64, Jitter::Symmetric(0.3), 0.1);
    let gaps: Vec<f64> = t.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
    let p = poisson_times(&mut rng, T0, 60.0, T0 + 3900 * S);
    let pg: Vec<f64> = p.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
    for (label, g) in [("beacon", &gaps), ("poisson", &pg)] {
        let start = std::time::Instant::now();
        for _ in 0..1000 {
            std::hint::black_box(crate::beacon::period::fit(std::hint::black_box(g), 0.5));
        }
        println!(
            "{label}: {} gaps, {:.1} µs per fit",
            g.len(),
            start.elapsed().as_secs_f64() * 1e3
        );
    }
}
