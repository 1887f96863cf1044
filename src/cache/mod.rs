//! Local caches: blobs on disk for the registry transport, and the size budget syntax.
//!
//! Owns cache layout and pruning policy. It must not decide what to copy; transports ask
//! the cache for blobs and tell it what they used.

mod blobs;
mod images;

pub use blobs::{BlobCache, CacheError};
pub use images::{cached_images, prune_images, CachedImage};

/// Parses a size budget: `20GiB`, `500MB`, `1.5G`, `1048576` (bytes). Binary and decimal
/// units are both accepted (`KiB`/`KB`/`K` …); a bare `G` means GiB, as in docker's docs.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size {text:?}: expected e.g. 20GiB, 500MB or 1048576");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        "t" | "tib" => 1 << 40,
        "tb" => 1_000_000_000_000,
        _ => return Err(invalid()),
    };
    if !number.is_finite() || number < 0.0 {
        return Err(invalid());
    }
    Ok((number * multiplier as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("20GiB"), Ok(20 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size(" 2 kib "), Ok(2048));
        for bad in ["", "GiB", "-1G", "1.2.3G", "10 parsecs"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
