//! Optional strings deserialized borrowed from the input where it allows (no escapes in them): most fields of
//! an answer are read once and dropped or copied into the neutral types, so an owned copy of each was an
//! allocation for nothing. `#[serde(borrow)]` alone borrows a bare `Cow<str>` but not one inside an `Option`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// `deserialize_with` for an `Option<Cow<'a, str>>` field marked `#[serde(borrow)]`.
pub(crate) fn opt_cow<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    deserializer.deserialize_option(OptCow)
}

struct OptCow;

impl<'de> Visitor<'de> for OptCow {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(CowStr).map(Some)
    }
}

struct CowStr;

impl<'de> Visitor<'de> for CowStr {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(default, borrow, deserialize_with = "super::opt_cow")]
        text: Option<Cow<'a, str>>,
    }

    fn read(json: &str) -> Option<Cow<'_, str>> {
        serde_json::from_str::<Probe<'_>>(json).unwrap().text
    }

    #[test]
    fn plain_strings_are_borrowed_escaped_ones_owned_null_and_absent_are_none() {
        assert!(matches!(read(r#"{"text":"hi"}"#), Some(Cow::Borrowed("hi"))));
        assert_eq!(read(r#"{"text":"a\nb"}"#).as_deref(), Some("a\nb"));
        assert!(matches!(read(r#"{"text":"a\nb"}"#), Some(Cow::Owned(_))));
        assert_eq!(read(r#"{"text":null}"#), None);
        assert_eq!(read("{}"), None);
        assert!(serde_json::from_str::<Probe<'_>>(r#"{"text":1}"#).is_err());
    }
}
