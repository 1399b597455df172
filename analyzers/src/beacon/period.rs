//! Period estimation over inter-arrival gaps, with a permutation-free significance test.
//!
//! Two "beacon" models are fitted by maximum likelihood and compared, with BIC penalties,
//! against two "not periodic" models (see `docs/beacon.md` for the full rationale):
//!
//! * **Comb** — beats every `P` seconds with per-beat jitter, some beats missed: a gap spans
//!   `k ∈ 1..=KMAX` sleeps, `k − 1 ~ Geometric(q)` (q = missed-beat ratio), and
//!   `gap ~ Normal(k·P, k·σ²)` (jitter of consecutive sleeps adds up). Uniform outliers
//!   (stray connections) take a fixed 5 % weight. `σ` is capped by the jitter tolerance, so
//!   the model cannot stretch to fit arbitrary data.
//! * **Two periods** — gaps drawn from two clusters (e.g. 30 s and 90 s alternating), each
//!   `Normal(P_j, σ_j²)` with the same σ cap, plus outliers.
//! * **Null** — exponential gaps (Poisson arrivals, CV = 1) and a two-exponential mixture
//!   (bursty browsing, CV > 1). Neither can produce gaps with CV < 1, which is what periodic
//!   traffic has even at ±50 % jitter.
//!
//! Significance = best beacon BIC − best null BIC, in nats (natural-log Bayes-factor
//! approximation). No permutations, no binning: exact (millisecond) gaps are used.

use super::stats::{quantile, sort};

/// Largest number of periods one gap may span (3 consecutive missed beats).
pub(crate) const KMAX: usize = 4;
/// Weight of the uniform outlier component of the beacon models.
const OUTLIER_W: f64 = 0.05;
/// σ floor relative to the period: timestamps are ms, capture/scheduling adds ~0.1 %.
const SIGMA_FLOOR_REL: f64 = 0.002;
/// σ floor in seconds (millisecond timestamps, OS timer slack).
const SIGMA_FLOOR_ABS: f64 = 0.002;
/// Slack on the σ cap: a sample's σ overshoots the population's.
const SIGMA_CAP_SLACK: f64 = 1.15;
/// Missed-beat ratio cap: beyond it, "P with most beats missed" is really a longer period.
const Q_MAX: f64 = 0.75;
/// Missed-beat ratio floor (keeps log w_k finite).
const Q_MIN: f64 = 0.005;
/// Two-period model: each cluster holds at least this share of gaps.
const TWO_MIN_SHARE: f64 = 0.2;
/// Two-period model: the longer period is at least this many times the shorter.
const TWO_MIN_RATIO: f64 = 1.3;
/// Two-period model: least bimodality, Ashman's D = √2·|μ1 − μ2| / √(σ1² + σ2²). D > 2 is
/// the textbook "clean separation"; 4 keeps a ±50 % uniform period (D ≈ 2.7 when halved)
/// in the comb model.
const TWO_MIN_ASHMAN_D: f64 = 4.0;
/// Starting periods closer than this (relative) are refined once.
const CAND_DEDUPE: f64 = 0.04;
/// EM iterations of the two-exponential null (it converges in a handful from a median split).
const HYPEREXP_EM_ITERS: usize = 15;
/// Comb candidates whose full likelihood is computed (the rest are ranked by the cheap one).
const FULL_LL_CANDIDATES: usize = 2;
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PeriodFit {
    /// Dominant period, seconds (mean interval between beats of that period).
    pub period: f64,
    /// Second period when the two-period model wins.
    pub secondary: Option<f64>,
    /// Equivalent uniform jitter half-width relative to the period, `√3·σ/P`, 0..1.
    pub jitter: f64,
    /// Estimated missed-beat ratio (comb model), 0 for the two-period model.
    pub missed: f64,
    /// Share of gaps the model explains (within 3σ of a comb tooth / cluster center).
    pub explained: f64,
    /// Best beacon BIC − best null BIC, nats.
    pub significance: f64,
    /// Gaps normalised by the period(s) they span (≈ 1 for a clean beacon).
    pub units: Vec<f64>,
    /// How many periods the gaps cover.
    pub periods_spanned: f64,
}

