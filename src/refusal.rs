//! What registries say when they refuse (Harbor's quota and immutable tags, Docker Hub's
//! pull limit) and what ferry calls it, the same whether the refusal came back to ferry's
//! own client or through the Docker daemon.
//!
//! Owns those words only; whether a refusal is retried is for its error type to say.

/// Docker Hub's pull limit (`toomanyrequests: You have reached your pull rate limit`),
/// which lasts until its window turns, hours away. The bare abuse 429 is not it.
pub fn is_pull_limit(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("toomanyrequests") && text.contains("pull rate limit")
}

/// Harbor's quota refusal (`… will exceed the configured upper limit …`).
pub fn is_quota(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("exceed the configured upper limit") || text.contains("quota")
}

/// The cause named for a pull limit met on `registry`.
pub fn pull_limit(registry: &str) -> String {
    format!(
        "pull rate limit reached on {registry} (not retried: it lasts for the rest of the window)"
    )
}

/// The cause named for a full quota on `registry`.
pub fn quota(registry: &str) -> String {
    format!("quota exceeded on {registry}")
}

/// The cause named for a tag `image` (`host/repository:tag`) the registry keeps immutable.
pub fn immutable(image: &str) -> String {
    format!("tag is immutable on {image}")
}

/// The cause named for an account that cannot reach `place` (`host/repository`).
pub fn no_access(place: &str, push: bool) -> String {
    match push {
        true => format!("project missing or no push permission on {place}"),
        false => format!("repository missing or no pull permission on {place}"),
    }
}
