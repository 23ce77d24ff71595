//! A row's request id and attempts, held inside the row rather than on the heap in the common case.
//!
//! Why: the request thread builds a row and the writer thread drops it, a few hundred at a time. With glibc's
//! allocator, blocks freed in bulk by another thread overflow its per-thread cache, and the request thread's
//! next allocations of those sizes take the slow path (callgrind: about 3.5k more instructions per request in
//! `_int_malloc`/`_int_free`). A row with no heap parts of its own costs neither thread an allocation.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

use super::row::AttemptRow;

/// A request id: the gateway's own (32 hex digits) fit inline; a longer caller id (up to 128 bytes) spills.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RowId(SmallVec<[u8; 32]>);

impl RowId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ever built from `&str`, so always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The id's bytes, without the UTF-8 check of [`RowId::as_str`] (for hashing).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for RowId {
    fn from(id: &str) -> RowId {
        RowId(SmallVec::from_slice(id.as_bytes()))
    }
}

impl From<String> for RowId {
    fn from(id: String) -> RowId {
        RowId::from(id.as_str())
    }
}

impl Deref for RowId {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for RowId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RowId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RowId, D::Error> {
        Ok(RowId::from(std::borrow::Cow::<'de, str>::deserialize(d)?.as_ref()))
    }
}

impl rusqlite::types::FromSql for RowId {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<RowId> {
        value.as_str().map(RowId::from)
    }
}

/// A row's attempts: the first inline (most requests make one call), more on the heap. Two inline made every row
/// 72 bytes larger, copied with each row and written to a queue that holds up to 50,000 of them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attempts(SmallVec<[AttemptRow; 1]>);

impl Deref for Attempts {
    type Target = [AttemptRow];

    fn deref(&self) -> &[AttemptRow] {
        &self.0
    }
}

impl From<Vec<AttemptRow>> for Attempts {
    fn from(attempts: Vec<AttemptRow>) -> Attempts {
        Attempts(SmallVec::from_vec(attempts))
    }
}

impl FromIterator<AttemptRow> for Attempts {
    fn from_iter<I: IntoIterator<Item = AttemptRow>>(iter: I) -> Attempts {
        Attempts(iter.into_iter().collect())
    }
}

impl fmt::Debug for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl Serialize for Attempts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Attempts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Attempts, D::Error> {
        Vec::<AttemptRow>::deserialize(d).map(Attempts::from)
    }
}

#[cfg(test)]
mod tests {
    use super::RowId;

    #[test]
    fn ids_of_any_allowed_length_read_back_whole() {
        let long = "x".repeat(128);
        for id in ["0123456789abcdef0123456789abcdef", "caller-id", long.as_str()] {
            let row_id = RowId::from(id);
            assert_eq!(row_id.as_str(), id);
            assert_eq!(serde_json::to_string(&row_id).unwrap(), format!("\"{id}\""));
            assert_eq!(serde_json::from_str::<RowId>(&format!("\"{id}\"")).unwrap(), row_id);
        }
    }
}