fn sigma_bounds(p: f64, tau: f64) -> (f64, f64) {
    let lo = (SIGMA_FLOOR_REL * p).max(SIGMA_FLOOR_ABS);
    let hi = (SIGMA_CAP_SLACK * tau / 3f64.sqrt() * p).max(lo);
    (lo, hi)
}

fn ln_normal(x: f64, mean: f64, sd: f64) -> f64 {
    let z = (x - mean) / sd;
    -0.5 * z * z - sd.ln() - LN_SQRT_2PI
}

fn logaddexp(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        hi
    } else {
        hi + (lo - hi).exp().ln_1p()
    }
}

/// ln of the truncated-geometric tooth weights `(1 − q)·q^(k−1)`, k = 1..=KMAX.
fn tooth_weights(q: f64) -> [f64; KMAX] {
    let norm = 1.0 - q.powi(KMAX as i32);
    let mut w = [0.0; KMAX];
    for (i, v) in w.iter_mut().enumerate() {
        *v = ((1.0 - q) * q.powi(i as i32) / norm).ln();
    }
    w
}

/// Per-tooth constants: ln w_k − ln(σ√k) − ln√(2π), and 1/(kσ²).
struct Teeth {
    c: [f64; KMAX],
    inv_var: [f64; KMAX],
}

impl Teeth {
    fn new(q: f64, sigma: f64) -> Teeth {
        let ln_w = tooth_weights(q);
        let mut t = Teeth {
            c: [0.0; KMAX],
            inv_var: [0.0; KMAX],
        };
        for k in 1..=KMAX {
            let var = sigma * sigma * k as f64;
            t.c[k - 1] = ln_w[k - 1] - 0.5 * var.ln() - LN_SQRT_2PI;
            t.inv_var[k - 1] = 1.0 / var;
        }
        t
    }
    /// ln(w_k·N(g; kP, kσ²)).
    fn ln(&self, g: f64, p: f64, k: usize) -> f64 {
        let d = g - k as f64 * p;
        self.c[k - 1] - 0.5 * d * d * self.inv_var[k - 1]
    }
    /// The tooth k maximising w_k·N(g; kP, kσ²) and its log density (no transcendentals).
    /// Only the two teeth around g/P can win.
    fn best(&self, g: f64, p: f64) -> (usize, f64) {
        let lo = ((g / p).floor() as usize).clamp(1, KMAX);
        let hi = (lo + 1).min(KMAX);
        let (a, b) = (self.ln(g, p, lo), self.ln(g, p, hi));
        if b > a {
            (hi, b)
        } else {
            (lo, a)
        }
    }
}

fn k_of(g: f64, p: f64) -> usize {
    ((g / p).round() as usize).clamp(1, KMAX)
}

#[derive(Clone, Debug)]
struct Comb {
    p: f64,
    sigma_raw: f64,
    q: f64,
    ll: f64,
    inliers: usize,
}

