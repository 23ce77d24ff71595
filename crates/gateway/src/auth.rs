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
        // Compare against every key without stopping early, so timing says nothing about which matched;
        // `found` is 1 + the index of the matching key, 0 for none.
        let mut found = 0u32;
        for candidate in presented_keys(headers) {
            for (i, (key, _)) in self.client_keys.iter().enumerate() {
                let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
                found.conditional_assign(&index, key.as_slice().ct_eq(candidate));
            }
        }
        match (found as usize).checked_sub(1).and_then(|i| self.client_keys.get(i)) {
            Some((_, named)) => Ok(named.clone()),
            None => Err(Denied::BadKey),
        }
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

/// The keys a request presents (`Authorization: Bearer …`, then `x-api-key`), in an array rather than a list: this
/// runs on every request.
fn presented_keys(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    let bearer = headers.get(http::header::AUTHORIZATION).and_then(|value| {
        let bytes = value.as_bytes();
        (bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ")).then(|| trim(&bytes[7..]))
    });
    let api_key = headers.get(crate::headers::API_KEY).map(|value| trim(value.as_bytes()));
    [bearer, api_key].into_iter().flatten()
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
        assert_eq!(name(&[("authorization", "Bearer team-a")]), Err(Denied::BadKey), "a name is not a key");
        let named_only = Auth::new([], None).with_named([("ta", named("team-a"))]);
        assert!(named_only.requires_client_key());
        assert_eq!(named_only.check_client(&headers(&[])).map(|c| c.is_some()), Err(Denied::BadKey));
    }
}
