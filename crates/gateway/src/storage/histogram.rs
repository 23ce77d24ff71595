//! A small fixed latency histogram per rollup row, so p50/p95 of any bucket come from merged minute rows.
//!
//! Bucket `i` holds latencies up to `bound(i)` ms, bounds growing by about 20% (so a percentile is read to
//! within 20%); 64 buckets reach past 50 minutes, the last one holds everything above.

use std::sync::LazyLock;

/// Number of buckets.
const BUCKETS: usize = 64;

/// The upper bound of bucket `i`, in ms.
fn bound(i: usize) -> u64 {
    BOUNDS.get(i).copied().unwrap_or(u64::MAX)
}

/// Every bucket's bound, worked out once: each row's latency is counted by a search over them. Working the bound
/// out (a power and a rounding) for each bucket up to the latency's cost about 50 instructions a bucket under
/// callgrind, 2k a row for an answer of 2 s.
static BOUNDS: LazyLock<[u64; BUCKETS]> = LazyLock::new(|| std::array::from_fn(bound_of));

/// 1.2^i, rounded, and at least i so the first buckets are one ms apart.
fn bound_of(i: usize) -> u64 {
    let exponent = i32::try_from(i).unwrap_or(i32::MAX);
    (1.2f64.powi(exponent).round() as u64).max(i as u64)
}

/// Counts per latency bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Histogram([u32; BUCKETS]);

impl Default for Histogram {
    fn default() -> Self {
        Histogram([0; BUCKETS])
    }
}

impl Histogram {
    /// Counts one latency.
    pub(crate) fn add(&mut self, ms: u64) {
        // The first bucket whose bound is at least `ms` (the bounds grow): the last holds everything above.
        let i = BOUNDS.partition_point(|&bound| bound < ms).min(BUCKETS - 1);
        self.0[i] = self.0[i].saturating_add(1);
    }

    /// Adds another histogram's counts.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// The bucket bound at quantile `q` (0..=1), or None when empty.
    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.0.iter().map(|c| u64::from(*c)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, c) in self.0.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(bound(i));
            }
        }
        Some(bound(BUCKETS - 1))
    }

    /// Little-endian bytes, trailing empty buckets left out.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let used = self.0.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
        self.0[..used].iter().flat_map(|c| c.to_le_bytes()).collect()
    }

    /// From [`Histogram::to_bytes`].
    pub(crate) fn from_bytes(bytes: &[u8]) -> Histogram {
        let mut h = Histogram::default();
        for (slot, chunk) in h.0.iter_mut().zip(bytes.chunks_exact(4)) {
            *slot = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A latency lands in the bucket the stored rows have always put it in: the first whose bound holds it,
    /// bounds worked out as before.
    #[test]
    fn a_latency_lands_in_the_first_bucket_whose_bound_holds_it() {
        let first_holding = |ms: u64| (0..BUCKETS).find(|i| ms <= bound_of(*i)).unwrap_or(BUCKETS - 1);
        let edges = (0..BUCKETS).flat_map(|i| {
            let b = bound_of(i);
            [b.saturating_sub(1), b, b + 1]
        });
        for ms in (0..5_000).chain(edges).chain([u64::MAX / 2, u64::MAX]) {
            let mut h = Histogram::default();
            h.add(ms);
            let mut expected = Histogram::default();
            expected.0[first_holding(ms)] = 1;
            assert_eq!(h, expected, "{ms} ms");
        }
        assert_eq!(bound(0), 1);
        assert_eq!(bound(BUCKETS - 1), bound_of(BUCKETS - 1));
    }

    #[test]
    fn quantiles_come_within_a_fifth_and_survive_bytes() {
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.add(ms * 10);
        }
        let h = Histogram::from_bytes(&h.to_bytes());
        let p50 = h.quantile(0.5).unwrap_or(0);
        let p95 = h.quantile(0.95).unwrap_or(0);
        assert!((500..=600).contains(&p50), "p50 {p50}");
        assert!((950..=1140).contains(&p95), "p95 {p95}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
