//! Conversion of the daemon's image descriptions (bollard models) into [`ImageInfo`].
//!
//! Owns reading inspect and list answers without trusting them (no field is assumed
//! present); it must not talk to the daemon.

use bollard::models::{ImageInspect, ImageSummary};

use super::api::ImageInfo;
use crate::platform::Platform;

/// From `GET /images/{name}/json`.
pub(crate) fn from_inspect(image: ImageInspect) -> ImageInfo {
    ImageInfo {
        id: image.id.unwrap_or_default(),
        repo_tags: image.repo_tags.unwrap_or_default(),
        repo_digests: image.repo_digests.unwrap_or_default(),
        size: image.size.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
        labels: image
            .config
            .and_then(|c| c.labels)
            .unwrap_or_default()
            .into_iter()
            .collect(),
        created: image
            .created
            .as_deref()
            .and_then(crate::timestamp::unix_seconds),
        os: image.os,
        architecture: image.architecture,
        layers: image.root_fs.and_then(|r| r.layers).unwrap_or_default(),
    }
}

/// From one entry of `GET /images/json`, which carries no platform.
pub(crate) fn from_summary(image: ImageSummary) -> ImageInfo {
    ImageInfo {
        id: image.id,
        repo_tags: image
            .repo_tags
            .into_iter()
            .filter(|t| t != "<none>:<none>")
            .collect(),
        repo_digests: image
            .repo_digests
            .into_iter()
            .filter(|d| d != "<none>@<none>")
            .collect(),
        size: u64::try_from(image.size).unwrap_or(0),
        labels: image.labels.into_iter().collect(),
        created: Some(image.created),
        os: None,
        architecture: None,
        layers: Vec::new(),
    }
}

/// The platform of an inspected image.
pub(crate) fn platform_of(image: &ImageInspect) -> Platform {
    Platform::new(
        image.os.as_deref().unwrap_or("unknown"),
        image.architecture.as_deref().unwrap_or("unknown"),
        image.variant.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_of_an_inspected_image_keeps_its_variant() {
        let image = ImageInspect {
            os: Some("linux".into()),
            architecture: Some("arm".into()),
            variant: Some("v7".into()),
            ..Default::default()
        };
        assert_eq!(platform_of(&image).to_string(), "linux/arm/v7");
    }

    #[test]
    fn missing_fields_do_not_panic() {
        let info = from_inspect(ImageInspect::default());
        assert_eq!(info, ImageInfo::default());
    }
}
