//! A batch's filter: a Bloom filter of its request ids and of the routes, targets, keys and outcomes its rows
//! name, so a lookup by id and a filtered list read only the batches that may hold a match.
//!
//! The hash is FNV-1a with a final mix, written here rather than taken from a crate: the filters are stored,
//! so the hash must never change between versions, and a few lines fix that for good.

/// What a filter entry names; its byte goes before the text, so a route and a key of one name differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
    /// A request id.
    Id = 1,
    /// A route.
    Route = 2,
    /// A target that served or was attempted.
    Target = 3,
    /// A client key's name.
    Key = 4,
    /// An outcome's code.
    Outcome = 5,
}

/// The hash of `outcome` under [`Tag::Outcome`]: what the writer puts in a filter and a list's filter asks.
pub(super) fn outcome(outcome: super::Outcome) -> u64 {
    hash(Tag::Outcome, &[outcome.code() as u8])
}

/// Bits per entry: about a 1% false positive rate with [`PROBES`].
const BITS_PER_ENTRY: usize = 10;
/// Bits set and tested per entry.
const PROBES: u64 = 7;

/// The stable hash of `text` under `tag`.
pub(super) fn hash(tag: Tag, text: &[u8]) -> u64 {
    const PRIME: u64 = 0x0100_0000_01b3;
    // The tag byte first, then the text: a plain loop (a chained iterator cost twice the instructions a byte).
    let mut h: u64 = (0xcbf2_9ce4_8422_2325 ^ tag as u64).wrapping_mul(PRIME);
    for &b in text {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    // FNV's low bits mix poorly; the finalizer of splitmix64 spreads every input bit over all 64.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The bit positions of `hash` in a filter of `bits` bits.
fn probes(hash: u64, bits: u64) -> impl Iterator<Item = u64> {
    let (h1, h2) = (hash & 0xffff_ffff, (hash >> 32) | 1);
    (0..PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

/// The filter holding `hashes` (duplicates welcome), as stored.
pub(super) fn build(hashes: &[u64]) -> Vec<u8> {
    let bytes = (hashes.len() * BITS_PER_ENTRY).div_ceil(8).max(8);
    let mut filter = vec![0u8; bytes];
    let bits = bytes as u64 * 8;
    for &h in hashes {
        for bit in probes(h, bits) {
            filter[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }
    filter
}

/// Whether the filter may hold `hash` (false: it surely does not). An empty filter may hold anything, so a
/// batch written without one (by hand, or by a tool) is always read.
pub(super) fn may_hold(filter: &[u8], hash: u64) -> bool {
    if filter.is_empty() {
        return true;
    }
    let bits = filter.len() as u64 * 8;
    probes(hash, bits).all(|bit| filter[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
}

#[cfg(test)]
mod tests {
    use super::{Tag, build, hash, may_hold};

    #[test]
    fn every_entry_is_found_and_few_others_are() {
        let ids: Vec<String> = (0..500).map(|i| format!("{:032x}", i as u128 * 0x9e37_79b9_7f4a_7c15)).collect();
        let hashes: Vec<u64> = ids.iter().map(|id| hash(Tag::Id, id.as_bytes())).collect();
        let filter = build(&hashes);
        assert!(hashes.iter().all(|&h| may_hold(&filter, h)));
        let strangers = (0..10_000).filter(|i| may_hold(&filter, hash(Tag::Id, format!("other-{i}").as_bytes())));
        let false_positives = strangers.count();
        assert!(false_positives < 300, "{false_positives} of 10,000 ids not in the filter seemed to be");
    }

    #[test]
    fn a_tag_tells_apart_one_text_named_as_two_things() {
        let filter = build(&[hash(Tag::Route, b"chat")]);
        assert!(may_hold(&filter, hash(Tag::Route, b"chat")));
        assert_ne!(hash(Tag::Route, b"chat"), hash(Tag::Key, b"chat"));
    }

    const FILTER_OF_CHAT: [u8; 8] = [2, 8, 32, 128, 64, 0, 1, 4];

    #[test]
    fn the_hash_never_changes_since_filters_are_stored() {
        // Values of the first release: a change here makes every stored filter wrong.
        assert_eq!(hash(Tag::Id, b"abc"), 6_277_027_125_366_327_626);
        assert_eq!(build(&[hash(Tag::Route, b"chat")]), FILTER_OF_CHAT);
    }

    #[test]
    fn an_empty_filter_may_hold_anything() {
        assert!(may_hold(&[], hash(Tag::Id, b"x")));
    }
}
