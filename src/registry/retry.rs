//! Retries: exponential backoff with jitter, honouring `Retry-After`, bounded in attempts
//! and in the length of any one sleep. A stall (connect or idle timeout) is retried once
//! only, so a silent registry fails an image within about two timeouts; an error a loop
//! gave up on is final for any loop around it, so nested loops never multiply attempts.
//!
//! Owns the decision when and how long to wait; it must not rebuild request bodies itself:
//! each attempt calls the operation again, which reopens its own (replayable) body.

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;

use super::error::RegistryError;

/// How often and how patiently to retry a failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base_delay: Duration,
    /// Longest backoff sleep.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured (rate limits often ask for minutes); a registry that
    /// asks for longer fails the image at once instead of stalling the run.
    pub max_retry_after: Duration,
    /// Attempts, the first included, when the error is a stall (no connection or no byte
    /// within the registry's timeout): each costs a whole timeout.
    pub max_stall_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            max_stall_attempts: 2,
        }
    }
}

impl RetryPolicy {
    /// How long to wait before attempt `attempt + 1` after `error` on attempt `attempt`
    /// (1-based), or `None` when the error is final or the attempts are used up.
    pub fn delay_after(&self, attempt: u32, error: &RegistryError) -> Option<Duration> {
        if attempt >= self.max_attempts || !error.is_retryable() {
            return None;
        }
        if error.is_stall() && attempt >= self.max_stall_attempts {
            return None;
        }
        match error.retry_after() {
            Some(wait) if wait > self.max_retry_after => None,
            Some(wait) => Some(wait),
            None => Some(self.backoff(attempt)),
        }
    }

    /// Jittered exponential backoff: half the doubled delay plus a random part of the other half.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = full / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let jitter = if jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter_ms)
        };
        half + Duration::from_millis(jitter)
    }

    /// Runs `operation` (given the 1-based attempt number) until it succeeds, fails with a
    /// final error, or the attempts are used up; the error it ends with is final for any
    /// retry loop around this one.
    pub async fn run<T, F, Fut>(&self, mut operation: F) -> Result<T, RegistryError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, RegistryError>>,
    {
        let mut attempt = 1;
        loop {
            match operation(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) => match self.delay_after(attempt, &error) {
                    Some(wait) => {
                        tracing::warn!(
                            error = %error,
                            attempt,
                            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            "retrying"
                        );
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(error.exhausted()),
                },
            }
        }
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

    #[test]
    fn retry_after_is_honoured_up_to_its_own_cap() {
        let policy = RetryPolicy::default();
        let limited = |seconds: u64| {
            RegistryError::new(
                "r.io",
                None,
                "GET",
                super::super::ErrorKind::Status {
                    status: 429,
                    errors: Vec::new(),
                    retry_after: Some(Duration::from_secs(seconds)),
                },
            )
        };
        assert_eq!(
            policy.delay_after(1, &limited(90)),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            policy.delay_after(1, &limited(3600)),
            None,
            "an hour fails the image"
        );
        assert_eq!(policy.delay_after(5, &limited(1)), None, "attempts used up");
    }
    use crate::registry::error::ErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

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
    fn delays_are_bounded() {
        let policy = RetryPolicy::default();
        for attempt in 1..10 {
            assert!(policy.backoff(attempt) <= policy.max_delay);
        }
        assert_eq!(
            policy.delay_after(1, &status(429, Some(Duration::from_secs(2)))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.delay_after(1, &status(429, Some(Duration::from_secs(3600)))),
            None
        );
        assert_eq!(
            policy.delay_after(5, &status(500, None)),
            None,
            "attempts used up"
        );
        assert_eq!(
            policy.delay_after(1, &status(404, None)),
            None,
            "not retryable"
        );
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

    #[tokio::test]
    async fn run_stops_at_success_or_final_error() {
        let policy = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        };
        let calls = AtomicU32::new(0);
        let value = policy
            .run(|attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if attempt < 3 {
                        Err(status(503, None))
                    } else {
                        Ok(attempt)
                    }
                }
            })
            .await
            .expect("third attempt succeeds");
        assert_eq!((value, calls.load(Ordering::SeqCst)), (3, 3));
        let calls = AtomicU32::new(0);
        let err = policy
            .run(|_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(status(404, None)) }
            })
            .await
            .expect_err("404 is final");
        assert_eq!((err.status(), calls.load(Ordering::SeqCst)), (Some(404), 1));
    }
}
