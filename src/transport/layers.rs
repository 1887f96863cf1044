//! Layer-aware ordering of daemon pushes: a job whose layers another in-flight job is
//! pushing to the same target registry waits for that push, so the daemon then mounts
//! (or finds) them instead of compressing and uploading the same layer twice.
//!
//! Owns only who pushes a layer first; it must not push, nor hold a claim while it waits
//! (a job claims all its unclaimed layers at once or none, so two jobs never wait on each
//! other).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// (target registry, layer diff id).
type Key = (String, String);

#[derive(Debug)]
enum Entry {
    /// A job is pushing it; the receiver ends when that job's claim does.
    Pushing(watch::Receiver<()>),
    /// Pushed to the registry by a job of this run: later pushes mount or find it.
    Pushed,
}

/// Which layers are being pushed, or were pushed, to which target registry in this run.
#[derive(Debug, Default)]
pub(crate) struct LayerOrder {
    layers: Mutex<HashMap<Key, Entry>>,
}

/// The layers one job pushes first; released on drop (after a failed push: unclaimed, so
/// a waiting job pushes them itself).
#[derive(Debug)]
pub(crate) struct Claim<'a> {
    order: &'a LayerOrder,
    keys: Vec<Key>,
    pushed: bool,
    _done: watch::Sender<()>,
}

impl LayerOrder {
    /// Waits until no other job is pushing any of `layers` to `registry`, then claims those
    /// of them nobody pushed yet. Returns the claim and how many layers it waited for.
    pub(crate) async fn claim(&self, registry: &str, layers: &[String]) -> (Claim<'_>, usize) {
        let mut waited = 0;
        loop {
            let mut pending = {
                let mut map = self.layers.lock().unwrap_or_else(|p| p.into_inner());
                let keys: Vec<Key> = layers
                    .iter()
                    .map(|layer| (registry.to_owned(), layer.clone()))
                    .collect();
                let busy = keys.iter().find_map(|key| match map.get(key) {
                    Some(Entry::Pushing(done)) => Some(done.clone()),
                    _ => None,
                });
                match busy {
                    Some(done) => done,
                    None => {
                        let (sender, receiver) = watch::channel(());
                        let mine: Vec<Key> = keys
                            .into_iter()
                            .filter(|key| !map.contains_key(key))
                            .collect();
                        for key in &mine {
                            map.insert(key.clone(), Entry::Pushing(receiver.clone()));
                        }
                        let claim = Claim {
                            order: self,
                            keys: mine,
                            pushed: false,
                            _done: sender,
                        };
                        return (claim, waited);
                    }
                }
            };
            waited += 1;
            // Ends when the pushing job's claim is dropped (its sender goes).
            while pending.changed().await.is_ok() {}
        }
    }
}

impl Claim<'_> {
    /// The push went through: the claimed layers are on the registry now.
    pub(crate) fn pushed(mut self) {
        self.pushed = true;
    }

    /// How many layers this job pushes first.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut map = self.order.layers.lock().unwrap_or_else(|p| p.into_inner());
        for key in self.keys.drain(..) {
            if self.pushed {
                map.insert(key, Entry::Pushed);
            } else {
                map.remove(&key);
            }
        }
        // The sender drops after this: waiters wake and find the map already updated.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn layers(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[tokio::test]
    async fn a_job_sharing_an_in_flight_layer_waits_then_claims_only_new_ones() {
        let order = Arc::new(LayerOrder::default());
        let (first, waited) = order.claim("r", &layers(&["base", "a"])).await;
        assert_eq!((first.len(), waited), (2, 0));
        let second = {
            let order = order.clone();
            tokio::spawn(async move {
                let (claim, waited) = order.claim("r", &layers(&["base", "b"])).await;
                (claim.len(), waited)
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "waits for the push of base");
        first.pushed();
        // base is pushed now: the second job claims only b.
        assert_eq!(second.await.expect("joined"), (1, 1));
    }

    #[tokio::test]
    async fn another_registry_or_disjoint_layers_never_wait() {
        let order = LayerOrder::default();
        let (_first, _) = order.claim("r", &layers(&["base"])).await;
        let (other, waited) = order.claim("s", &layers(&["base"])).await;
        assert_eq!((other.len(), waited), (1, 0));
        let (disjoint, waited) = order.claim("r", &layers(&["c"])).await;
        assert_eq!((disjoint.len(), waited), (1, 0));
    }

    #[tokio::test]
    async fn a_failed_push_hands_its_layers_to_the_waiting_job() {
        let order = Arc::new(LayerOrder::default());
        let (first, _) = order.claim("r", &layers(&["base"])).await;
        let second = {
            let order = order.clone();
            tokio::spawn(async move { order.claim("r", &layers(&["base"])).await.0.len() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert_eq!(second.await.expect("joined"), 1, "pushes base itself");
    }
}
