//! Header names met before, kept for the process: a name that repeats (nearly all of them, request after
//! request and answer after answer) is a reference count rather than a parse, and for names outside the
//! standard list, rather than an allocation and a free.

use std::sync::{Arc, LazyLock};

use arc_swap::{ArcSwap, Guard};
use http::HeaderName;

/// Names kept, at most: more than the headers of any client and upstream seen together, so that names sent
/// once each (by a careless or hostile client) fill it and stop there, and lookups stay short.
const MAX_KEPT: usize = 128;

/// A name as it was spelled on the wire, and the name.
#[derive(Clone)]
struct Kept {
    spelling: Box<[u8]>,
    name: HeaderName,
}

/// The names kept so far, in the order first met. Read without a lock by every connection's thread; replaced
/// whole when a name is added, which stops once the names a deployment sees are all in.
static KEPT: LazyLock<ArcSwap<Vec<Kept>>> = LazyLock::new(|| ArcSwap::from_pointee(Vec::new()));

/// The kept names, taken once per head, and where the search for the next name starts: a head's names come
/// in the order they came the first time, so the next one is usually the entry after the last found.
pub(crate) struct Known {
    kept: Guard<Arc<Vec<Kept>>>,
    next: usize,
}

impl Known {
    /// The names kept now.
    pub(crate) fn load() -> Known {
        Known { kept: KEPT.load(), next: 0 }
    }

    /// The header name `raw` spells, or `None` when it is not a valid name. A spelling met before is found by
    /// comparing bytes; a new one is parsed, and kept while there is room.
    pub(crate) fn name(&mut self, raw: &[u8]) -> Option<HeaderName> {
        let (before, after) = self.kept.split_at(self.next.min(self.kept.len()));
        if let Some(at) = after.iter().chain(before).position(|kept| *kept.spelling == *raw) {
            let at = (self.next + at) % self.kept.len();
            self.next = at + 1;
            return Some(self.kept[at].name.clone());
        }
        let name = HeaderName::from_bytes(raw).ok()?;
        if self.kept.len() < MAX_KEPT {
            KEPT.rcu(|kept| {
                let mut more = Vec::clone(kept);
                if more.len() < MAX_KEPT && !more.iter().any(|k| *k.spelling == *raw) {
                    more.push(Kept { spelling: raw.into(), name: name.clone() });
                }
                more
            });
        }
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http::HeaderName;

    use super::{KEPT, Known, MAX_KEPT};

    fn header_name(raw: &[u8]) -> Option<HeaderName> {
        Known::load().name(raw)
    }

    #[test]
    fn a_name_read_again_is_the_same_name_whatever_its_case() {
        for raw in ["x-kept-test-a", "X-Kept-Test-A", "X-KEPT-TEST-A", "content-type", "Content-Type"] {
            let name = header_name(raw.as_bytes()).unwrap();
            assert_eq!(name, HeaderName::from_bytes(raw.as_bytes()).unwrap(), "{raw}");
            assert_eq!(name.as_str(), raw.to_ascii_lowercase());
        }
    }

    /// One head's names looked up in the order they were kept, then backwards, then with one in between that is
    /// new: each lookup gives the name asked for, wherever the search starts.
    #[test]
    fn a_heads_names_are_found_in_any_order() {
        let names: Vec<String> = (0..6).map(|i| format!("x-head-order-{i}")).collect();
        for name in &names {
            header_name(name.as_bytes()).unwrap();
        }
        let mut known = Known::load();
        for name in names.iter().chain(names.iter().rev()) {
            assert_eq!(known.name(name.as_bytes()).unwrap().as_str(), name);
        }
        let mut known = Known::load();
        for name in [&names[3], &"x-head-order-new".to_owned(), &names[4], &names[0]] {
            assert_eq!(known.name(name.as_bytes()).unwrap().as_str(), name);
        }
    }

    #[test]
    fn invalid_names_are_refused_and_not_kept() {
        for raw in ["", "bad name", "bad:name", "caf\u{e9}", "x-kept-test-(\u{1})"] {
            assert!(header_name(raw.as_bytes()).is_none(), "{raw:?}");
        }
        assert!(!KEPT.load().iter().any(|k| k.name.as_str().contains(' ')));
    }

    /// Threads reading names at once each get the name they asked for, and every name is kept once, while the
    /// list grows past its bound: names after it are read as well, only not kept.
    #[test]
    fn names_read_on_many_threads_at_once_are_each_right_and_kept_once() {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for round in 0..3 {
                        for i in 0..MAX_KEPT {
                            // Each thread meets the same names, in its own order.
                            let i = (i * (t + 1) * 7 + round) % MAX_KEPT;
                            let raw = format!("X-Many-Threads-{i}");
                            let name = header_name(raw.as_bytes()).unwrap();
                            assert_eq!(name.as_str(), raw.to_ascii_lowercase());
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let kept = KEPT.load();
        // 128 names were met: whatever other tests added meanwhile, the list is full and no longer.
        assert_eq!(kept.len(), MAX_KEPT, "the bound holds");
        let mut names: Vec<&[u8]> = kept.iter().map(|k| &*k.spelling).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), MAX_KEPT, "no spelling kept twice");
    }
}
