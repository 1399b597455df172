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
        && fit.significance >= score::required_significance(GATE, gaps.len(), fit.period)
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
    // The gate depends on the fitted period (rate term), so the negatives are run at a fast,
    // the reference and a slow time scale.
    for (label, kind, scale) in [
        ("poisson 6s", 0, 0.1),
        ("poisson 60s", 0, 1.0),
        ("poisson 1h", 0, 60.0),
        ("browsing", 1, 1.0),
        ("browsing x12", 1, 12.0),
    ] {
        for n in [20usize, 64, 200] {
            let streams: Vec<Vec<i64>> = (0..1000u64)
                .map(|seed| {
                    let mut rng = Rng::new(seed + 1000);
                    let end = T0 + (1_000_000.0 * scale) as i64 * S;
                    let mut t = if kind == 0 {
                        poisson_times(&mut rng, T0, 60.0 * scale, end)
                    } else {
                        browsing_times(&mut rng, T0, 300.0 * scale, end)
                    };
                    t.truncate(n);
                    t
                })
                .collect();
            println!("{label} n{n}: ever-pass {:.4}", ever(&streams));
        }
    }
}

#[test]
#[ignore]
fn probe_gaps_file() {
    let Ok(path) = std::env::var("PROBE") else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let name = it.next().unwrap_or("");
        let gaps: Vec<f64> = it.filter_map(|x| x.parse().ok()).collect();
        println!("== {name}");
        let stride: usize = std::env::var("PROBE_STRIDE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        for end in (5..=gaps.len()).step_by(stride) {
            let lo = end.saturating_sub(63);
            let g = &gaps[lo..end];
            let Some(fit) = period::fit(g, 0.5) else {
                continue;
            };
            let mut sizes: Vec<f64> = g.iter().map(|_| 400.0).collect();
            let mut tmp = Vec::new();
            let p = score::combine(&fit, &mut sizes, 0.5, GATE, &mut tmp);
            let req = score::required_significance(GATE, g.len(), fit.period);
            let tail = g.iter().filter(|&&x| x > 4.5 * fit.period).count();
            let mx = g.iter().cloned().fold(0.0, f64::max) / fit.period;
            if std::env::var("PROBE_PASS").is_ok() && !(fit.significance >= req && p.total >= THR) {
                continue;
            }
            print!("tail {tail} max {mx:5.1} ");
            println!(
                "  n{:<3} P {:8.1} j {:.2} q {:.2} expl {:.2} sig {:6.1}/{:5.1} tot {:.3} per {:.2} disp {:.2} cov {:.2}",
                g.len(), fit.period, fit.jitter, fit.missed, fit.explained, fit.significance, req, p.total, p.period, p.dispersion, p.coverage
            );
        }
    }
}
