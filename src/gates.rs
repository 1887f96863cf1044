//! One async lock per key, so work on the same thing (a blob digest, a staging tag) runs
//! one at a time while work on other keys goes on.
//!
//! Owns only the map of locks. It must not know what the keys mean.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// A lock per key, created on first use. Clones share the locks.
#[derive(Debug)]
pub struct Gates<K> {
    locks: Arc<Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>>,
}

impl<K> Clone for Gates<K> {
    fn clone(&self) -> Self {
        Gates {
            locks: self.locks.clone(),
        }
    }
}

impl<K> Default for Gates<K> {
    fn default() -> Self {
        Gates {
            locks: Arc::default(),
        }
    }
}

impl<K: Eq + Hash + Clone> Gates<K> {
    /// Waits until no one else holds `key`; holds it until the guard is dropped.
    pub async fn enter(&self, key: &K) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(key.clone()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Drops the lock of `key` once its work is done for good; waiters still holding it
    /// finish normally, later callers get a fresh one.
    pub fn forget(&self, key: &K) {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_key_and_other_keys_go_on() {
        let gates: Gates<&str> = Gates::default();
        let inside = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let work = |key: &'static str| {
            let (gates, inside, peak) = (&gates, &inside, &peak);
            async move {
                let _turn = gates.enter(&key).await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }
        };
        tokio::join!(work("a"), work("a"), work("a"));
        assert_eq!(peak.load(Ordering::SeqCst), 1, "same key: one at a time");
        peak.store(0, Ordering::SeqCst);
        tokio::join!(work("a"), work("b"), work("c"));
        assert_eq!(peak.load(Ordering::SeqCst), 3, "other keys run together");
        gates.forget(&"a");
        let _again = gates.enter(&"a").await;
    }
}
