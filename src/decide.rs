//! The one decision per job, shared by `ferry plan`, `ferry sync --dry-run` and `ferry sync`:
//! probe the target, the source and the state file once, and give the job a typed action.
//! Copy with a why (carrying what was read of the source, so nothing is read twice), skip
//! with a reason, or fail with a cause.
//!
//! Owns "is this job unchanged?", "which platforms does it carry?", "is it an immutable tag
//! the target has?" and "may it spend a pull of its source's budget?". It reads registries
//! and the state file; it must not write either (transports execute, they never decide).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::event::SkipReason;
use crate::manifest::{self, sha256_digest, Child, ImageParts, Parsed};
use crate::plan::Job;
use crate::platform::Platform;
use crate::registry::{ErrorKind, Manifest, PullBudget, RegistryClient};
use crate::state::{SkipRecord, State};

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod tests;

/// What a copy of one job would write to its target, as far as the digest goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// The source's own bytes (or an index of some of its entries): the registry transport.
    SourceBytes,
    /// Images the daemon pushed, whose digests only the state file knows: the docker
    /// transport (the daemon compresses layers again; no attestation can be pulled).
    DaemonPush,
}

/// What to do with one job.
#[derive(Debug, Clone)]
pub enum Action {
    /// Copy it, for this reason, from the source as read.
    Copy {
        /// Why the copy is needed.
        why: CopyReason,
        /// The source as read while deciding.
        source: Source,
    },
    /// Nothing to do.
    Skip(SkipReason),
    /// The job cannot be done (its source is missing or unreadable): one line of cause.
    Fail(String),
}

/// Why nothing of a source travels.
enum Halt {
    Skip(SkipReason),
    Fail(String),
}

/// Why a job is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyReason {
    /// The target does not have the tag yet.
    New,
    /// The target's tag serves something else.
    Changed,
    /// `--force`.
    Forced,
    /// The target could not be checked (the copy will tell): why.
    Unchecked(String),
}

impl fmt::Display for CopyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyReason::New => f.write_str("new"),
            CopyReason::Changed => f.write_str("target differs"),
            CopyReason::Forced => f.write_str("forced"),
            CopyReason::Unchecked(why) => write!(f, "target not checked: {why}"),
        }
    }
}

/// The source of a copy as `decide` read it.
#[derive(Debug, Clone)]
pub struct Source {
    /// The top manifest (one image or an index) exactly as the source serves it.
    pub manifest: Manifest,
    /// What it holds, and what of it travels.
    pub content: Content,
}

/// What a source manifest holds and what of it a copy carries.
#[derive(Debug, Clone)]
pub enum Content {
    /// One image, and its config as read while deciding (its platform), so a copy does
    /// not fetch it again.
    Image {
        /// Its config and layers.
        parts: ImageParts,
        /// The config blob's bytes (verified against its digest).
        config: Bytes,
    },
    /// An index: the entries to copy, and the index to write.
    Index {
        /// The entries that travel, in index order (for the docker transport, only images).
        chosen: Vec<Child>,
        /// The index the registry transport writes: the source's bytes when nothing is
        /// left out, else a complete index of exactly `chosen`.
        write: Bytes,
        /// What was left out and the digest change, when anything was.
        dropped: Option<String>,
    },
}

impl Source {
    /// The bytes the registry transport writes under the target tag.
    pub fn written(&self) -> &Bytes {
        match &self.content {
            Content::Image { .. } => &self.manifest.bytes,
            Content::Index { write, .. } => write,
        }
    }

    /// A few words for people about what the copy changes (an index written anew).
    pub fn note(&self) -> Option<&str> {
        match &self.content {
            Content::Index { dropped, .. } => dropped.as_deref(),
            Content::Image { .. } => None,
        }
    }
}

