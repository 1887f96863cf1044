//! Reading an image's config blob through its manifest, for labels, platform and creation
//! time, without pulling the image.
//!
//! Owns the walk index -> platform manifest -> config. It must not write anything.

use bytes::Bytes;
use futures::TryStreamExt;

use super::error::{ErrorKind, RegistryError};
use super::RegistryClient;
use crate::manifest::{self, Child, Parsed};
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
        self.blob_bytes(&pinned, &parts.config.digest)
            .await
            .map(Some)
    }

    /// A small blob (an image config) in memory, verified against its digest. Layers go
    /// through [`RegistryClient::get_blob`] as a stream instead.
    pub async fn blob_bytes(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<Bytes, RegistryError> {
        let bytes: Vec<u8> = self
            .get_blob(reference, digest)
            .await?
            .map_ok(|chunk| chunk.to_vec())
            .try_concat()
            .await?;
        Ok(Bytes::from(bytes))
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
