//! Header names met before, kept for the process: a name that repeats (nearly all of them, request after
//! request and answer after answer) is a reference count rather than a parse, and for names outside the
//! standard list, rather than an allocation and a free.

use std::sync::{Arc, LazyLock};

use arc_swap::{ArcSwap, Guard};
use http::HeaderName;

/// Names the process keeps, at most: more than the headers of any client and upstream seen together, so that
/// names sent once each (by a careless or hostile client) fill the list and it stops there, and lookups stay
/// short. A name not kept is still read, only parsed each time.
const MAX_KEPT: usize = 128;

/// A name as it was spelled on the wire, and the name.
#[derive(Clone)]
struct Kept {
    spelling: Box<[u8]>,
    name: HeaderName,
}

/// A list of names met before, in the order first met, up to a bound. Read without a lock by every
/// connection's thread; replaced whole when a name is added, which stops once the names a deployment sees are
/// all in.
struct NameList {
    kept: ArcSwap<Vec<Kept>>,
    max: usize,
}

/// The process's list, which every head's names go through.
static PROCESS: LazyLock<NameList> = LazyLock::new(|| NameList::new(MAX_KEPT));

/// The names the process keeps now, for reading one head's names.
pub(crate) fn known() -> Known<'static> {
    PROCESS.known()
}

impl NameList {
    fn new(max: usize) -> NameList {
        NameList { kept: ArcSwap::from_pointee(Vec::new()), max }
    }

    fn known(&self) -> Known<'_> {
        Known { list: self, kept: self.kept.load(), next: 0 }
    }

    /// Keeps `name` as spelled `raw`, unless the list is full or holds that spelling already (another thread
    /// may have added it meanwhile).
    fn keep(&self, raw: &[u8], name: &HeaderName) {
        self.kept.rcu(|kept| {
            let mut more = Vec::clone(kept);
            if more.len() < self.max && !more.iter().any(|k| *k.spelling == *raw) {
                more.push(Kept { spelling: raw.into(), name: name.clone() });
            }
            more
        });
    }
}

/// The kept names, taken once per head, and where the search for the next name starts: a head's names come
/// in the order they came the first time, so the next one is usually the entry after the last found.
pub(crate) struct Known<'a> {
    list: &'a NameList,
    kept: Guard<Arc<Vec<Kept>>>,
    next: usize,
}

impl Known<'_> {
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
        if self.kept.len() < self.list.max {
            self.list.keep(raw, &name);
        }
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http::HeaderName;

    use super::{NameList, known};

    /// The spellings `list` keeps, in order.
    fn spellings(list: &NameList) -> Vec<String> {
        list.kept.load().iter().map(|k| String::from_utf8(k.spelling.to_vec()).unwrap()).collect()
    }

    #[test]
    fn a_name_read_again_is_the_same_name_whatever_its_case() {
        let list = NameList::new(8);
        for _ in 0..2 {
            for raw in ["x-kept-a", "X-Kept-A", "content-type", "Content-Type"] {
                let name = list.known().name(raw.as_bytes()).unwrap();
                assert_eq!(name, HeaderName::from_bytes(raw.as_bytes()).unwrap(), "{raw}");
                assert_eq!(name.as_str(), raw.to_ascii_lowercase());
            }
        }
        assert_eq!(spellings(&list), ["x-kept-a", "X-Kept-A", "content-type", "Content-Type"], "each kept once");
    }

    /// One head's names looked up in the order they were kept, then backwards, then with one in between that is
    /// new: each lookup gives the name asked for, wherever the search starts.
    #[test]
    fn a_heads_names_are_found_in_any_order() {
        let list = NameList::new(8);
        let names: Vec<String> = (0..6).map(|i| format!("x-head-order-{i}")).collect();
        for name in &names {
            list.known().name(name.as_bytes()).unwrap();
        }
        assert_eq!(spellings(&list), names);
        let mut known = list.known();
        for name in names.iter().chain(names.iter().rev()) {
            assert_eq!(known.name(name.as_bytes()).unwrap().as_str(), name);
        }
        let mut known = list.known();
        for name in [&names[3], &"x-head-order-new".to_owned(), &names[4], &names[0]] {
            assert_eq!(known.name(name.as_bytes()).unwrap().as_str(), name);
        }
    }

    #[test]
    fn invalid_names_are_refused_and_not_kept() {
        let list = NameList::new(8);
        for raw in ["", "bad name", "bad:name", "caf\u{e9}", "x-kept-(\u{1})"] {
            assert!(list.known().name(raw.as_bytes()).is_none(), "{raw:?}");
        }
        assert!(spellings(&list).is_empty());
    }

    /// Past its bound a list keeps nothing more, and the names after it are read all the same.
    #[test]
    fn a_full_list_keeps_no_more_and_still_reads_every_name() {
        let list = NameList::new(3);
        for i in 0..10 {
            let raw = format!("x-bound-{i}");
            assert_eq!(list.known().name(raw.as_bytes()).unwrap().as_str(), raw);
        }
        assert_eq!(spellings(&list), ["x-bound-0", "x-bound-1", "x-bound-2"]);
    }

    /// Threads reading names at once each get the name they asked for, every name is kept once, and the bound
    /// holds however the threads interleave.
    #[test]
    fn names_read_on_many_threads_at_once_are_each_right_and_kept_once() {
        let list = NameList::new(48);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let list = &list;
                scope.spawn(move || {
                    for round in 0..3 {
                        for i in 0..64 {
                            // Each thread meets the same 64 names, in its own order.
                            let i = (i * (t + 1) * 7 + round) % 64;
                            let raw = format!("X-Many-Threads-{i}");
                            let name = list.known().name(raw.as_bytes()).unwrap();
                            assert_eq!(name.as_str(), raw.to_ascii_lowercase());
                        }
                    }
                });
            }
        });
        let mut kept = spellings(&list);
        assert_eq!(kept.len(), 48, "the bound holds");
        kept.sort_unstable();
        kept.dedup();
        assert_eq!(kept.len(), 48, "no spelling kept twice");
    }

    #[test]
    fn the_process_list_reads_names() {
        assert_eq!(known().name(b"X-Process-List").unwrap().as_str(), "x-process-list");
    }
}
