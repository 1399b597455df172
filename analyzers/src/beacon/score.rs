//! Combining the period fit with RITA-style dispersion, size and coverage views into one
//! 0..1 score. Weights and constants are explained in `docs/beacon.md`.

use super::period::PeriodFit;
use super::stats::dispersion_score;

/// Weight of the period-fit quality (explained share, jitter).
pub(crate) const W_PERIOD: f64 = 0.35;
/// Weight of the dispersion of period-normalised gaps (Bowley skew + MAD, as RITA).
pub(crate) const W_DISPERSION: f64 = 0.30;
/// Weight of size regularity (absent for DNS keys; the others are renormalised).
pub(crate) const W_SIZE: f64 = 0.15;
/// Weight of coverage (how many periods the behaviour has been seen for).
pub(crate) const W_COVERAGE: f64 = 0.20;
/// Period-part penalty when jitter reaches the tolerance (linear below it).
pub(crate) const JITTER_PENALTY: f64 = 0.4;
/// Periods of observation that earn full coverage (RITA's 24 hourly bins, for streaming).
pub(crate) const COVERAGE_FULL_PERIODS: f64 = 20.0;
/// Coverage penalty per unit of missed-beat ratio.
pub(crate) const MISSED_PENALTY: f64 = 0.5;
/// Sizes needed before size regularity counts.
pub(crate) const MIN_SIZES: usize = 4;

/// Small-sample tightening of the significance gate: a key is re-tested at every new beat, so
/// early (few-gap) tests would otherwise add up to false positives; the gate is
/// `min_significance · (1 + SMALL_SAMPLE_GAPS / gaps)`.
pub(crate) const SMALL_SAMPLE_GAPS: f64 = 8.0;

/// Period at which the base gate is exactly `min_significance` (the calibration period).
pub(crate) const GATE_REF_PERIOD_S: f64 = 60.0;
/// The period-rate term never lowers the base gate below this share of `min_significance`:
/// the lowest share at which no seeded Poisson stream at 1 h scale ever passes (calibration;
/// 0.5–0.69 let 1–5 in 1000 through).
pub(crate) const GATE_MIN_SHARE: f64 = 0.75;

/// Significance a fit over `gaps` gaps with period `period_s` needs.
///
/// A key is re-tested at every beat, so a key with period P is tested about T/P times in a
/// window T: keeping the false-alarm rate per key and day the same whatever the period
/// (Bonferroni over the tests) adds ln(P_ref / P) nats — 2.3 more at 6 s, 1.6 fewer at 5 min
/// (floored at 3/4 of the base from ≈ 7.4 min) than at the 60 s calibration period.
pub(crate) fn required_significance(min_significance: f64, gaps: usize, period_s: f64) -> f64 {
    let rate = if period_s > 0.0 && period_s.is_finite() {
        (GATE_REF_PERIOD_S / period_s).ln()
    } else {
        0.0
    };
    let base = (min_significance + rate).max(GATE_MIN_SHARE * min_significance);
    base * (1.0 + SMALL_SAMPLE_GAPS / gaps.max(1) as f64)
}

/// The score and its parts, each 0..1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreParts {
    /// Weighted sum of the parts times `prevalence_factor`.
    pub total: f64,
    pub dispersion: f64,
    pub period: f64,
    /// `None` when sizes carry no information (DNS keys, too few sized beats).
    pub size: Option<f64>,
    pub coverage: f64,
    /// 1.0, or less for a destination many sources beacon to.
    pub prevalence_factor: f64,
}

/// Scores a fit; `sizes` (any order, sorted in place) may be empty. Prevalence is 1.0 here.
pub(crate) fn combine(
    fit: &PeriodFit,
    sizes: &mut [f64],
    tau: f64,
    min_significance: f64,
    scratch: &mut Vec<f64>,
) -> ScoreParts {
    // Significance below the gate scales the period part down linearly (0 for data the
    // Poisson/bursty models explain better), so non-periodic keys also *score* low.
    let gate = required_significance(min_significance, fit.units.len(), fit.period).max(1e-9);
    let confidence = (fit.significance / gate).clamp(0.0, 1.0);
    let period = confidence
        * fit.explained
        * (1.0 - JITTER_PENALTY * (fit.jitter / tau).min(1.0)).clamp(0.0, 1.0);
    let mut units = fit.units.clone();
    let dispersion = dispersion_score(&mut units, scratch);
    let size = (sizes.len() >= MIN_SIZES).then(|| dispersion_score(sizes, scratch));
    let coverage = (fit.periods_spanned / COVERAGE_FULL_PERIODS).min(1.0)
        * (1.0 - MISSED_PENALTY * fit.missed).clamp(0.0, 1.0);
    let (mut sum, mut w) = (
        W_PERIOD * period + W_DISPERSION * dispersion + W_COVERAGE * coverage,
        W_PERIOD + W_DISPERSION + W_COVERAGE,
    );
    if let Some(s) = size {
        sum += W_SIZE * s;
        w += W_SIZE;
    }
    ScoreParts {
        total: (sum / w).clamp(0.0, 1.0),
        dispersion,
        period,
        size,
        coverage,
        prevalence_factor: 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_rises_for_fast_keys_and_falls_for_slow_ones() {
        let at = |p: f64| required_significance(8.0, 40, p);
        assert!((at(60.0) - 8.0 * 1.2).abs() < 1e-9);
        assert!((at(6.0) - (8.0 + 10f64.ln()) * 1.2).abs() < 1e-9);
        assert!((at(300.0) - (8.0 - 5f64.ln()) * 1.2).abs() < 1e-9);
        // Floored at 3/4 of the base for long periods.
        assert!((at(600.0) - 6.0 * 1.2).abs() < 1e-9);
        assert!((at(3600.0) - 6.0 * 1.2).abs() < 1e-9);
        assert!((at(7200.0) - 6.0 * 1.2).abs() < 1e-9);
        // A degenerate period falls back to the base.
        assert!((at(0.0) - 8.0 * 1.2).abs() < 1e-9);
        // Small samples still pay for the repeated tests.
        assert!(required_significance(8.0, 5, 60.0) > 2.0 * at(60.0) - 1.0);
    }
}