/// Fits the comb model from a starting period by iterated assignment / weighted least squares
/// (the MLE of P with var ∝ k is Σg / Σk over inliers).
fn fit_comb(gaps: &[f64], p0: f64, tau: f64, ln_u: f64) -> Option<Comb> {
    let mut p = p0;
    let mut sigma = sigma_bounds(p, tau).1;
    let mut sigma_raw = sigma;
    let mut q: f64 = 0.1;
    for _ in 0..6 {
        let (mut sg, mut sk, mut sg2k, mut n_in, mut skm1) = (0.0, 0.0, 0.0, 0usize, 0.0);
        let teeth = Teeth::new(q, sigma);
        for &g in gaps {
            let x = g / p;
            if !(0.5..KMAX as f64 + 0.5).contains(&x) {
                continue;
            }
            // Most likely tooth (not merely the nearest): under wide jitter a gap of 1.5·P is
            // far likelier one long sleep than two short ones.
            let k = teeth.best(g, p).0 as f64;
            if (g - k * p).abs() > 3.0 * sigma * k.sqrt() {
                continue;
            }
            sg += g;
            sk += k;
            sg2k += g * g / k;
            skm1 += k - 1.0;
            n_in += 1;
        }
        if n_in < 2 {
            return None;
        }
        let p_old = p;
        p = sg / sk;
        // Σ (g − kP)² / k = Σ g²/k − 2PΣg + P²Σk
        let ss = (sg2k - 2.0 * p * sg + p * p * sk).max(0.0);
        sigma_raw = (ss / n_in as f64).sqrt();
        let (lo, hi) = sigma_bounds(p, tau);
        sigma = sigma_raw.clamp(lo, hi);
        let q_old = q;
        q = (skm1 / sk).clamp(Q_MIN, Q_MAX);
        if (p - p_old).abs() <= 1e-4 * p && (q - q_old).abs() <= 1e-3 {
            break;
        }
    }
    // Log-likelihood with the most likely tooth only (cheap ranking; the winners are
    // re-scored with every tooth by `ll_comb_full`).
    let teeth = Teeth::new(q, sigma);
    let ln_in = (1.0 - OUTLIER_W).ln();
    let ln_out = OUTLIER_W.ln() + ln_u;
    let mut ll = 0.0;
    let mut inliers = 0;
    for &g in gaps {
        let (k, l) = teeth.best(g, p);
        let sd = sigma * (k as f64).sqrt();
        if (g / p) >= 0.5 && (g - k as f64 * p).abs() <= 3.0 * sd {
            inliers += 1;
        }
        // max instead of log-sum-exp: a ranking value without transcendentals (the
        // winners get the exact likelihood from `ll_comb_full`).
        ll += (ln_in + l).max(ln_out);
    }
    Some(Comb {
        p,
        sigma_raw,
        q,
        ll,
        inliers,
    })
}

/// Density of a gap spanning `k` sleeps under the flat (uniform ±h) jitter kernel: uniform
/// for k = 1, triangular for k = 2, Gaussian (Irwin–Hall limit) beyond.
fn flat_density(g: f64, k: usize, p: f64, h: f64) -> f64 {
    let d = (g - k as f64 * p).abs();
    match k {
        1 => {
            if d <= h {
                0.5 / h
            } else {
                0.0
            }
        }
        2 => ((2.0 * h - d) / (4.0 * h * h)).max(0.0),
        _ => {
            let var = h * h * k as f64 / 3.0;
            (-0.5 * d * d / var).exp() / (var * std::f64::consts::TAU).sqrt()
        }
    }
}

/// Full comb likelihood (every tooth, not just the nearest) under the Gaussian kernel and
/// under the flat kernel (Cobalt Strike, Empire and most implants draw jitter uniformly);
/// returns the better one. Only computed for the winning candidate.
fn ll_comb_full(gaps: &[f64], c: &Comb, tau: f64, ln_u: f64) -> f64 {
    let (lo, hi) = sigma_bounds(c.p, tau);
    let sigma = c.sigma_raw.clamp(lo, hi);
    // Flat kernel half-width: the largest single-sleep deviation (the uniform MLE), a bit
    // widened, within the same cap as σ (h = √3·σ for a uniform).
    let mut h: f64 = 0.0;
    for &g in gaps {
        let x = g / c.p;
        if (0.5..1.5).contains(&x) {
            h = h.max((g - c.p).abs());
        }
    }
    let h = (h * 1.05).clamp(3f64.sqrt() * lo, 3f64.sqrt() * hi);
    let w = tooth_weights(c.q).map(f64::exp);
    let teeth = Teeth::new(c.q, sigma);
    let (a_in, a_out) = (1.0 - OUTLIER_W, OUTLIER_W * ln_u.exp());
    let (mut ll_g, mut ll_f) = (0.0, 0.0);
    for &g in gaps {
        let (mut a, mut b) = (0.0, 0.0);
        for k in 1..=KMAX {
            let d = (g - k as f64 * c.p).abs();
            // Teeth more than 8σ√k (Gaussian) / 2h·k (flat) away contribute nothing.
            if d * d * teeth.inv_var[k - 1] < 64.0 {
                a += teeth.ln(g, c.p, k).exp();
            }
            if d < 2.0 * h * k as f64 {
                b += w[k - 1] * flat_density(g, k, c.p, h);
            }
        }
        ll_g += (a_in * a + a_out).ln();
        ll_f += (a_in * b + a_out).ln();
    }
    ll_g.max(ll_f)
}

