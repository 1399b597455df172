//! Score distributions over many seeds (run with `--ignored --nocapture`), used to pick the
//! thresholds documented in docs/beacon.md. "ever" = the key passes at any prefix of its
//! stream (it is re-tested at every beat, as in the analyzer), up to 64 beats.

use super::gen::*;
use crate::beacon::period;
use crate::beacon::score;

const THR: f64 = 0.7;
const GATE: f64 = 8.0;

fn passes(times: &[i64]) -> Option<(bool, f64)> {
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e9)
        .collect();
    let fit = period::fit(&gaps, 0.5)?;
    let mut sizes: Vec<f64> = times.iter().map(|_| 400.0).collect();
    let mut tmp = Vec::new();
    let p = score::combine(&fit, &mut sizes, 0.5, GATE, &mut tmp);
    let span = (times[times.len() - 1] - times[0]) as f64 / 1e9;
    let ok = p.total >= THR
        && fit.significance >= score::required_significance(GATE, gaps.len())
        && span >= 3.0 * fit.period
        && fit.period >= 1.0;
    Some((ok, p.total))
}

/// Share of streams that pass at some prefix of ≥ 6 beats (window of the last 64).
fn ever(streams: &[Vec<i64>]) -> f64 {
    let mut hit = 0;
    for t in streams {
        let mut any = false;
        for end in 6..=t.len() {
            let lo = end.saturating_sub(64);
            if passes(&t[lo..end]).is_some_and(|p| p.0) {
                any = true;
                break;
            }
        }
        hit += usize::from(any);
    }
    hit as f64 / streams.len() as f64
}

#[test]
#[ignore]
fn calibrate_distributions() {
    for n in [12usize, 20, 40, 64, 100] {
        let mut line = format!("beacon n{n:<3}");
        for (jl, j) in [
            ("0", Jitter::Symmetric(0.0)),
            ("s10", Jitter::Symmetric(0.1)),
            ("s25", Jitter::Symmetric(0.25)),
            ("s50", Jitter::Symmetric(0.5)),
            ("o50", Jitter::OneSided(0.5)),
        ] {
            for miss in [0.0, 0.1, 0.3] {
                let streams: Vec<Vec<i64>> = (0..200u64)
                    .map(|seed| {
                        let mut rng = Rng::new(seed + 1);
                        beacon_times(&mut rng, T0, 60.0, n, j, miss)
                    })
                    .collect();
                line += &format!(" {jl}/{miss}:{:.2}", ever(&streams));
            }
        }
        println!("{line}");
    }
    for (label, kind) in [("poisson", 0), ("browsing", 1)] {
        for n in [20usize, 64, 200] {
            let streams: Vec<Vec<i64>> = (0..1000u64)
                .map(|seed| {
                    let mut rng = Rng::new(seed + 1000);
                    let end = T0 + 1_000_000 * S;
                    let mut t = if kind == 0 {
                        poisson_times(&mut rng, T0, 60.0, end)
                    } else {
                        browsing_times(&mut rng, T0, 300.0, end)
                    };
                    t.truncate(n);
                    t
                })
                .collect();
            println!("{label} n{n}: ever-pass {:.4}", ever(&streams));
        }
    }
}
