//! Parsing and printing of the quantities on the command line and in the output; no I/O.

use std::time::Duration;

/// One mebibyte, the unit KubeVirt's constants and `addedOverhead` are written in.
pub const MI: f64 = 1024.0 * 1024.0;

/// A malformed flag value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("{0:?} is not a duration: use a number and one of s, m, h, d, w (e.g. 24h, 7d)")]
    Duration(String),
    #[error("{0:?} is not a percentage: use e.g. 10% or 0.1")]
    Percent(String),
    #[error("{0:?} is not a quantile between 0 and 1")]
    Quantile(String),
}

/// `30s`, `15m`, `24h`, `7d`, `2w`: a whole number of one unit, as Prometheus writes ranges.
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let bad = || ParseError::Duration(text.to_owned());
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let total = number.checked_mul(seconds).ok_or_else(bad)?;
    if total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// `10%` or `0.1`: a fraction, at least 0.
pub fn parse_percent(text: &str) -> Result<f64, ParseError> {
    let bad = || ParseError::Percent(text.to_owned());
    let value = match text.strip_suffix('%') {
        Some(number) => number.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => text.trim().parse::<f64>().map_err(|_| bad())?,
    };
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    Ok(value)
}

/// A quantile in (0, 1].
pub fn parse_quantile(text: &str) -> Result<f64, ParseError> {
    match text.trim().parse::<f64>() {
        Ok(q) if q > 0.0 && q <= 1.0 => Ok(q),
        _ => Err(ParseError::Quantile(text.to_owned())),
    }
}

/// A duration in Prometheus' range syntax, in the largest unit that divides it.
pub fn promql_duration(duration: Duration) -> String {
    let seconds = duration.as_secs().max(1);
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// A span for people: `3d4h`, `5h12m`, `40m`, `12s`.
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// Bytes as `Mi`, one decimal, the way the table shows memory.
pub fn mebibytes(bytes: f64) -> String {
    format!("{:.1}Mi", bytes / MI)
}

/// Bytes rounded up to a whole number of Mi: what a quantity in a patch says. A thousandth of a
/// byte is forgiven, so that float error on an exact number of Mi does not add one.
pub fn ceil_mebibytes(bytes: f64) -> u64 {
    if bytes <= 0.0 {
        return 0;
    }
    ((bytes - 1e-3) / MI).ceil() as u64
}

/// Bytes as `Mi` with a sign: what a change adds (`+12.5Mi`) or saves (`-3.0Mi`).
pub fn signed_mebibytes(bytes: f64) -> String {
    let text = mebibytes(bytes.abs());
    if bytes < 0.0 && text != "0.0Mi" {
        format!("-{text}")
    } else {
        format!("+{text}")
    }
}

/// Unix seconds as a UTC time to the minute, RFC 3339: `2026-05-31T18:04Z`.
pub fn utc(seconds: f64) -> String {
    let minutes = (seconds / 60.0).floor() as i64;
    let (days, minute_of_day) = (minutes.div_euclid(1440), minutes.rem_euclid(1440));
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}Z",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// Days since 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// CPU cores as kubectl top shows them: millicores.
pub fn millicores(cores: f64) -> String {
    format!("{}m", (cores * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("30s", Some(30)),
            ("15m", Some(900)),
            ("24h", Some(86_400)),
            ("7d", Some(604_800)),
            ("2w", Some(1_209_600)),
            ("0h", None),
            ("h", None),
            ("7", None),
            ("7 d", None),
            ("1.5d", None),
            ("-1d", None),
            ("7y", None),
        ];
        for (text, want) in cases {
            let got = parse_duration(text).ok().map(|d| d.as_secs());
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn percents() {
        let cases = [
            ("10%", Some(0.1)),
            ("0%", Some(0.0)),
            ("0.25", Some(0.25)),
            ("150%", Some(1.5)),
            ("-5%", None),
            ("ten", None),
            ("%", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_percent(text).ok(), want, "{text}");
        }
    }

    #[test]
    fn quantiles() {
        assert_eq!(parse_quantile("0.99"), Ok(0.99));
        assert_eq!(parse_quantile("1"), Ok(1.0));
        assert!(parse_quantile("0").is_err());
        assert!(parse_quantile("1.1").is_err());
        assert!(parse_quantile("x").is_err());
    }

    #[test]
    fn printing() {
        assert_eq!(promql_duration(Duration::from_secs(604_800)), "7d");
        assert_eq!(promql_duration(Duration::from_secs(86_400 * 3)), "3d");
        assert_eq!(promql_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(promql_duration(Duration::from_secs(61)), "61s");
        assert_eq!(human_duration(3.0 * 86_400.0 + 4.0 * 3600.0 + 59.0), "3d4h");
        assert_eq!(human_duration(5.0 * 3600.0 + 12.0 * 60.0), "5h12m");
        assert_eq!(human_duration(2400.0), "40m");
        assert_eq!(human_duration(12.0), "12s");
        assert_eq!(human_duration(86_400.0), "1d");
        assert_eq!(mebibytes(150.0 * MI), "150.0Mi");
        assert_eq!(ceil_mebibytes(MI + 1.0), 2);
        assert_eq!(ceil_mebibytes(2.0 * MI), 2);
        assert_eq!(ceil_mebibytes(-5.0), 0);
        assert_eq!(millicores(0.0125), "13m");
        assert_eq!(signed_mebibytes(12.5 * MI), "+12.5Mi");
        assert_eq!(signed_mebibytes(-3.0 * MI), "-3.0Mi");
        assert_eq!(signed_mebibytes(-1.0), "+0.0Mi");
    }

    #[test]
    fn utc_times() {
        let cases = [
            (0.0, "1970-01-01T00:00Z"),
            (1_780_272_000.0, "2026-06-01T00:00Z"),
            (1_780_272_000.0 - 59.9, "2026-05-31T23:59Z"),
            (951_782_400.0 + 3723.0, "2000-02-29T01:02Z"),
            (4_107_542_400.0, "2100-03-01T00:00Z"),
            (-60.0, "1969-12-31T23:59Z"),
        ];
        for (seconds, want) in cases {
            assert_eq!(utc(seconds), want, "{seconds}");
        }
    }
}