#[derive(Clone, Debug)]
struct Two {
    c: [f64; 2],
    sigma: [f64; 2],
    sigma_raw: [f64; 2],
    w: [f64; 2],
    ll: f64,
    inliers: usize,
}

/// Two-period mixture: split the sorted log-gaps where the within-group sum of squares is
/// smallest (1-D 2-means, exact), then robust center/spread per group.
fn fit_two(
    gaps: &[f64],
    sorted: &[f64],
    tau: f64,
    ln_u: f64,
    scratch: &mut Vec<f64>,
) -> Option<Two> {
    let n = sorted.len();
    if n < 8 {
        return None;
    }
    let logs: Vec<f64> = sorted.iter().map(|g| g.max(1e-6).ln()).collect();
    let mut pre = vec![(0.0, 0.0); n + 1];
    for i in 0..n {
        pre[i + 1] = (pre[i].0 + logs[i], pre[i].1 + logs[i] * logs[i]);
    }
    let sse = |a: usize, b: usize| {
        let m = (b - a) as f64;
        let s = pre[b].0 - pre[a].0;
        (pre[b].1 - pre[a].1) - s * s / m
    };
    let min_sz = ((n as f64 * TWO_MIN_SHARE).ceil() as usize).max(3);
    if 2 * min_sz > n {
        return None;
    }
    let m = (min_sz..=n - min_sz)
        .min_by(|&a, &b| (sse(0, a) + sse(a, n)).total_cmp(&(sse(0, b) + sse(b, n))))?;
    let groups = [&sorted[..m], &sorted[m..]];
    let mut c = [0.0; 2];
    let mut sigma = [0.0; 2];
    let mut sigma_raw = [0.0; 2];
    for j in 0..2 {
        c[j] = quantile(groups[j], 0.5);
        let mad = super::stats::mad(groups[j], c[j], scratch);
        sigma_raw[j] = 1.4826 * mad;
        let (lo, hi) = sigma_bounds(c[j], tau);
        sigma[j] = sigma_raw[j].clamp(lo, hi);
    }
    // Two real periods, not one wide (e.g. ±50 % uniform) period cut in halves: the
    // clusters must be clearly bimodal (Ashman's D).
    let ashman = 2f64.sqrt() * (c[1] - c[0]) / (sigma[0].powi(2) + sigma[1].powi(2)).sqrt();
    if c[1] < TWO_MIN_RATIO * c[0] || ashman < TWO_MIN_ASHMAN_D {
        return None;
    }
    let w = [m as f64 / n as f64, (n - m) as f64 / n as f64];
    let ln_in = (1.0 - OUTLIER_W).ln();
    let ln_out = OUTLIER_W.ln() + ln_u;
    let mut ll = 0.0;
    let mut inliers = 0;
    for &g in gaps {
        let a = w[0].ln() + ln_normal(g, c[0], sigma[0]);
        let b = w[1].ln() + ln_normal(g, c[1], sigma[1]);
        if (g - c[0]).abs() <= 3.0 * sigma[0] || (g - c[1]).abs() <= 3.0 * sigma[1] {
            inliers += 1;
        }
        ll += logaddexp(ln_in + logaddexp(a, b), ln_out);
    }
    Some(Two {
        c,
        sigma,
        sigma_raw,
        w,
        ll,
        inliers,
    })
}

