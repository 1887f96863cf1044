//! The one retry policy of ferry, for registry requests and daemon pulls and pushes alike:
//! exponential backoff with jitter, honouring `Retry-After`, bounded in attempts and in the
//! length of any one sleep. Every retry is a `Retrying` event of the job it belongs to.
//!
//! Owns the decision when and how long to wait; it must not rebuild request bodies itself:
//! each attempt calls the operation again, which reopens its own (replayable) body.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// An error that may be worth another attempt.
pub trait Retryable: Display {
    /// True when trying again may succeed (network trouble, 5xx, 429 …).
    fn is_retryable(&self) -> bool;
    /// How long the other side asked us to wait (`Retry-After`), if it did.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
    /// True for a stall (no connection or no byte within a timeout): each attempt costs a
    /// whole timeout, so stalls get [`RetryPolicy::max_stall_attempts`] only.
    fn is_stall(&self) -> bool {
        false
    }
    /// The error marked as given up on: final for any retry loop around this one, so
    /// nested loops never multiply attempts. A no-op for errors that cannot say so.
    fn exhausted(self) -> Self
    where
        Self: Sized,
    {
        self
    }
}

/// How often and how patiently to retry a failed operation.
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
    /// Registry requests: 5 attempts, 250 ms doubling up to 30 s, `Retry-After` up to 5 min.
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
    /// Daemon pulls and pushes: each attempt is a whole image, so fewer and slower.
    pub fn daemon() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_secs(2),
            ..RetryPolicy::default()
        }
    }

    /// How long to wait before attempt `attempt + 1` after `error` on attempt `attempt`
    /// (1-based), or `None` when the error is final or the attempts are used up.
    pub fn delay_after(&self, attempt: u32, error: &impl Retryable) -> Option<Duration> {
        if attempt >= self.max_attempts || !error.is_retryable() {
            return None;
        }
        if error.is_stall() && attempt >= self.max_stall_attempts {
            return None;
        }
        match error.retry_after() {
            Some(wait) if wait > self.max_retry_after => None,
            // Never sooner than the backoff: `Retry-After: 0` (or a date already past)
            // must not turn five attempts into one burst.
            Some(wait) => Some(wait.max(self.backoff(attempt))),
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

    /// After `error` on attempt `attempt`: waits before the next attempt (reporting it as a
    /// `Retrying` event of the current job) and says `true`, or says `false` at once when
    /// the error is final or the attempts are used up. For loops that must do more than
    /// call the operation again (resume a download where it broke).
    pub async fn pause(&self, attempt: u32, error: &impl Retryable) -> bool {
        let Some(wait) = self.delay_after(attempt, error) else {
            return false;
        };
        let cause = error.to_string();
        tracing::warn!(
            error = %cause,
            attempt,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "retrying"
        );
        crate::event::retrying(attempt + 1, wait, &cause);
        tokio::time::sleep(wait).await;
        true
    }

    /// Runs `operation` (given the 1-based attempt number) until it succeeds, fails with a
    /// final error, or the attempts are used up. Each retry is reported as a `Retrying`
    /// event of the job running this (see [`crate::event::retrying`]).
    pub async fn run<T, E, F, Fut>(&self, mut operation: F) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 1;
        loop {
            match operation(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) if self.pause(attempt, &error).await => attempt += 1,
                Err(error) => return Err(error.exhausted()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct Failure {
        retryable: bool,
        retry_after: Option<Duration>,
    }

    impl Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failure (retryable: {})", self.retryable)
        }
    }

    impl Retryable for Failure {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
        fn retry_after(&self) -> Option<Duration> {
            self.retry_after
        }
    }

    fn failure(retryable: bool, seconds: Option<u64>) -> Failure {
        Failure {
            retryable,
            retry_after: seconds.map(Duration::from_secs),
        }
    }

    #[test]
    fn delays_are_bounded_and_retry_after_is_honoured_up_to_its_cap() {
        let policy = RetryPolicy::default();
        for attempt in 1..10 {
            assert!(policy.backoff(attempt) <= policy.max_delay);
        }
        assert_eq!(
            policy.delay_after(1, &failure(true, Some(90))),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            policy.delay_after(1, &failure(true, Some(3600))),
            None,
            "an hour fails the image"
        );
        for attempt in 1..5 {
            let now = policy.delay_after(attempt, &failure(true, Some(0)));
            assert!(
                now >= Some(policy.base_delay / 2),
                "`Retry-After: 0` still backs off: {now:?} at attempt {attempt}"
            );
        }
        assert_eq!(policy.delay_after(5, &failure(true, None)), None, "used up");
        assert_eq!(policy.delay_after(1, &failure(false, None)), None, "final");
        let daemon = RetryPolicy::daemon();
        assert_eq!(daemon.delay_after(3, &failure(true, None)), None);
        assert!(daemon.delay_after(1, &failure(true, None)) >= Some(Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn run_stops_at_success_or_final_error_and_reports_each_retry() {
        let policy = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        };
        let (events, mut receiver) = crate::event::channel();
        let calls = AtomicU32::new(0);
        let value = crate::event::scope(events.job(7), async {
            policy
                .run(|attempt| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if attempt < 3 {
                            Err(failure(true, None))
                        } else {
                            Ok(attempt)
                        }
                    }
                })
                .await
        })
        .await
        .expect("third attempt succeeds");
        assert_eq!((value, calls.load(Ordering::SeqCst)), (3, 3));
        drop(events);
        let mut retries = Vec::new();
        while let Some(event) = receiver.recv().await {
            if let crate::event::Event::Retrying { job, attempt, .. } = event {
                retries.push((job, attempt));
            }
        }
        assert_eq!(
            retries,
            [(7, 2), (7, 3)],
            "one event per retry, with its job"
        );

        let calls = AtomicU32::new(0);
        policy
            .run(|_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(failure(false, None)) }
            })
            .await
            .expect_err("final");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
