//! Client and admin keys, compared in constant time. Keys are never logged or echoed.

use http::HeaderMap;
use subtle::ConstantTimeEq;

/// The keys the gateway accepts.
#[derive(Clone, Default)]
pub struct Auth {
    client_keys: Vec<Vec<u8>>,
    admin_key: Option<Vec<u8>>,
}

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
            client_keys: client_keys.into_iter().map(|k| k.as_bytes().to_vec()).collect(),
            admin_key: admin_key.map(|k| k.as_bytes().to_vec()),
        }
    }

    /// Whether clients must send a key.
    pub fn requires_client_key(&self) -> bool {
        !self.client_keys.is_empty()
    }

    /// Checks a client request (`Authorization: Bearer …` or `x-api-key`).
    pub fn check_client(&self, headers: &HeaderMap) -> Result<(), Denied> {
        if self.client_keys.is_empty() {
            return Ok(());
        }
        let presented = presented_keys(headers);
        // Compare against every key without stopping early, so timing says nothing about which matched.
        let mut ok = subtle::Choice::from(0u8);
        for candidate in &presented {
            for key in &self.client_keys {
                ok |= key.as_slice().ct_eq(candidate);
            }
        }
        if bool::from(ok) { Ok(()) } else { Err(Denied::BadKey) }
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

fn presented_keys(headers: &HeaderMap) -> Vec<&[u8]> {
    let mut keys = Vec::with_capacity(1);
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let bytes = value.as_bytes();
        if bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ") {
            keys.push(trim(&bytes[7..]));
        }
    }
    if let Some(value) = headers.get(crate::headers::API_KEY) {
        keys.push(trim(value.as_bytes()));
    }
    keys
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
        assert_eq!(auth.check_client(&headers(&[("authorization", "Bearer k2")])), Ok(()));
        assert_eq!(auth.check_client(&headers(&[("x-api-key", "k1")])), Ok(()));
        assert_eq!(auth.check_client(&headers(&[("authorization", "Bearer k3")])), Err(Denied::BadKey));
        assert_eq!(auth.check_client(&headers(&[])), Err(Denied::BadKey));
        assert_eq!(auth.check_client(&headers(&[("authorization", "k1")])), Err(Denied::BadKey));
        assert_eq!(auth.check_admin(&headers(&[("authorization", "Bearer k1")])), Err(Denied::BadKey));
        assert_eq!(auth.check_admin(&headers(&[("authorization", "bearer adm")])), Ok(()));
    }

    #[test]
    fn no_keys_means_open_clients_and_closed_admin() {
        let auth = Auth::new([], None);
        assert_eq!(auth.check_client(&headers(&[])), Ok(()));
        assert_eq!(auth.check_admin(&headers(&[("authorization", "Bearer x")])), Err(Denied::AdminDisabled));
        assert!(!format!("{:?}", Auth::new(["secret"], Some("s2"))).contains("secret"));
    }
}