/// Exponential (Poisson arrivals) log-likelihood at the MLE rate.
fn ll_exponential(gaps: &[f64]) -> f64 {
    let n = gaps.len() as f64;
    let mu = (gaps.iter().sum::<f64>() / n).max(1e-9);
    -n * (mu.ln() + 1.0)
}

/// Two-exponential mixture (bursty traffic) fitted by EM from a median split.
fn ll_hyperexponential(gaps: &[f64], sorted: &[f64]) -> f64 {
    let n = sorted.len();
    let half = n / 2;
    let mean = |s: &[f64]| (s.iter().sum::<f64>() / s.len().max(1) as f64).max(1e-6);
    let mut l = [
        1.0 / mean(&sorted[..half.max(1)]),
        1.0 / mean(&sorted[half..]),
    ];
    let mut pi = 0.5;
    let lik = |g: f64, pi: f64, l: [f64; 2]| {
        let a = pi * l[0] * (-l[0] * g).exp();
        let b = (1.0 - pi) * l[1] * (-l[1] * g).exp();
        (a, b)
    };
    for _ in 0..HYPEREXP_EM_ITERS {
        let (mut r0, mut r0g, mut r1g) = (0.0, 0.0, 0.0);
        for &g in gaps {
            let (a, b) = lik(g, pi, l);
            let t = a + b;
            let r = if t > 0.0 { a / t } else { 0.5 };
            r0 += r;
            r0g += r * g;
            r1g += (1.0 - r) * g;
        }
        let nf = n as f64;
        let pi_old = pi;
        pi = (r0 / nf).clamp(1e-3, 1.0 - 1e-3);
        l = [
            (r0 / r0g.max(1e-9)).min(1e9),
            ((nf - r0) / r1g.max(1e-9)).min(1e9),
        ];
        if (pi - pi_old).abs() < 1e-4 {
            break;
        }
    }
    gaps.iter()
        .map(|&g| {
            let (a, b) = lik(g, pi, l);
            (a + b).max(1e-300).ln()
        })
        .sum()
}

