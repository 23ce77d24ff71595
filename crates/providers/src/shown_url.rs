//! A URL as logs, error messages and the admin API may show it: without the credentials a base URL can carry.

/// What a hidden part of a URL is replaced by.
const HIDDEN: &str = "<redacted>";

/// `url` with its userinfo (`user:pass@`) and the value of each query parameter replaced by `<redacted>`
/// (a parameter without `=` is replaced whole): both are where a provider's credentials end up when a base
/// URL carries them. Scheme, host, port, path and parameter names stay, so the URL remains recognisable.
pub fn redact_url(url: &str) -> String {
    let (url, fragment) = match url.split_once('#') {
        Some((url, fragment)) => (url, Some(fragment)),
        None => (url, None),
    };
    let (url, query) = match url.split_once('?') {
        Some((url, query)) => (url, Some(query)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len() + 16);
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
    match url[after_scheme..authority_end].rfind('@') {
        Some(at) => {
            out.push_str(&url[..after_scheme]);
            out.push_str(HIDDEN);
            out.push_str(&url[after_scheme + at..]);
        }
        None => out.push_str(url),
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(HIDDEN);
                }
                None if pair.is_empty() => {}
                None => out.push_str(HIDDEN),
            }
        }
    }
    if fragment.is_some() {
        // A fragment is never sent, but one in a config could still hold a secret.
        out.push('#');
        out.push_str(HIDDEN);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn userinfo_and_query_values_are_hidden_and_the_rest_kept() {
        let cases = [
            ("https://api.example.com/v1", "https://api.example.com/v1"),
            ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"),
            ("https://user:S-pw@host:8443/v1", "https://<redacted>@host:8443/v1"),
            ("https://S-tok@host", "https://<redacted>@host"),
            ("https://host/v1?key=S-k&api-version=2024", "https://host/v1?key=<redacted>&api-version=<redacted>"),
            ("https://u:S-p@host/v1?S-bare", "https://<redacted>@host/v1?<redacted>"),
            ("https://host/v1#S-f", "https://host/v1#<redacted>"),
            // An `@` in the path is not userinfo.
            ("https://host/v1/@me", "https://host/v1/@me"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
