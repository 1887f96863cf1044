//! `--shard I/N`: a deterministic split of the work by source repository.
//!
//! Owns the parsing of `I/N` and the assignment of a repository to a shard. It must not
//! depend on anything that differs between machines (order of input, hash seeds).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// One of N shards, 1-based as written on the command line (`--shard 2/3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// True when this shard owns the source repository `registry/path`.
    pub fn owns(&self, repository: &str) -> bool {
        let digest = Sha256::digest(repository.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(head) % u64::from(self.count)) as u32 == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("invalid shard {text:?}: expected I/N with 1 <= I <= N, e.g. 1/3");
        let (index, count) = text.split_once('/').ok_or_else(invalid)?;
        let index: u32 = index.trim().parse().map_err(|_| invalid())?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        if count == 0 || index == 0 || index > count {
            return Err(invalid());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sha256("docker.io/library/nginx")[..8] as big-endian u64, mod 4, plus 1.
    const PINNED_NGINX_SHARD: usize = 2;

    #[test]
    fn parsing() {
        assert_eq!(
            "2/3".parse::<Shard>().map(|s| s.to_string()),
            Ok("2/3".into())
        );
        for bad in ["", "0/3", "4/3", "1/0", "a/b", "1", "1/2/3", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_repository_lands_in_exactly_one_shard_and_all_shards_get_work() {
        let repos: Vec<String> = (0..200).map(|i| format!("docker.io/team/app{i}")).collect();
        let shards: Vec<Shard> = (1..=4)
            .map(|i| format!("{i}/4").parse().expect("shard"))
            .collect();
        let mut sizes = [0; 4];
        for repo in &repos {
            let owners: Vec<usize> = (0..4).filter(|&i| shards[i].owns(repo)).collect();
            assert_eq!(owners.len(), 1, "{repo}");
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| n > 25), "balanced enough: {sizes:?}");
        // Stable across runs, machines and releases: agents of one matrix must agree.
        let owner = |repo: &str| (0..4).find(|&i| shards[i].owns(repo)).map(|i| i + 1);
        assert_eq!(owner("docker.io/library/nginx"), Some(PINNED_NGINX_SHARD));
    }
}