/// Fits the models to `gaps` (seconds, in time order). `tau` is the jitter tolerance (0..1).
/// `None` when there are too few gaps to say anything.
pub(crate) fn fit(gaps: &[f64], tau: f64) -> Option<PeriodFit> {
    let n = gaps.len();
    if n < 4 {
        return None;
    }
    let mut sorted = gaps.to_vec();
    sort(&mut sorted);
    let gmax = sorted[n - 1].max(1e-6);
    let ln_u = -gmax.ln(); // outliers: uniform over [0, longest gap]
    let ln_n = (n as f64).ln();
    let mut scratch = Vec::with_capacity(n);

    // Comb candidates: gap quantiles and their halves/thirds (missed beats make the median a
    // multiple of P; jitter makes single gaps noisy — the iteration fixes both).
    let mut cands: Vec<f64> = Vec::with_capacity(18);
    // The (trimmed) mean gap is the period itself when no beat is missed, whatever the
    // jitter — the quantiles of a ±50 % uniform can sit far from it.
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let (lo, hi) = (n / 10, n - n / 10);
    let trimmed = sorted[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
    let seeds = [
        quantile(&sorted, 0.25),
        quantile(&sorted, 0.5),
        quantile(&sorted, 0.75),
        mean,
        trimmed,
    ];
    for v in seeds {
        for d in [1.0, 2.0, 3.0] {
            let c = v / d;
            if c > 0.0 && !cands.iter().any(|x| (x - c).abs() <= CAND_DEDUPE * c) {
                cands.push(c);
            }
        }
    }
    // Refine every candidate (cheap, nearest-tooth likelihood), keep distinct periods, then
    // rank the best few by the full likelihood (all teeth, both kernels): under ±50 %
    // uniform jitter a shorter period with "missed" beats is otherwise a close rival.
    let mut fits: Vec<Comb> = Vec::with_capacity(cands.len());
    for c in cands {
        if let Some(f) = fit_comb(gaps, c, tau, ln_u) {
            match fits.iter_mut().find(|b| (b.p - f.p).abs() <= 0.03 * f.p) {
                Some(b) if f.ll > b.ll => *b = f,
                Some(_) => {}
                None => fits.push(f),
            }
        }
    }
    fits.sort_by(|a, b| b.ll.total_cmp(&a.ll));
    fits.truncate(FULL_LL_CANDIDATES);
    let mut best: Option<Comb> = None;
    for mut f in fits {
        f.ll = ll_comb_full(gaps, &f, tau, ln_u);
        let better = match &best {
            None => true,
            Some(b) => comb_better(&f, b),
        };
        if better {
            best = Some(f);
        }
    }
    let comb = best?;
    // P, σ (or h), q, and the kernel choice.
    let bic_comb = comb.ll - 2.0 * ln_n;
    let two = fit_two(gaps, &sorted, tau, ln_u, &mut scratch);
    let bic_two = two
        .as_ref()
        .map_or(f64::NEG_INFINITY, |t| t.ll - 2.5 * ln_n);

    let bic_exp = ll_exponential(gaps) - 0.5 * ln_n;
    let beacon_bic = bic_comb.max(bic_two);
    let null_bic = if beacon_bic > bic_exp {
        bic_exp.max(ll_hyperexponential(gaps, &sorted) - 1.5 * ln_n)
    } else {
        bic_exp
    };
    let significance = beacon_bic - null_bic;

    // Two periods only when that model wins and is not just "P with missed beats" (longer
    // cluster an integer multiple of the shorter and clearly the minority).
    let use_two = match &two {
        Some(t) if bic_two > bic_comb => {
            let ratio = t.c[1] / t.c[0];
            let near_int = (ratio - ratio.round()).abs() <= 0.12 * ratio.round();
            !(near_int && t.w[0] >= 0.6)
        }
        _ => false,
    };
    let total: f64 = gaps.iter().sum();
    if use_two {
        let t = two.expect("checked");
        // Dominant: the cluster with more gaps; near-ties go to the one covering more time.
        let time = [t.w[0] * t.c[0], t.w[1] * t.c[1]];
        let d = if (t.w[0] - t.w[1]).abs() <= 0.1 {
            usize::from(time[1] > time[0])
        } else {
            usize::from(t.w[1] > t.w[0])
        };
        let units = gaps
            .iter()
            .map(|&g| {
                let j =
                    usize::from((g - t.c[1]).abs() / t.sigma[1] < (g - t.c[0]).abs() / t.sigma[0]);
                g / t.c[j]
            })
            .collect();
        let jitter =
            3f64.sqrt() * (t.w[0] * t.sigma_raw[0] / t.c[0] + t.w[1] * t.sigma_raw[1] / t.c[1]);
        Some(PeriodFit {
            period: t.c[d],
            secondary: Some(t.c[1 - d]),
            jitter: jitter.clamp(0.0, 1.0),
            missed: 0.0,
            explained: t.inliers as f64 / n as f64,
            significance,
            units,
            periods_spanned: n as f64,
        })
    } else {
        let units = gaps
            .iter()
            .map(|&g| g / (k_of(g, comb.p) as f64 * comb.p))
            .collect();
        Some(PeriodFit {
            period: comb.p,
            secondary: None,
            jitter: (3f64.sqrt() * comb.sigma_raw / comb.p).clamp(0.0, 1.0),
            missed: if comb.q <= Q_MIN { 0.0 } else { comb.q },
            explained: comb.inliers as f64 / n as f64,
            significance,
            units,
            periods_spanned: total / comb.p,
        })
    }
}

/// Higher likelihood wins; within half a nat, the longer period wins (harmonics P/2, P/3 fit
/// nearly as well, at a cost the likelihood already charges through q).
fn comb_better(f: &Comb, b: &Comb) -> bool {
    let harmonic = f.p > 1.5 * b.p || b.p > 1.5 * f.p;
    if harmonic && (f.ll - b.ll).abs() <= 0.5 {
        f.p > b.p
    } else {
        f.ll > b.ll
    }
}
