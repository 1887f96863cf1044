//! `WWW-Authenticate` (RFC 7235): header values split into challenges (a scheme with
//! `key=value` parameters), and the one ferry answers (Bearer over Basic).
//!
//! Owns only reading the header; it must not fetch tokens or attach credentials (`auth`).

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};

/// One challenge: its scheme and its parameters in order.
pub(crate) type Parsed = (String, Vec<(String, String)>);

/// Splits a header value such as `Basic realm="x", Bearer realm="y",service="z"`.
pub(crate) fn split(header: &str) -> Vec<Parsed> {
    let chars: Vec<char> = header.chars().collect();
    let mut out: Vec<Parsed> = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ',' && chars[i] != '=' {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        let mut j = i;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if j < chars.len() && chars[j] == '=' {
            i = j + 1;
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            let value = if i < chars.len() && chars[i] == '"' {
                i += 1;
                let mut value = String::new();
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    value.push(chars[i]);
                    i += 1;
                }
                i += 1;
                value
            } else {
                let start = i;
                while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                    i += 1;
                }
                chars[start..i].iter().collect()
            };
            if let Some((_, params)) = out.last_mut() {
                params.push((token, value));
            }
        } else if !token.is_empty() {
            out.push((token, Vec::new()));
        } else {
            i += 1;
        }
    }
    out
}

/// How a registry wants to be authenticated, from its `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// No authentication asked for.
    None,
    /// HTTP Basic with the registry credentials.
    Basic,
    /// Bearer tokens from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        scopes: Vec<String>,
    },
}

/// The most capable challenge offered (Bearer over Basic), if any.
pub(crate) fn parse_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let mut best = None;
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        for (scheme, params) in split(text) {
            match scheme.to_ascii_lowercase().as_str() {
                "bearer" => {
                    let get = |k: &str| {
                        params
                            .iter()
                            .find(|(key, _)| key.eq_ignore_ascii_case(k))
                            .map(|(_, v)| v.clone())
                    };
                    let Some(realm) = get("realm") else { continue };
                    let scopes = get("scope")
                        .map(|s| {
                            s.split(' ')
                                .filter(|s| !s.is_empty())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    return Some(Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scopes,
                    });
                }
                "basic" => best = Some(Challenge::Basic),
                _ => {}
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn challenges() {
        let mut headers = HeaderMap::new();
        headers.append(WWW_AUTHENTICATE, HeaderValue::from_static(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull repository:x:pull""#,
        ));
        assert_eq!(
            parse_challenge(&headers),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scopes: vec![
                    "repository:library/nginx:pull".into(),
                    "repository:x:pull".into()
                ],
            })
        );
        let mut basic = HeaderMap::new();
        basic.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="Registry Realm""#),
        );
        assert_eq!(parse_challenge(&basic), Some(Challenge::Basic));
        let mut both = HeaderMap::new();
        both.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="x", Bearer realm="https://a/t""#),
        );
        assert!(matches!(
            parse_challenge(&both),
            Some(Challenge::Bearer { .. })
        ));
        assert_eq!(parse_challenge(&HeaderMap::new()), None);
    }

    #[test]
    fn splits_schemes_and_params() {
        let parsed =
            split(r#"Basic realm="a, b", Bearer realm="https://x/t",service=reg ,scope="s:\"q\"""#);
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[0],
            ("Basic".into(), vec![("realm".into(), "a, b".into())])
        );
        assert_eq!(parsed[1].0, "Bearer");
        assert_eq!(
            parsed[1].1,
            vec![
                ("realm".into(), "https://x/t".into()),
                ("service".into(), "reg".into()),
                ("scope".into(), "s:\"q\"".into()),
            ]
        );
        assert!(split("").is_empty());
        assert_eq!(split("Negotiate").len(), 1);
    }
}
