//! Target templates: `public-image-mirror/{registry}_{flat}`, `google_containers/{name}`.
//!
//! Owns the placeholder syntax and what each placeholder means for a source reference; it
//! must not decide which registry the result lands in.

use std::fmt;

use crate::reference::{Reference, DOCKER_HUB};

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &["registry", "repository", "path", "name", "flat", "tag"];

/// A parsed `target`: a repository path template and an optional `:tag` template.
///
/// For `docker.io/library/nginx:1.25` the placeholders are: `{registry}` = `docker.io`,
/// `{repository}` = `library/nginx` (as the registry stores it), `{path}` = `nginx` (the
/// familiar path the docker CLI prints: `library/` dropped for Docker Hub official images,
/// otherwise equal to `{repository}`), `{name}` = `nginx` (last component), `{flat}` =
/// `{path}` with `/` replaced by `_`, `{tag}` = `1.25` (only after the `:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    path: Vec<Piece>,
    tag: Option<Vec<Piece>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Registry,
    Repository,
    Path,
    Name,
    Flat,
    Tag,
}

impl Template {
    /// Parses a template; `{tag}` is only allowed in the tag part (after the last `:`
    /// following the last `/`). Without a tag part the source tag is kept.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.is_empty() {
            return Err("empty target".to_owned());
        }
        let last_slash = text.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match text[last_slash..].find(':') {
            Some(i) => (&text[..last_slash + i], Some(&text[last_slash + i + 1..])),
            None => (text, None),
        };
        let path = pieces(path)?;
        if path.contains(&Piece::Tag) {
            return Err("{tag} can only follow ':' (e.g. name:{tag}-x)".to_owned());
        }
        let tag = tag.map(pieces).transpose()?;
        Ok(Template {
            text: text.to_owned(),
            path,
            tag,
        })
    }

    /// Renders the repository path and, when the source has a tag, the target tag.
    pub fn render(&self, source: &Reference) -> (String, Option<String>) {
        let path = render(&self.path, source);
        let tag = source.tag().map(|_| match &self.tag {
            Some(pieces) => render(pieces, source),
            None => source.tag().unwrap_or_default().to_owned(),
        });
        (path, tag)
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The familiar path: `nginx` for `docker.io/library/nginx`, else the repository.
pub fn familiar_path(source: &Reference) -> &str {
    let repository = source.repository();
    match repository.strip_prefix("library/") {
        Some(rest) if source.registry() == DOCKER_HUB && !rest.contains('/') => rest,
        _ => repository,
    }
}

fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                out.push(Piece::Literal(rest.to_owned()));
                break;
            }
            Some(i) if rest[i..].starts_with('}') => {
                return Err("'}' without '{'".to_owned());
            }
            Some(i) => {
                if i > 0 {
                    out.push(Piece::Literal(rest[..i].to_owned()));
                }
                let close = rest[i..]
                    .find('}')
                    .ok_or_else(|| "'{' without '}'".to_owned())?;
                let name = &rest[i + 1..i + close];
                out.push(match name {
                    "registry" => Piece::Registry,
                    "repository" => Piece::Repository,
                    "path" => Piece::Path,
                    "name" => Piece::Name,
                    "flat" => Piece::Flat,
                    "tag" => Piece::Tag,
                    other => {
                        return Err(format!(
                            "unknown placeholder {{{other}}}, expected one of {{{}}}",
                            PLACEHOLDERS.join("} {")
                        ))
                    }
                });
                rest = &rest[i + close + 1..];
            }
        }
    }
    Ok(out)
}

fn render(pieces: &[Piece], source: &Reference) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Registry => out.push_str(source.registry()),
            Piece::Repository => out.push_str(source.repository()),
            Piece::Path => out.push_str(familiar_path(source)),
            Piece::Name => out.push_str(source.name()),
            Piece::Flat => out.push_str(&familiar_path(source).replace('/', "_")),
            Piece::Tag => out.push_str(source.tag().unwrap_or_default()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Reference {
        text.parse().expect("valid reference")
    }

    #[test]
    fn placeholders_render_as_documented() {
        let t = "{registry}|{repository}|{path}|{name}|{flat}:{tag}";
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("nginx:1.25", "docker.io|library/nginx|nginx|nginx|nginx", Some("1.25")),
            (
                "adoptopenjdk/openjdk11:latest",
                "docker.io|adoptopenjdk/openjdk11|adoptopenjdk/openjdk11|openjdk11|adoptopenjdk_openjdk11",
                Some("latest"),
            ),
            (
                "registry.k8s.io/coredns/coredns",
                "registry.k8s.io|coredns/coredns|coredns/coredns|coredns|coredns_coredns",
                None,
            ),
            ("quay.io/library/x/y:1", "quay.io|library/x/y|library/x/y|y|library_x_y", Some("1")),
        ];
        let template = Template::parse(t).expect("valid template");
        for (source, path, tag) in cases {
            let (p, tg) = template.render(&r(source));
            assert_eq!((p.as_str(), tg.as_deref()), (*path, *tag), "{source}");
        }
        let keep = Template::parse("mirror/{flat}").expect("valid template");
        assert_eq!(keep.render(&r("nginx:7")).1.as_deref(), Some("7"));
        let suffixed = Template::parse("m/{name}:{tag}-x").expect("valid template");
        assert_eq!(suffixed.render(&r("nginx:7")).1.as_deref(), Some("7-x"));
    }

    #[test]
    fn bad_templates_say_why() {
        for (text, says) in [
            ("", "empty target"),
            ("a/{nam}", "unknown placeholder {nam}"),
            ("a/{name", "'{' without '}'"),
            ("a/name}", "'}' without '{'"),
            ("a/{tag}", "{tag} can only follow ':'"),
        ] {
            let e = Template::parse(text).expect_err(text);
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
