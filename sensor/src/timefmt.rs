//! EVE timestamps (`2026-11-25T19:55:12.123456+0000`, UTC) from packet time, without a
//! date-time crate: the civil-from-days conversion is a few lines (H. Hinnant's algorithm).

use analyzers::TsNanos;
use std::cell::Cell;

const NANOS: i64 = 1_000_000_000;
/// `YYYY-MM-DDTHH:MM:SS.` for a four-digit year.
const PREFIX: usize = 20;
/// Prefix, six micro digits, `+0000`.
const FULL: usize = PREFIX + 6 + 5;
/// Slots of the per-thread prefix cache (direct-mapped by second).
const SLOTS: usize = 8;

thread_local! {
    // A flow record's three timestamps are two distinct seconds (first and last packet), and
    // records of one epoch share seconds: a few slots keep nearly every prefix, so most calls
    // format only the micro digits. `i64::MIN` is never a second of a timestamp.
    static PREFIXES: [Cell<(i64, [u8; PREFIX])>; SLOTS] =
        const { [const { Cell::new((i64::MIN, [0; PREFIX])) }; SLOTS] };
}

/// Appends the EVE timestamp of `ts` (nanoseconds since the epoch) to `out`.
pub fn write_eve_ts(out: &mut String, ts: TsNanos) {
    let mut b = Vec::with_capacity(32);
    write_eve_ts_bytes(&mut b, ts);
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// The same into a byte buffer: this runs three times per flow record.
pub fn write_eve_ts_bytes(out: &mut Vec<u8>, ts: TsNanos) {
    write_secs(
        out,
        ts.div_euclid(NANOS),
        (ts.rem_euclid(NANOS) / 1_000) as u32,
    );
}

/// Second `secs` and `micros` (< 10^6) of it.
fn write_secs(out: &mut Vec<u8>, secs: i64, micros: u32) {
    let Some(prefix) = cached_prefix(secs) else {
        write_wide(out, secs, micros);
        return;
    };
    let mut b = [0u8; FULL];
    b[..PREFIX].copy_from_slice(&prefix);
    put_digits(&mut b[PREFIX..PREFIX + 6], micros);
    b[PREFIX + 6..].copy_from_slice(b"+0000");
    out.extend_from_slice(&b);
}

/// The prefix of second `secs`, from the cache or formatted into it; `None` for a year
/// outside 0..=9999, whose text is not 20 bytes.
fn cached_prefix(secs: i64) -> Option<[u8; PREFIX]> {
    let slot = secs.rem_euclid(SLOTS as i64) as usize;
    PREFIXES.with(|p| {
        let cell = p.get(slot)?;
        let (s, bytes) = cell.get();
        if s == secs {
            return Some(bytes);
        }
        let bytes = prefix(secs)?;
        cell.set((secs, bytes));
        Some(bytes)
    })
}

/// The date-time fields of second `secs`: year, month, day, seconds of the day.
fn fields(secs: i64) -> (i64, u32, u32, i64) {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    (y, m, d, secs.rem_euclid(86_400))
}

/// `YYYY-MM-DDTHH:MM:SS.` of second `secs` when the year has four digits.
fn prefix(secs: i64) -> Option<[u8; PREFIX]> {
    let (y, m, d, sod) = fields(secs);
    let y = u32::try_from(y).ok().filter(|y| *y <= 9999)?;
    let mut b = *b"0000-00-00T00:00:00.";
    put_digits(&mut b[0..4], y);
    put_digits(&mut b[5..7], m);
    put_digits(&mut b[8..10], d);
    put_digits(&mut b[11..13], (sod / 3600) as u32);
    put_digits(&mut b[14..16], ((sod / 60) % 60) as u32);
    put_digits(&mut b[17..19], (sod % 60) as u32);
    Some(b)
}

/// Years outside four digits (hostile timestamps): the year as `{:04}` prints it.
fn write_wide(out: &mut Vec<u8>, secs: i64, micros: u32) {
    let (y, m, d, sod) = fields(secs);
    out.extend_from_slice(format!("{y:04}").as_bytes());
    let mut b = *b"-00-00T00:00:00.000000+0000";
    put_digits(&mut b[1..3], m);
    put_digits(&mut b[4..6], d);
    put_digits(&mut b[7..9], (sod / 3600) as u32);
    put_digits(&mut b[10..12], ((sod / 60) % 60) as u32);
    put_digits(&mut b[13..15], (sod % 60) as u32);
    put_digits(&mut b[16..22], micros);
    out.extend_from_slice(&b);
}

/// `v` as exactly `dst.len()` decimal digits (zero-padded; `v < 10^len`).
fn put_digits(dst: &mut [u8], mut v: u32) {
    for c in dst.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
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

    /// The formatter before the prefix cache, kept as the reference.
    fn reference(out: &mut Vec<u8>, secs: i64, micros: i64) {
        fn digits(out: &mut Vec<u8>, mut v: u64, n: usize) {
            let start = out.len();
            out.resize(start + n, b'0');
            for i in (0..n).rev() {
                out[start + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if (0..=9999).contains(&y) {
            digits(out, y as u64, 4);
        } else {
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

    fn check(ts: TsNanos) {
        let (mut a, mut b) = (b"x".to_vec(), b"x".to_vec());
        write_eve_ts_bytes(&mut a, ts);
        reference(&mut b, ts.div_euclid(NANOS), ts.rem_euclid(NANOS) / 1_000);
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "{ts}"
        );
    }

    /// Seconds beyond the nanosecond clock's 1677..2262 range: years of five digits and
    /// negative years take the uncached path.
    fn check_secs(secs: i64, micros: u32) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_secs(&mut a, secs, micros);
        reference(&mut b, secs, micros.into());
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "{secs}"
        );
    }

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

    #[test]
    fn cached_prefixes_match_the_reference() {
        // Seconds around the epoch, the clock's ends and a second boundary, visited in an
        // order that hits, misses and evicts cache slots.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for base in [
            0,
            1_795_636_512_123_456_789,
            i64::MIN,
            i64::MIN + 20 * NANOS,
            i64::MAX - 20 * NANOS,
            i64::MAX,
        ] {
            for step in -20i64..20 {
                for off in [0, 1, 999, 1_000, 999_999_999, NANOS / 2] {
                    let ts = base.saturating_add(step * NANOS).saturating_add(off);
                    check(ts);
                    check(ts.saturating_sub(1));
                    check(ts);
                }
            }
        }
        // Years 9999/10000, 0/-1 and far beyond, at the seconds level.
        let year_10000: i64 = 253_402_300_800; // 10000-01-01T00:00:00Z
        let year_0: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
        for base in [year_10000, year_0, 0, i64::MAX / 1000, i64::MIN / 1000] {
            for step in -100..100 {
                check_secs(base + step, 0);
                check_secs(base + step, 999_999);
                check_secs(base - step * 86_399, 123_456);
            }
        }
        // Random instants (xorshift), alternating near and far seconds as flow records do.
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ts = x as i64;
            check(ts);
            check(1_795_636_512_000_000_000 + (ts >> 34));
            check(ts >> 20);
        }
    }
}
