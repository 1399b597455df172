//! Robust order statistics used by the dispersion and size scores.

/// Linear-interpolated quantile of an ascending slice (`q` in 0..=1). NaN when empty.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let frac = pos - lo as f64;
            sorted[lo] + (sorted[hi] - sorted[lo]) * frac
        }
    }
}

pub(crate) fn sort(v: &mut [f64]) {
    v.sort_by(|a, b| a.total_cmp(b));
}

/// Median absolute deviation around `center` (unscaled).
pub(crate) fn mad(values: &[f64], center: f64, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(values.iter().map(|v| (v - center).abs()));
    sort(scratch);
    quantile(scratch, 0.5)
}

/// RITA's Bowley-skew score, `1 − |(Q1 + Q3 − 2·Q2) / (Q3 − Q1)|`: 1 for a symmetric
/// distribution, 0 for one piled against a quartile. No spread at all counts as symmetric.
pub(crate) fn bowley_score(sorted: &[f64]) -> f64 {
    let (q1, q2, q3) = (
        quantile(sorted, 0.25),
        quantile(sorted, 0.5),
        quantile(sorted, 0.75),
    );
    let iqr = q3 - q1;
    if iqr.is_nan() || iqr <= 1e-9 * q2.abs().max(1e-12) {
        return 1.0;
    }
    (1.0 - ((q1 + q3 - 2.0 * q2) / iqr).abs()).clamp(0.0, 1.0)
}

/// RITA's MAD score, `(median − MAD) / median`, clamped to 0..1.
pub(crate) fn mad_score(sorted: &[f64], scratch: &mut Vec<f64>) -> f64 {
    let med = quantile(sorted, 0.5);
    if med.is_nan() || med <= 0.0 {
        return 0.0;
    }
    let m = mad(sorted, med, scratch);
    ((med - m) / med).clamp(0.0, 1.0)
}

/// Mean of the Bowley and MAD scores of `values` (sorted in place): RITA's timestamp and
/// size dispersion view.
pub(crate) fn dispersion_score(values: &mut [f64], scratch: &mut Vec<f64>) -> f64 {
    sort(values);
    0.5 * bowley_score(values) + 0.5 * mad_score(values, scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_scores() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&v, 0.1), 1.4);
        let mut s = Vec::new();
        let mut same = [7.0; 10];
        assert_eq!(dispersion_score(&mut same, &mut s), 1.0);
        // skewed: Q1 = Q2 → Bowley 0
        let skew = [1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 9.0, 20.0];
        assert!(bowley_score(&skew) < 0.3);
        let mut spread = [0.1, 1.0, 3.0, 10.0];
        assert!(dispersion_score(&mut spread, &mut s) < 0.6);
    }
}
