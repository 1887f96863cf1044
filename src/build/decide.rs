//! Whether an extension image needs building: the labels it carries and the decision table.
//!
//! Owns the label names and the pure decision from mode, naming, `--force` and what the
//! target carries; it must not do I/O (the transport reads the target and the base).

use std::collections::BTreeMap;

use crate::config::BuildMode;
use crate::event::SkipReason;

/// Label holding the manifest digest of the base image the extension was built on.
pub const LABEL_BASE_DIGEST: &str = "io.ferry.base.digest";
/// Label holding the hash of the build context (files and build args).
pub const LABEL_CONTEXT: &str = "io.ferry.context.sha256";
/// Label holding the base reference (mirror name and tag) the extension was built on.
pub const LABEL_BASE_REF: &str = "io.ferry.base.ref";

/// What a build from the current base and context would record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The base reference (mirror name and tag).
    pub base_ref: String,
    /// The base manifest digest (`sha256:…`; an index digest for a multi-platform base).
    pub base_digest: String,
    /// The context hash (`sha256:…`).
    pub context: String,
}

impl Fingerprint {
    /// The labels a build sets.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_BASE_DIGEST.to_owned(), self.base_digest.clone()),
            (LABEL_CONTEXT.to_owned(), self.context.clone()),
            (LABEL_BASE_REF.to_owned(), self.base_ref.clone()),
        ])
    }
}

/// What the target registry has under the `-n-ext` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// No such tag.
    Missing,
    /// The tag exists; its labels when they were read (only `continuous` needs them).
    Present(BTreeMap<String, String>),
}

/// Build or skip, and why (a few words, shown to people).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Build, because …
    Build(String),
    /// Skip, because …
    Skip(SkipReason),
}

/// How one job is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The entry's mode.
    pub mode: BuildMode,
    /// The entry was named on the command line.
    pub named: bool,
    /// `--force`.
    pub force: bool,
}

/// The decision table. `once`: build when the target is missing, when named, or forced.
/// `continuous`: build when the target is missing, its base digest or context label
/// differs from `wanted`, or forced; naming only selects it (use `--force` to rebuild an
/// unchanged one).
pub fn decide(request: Request, target: &Target, wanted: &Fingerprint) -> Decision {
    let build = |why: &str| Decision::Build(why.to_owned());
    if request.force {
        return build("forced");
    }
    let Target::Present(labels) = target else {
        return build("target missing");
    };
    match request.mode {
        BuildMode::Once if request.named => build("named"),
        BuildMode::Once => Decision::Skip(SkipReason::BuildExists),
        BuildMode::Continuous => {
            let differs =
                |key: &str, value: &str| labels.get(key).map(String::as_str) != Some(value);
            let base = differs(LABEL_BASE_DIGEST, &wanted.base_digest);
            let context = differs(LABEL_CONTEXT, &wanted.context);
            match (base, context) {
                (true, true) => build("base and context changed"),
                (true, false) => build("base changed"),
                (false, true) => build("context changed"),
                (false, false) => Decision::Skip(SkipReason::BuildUnchanged),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BuildMode::{Continuous, Once};

    fn wanted() -> Fingerprint {
        Fingerprint {
            base_ref: "mirror.local/base:1".to_owned(),
            base_digest: "sha256:base".to_owned(),
            context: "sha256:ctx".to_owned(),
        }
    }

    fn present(base: &str, context: &str) -> Target {
        Target::Present(BTreeMap::from([
            (LABEL_BASE_DIGEST.to_owned(), base.to_owned()),
            (LABEL_CONTEXT.to_owned(), context.to_owned()),
            (LABEL_BASE_REF.to_owned(), "anything".to_owned()),
        ]))
    }

    #[test]
    fn the_decision_table() {
        let same = present("sha256:base", "sha256:ctx");
        let base_moved = present("sha256:old", "sha256:ctx");
        let context_moved = present("sha256:base", "sha256:old");
        let both_moved = present("sha256:old", "sha256:old");
        let unlabelled = Target::Present(BTreeMap::new());
        let missing = Target::Missing;
        let build = |why: &str| Decision::Build(why.to_owned());
        let skip = |why: &str| match why {
            "exists (mode once)" => Decision::Skip(SkipReason::BuildExists),
            _ => Decision::Skip(SkipReason::BuildUnchanged),
        };
        #[rustfmt::skip]
        let table = [
            // mode, named, force, target, decision
            (Once, false, false, &missing, build("target missing")),
            (Once, false, false, &same, skip("exists (mode once)")),
            (Once, false, false, &base_moved, skip("exists (mode once)")),
            (Once, false, false, &unlabelled, skip("exists (mode once)")),
            (Once, true, false, &same, build("named")),
            (Once, true, false, &missing, build("target missing")),
            (Once, false, true, &same, build("forced")),
            (Once, true, true, &same, build("forced")),
            (Continuous, false, false, &missing, build("target missing")),
            (Continuous, false, false, &same, skip("unchanged: base and context")),
            (Continuous, false, false, &base_moved, build("base changed")),
            (Continuous, false, false, &context_moved, build("context changed")),
            (Continuous, false, false, &both_moved, build("base and context changed")),
            (Continuous, false, false, &unlabelled, build("base and context changed")),
            (Continuous, true, false, &same, skip("unchanged: base and context")),
            (Continuous, true, false, &context_moved, build("context changed")),
            (Continuous, false, true, &same, build("forced")),
            (Continuous, false, true, &missing, build("forced")),
        ];
        for (mode, named, force, target, expected) in table {
            let request = Request { mode, named, force };
            assert_eq!(
                decide(request, target, &wanted()),
                expected,
                "{request:?} {target:?}"
            );
        }
    }

    #[test]
    fn the_labels_carry_the_fingerprint() {
        let labels = wanted().labels();
        assert_eq!(labels[LABEL_BASE_DIGEST], "sha256:base");
        assert_eq!(labels[LABEL_CONTEXT], "sha256:ctx");
        assert_eq!(labels[LABEL_BASE_REF], "mirror.local/base:1");
        assert_eq!(
            decide(
                Request {
                    mode: Continuous,
                    named: false,
                    force: false
                },
                &Target::Present(labels),
                &wanted()
            ),
            Decision::Skip(SkipReason::BuildUnchanged)
        );
    }
}
