//! Conversion of the daemon's image descriptions (bollard models) into [`ImageInfo`].
//!
//! Owns reading inspect and list answers without trusting them (no field is assumed
//! present); it must not talk to the daemon.

use bollard::models::{ImageInspect, ImageSummary};

use super::api::ImageInfo;
use crate::platform::Platform;

/// From `GET /images/{name}/json`.
pub(crate) fn from_inspect(image: ImageInspect) -> ImageInfo {
    ImageInfo {
        id: image.id.unwrap_or_default(),
        repo_tags: image.repo_tags.unwrap_or_default(),
        repo_digests: image.repo_digests.unwrap_or_default(),
        size: image.size.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
        labels: image
            .config
            .and_then(|c| c.labels)
            .unwrap_or_default()
            .into_iter()
            .collect(),
        created: image.created.as_deref().and_then(unix_seconds),
        os: image.os,
        architecture: image.architecture,
    }
}

/// From one entry of `GET /images/json`, which carries no platform.
pub(crate) fn from_summary(image: ImageSummary) -> ImageInfo {
    ImageInfo {
        id: image.id,
        repo_tags: image
            .repo_tags
            .into_iter()
            .filter(|t| t != "<none>:<none>")
            .collect(),
        repo_digests: image
            .repo_digests
            .into_iter()
            .filter(|d| d != "<none>@<none>")
            .collect(),
        size: u64::try_from(image.size).unwrap_or(0),
        labels: image.labels.into_iter().collect(),
        created: Some(image.created),
        os: None,
        architecture: None,
    }
}

/// The platform of an inspected image.
pub(crate) fn platform_of(image: &ImageInspect) -> Platform {
    Platform::new(
        image.os.as_deref().unwrap_or("unknown"),
        image.architecture.as_deref().unwrap_or("unknown"),
        image.variant.as_deref(),
    )
}

/// Seconds since the epoch of an RFC 3339 time as dockerd writes it
/// (`2026-11-24T04:42:08.710175918Z`, or with a `+hh:mm` offset).
pub(crate) fn unix_seconds(text: &str) -> Option<i64> {
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
        ];
        for (text, want) in table {
            assert_eq!(unix_seconds(text), want, "{text}");
        }
    }

    #[test]
    fn the_platform_of_an_inspected_image_keeps_its_variant() {
        let image = ImageInspect {
            os: Some("linux".into()),
            architecture: Some("arm".into()),
            variant: Some("v7".into()),
            ..Default::default()
        };
        assert_eq!(platform_of(&image).to_string(), "linux/arm/v7");
    }

    #[test]
    fn missing_fields_do_not_panic() {
        let info = from_inspect(ImageInspect::default());
        assert_eq!(info, ImageInfo::default());
    }
}
