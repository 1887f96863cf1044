//! Pull budgets of source registries: the manifest GETs ferry spent on each (a pull each on
//! Docker Hub, one per architecture) and the budget the registry announced
//! (`ratelimit-remaining: N;w=…`, `ratelimit-limit`) on its manifest GET and HEAD answers.
//!
//! Also keeps the manifests pulled in the run, so no reference is pulled twice.
//!
//! Owns reading those headers and keeping the counts; it must not decide what to do when
//! a budget runs low (`decide` defers the jobs that would spend a pull).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use reqwest::header::HeaderMap;

use super::{Manifest, RegistryClient};
use crate::credentials::Side;
use crate::gates::Gates;
use crate::reference::Reference;
use tokio::sync::OwnedMutexGuard;

/// Most bytes of manifests kept for reuse in one run; past it, a manifest is pulled again.
const PULLED_BYTES: usize = 64 * 1024 * 1024;

/// The manifests the source side pulled this run, by reference (`repo:tag`, `repo@digest`):
/// Docker Hub counts every manifest GET as a pull, and one source often goes to two
/// targets. Reads of one reference take turns, so side-by-side jobs pull it once.
#[derive(Debug, Default)]
pub(crate) struct Pulled {
    turns: Gates<String>,
    kept: Mutex<(usize, HashMap<String, Manifest>)>,
}

impl Pulled {
    /// Waits for any other read of `key` to finish.
    pub(crate) async fn enter(&self, key: &String) -> OwnedMutexGuard<()> {
        self.turns.enter(key).await
    }

    /// The manifest `key` named when it was pulled in this run.
    pub(crate) fn get(&self, key: &str) -> Option<Manifest> {
        let kept = self.kept.lock().ok()?;
        kept.1.get(key).cloned()
    }

    /// Keeps `manifest`, unless the bytes kept would pass [`PULLED_BYTES`].
    pub(crate) fn keep(&self, key: String, manifest: &Manifest) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        let size = manifest.bytes.len();
        if kept.0 + size <= PULLED_BYTES && !kept.1.contains_key(&key) {
            kept.0 += size;
            kept.1.insert(key, manifest.clone());
        }
    }
}

/// What one source registry cost a run and what it has left.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PullBudget {
    /// The registry (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Manifest GETs answered 200 on the source side ("pulls spent"; HEADs are free).
    pub pulls: u64,
    /// The lowest `ratelimit-remaining` its answers gave in this run, less the pulls taken
    /// since (0 after a `toomanyrequests`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// `ratelimit-limit` of its last answer that had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Its `rate_floor`: what is kept back of `remaining`.
    pub rate_floor: u64,
    /// Jobs deferred because `remaining` was below `rate_floor`.
    pub deferred: u64,
}

impl PullBudget {
    /// How the registry is named in lines for people: Docker Hub by its name.
    pub fn display_name(registry: &str) -> String {
        match registry {
            "docker.io" => "Docker Hub".to_owned(),
            other => format!("registry {other}"),
        }
    }

    /// Why a job of `registry` that needed `pulls` pulls is deferred: its budget below the
    /// floor, without room for those pulls above it, or spent.
    pub fn deferral(registry: &str, remaining: u64, floor: u64, pulls: u64) -> String {
        let who = PullBudget::display_name(registry);
        if remaining < floor {
            let numbers = format!("remaining {remaining} < rate_floor {floor}");
            format!("{who} pull budget below the floor ({numbers}): deferred")
        } else if remaining > 0 {
            format!(
                "{who} pull budget too low for the {pulls} pulls of this copy \
                 (remaining {remaining}, rate_floor {floor}): deferred"
            )
        } else {
            format!("{who} pull budget spent (remaining {remaining}): deferred")
        }
    }
}

/// The budgets of every source registry a client asked, shared by its clones.
#[derive(Debug, Default)]
pub(crate) struct Budgets(Mutex<BTreeMap<String, PullBudget>>);

impl Budgets {
    fn with(&self, registry: &str, change: impl FnOnce(&mut PullBudget)) {
        if let Ok(mut budgets) = self.0.lock() {
            let budget = budgets
                .entry(registry.to_owned())
                .or_insert_with(|| PullBudget {
                    registry: registry.to_owned(),
                    ..PullBudget::default()
                });
            change(budget);
        }
    }
}

/// The leading number of a rate-limit header: `76;w=21600` gives 76. A list (two header
/// lines joined by a proxy: `76;w=21600, 40;w=3600`) gives its lowest; a negative number
/// (a budget overdrawn) gives 0.
fn leading_number(value: &str) -> Option<u64> {
    value
        .split(',')
        .filter_map(|item| {
            let number = item.split(';').next()?.trim();
            match number.strip_prefix('-') {
                Some(negative) => negative.parse::<u64>().ok().map(|_| 0),
                None => number.parse().ok(),
            }
        })
        .min()
}

