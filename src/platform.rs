//! Platforms (`linux/amd64`, `linux/arm64/v8`): parsing and matching manifest entries.
//!
//! Owns the `os/arch[/variant]` grammar. It must not know about manifests' JSON.

use std::fmt;
use std::str::FromStr;

/// An OS/architecture pair with an optional variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Platform {
    /// Builds a platform from the fields of a manifest list entry.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_owned),
        }
    }

    /// `linux`, `windows` …
    pub fn os(&self) -> &str {
        &self.os
    }

    /// `amd64`, `arm64` …
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// `v8`, `v7` …, when given.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// True for Linux platforms, the only ones ferry pulls through the daemon.
    pub fn is_linux(&self) -> bool {
        self.os == "linux"
    }

    /// True when `self` (a requested platform) selects `entry` (a manifest entry).
    /// A request without variant matches every variant of its architecture.
    pub fn selects(&self, entry: &Platform) -> bool {
        self.os == entry.os
            && self.architecture == entry.architecture
            && (self.variant.is_none() || self.variant == entry.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => {
                Ok(Platform::new(os, arch, Some(variant)))
            }
            _ => Err(format!(
                "invalid platform {text:?}: expected os/arch[/variant], e.g. linux/amd64"
            )),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Platform {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_and_select() {
        let p: Platform = "linux/arm64/v8".parse().expect("valid");
        assert_eq!(
            (p.os(), p.architecture(), p.variant()),
            ("linux", "arm64", Some("v8"))
        );
        assert_eq!(p.to_string(), "linux/arm64/v8");
        let any_arm: Platform = "linux/arm64".parse().expect("valid");
        assert!(any_arm.selects(&p));
        assert!(!p.selects(&Platform::new("linux", "arm64", Some("v9"))));
        assert!(!any_arm.selects(&Platform::new("windows", "arm64", None)));
        assert!(Platform::new("windows", "amd64", None).to_string() == "windows/amd64");
        for bad in [
            "",
            "linux",
            "linux/",
            "Linux/amd64",
            "a/b/c/d",
            "linux/amd 64",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?}");
        }
    }
}
