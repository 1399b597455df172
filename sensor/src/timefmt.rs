//! EVE timestamps (`2026-11-25T19:55:12.123456+0000`, UTC) from packet time, without a
//! date-time crate: the civil-from-days conversion is a few lines (H. Hinnant's algorithm).

use analyzers::TsNanos;

/// Appends the EVE timestamp of `ts` (nanoseconds since the epoch) to `out`.
pub fn write_eve_ts(out: &mut String, ts: TsNanos) {
    let mut b = Vec::with_capacity(32);
    write_eve_ts_bytes(&mut b, ts);
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// The same into a byte buffer, digit by digit: this runs three times per flow record.
pub fn write_eve_ts_bytes(out: &mut Vec<u8>, ts: TsNanos) {
    let secs = ts.div_euclid(1_000_000_000);
    let micros = ts.rem_euclid(1_000_000_000) / 1_000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        digits(out, y as u64, 4);
    } else {
        // Outside four-digit years (hostile timestamps): what `{:04}` would print.
        out.extend_from_slice(format!("{y:04}").as_bytes());
    }
    out.push(b'-');
    digits(out, m as u64, 2);
    out.push(b'-');
    digits(out, d as u64, 2);
    out.push(b'T');
    digits(out, (sod / 3600) as u64, 2);
    out.push(b':');
    digits(out, ((sod / 60) % 60) as u64, 2);
    out.push(b':');
    digits(out, (sod % 60) as u64, 2);
    out.push(b'.');
    digits(out, micros as u64, 6);
    out.extend_from_slice(b"+0000");
}

/// `v` as exactly `n` decimal digits (zero-padded; `v < 10^n`).
fn digits(out: &mut Vec<u8>, mut v: u64, n: usize) {
    let start = out.len();
    out.resize(start + n, b'0');
    for i in (0..n).rev() {
        out[start + i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

pub fn eve_ts(ts: TsNanos) -> String {
    let mut s = String::with_capacity(32);
    write_eve_ts(&mut s, ts);
    s
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(eve_ts(0), "1970-01-01T00:00:00.000000+0000");
        // 2026-11-25T19:55:12.123456789Z
        assert_eq!(
            eve_ts(1_795_636_512_123_456_789),
            "2026-11-25T19:55:12.123456+0000"
        );
        // Leap day.
        assert_eq!(
            eve_ts(951_782_400 * 1_000_000_000),
            "2000-02-29T00:00:00.000000+0000"
        );
        // Before the epoch stays well-formed.
        assert_eq!(eve_ts(-1), "1969-12-31T23:59:59.999999+0000");
        // The extremes of the clock still give what `{:04}` formatting gave.
        for ts in [i64::MIN, i64::MAX, 0, 1] {
            let secs = ts.div_euclid(1_000_000_000);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let sod = secs.rem_euclid(86_400);
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+0000",
                sod / 3600,
                (sod / 60) % 60,
                sod % 60,
                ts.rem_euclid(1_000_000_000) / 1_000
            );
            assert_eq!(eve_ts(ts), want);
        }
    }
}
