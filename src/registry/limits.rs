//! Limits: how much a registry may make ferry read, and how long it may keep ferry waiting.
//!
//! Owns the defaults, the per-registry overrides from auth.yaml (`limits:`) and the text of
//! a limit hit; it must not decide what to do when one is hit (the caller fails the image).

use std::fmt;
use std::time::Duration;

/// The most of anything at once (`--jobs`, `max_concurrency`): far above what a machine
/// or a registry takes, well below what would overflow a semaphore.
pub const MAX_CONCURRENCY: u64 = 1024;

/// What one registry may cost: counts, sizes and waits. A hit fails the image (or the tag
/// listing) with one line naming the registry and the limit, never a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Tags one repository may list (a `Link` chain that never ends stops here).
    pub tags_per_repository: u64,
    /// Pages one tag listing may take.
    pub pages_per_listing: u64,
    /// Bytes of one manifest or index (distribution refuses larger ones too).
    pub manifest_size: u64,
    /// Bytes of one image config blob, which is read into memory.
    pub config_size: u64,
    /// Longest wait for any byte (response headers or body) before the request fails.
    pub idle_timeout: Duration,
    /// Longest wait for a connection (TCP and TLS handshake).
    pub connect_timeout: Duration,
    /// Requests in flight to the registry at once, and jobs writing to it at once (never
    /// more than `--jobs`): a registry that throttles or falls over gets fewer.
    pub max_concurrency: u64,
    /// Pulls kept back of a source registry's rate-limit budget (`ratelimit-remaining`,
    /// Docker Hub): once fewer remain, the jobs that would spend one are deferred.
    pub rate_floor: u64,
}

/// Pulls kept back of a rate-limited registry's budget unless configured otherwise.
pub const DEFAULT_RATE_FLOOR: u64 = 10;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tags_per_repository: 100_000,
            pages_per_listing: 10_000,
            manifest_size: 4 * 1024 * 1024,
            config_size: 8 * 1024 * 1024,
            idle_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_concurrency: 8,
            rate_floor: DEFAULT_RATE_FLOOR,
        }
    }
}

/// The limits one auth.yaml entry sets; `None` keeps the client's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// See [`Limits::tags_per_repository`].
    pub tags_per_repository: Option<u64>,
    /// See [`Limits::pages_per_listing`].
    pub pages_per_listing: Option<u64>,
    /// See [`Limits::manifest_size`].
    pub manifest_size: Option<u64>,
    /// See [`Limits::config_size`].
    pub config_size: Option<u64>,
    /// See [`Limits::idle_timeout`].
    pub idle_timeout: Option<Duration>,
    /// See [`Limits::connect_timeout`].
    pub connect_timeout: Option<Duration>,
    /// See [`Limits::max_concurrency`].
    pub max_concurrency: Option<u64>,
    /// See [`Limits::rate_floor`].
    pub rate_floor: Option<u64>,
}

impl LimitOverrides {
    /// `base` with every limit this sets replaced.
    pub fn apply(&self, base: &Limits) -> Limits {
        Limits {
            tags_per_repository: self.tags_per_repository.unwrap_or(base.tags_per_repository),
            pages_per_listing: self.pages_per_listing.unwrap_or(base.pages_per_listing),
            manifest_size: self.manifest_size.unwrap_or(base.manifest_size),
            config_size: self.config_size.unwrap_or(base.config_size),
            idle_timeout: self.idle_timeout.unwrap_or(base.idle_timeout),
            connect_timeout: self.connect_timeout.unwrap_or(base.connect_timeout),
            max_concurrency: self.max_concurrency.unwrap_or(base.max_concurrency),
            rate_floor: self.rate_floor.unwrap_or(base.rate_floor),
        }
    }

    /// True when nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == LimitOverrides::default()
    }
}

/// Which limit was hit, by its auth.yaml name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `tags_per_repository`.
    TagsPerRepository,
    /// `pages_per_listing`.
    PagesPerListing,
    /// `manifest_size`.
    ManifestSize,
    /// `config_size`.
    ConfigSize,
    /// `idle_timeout`.
    IdleTimeout,
    /// `connect_timeout`.
    ConnectTimeout,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::TagsPerRepository => "tags_per_repository",
            Limit::PagesPerListing => "pages_per_listing",
            Limit::ManifestSize => "manifest_size",
            Limit::ConfigSize => "config_size",
            Limit::IdleTimeout => "idle_timeout",
            Limit::ConnectTimeout => "connect_timeout",
        })
    }
}

/// A duration as a person writes it: `1.5s` and `2s` rather than `Duration`'s debug form.
pub(crate) fn seconds(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 1000 == 0 {
        format!("{}s", millis / 1000)
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

/// Parses an auth.yaml duration: `60s`, `1500ms`, `2m`, or plain seconds (`60`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}: expected e.g. 60s, 1500ms or 2m");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        _ => return Err(invalid()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("60s", Some(60_000)),
            ("60", Some(60_000)),
            ("1500ms", Some(1500)),
            ("2m", Some(120_000)),
            ("0.5s", Some(500)),
            ("", None),
            ("s", None),
            ("1h", None),
            (" 1s", None),
            ("-1s", None),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text).ok().map(|d| d.as_millis() as u64),
                millis,
                "{text:?}"
            );
        }
        assert_eq!(seconds(Duration::from_secs(60)), "60s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = Limits::default();
        let overrides = LimitOverrides {
            idle_timeout: Some(Duration::from_secs(2)),
            tags_per_repository: Some(5),
            ..LimitOverrides::default()
        };
        let applied = overrides.apply(&base);
        assert_eq!(applied.idle_timeout, Duration::from_secs(2));
        assert_eq!(applied.tags_per_repository, 5);
        assert_eq!(applied.manifest_size, base.manifest_size);
        assert!(LimitOverrides::default().is_empty() && !overrides.is_empty());
    }
}
