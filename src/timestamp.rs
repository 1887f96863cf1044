//! RFC 3339 timestamps (image `created` times, daemon inspect output) as unix seconds.
//!
//! Owns that one conversion, so no module carries its own date arithmetic.

/// Seconds since the epoch of an RFC 3339 time as dockerd writes it
/// (`2026-11-24T04:42:08.710175918Z`, or with a `+hh:mm` offset).
pub fn unix_seconds(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(at) => time.split_at(at),
        None => return None,
    };
    let mut hms = clock.splitn(3, ':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let second: i64 = hms.next()?.split('.').next()?.parse().ok()?;
    let offset_seconds = match offset {
        "Z" | "z" => 0,
        _ => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (h, m) = offset.get(1..)?.split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_become_unix_seconds() {
        let table = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-11-24T04:42:08.710175918Z", Some(1_795_495_328)),
            ("2000-03-01T01:00:00+01:00", Some(951_868_800)),
            ("0001-01-01T00:00:00Z", Some(-62_135_596_800)),
            ("yesterday", None),
            ("2026-13-01T00:00:00Z", None),
            ("2024-01-01T08:00:00.123456+08:00", Some(1_704_067_200)),
            ("2000-02-29T12:30:15-01:30", Some(951_832_815)),
        ];
        for (text, want) in table {
            assert_eq!(unix_seconds(text), want, "{text}");
        }
    }
}
