//! Human-readable durations (`"500ms"`, `"30s"`) and byte sizes (`"10MiB"`) in the config file.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as text, e.g. `"500ms"` or `"2m 30s"` (humantime syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map(Dur).map_err(|e| {
            serde::de::Error::custom(format!("invalid duration {text:?} ({e}); write e.g. \"500ms\" or \"30s\""))
        })
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A size in bytes, written as a number or as text with a unit: `"10MiB"`, `"512KB"`, `1048576`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"10MiB"`, `"512 KB"`, `"100"`; units B, KB, MB, GB (×1000) and KiB, MiB, GiB (×1024).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 =
            number.parse().map_err(|_| format!("invalid size {text:?}; write e.g. \"10MiB\" or \"512KB\""))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" | "k" => 1_000,
            "mb" | "m" => 1_000_000,
            "gb" | "g" => 1_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            other => {
                return Err(format!("unknown size unit {other:?} in {text:?}; use B, KB, MB, GB, KiB, MiB or GiB"));
            }
        };
        number.checked_mul(factor).map(ByteSize).ok_or_else(|| format!("size {text:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(ByteSize::parse("10MiB").unwrap().0, 10 * 1024 * 1024);
        assert_eq!(ByteSize::parse("512 KB").unwrap().0, 512_000);
        assert_eq!(ByteSize::parse("100").unwrap().0, 100);
        assert!(ByteSize::parse("10 parsecs").unwrap_err().contains("unknown size unit"));
        assert!(ByteSize::parse("MiB").is_err());
    }
}
