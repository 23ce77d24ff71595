//! The hand-over of finished requests to the writer: a shared list that the writer swaps for its own empty one
//! (the previous batch's, cleared). The two lists keep their capacity, so once warm neither side allocates per
//! row, and a request never wakes the writer (it takes the rows on its own schedule).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use super::row::Row;

/// A list may always keep room for this many rows.
const KEPT_CAPACITY: usize = 8192;

/// Rows waiting for the writer, at most `limit` of them.
#[derive(Debug)]
pub(crate) struct RowQueue {
    pending: Mutex<Pending>,
    limit: usize,
    /// How many rows the last take moved.
    last_take: AtomicUsize,
}

#[derive(Debug, Default)]
struct Pending {
    #[expect(clippy::vec_box, reason = "a boxed row (328 bytes) moves to the writer uncopied")]
    rows: Vec<Box<Row>>,
    closed: bool,
}

impl RowQueue {
    /// A queue holding up to `limit` rows (at least one).
    pub(crate) fn new(limit: usize) -> RowQueue {
        RowQueue { pending: Mutex::new(Pending::default()), limit: limit.max(1), last_take: AtomicUsize::new(0) }
    }

    /// Queues `row`; false (the row dropped) when the queue is full or closed: the caller counts the drop.
    pub(crate) fn push(&self, row: Box<Row>) -> bool {
        // A panic while the lock is held cannot leave the list half-changed (push and swap only).
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.closed || pending.rows.len() >= self.limit {
            return false;
        }
        pending.rows.push(row);
        true
    }

    /// Moves every queued row into `out` (what it held is dropped first): the two lists change places. A list
    /// keeps its room while takes fill it (a steady load grows it once), and is cut back once a burst passed.
    #[expect(clippy::vec_box, reason = "a boxed row (328 bytes) moves to the writer uncopied")]
    pub(crate) fn take(&self, out: &mut Vec<Box<Row>>) {
        out.clear();
        // Room for twice the last take is kept; more than twice that is a burst that passed. (Cutting back a
        // list that a steady load fills made every take grow it again: a copy and fresh pages per take.)
        let kept = self.last_take.load(Relaxed).saturating_mul(2).max(KEPT_CAPACITY);
        if out.capacity() > kept.saturating_mul(2) {
            out.shrink_to(kept);
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut pending.rows, out);
        drop(pending);
        self.last_take.store(out.len(), Relaxed);
    }

    /// Refuses every row from now on (the writer is stopping).
    pub(crate) fn close(&self) {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::{KEPT_CAPACITY, RowQueue};
    use crate::storage::{Api, Row};

    fn row(id: &str) -> Box<Row> {
        Box::new(Row::arrived(id, SystemTime::now(), "r".into(), Api::OpenAi, false))
    }

    #[test]
    fn a_full_queue_refuses_until_the_writer_takes_its_rows() {
        let queue = RowQueue::new(2);
        assert!(queue.push(row("a")) && queue.push(row("b")));
        assert!(!queue.push(row("c")), "a third row does not fit");
        let mut taken = Vec::new();
        queue.take(&mut taken);
        let ids: Vec<&str> = taken.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(queue.push(row("d")), "room again after the take");
    }

    #[test]
    fn the_two_lists_keep_their_capacity_so_a_warm_queue_does_not_allocate() {
        let queue = RowQueue::new(100);
        let mut spare = Vec::new();
        for round in 0..3 {
            for i in 0..10 {
                assert!(queue.push(row(&format!("{round}-{i}"))));
            }
            spare.clear();
            queue.take(&mut spare);
            assert_eq!(spare.len(), 10);
        }
        assert!(spare.capacity() >= 10);
        spare.clear();
        queue.take(&mut spare);
        assert!(spare.is_empty() && spare.capacity() >= 10, "the other list came back with its capacity");
    }

    #[test]
    fn a_steady_load_keeps_its_room_and_a_passed_burst_gives_it_back() {
        let queue = RowQueue::new(100_000);
        let mut spare = Vec::new();
        let take = |queue: &RowQueue, spare: &mut Vec<Box<Row>>, rows: usize| {
            for i in 0..rows {
                assert!(queue.push(row(&i.to_string())));
            }
            queue.take(spare);
            assert_eq!(spare.len(), rows);
            let pending = queue.pending.lock().unwrap().rows.capacity();
            (spare.capacity(), pending)
        };
        take(&queue, &mut spare, 20_000);
        take(&queue, &mut spare, 20_000);
        let grown = take(&queue, &mut spare, 20_000);
        assert!(grown.0 >= 20_000 && grown.1 >= 20_000, "{grown:?}");
        for _ in 0..3 {
            assert_eq!(take(&queue, &mut spare, 20_000), grown, "no list is cut back and grown again");
        }
        take(&queue, &mut spare, 10);
        take(&queue, &mut spare, 10);
        let (a, b) = take(&queue, &mut spare, 10);
        assert!(a <= KEPT_CAPACITY && b <= KEPT_CAPACITY, "the burst's room went back: {a} {b}");
    }

    #[test]
    fn a_closed_queue_refuses_rows() {
        let queue = RowQueue::new(10);
        queue.close();
        assert!(!queue.push(row("late")));
    }
}
