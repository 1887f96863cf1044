//! Registry errors under the shared [`crate::retry::RetryPolicy`]: which are worth another
//! attempt, and the `Retry-After` a registry asked for.
//!
//! Owns reading `Retry-After`; the policy itself (when and how long) is `crate::retry`'s.

use std::time::{Duration, SystemTime};

use super::error::RegistryError;
use crate::retry::Retryable;

impl Retryable for RegistryError {
    fn is_retryable(&self) -> bool {
        RegistryError::is_retryable(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        RegistryError::retry_after(self)
    }

    fn is_stall(&self) -> bool {
        RegistryError::is_stall(self)
    }

    fn exhausted(self) -> Self {
        RegistryError::exhausted(self)
    }
}

/// Parses `Retry-After`: delay seconds or an HTTP date (relative to `now`).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::error::ErrorKind;
    use crate::retry::RetryPolicy;

    fn status(code: u16, retry_after: Option<Duration>) -> RegistryError {
        RegistryError::new(
            "r",
            None,
            "GET",
            ErrorKind::Status {
                status: code,
                errors: vec![],
                retry_after,
            },
        )
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn registry_errors_drive_the_policy() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay_after(1, &status(429, Some(Duration::from_secs(2)))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.delay_after(1, &status(429, Some(Duration::from_secs(3600)))),
            None,
            "an hour fails the image"
        );
        assert!(policy.delay_after(1, &status(503, None)).is_some());
        assert_eq!(policy.delay_after(1, &status(404, None)), None, "final");
    }

    #[test]
    fn stalls_are_retried_once_and_a_given_up_error_is_final() {
        let policy = RetryPolicy::default();
        let stall = || {
            RegistryError::new(
                "r",
                None,
                "GET",
                ErrorKind::Limit {
                    limit: crate::registry::limits::Limit::IdleTimeout,
                    message: "no byte within 60s".into(),
                },
            )
        };
        assert!(policy.delay_after(1, &stall()).is_some(), "one retry");
        assert_eq!(policy.delay_after(2, &stall()), None, "then it fails");
        assert!(policy.delay_after(2, &status(503, None)).is_some());
        assert_eq!(
            policy.delay_after(1, &status(503, None).exhausted()),
            None,
            "an inner loop gave up already"
        );
        assert_eq!(
            stall().to_string(),
            "registry r: GET: no byte within 60s (limit idle_timeout in auth.yaml)"
        );
    }
}
