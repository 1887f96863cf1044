//! auth.yaml's `limits:` block: per-registry overrides of what a registry may cost
//! (tag and page counts, manifest and config sizes, connect and idle timeouts).
//!
//! Owns the syntax of those values and their checks; what the limits mean and their
//! defaults are `crate::registry::Limits`'.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::ConfigError;
use super::yaml::YamlFile;
use crate::cache::parse_size;
use crate::registry::{parse_duration, LimitOverrides, MAX_CONCURRENCY};

/// The block as written: every value a string or number, checked by [`parse`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    tags_per_repository: Option<Spanned<String>>,
    pages_per_listing: Option<Spanned<String>>,
    manifest_size: Option<Spanned<String>>,
    config_size: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    max_concurrency: Option<Spanned<String>>,
    rate_floor: Option<Spanned<String>>,
}

/// Checks every value: counts and sizes of at least 1, durations above zero, and at most
/// [`MAX_CONCURRENCY`] of anything at once.
pub(crate) fn parse(file: &YamlFile, raw: RawLimits) -> Result<LimitOverrides, ConfigError> {
    let at_most = |n: Option<u64>, at: Option<&Spanned<String>>| match (n, at) {
        (Some(n), Some(at)) if n > MAX_CONCURRENCY => Err(file
            .error(
                at,
                format!("max_concurrency must be at most {MAX_CONCURRENCY}"),
            )
            .with_value(&at.value)),
        _ => Ok(n),
    };
    let count = |name: &str, value: Option<Spanned<String>>| {
        value
            .map(|v| {
                v.value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        file.error(&v, format!("{name} must be a whole number of at least 1"))
                            .with_value(&v.value)
                    })
            })
            .transpose()
    };
    let size = |name: &str, value: Option<Spanned<String>>| {
        value
            .map(|v| match parse_size(&v.value) {
                Ok(bytes) if bytes > 0 && v.value == v.value.trim() => Ok(bytes),
                Ok(_) => Err(file
                    .error(&v, format!("{name} must be at least 1 byte"))
                    .with_value(&v.value)),
                Err(message) => Err(file.error(&v, format!("{name}: {message}"))),
            })
            .transpose()
    };
    let duration = |name: &str, value: Option<Spanned<String>>| {
        value
            .map(|v| match parse_duration(&v.value) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err(file
                    .error(&v, format!("{name} must be longer than 0s"))
                    .with_value(&v.value)),
                Err(message) => Err(file.error(&v, format!("{name}: {message}"))),
            })
            .transpose()
    };
    Ok(LimitOverrides {
        tags_per_repository: count("tags_per_repository", raw.tags_per_repository)?,
        pages_per_listing: count("pages_per_listing", raw.pages_per_listing)?,
        manifest_size: size("manifest_size", raw.manifest_size)?,
        config_size: size("config_size", raw.config_size)?,
        idle_timeout: duration("idle_timeout", raw.idle_timeout)?,
        connect_timeout: duration("connect_timeout", raw.connect_timeout)?,
        max_concurrency: at_most(
            count("max_concurrency", raw.max_concurrency.clone())?,
            raw.max_concurrency.as_ref(),
        )?,
        rate_floor: raw
            .rate_floor
            .map(|v| {
                super::rules::parse_rate_floor(&v.value)
                    .map_err(|m| file.error(&v, m).with_value(&v.value))
            })
            .transpose()?,
    })
}