impl RegistryClient {
    /// Notes what a manifest answer says about the budget of `reference`'s registry
    /// (source side only: the budget that matters is the one pulls are spent from).
    pub(crate) fn note_rate_limit(&self, reference: &Reference, headers: &HeaderMap) {
        if self.side != Side::Source {
            return;
        }
        // Every line of the header (a proxy may add its own): the lowest counts.
        let read = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(leading_number)
                .min()
        };
        let (remaining, limit) = (read("ratelimit-remaining"), read("ratelimit-limit"));
        self.inner.budgets.with(reference.registry(), |budget| {
            // The lowest reading of the run: answers to requests sent before a pull was
            // taken arrive late, and must not give it back. (A window that turns during
            // the run is seen by the next run.)
            if let Some(now) = remaining {
                budget.remaining = Some(budget.remaining.map_or(now, |known| known.min(now)));
            }
            if limit.is_some() {
                budget.limit = limit;
            }
        });
    }

    /// Counts one manifest GET the source answered: a pull spent.
    pub(crate) fn count_pull(&self, reference: &Reference) {
        if self.side == Side::Source {
            self.inner
                .budgets
                .with(reference.registry(), |budget| budget.pulls += 1);
        }
    }

    /// The registry refused a pull for its limit: nothing remains.
    pub(crate) fn budget_spent(&self, reference: &Reference) {
        if self.side == Side::Source {
            self.inner
                .budgets
                .with(reference.registry(), |budget| budget.remaining = Some(0));
        }
    }

    /// Takes one pull of the known budget of `reference`'s registry before a manifest GET:
    /// `Err((remaining, rate_floor))` when it is below its `rate_floor`, or spent (a GET
    /// could only be refused). Taking it at once keeps jobs deciding side by side from all
    /// passing the floor on one reading; the GET's own answer then says the truth. `Ok`
    /// while no answer announced a budget.
    pub fn take_pull(&self, reference: &Reference) -> Result<(), (u64, u64)> {
        self.take_pulls(reference, 1)
    }

    /// Takes `count` pulls at once (the platform manifests of an index), all or none: each
    /// of them must find the budget at or above the floor, as [`Self::take_pull`] would.
    pub fn take_pulls(&self, reference: &Reference, count: u64) -> Result<(), (u64, u64)> {
        if count == 0 {
            return Ok(());
        }
        let floor = self.limits_of(reference.registry()).rate_floor;
        let Ok(mut budgets) = self.inner.budgets.0.lock() else {
            return Ok(());
        };
        let Some(remaining) = budgets
            .get_mut(reference.registry())
            .and_then(|b| b.remaining.as_mut())
        else {
            return Ok(());
        };
        // The last of them is taken at `remaining - (count - 1)`.
        let last = remaining.checked_sub(count - 1);
        if last.is_none_or(|last| last < floor.max(1)) {
            return Err((*remaining, floor));
        }
        *remaining -= count;
        Ok(())
    }

    /// True when `reference` was pulled in this run already: reading it again spends nothing.
    pub fn has_pulled(&self, reference: &Reference) -> bool {
        self.side == Side::Source && self.inner.pulled.get(&reference.to_string()).is_some()
    }

    /// Counts one job of `reference`'s registry deferred for its budget.
    pub fn count_deferred(&self, reference: &Reference) {
        self.inner
            .budgets
            .with(reference.registry(), |budget| budget.deferred += 1);
    }

    /// Every source registry asked so far, by name, with its `rate_floor`.
    pub fn pull_budgets(&self) -> Vec<PullBudget> {
        let Ok(budgets) = self.inner.budgets.0.lock() else {
            return Vec::new();
        };
        budgets
            .values()
            .map(|budget| PullBudget {
                rate_floor: self.limits_of(&budget.registry).rate_floor,
                ..budget.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_headers() {
        assert_eq!(leading_number("76;w=21600"), Some(76));
        assert_eq!(leading_number(" 0 ; w=21600"), Some(0));
        assert_eq!(leading_number("100"), Some(100));
        assert_eq!(leading_number("many"), None);
        assert_eq!(leading_number("-5;w=21600"), Some(0), "overdrawn");
        assert_eq!(leading_number("76;w=21600, 40;w=3600"), Some(40));
        assert_eq!(leading_number("5, many"), Some(5));
        assert_eq!(leading_number("99999999999999999999999"), None);
        assert_eq!(leading_number(""), None);
    }

    #[test]
    fn every_line_of_a_rate_limit_header_counts() {
        use reqwest::header::HeaderValue;
        let client = RegistryClient::new(
            crate::credentials::CredentialStore::default(),
            super::super::ClientOptions::default(),
        );
        let image: Reference = "docker.io/library/nginx:1".parse().expect("reference");
        let mut headers = HeaderMap::new();
        for value in ["76;w=21600", "12;w=3600"] {
            headers.append("ratelimit-remaining", HeaderValue::from_static(value));
        }
        client.note_rate_limit(&image, &headers);
        assert_eq!(client.pull_budgets()[0].remaining, Some(12));
    }

    #[test]
    fn deferral_lines_name_docker_hub() {
        assert_eq!(
            PullBudget::deferral("docker.io", 9, 10, 1),
            "Docker Hub pull budget below the floor (remaining 9 < rate_floor 10): deferred"
        );
        assert_eq!(
            PullBudget::deferral("ghcr.io", 0, 0, 1),
            "registry ghcr.io pull budget spent (remaining 0): deferred"
        );
        assert_eq!(
            PullBudget::deferral("docker.io", 10, 10, 2),
            "Docker Hub pull budget too low for the 2 pulls of this copy (remaining 10, \
             rate_floor 10): deferred"
        );
    }
}
