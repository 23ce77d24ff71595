//! Client and admin keys, compared in constant time. Keys are never logged or echoed.

use std::sync::Arc;

use http::HeaderMap;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::client_keys::ClientKey;

/// The keys the gateway accepts.
#[derive(Clone, Default)]
pub struct Auth {
    /// Unnamed keys (`server.api_keys`) then named ones (`server.keys`), each with its named key if any.
    client_keys: Vec<(Vec<u8>, Option<Arc<ClientKey>>)>,
    admin_key: Option<Vec<u8>>,
}

/// Who sent a client request: `None` for an unnamed key (or no auth), else the named key.
pub type Caller = Option<Arc<ClientKey>>;

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("client_keys", &self.client_keys.len())
            .field("admin_key", &self.admin_key.is_some())
            .finish()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No key, or a wrong one: 401.
    BadKey,
    /// The admin API is off because no admin key is configured: 403.
    AdminDisabled,
}

impl Auth {
    /// Keys from the config; no client keys means clients need none.
    pub fn new<'a>(client_keys: impl IntoIterator<Item = &'a str>, admin_key: Option<&str>) -> Self {
        Self {
            client_keys: client_keys.into_iter().map(|k| (k.as_bytes().to_vec(), None)).collect(),
            admin_key: admin_key.map(|k| k.as_bytes().to_vec()),
        }
    }

    /// Adds named keys: (secret, the key it identifies).
    pub fn with_named<'a>(mut self, keys: impl IntoIterator<Item = (&'a str, Arc<ClientKey>)>) -> Self {
        self.client_keys.extend(keys.into_iter().map(|(secret, key)| (secret.as_bytes().to_vec(), Some(key))));
        self
    }

    /// The named key called `name`, if there is one.
    pub fn named(&self, name: &str) -> Option<&Arc<ClientKey>> {
        self.client_keys.iter().filter_map(|(_, named)| named.as_ref()).find(|key| key.name() == name)
    }

    /// Whether clients must send a key.
    pub fn requires_client_key(&self) -> bool {
        !self.client_keys.is_empty()
    }

    /// Checks a client request (`Authorization: Bearer …` or `x-api-key`) and says which key sent it.
    pub fn check_client(&self, headers: &HeaderMap) -> Result<Caller, Denied> {
        if self.client_keys.is_empty() {
            return Ok(None);
        }
        // The bearer token first; `x-api-key` is looked up only when the token matched no key (stopping at a
        // match tells a client no more than its answer does).
        let found = bearer(headers)
            .and_then(|token| self.client_key(token))
            .or_else(|| api_key(headers).and_then(|key| self.client_key(key)));
        match found {
            Some(named) => Ok(named.clone()),
            None => Err(Denied::BadKey),
        }
    }

    /// The key `candidate` is, compared against every key without stopping early, so timing says nothing about
    /// which key (or how much of one) matched.
    fn client_key(&self, candidate: &[u8]) -> Option<&Caller> {
        // 1 + the index of the matching key, 0 for none.
        let mut found = 0u32;
        for (i, (key, _)) in self.client_keys.iter().enumerate() {
            let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
            found.conditional_assign(&index, key.as_slice().ct_eq(candidate));
        }
        (found as usize).checked_sub(1).and_then(|i| self.client_keys.get(i)).map(|(_, named)| named)
    }

    /// Checks an admin request (`Authorization: Bearer <admin_key>`, or `x-api-key`).
    pub fn check_admin(&self, headers: &HeaderMap) -> Result<(), Denied> {
        let Some(key) = &self.admin_key else {
            return Err(Denied::AdminDisabled);
        };
        let mut ok = subtle::Choice::from(0u8);
        for candidate in presented_keys(headers) {
            ok |= key.as_slice().ct_eq(candidate);
        }
        if bool::from(ok) { Ok(()) } else { Err(Denied::BadKey) }
    }
}

/// The keys a request presents (`Authorization: Bearer …`, then `x-api-key`).
fn presented_keys(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    [bearer(headers), api_key(headers)].into_iter().flatten()
}

/// The token of `Authorization: Bearer …`.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(http::header::AUTHORIZATION).and_then(|value| {
        let bytes = value.as_bytes();
        (bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ")).then(|| trim(&bytes[7..]))
    })
}

/// The `x-api-key` header's key.
fn api_key(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(crate::headers::API_KEY).map(|value| trim(value.as_bytes()))
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn client_keys_by_bearer_or_x_api_key() {
        let auth = Auth::new(["k1", "k2"], Some("adm"));
        let check = |h: &[(&'static str, &'static str)]| auth.check_client(&headers(h)).map(|c| c.is_some());
        assert_eq!(check(&[("authorization", "Bearer k2")]), Ok(false));
        assert_eq!(check(&[("x-api-key", "k1")]), Ok(false));
        assert_eq!(check(&[("authorization", "Bearer k3")]), Err(Denied::BadKey));
        assert_eq!(check(&[]), Err(Denied::BadKey));
        assert_eq!(check(&[("authorization", "k1")]), Err(Denied::BadKey));
        assert_eq!(auth.check_admin(&headers(&[("authorization", "Bearer k1")])), Err(Denied::BadKey));
        assert_eq!(auth.check_admin(&headers(&[("authorization", "bearer adm")])), Ok(()));
    }

    #[test]
    fn no_keys_means_open_clients_and_closed_admin() {
        let auth = Auth::new([], None);
        assert!(matches!(auth.check_client(&headers(&[])), Ok(None)));
        assert_eq!(auth.check_admin(&headers(&[("authorization", "Bearer x")])), Err(Denied::AdminDisabled));
        assert!(!format!("{:?}", Auth::new(["secret"], Some("s2"))).contains("secret"));
    }

    fn named(name: &str) -> Arc<ClientKey> {
        let config = crate::config::ClientKeyConfig {
            name: name.to_owned(),
            key: crate::config::Secret::new("unused"),
            rpm: None,
            tpm: None,
            routes: None,
        };
        Arc::new(ClientKey::new(&config, None, None))
    }

    #[test]
    fn a_named_key_is_told_apart_from_unnamed_ones() {
        let auth = Auth::new(["plain"], None).with_named([("ta", named("team-a")), ("tb", named("team-b"))]);
        let name =
            |h: &[(&'static str, &'static str)]| auth.check_client(&headers(h)).map(|c| c.map(|k| k.name().to_owned()));
        assert_eq!(name(&[("authorization", "Bearer tb")]), Ok(Some("team-b".to_owned())));
        assert_eq!(name(&[("x-api-key", "ta")]), Ok(Some("team-a".to_owned())));
        assert_eq!(name(&[("authorization", "Bearer plain")]), Ok(None));
        let both = [("authorization", "Bearer tb"), ("x-api-key", "ta")];
        assert_eq!(name(&both), Ok(Some("team-b".to_owned())), "both headers with keys: the bearer token's key");
        let bad_bearer = [("authorization", "Bearer nope"), ("x-api-key", "ta")];
        assert_eq!(name(&bad_bearer), Ok(Some("team-a".to_owned())), "a token that is no key: x-api-key still counts");
        assert_eq!(name(&[("authorization", "Bearer nope"), ("x-api-key", "nope")]), Err(Denied::BadKey));
        assert_eq!(name(&[("authorization", "Bearer team-a")]), Err(Denied::BadKey), "a name is not a key");
        let named_only = Auth::new([], None).with_named([("ta", named("team-a"))]);
        assert!(named_only.requires_client_key());
        assert_eq!(named_only.check_client(&headers(&[])).map(|c| c.is_some()), Err(Denied::BadKey));
    }
}
