//! Reading an image's config blob through its manifest, for labels, platform and creation
//! time, without pulling the image.
//!
//! Owns the walk index -> platform manifest -> config. It must not write anything.

use bytes::Bytes;
use futures::TryStreamExt;

use super::error::{ErrorKind, RegistryError};
use super::limits::Limit;
use super::RegistryClient;
use crate::manifest::{self, Blob, Child, Parsed};
use crate::reference::Reference;

impl RegistryClient {
    /// The config blob of `image`. For an index: its linux/amd64 entry, else its first Linux
    /// entry; `None` when the index has no Linux entry at all.
    pub async fn image_config(&self, image: &Reference) -> Result<Option<Bytes>, RegistryError> {
        let unreadable = |cause: String| {
            RegistryError::new(
                image.registry(),
                Some(image.repository()),
                "read image config",
                ErrorKind::Protocol(cause),
            )
        };
        let top = self.get_manifest(image).await?;
        let (pinned, parts) = match manifest::parse(&top.media_type, &top.bytes)
            .map_err(|e| unreadable(e.to_string()))?
        {
            Parsed::Image(parts) => (image.clone(), parts),
            Parsed::Index(children) => {
                let Some(child) = linux_entry(&children) else {
                    return Ok(None);
                };
                let pinned = image
                    .with_digest(&child.digest)
                    .map_err(|e| unreadable(e.to_string()))?;
                let platform = self.get_manifest(&pinned).await?;
                match manifest::parse(&platform.media_type, &platform.bytes)
                    .map_err(|e| unreadable(e.to_string()))?
                {
                    Parsed::Image(parts) => (pinned, parts),
                    Parsed::Index(_) => {
                        return Err(unreadable("an index inside an index".to_owned()))
                    }
                }
            }
        };
        self.blob_bytes(&pinned, &parts.config).await.map(Some)
    }

    /// An image config blob in memory, verified against its descriptor's digest and size;
    /// a descriptor over the registry's `config_size` fails before any byte is read.
    /// Layers go through [`RegistryClient::get_blob`] as a stream instead.
    pub async fn blob_bytes(
        &self,
        reference: &Reference,
        config: &Blob,
    ) -> Result<Bytes, RegistryError> {
        self.check_config_size(reference, config)?;
        let bytes: Vec<u8> = self
            .get_blob(reference, &config.digest, Some(config.size))
            .await?
            .map_ok(|chunk| chunk.to_vec())
            .try_concat()
            .await?;
        Ok(Bytes::from(bytes))
    }

    /// Fails when `config` declares more bytes than the registry's `config_size`.
    pub fn check_config_size(
        &self,
        reference: &Reference,
        config: &Blob,
    ) -> Result<(), RegistryError> {
        let limit = self.host(reference.api_host())?.limits.config_size;
        if config.size <= limit {
            return Ok(());
        }
        Err(RegistryError::new(
            reference.registry(),
            Some(reference.repository()),
            format!("GET blob {}", config.digest),
            ErrorKind::Limit {
                limit: Limit::ConfigSize,
                message: format!(
                    "image config of {} bytes is larger than {limit} bytes",
                    config.size
                ),
            },
        ))
    }
}

/// The linux/amd64 entry of an index, else its first Linux entry.
fn linux_entry(children: &[Child]) -> Option<&Child> {
    let linux = |c: &&Child| c.platform.as_ref().is_some_and(|p| p.is_linux());
    children
        .iter()
        .filter(linux)
        .find(|c| {
            c.platform
                .as_ref()
                .is_some_and(|p| p.architecture() == "amd64")
        })
        .or_else(|| children.iter().find(linux))
}