/// The state file's key of a job: its target, plus the platform selection when it is not
/// the default (a push of a subset says nothing about another subset), plus `#bytes` for
/// the registry transport (what the daemon pushed is not the source's bytes).
pub fn state_key(job: &Job, writes: Writes) -> String {
    let selection = if job.all_platforms {
        "#all".to_owned()
    } else if job.platforms.is_empty() {
        String::new()
    } else {
        let mut platforms: Vec<String> = job.platforms.iter().map(Platform::to_string).collect();
        platforms.sort();
        format!("#{}", platforms.join(","))
    };
    let transport = match writes {
        Writes::SourceBytes => "#bytes",
        Writes::DaemonPush => "",
    };
    format!("{}{selection}{transport}", job.target)
}

/// Decides jobs: the clients to probe with, the state file, and what the transport writes.
#[derive(Clone)]
pub struct Decider {
    source: RegistryClient,
    target: RegistryClient,
    state: Arc<State>,
    writes: Writes,
    force: bool,
    /// Sources whose daemon pull a decision has taken from the budget already: the daemon
    /// holds an image once, whatever the number of targets.
    daemon_pulls: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Decider {
    /// A decider reading sources with `source`, targets with `target` (its push-side twin),
    /// consulting `state`, for a transport that `writes`; with `force`, every job copies.
    pub fn new(
        source: RegistryClient,
        target: RegistryClient,
        state: Arc<State>,
        writes: Writes,
        force: bool,
    ) -> Self {
        Decider {
            source,
            target,
            state,
            writes,
            force,
            daemon_pulls: Default::default(),
        }
    }

    /// The action for `job`. A no-op costs two HEADs (target, then source): the target
    /// serves the source's digest or the digest the state file recorded for it, or the
    /// state file remembers that this source digest has nothing to copy for the selection.
    /// An immutable tag the target has costs one HEAD on the target and nothing on the
    /// source; one whose target cannot be checked fails, again at no cost to the source. Before the source's manifest GET (a pull on Docker Hub), a source registry
    /// whose announced budget is below its `rate_floor` defers the job (a failed line).
    pub async fn decide(&self, job: &Job) -> Action {
        let key = state_key(job, self.writes);
        let mut why = CopyReason::New;
        let mut at_target = None;
        // The source's media type, when its HEAD said it (an index or a platform image).
        let mut source_type = None;
        if self.force {
            why = CopyReason::Forced;
        } else {
            match self.target.head_manifest(&job.target).await {
                // An immutable tag the target has: nothing to ask the source.
                Ok(Some(_)) if job.immutable => return Action::Skip(SkipReason::ImmutablePresent),
                Ok(Some(head)) => {
                    why = CopyReason::Changed;
                    at_target = match head.digest {
                        Some(digest) => Some(digest),
                        // Nexus leaves the header out: the bytes say it.
                        None => self
                            .target
                            .get_manifest(&job.target)
                            .await
                            .ok()
                            .map(|m| m.digest),
                    };
                }
                Ok(None) => {}
                // Credentials good, repository refused (Harbor: no project, no push
                // permission): the copy would fail too, so not a pull is spent on it.
                Err(error) if matches!(error.kind(), ErrorKind::NoAccess { .. }) => {
                    return Action::Fail(error.to_string())
                }
                // An immutable tag the target may have: copying blind could overwrite it
                // with what the source moved the tag to, and spend a pull; the next run
                // checks again.
                Err(error) if job.immutable => {
                    return Action::Fail(format!("immutable tag not checked on target: {error}"))
                }
                Err(error) => why = CopyReason::Unchecked(error.to_string()),
            }
            let source_digest = match self.source.head_manifest(&job.source).await {
                Ok(Some(head)) => {
                    source_type = head.media_type;
                    head.digest
                }
                Ok(None) => return Action::Fail(format!("{}: not found", job.source)),
                Err(error) => return Action::Fail(error.to_string()),
            };
            let known = source_digest
                .and_then(|digest| self.remembered(&key, &digest, at_target.as_deref()));
            if let Some(action) = known {
                return action;
            }
        }
        // The GET is a pull on Docker Hub (unless this run pulled it already, for another
        // target); through the daemon, a platform image is pulled again by digest (the
        // daemon's own GET; an index's platforms are taken below). Below the floor, the
        // job waits for another run.
        let daemon_pull = self.writes == Writes::DaemonPush
            && !source_type.as_deref().is_some_and(manifest::is_index)
            && !self.daemon_pulled(&job.source.to_string());
        let pulls = u64::from(!self.source.has_pulled(&job.source)) + u64::from(daemon_pull);
        let taken = self.source.take_pulls(&job.source, pulls);
        if taken.is_ok() && daemon_pull {
            if let Ok(mut pulled) = self.daemon_pulls.lock() {
                pulled.insert(job.source.to_string());
            }
        }
        if let Err((remaining, floor)) = taken {
            let registry = job.source.registry();
            return self.deferred(job, PullBudget::deferral(registry, remaining, floor, pulls));
        }
        let manifest = match self.source.get_manifest(&job.source).await {
            Ok(manifest) => manifest,
            Err(error) => return Action::Fail(error.to_string()),
        };
        if !self.force {
            // The source's HEAD may have left its digest out: the bytes say it.
            if let Some(action) = self.remembered(&key, &manifest.digest, at_target.as_deref()) {
                return action;
            }
        }
        let content = match self.content(job, &manifest).await {
            Ok(content) => content,
            Err(Halt::Skip(reason)) => {
                self.remember_skip(&key, &manifest.digest, &reason);
                return Action::Skip(reason);
            }
            Err(Halt::Fail(cause)) => return Action::Fail(cause),
        };
        // The platform manifests an index copy reads (ferry's GETs, or the daemon's) are
        // pulls too: taken before, so an index never takes the budget far below its floor.
        if let Content::Index { chosen, .. } = &content {
            let unread = chosen
                .iter()
                .filter_map(|child| job.source.with_digest(&child.digest).ok())
                .filter(|child| !self.source.has_pulled(child))
                .count();
            if let Err((remaining, floor)) = self.source.take_pulls(&job.source, unread as u64) {
                let who = PullBudget::display_name(job.source.registry());
                return self.deferred(
                    job,
                    format!(
                        "{who} pull budget too low for the {unread} platform manifests of this \
                         index (remaining {remaining}, rate_floor {floor}): deferred"
                    ),
                );
            }
        }
        let source = Source { manifest, content };
        if self.writes == Writes::SourceBytes
            && at_target.is_some()
            && at_target == Some(sha256_digest(source.written()))
        {
            return Action::Skip(SkipReason::Unchanged);
        }
        Action::Copy { why, source }
    }

    /// `job` deferred for its source's pull budget, counted there: the failed line `why`.
    fn deferred(&self, job: &Job, why: String) -> Action {
        self.source.count_deferred(&job.source);
        Action::Fail(why)
    }

    /// True when a decision of this run took the daemon's pull of `source` already.
    fn daemon_pulled(&self, source: &str) -> bool {
        self.daemon_pulls
            .lock()
            .is_ok_and(|pulled| pulled.contains(source))
    }

    /// What each source registry cost so far, and its budget (see [`PullBudget`]).
    pub fn pull_budgets(&self) -> Vec<PullBudget> {
        self.source.pull_budgets()
    }

    /// What the target and the state file already say about `source_digest`: unchanged
    /// (the target serves it, or what was written for it), or nothing to copy from it.
    fn remembered(
        &self,
        key: &str,
        source_digest: &str,
        at_target: Option<&str>,
    ) -> Option<Action> {
        if let Some(at_target) = at_target {
            let written = self.state.pushed(key, source_digest);
            if source_digest == at_target || written.as_deref() == Some(at_target) {
                return Some(Action::Skip(SkipReason::Unchanged));
            }
        }
        let record = self.state.skipped(key, source_digest)?;
        let parse = |p: &String| p.parse::<Platform>().ok();
        let reason = match record.linux.is_empty() {
            true => SkipReason::NoLinuxPlatform(record.platform.as_ref().and_then(parse)),
            false => SkipReason::NotSelected(record.linux.iter().filter_map(parse).collect()),
        };
        Some(Action::Skip(reason))
    }

    /// Remembers a platform skip, so the next run reads no manifest for it. A state file
    /// that cannot be written costs that read again, nothing more.
    fn remember_skip(&self, key: &str, source_digest: &str, reason: &SkipReason) {
        let names = |platforms: &[Platform]| platforms.iter().map(Platform::to_string).collect();
        let (linux, platform) = match reason {
            SkipReason::NoLinuxPlatform(platform) => (Vec::new(), platform.as_ref()),
            SkipReason::NotSelected(linux) => (names(linux), None),
            _ => return,
        };
        let record = SkipRecord {
            source_digest: source_digest.to_owned(),
            linux,
            platform: platform.map(Platform::to_string),
        };
        if let Err(error) = self.state.record_skip(key, record) {
            tracing::warn!("{error}");
        }
    }

    /// What of `manifest` travels; a skip or failure as the `Err` when nothing does.
    async fn content(&self, job: &Job, manifest: &Manifest) -> Result<Content, Halt> {
        let parsed = manifest::parse(&manifest.media_type, &manifest.bytes)
            .map_err(|e| Halt::Fail(e.to_string()))?;
        match parsed {
            Parsed::Index(children) => self.index(job, manifest, children),
            Parsed::Image(parts) => {
                let config = self
                    .source
                    .blob_bytes(&job.source, &parts.config)
                    .await
                    .map_err(|e| Halt::Fail(e.to_string()))?;
                match manifest::config_platform(&config) {
                    Some(p) if !job.all_platforms && !p.is_linux() => {
                        Err(Halt::Skip(SkipReason::NoLinuxPlatform(Some(p))))
                    }
                    Some(p)
                        if !job.all_platforms
                            && !job.platforms.is_empty()
                            && !job.platforms.iter().any(|w| w.selects(&p)) =>
                    {
                        Err(Halt::Skip(SkipReason::NotSelected(vec![p])))
                    }
                    _ => Ok(Content::Image { parts, config }),
                }
            }
        }
    }

    fn index(&self, job: &Job, manifest: &Manifest, children: Vec<Child>) -> Result<Content, Halt> {
        let mut kept = manifest::keep(&children, &job.platforms, job.all_platforms);
        if self.writes == Writes::DaemonPush {
            kept.retain(|&i| children[i].attests.is_none());
        }
        if kept.is_empty() && !job.all_platforms {
            let linux: Vec<Platform> = children
                .iter()
                .filter_map(|c| c.platform.clone())
                .filter(Platform::is_linux)
                .collect();
            return Err(Halt::Skip(match linux.is_empty() {
                true => SkipReason::NoLinuxPlatform(None),
                false => SkipReason::NotSelected(linux),
            }));
        }
        let chosen: Vec<Child> = kept.iter().map(|&i| children[i].clone()).collect();
        if kept.len() == children.len() {
            return Ok(Content::Index {
                chosen,
                write: manifest.bytes.clone(),
                dropped: None,
            });
        }
        // Entries left out: a complete new index of exactly the copied entries, never a
        // sparse one naming missing children.
        let write = manifest::filter_index(&manifest.media_type, &manifest.bytes, &kept)
            .map(Bytes::from)
            .map_err(|e| Halt::Fail(e.to_string()))?;
        let dropped = format!(
            "dropped {}: index {} -> {}",
            manifest::describe_dropped(&children, &kept),
            manifest.digest,
            sha256_digest(&write)
        );
        Ok(Content::Index {
            chosen,
            write,
            dropped: Some(dropped),
        })
    }
}
