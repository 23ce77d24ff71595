//! The hand-over of finished requests to the writer: a shared list that the writer swaps for its own empty one
//! (the previous batch's, cleared). The two lists keep their capacity, so once warm neither side allocates per
//! row, and a request never wakes the writer (it takes the rows on its own schedule).

use std::sync::{Mutex, PoisonError};

use super::row::Row;

/// A list held above this many rows (after a burst) is cut back once written.
const KEPT_CAPACITY: usize = 8192;

/// Rows waiting for the writer, at most `limit` of them.
#[derive(Debug)]
pub(crate) struct RowQueue {
    pending: Mutex<Pending>,
    limit: usize,
}

#[derive(Debug, Default)]
struct Pending {
    rows: Vec<Row>,
    closed: bool,
}

impl RowQueue {
    /// A queue holding up to `limit` rows (at least one).
    pub(crate) fn new(limit: usize) -> RowQueue {
        RowQueue { pending: Mutex::new(Pending::default()), limit: limit.max(1) }
    }

    /// Queues `row`; false (the row dropped) when the queue is full or closed: the caller counts the drop.
    pub(crate) fn push(&self, row: Row) -> bool {
        // A panic while the lock is held cannot leave the list half-changed (push and swap only).
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.closed || pending.rows.len() >= self.limit {
            return false;
        }
        pending.rows.push(row);
        true
    }

    /// Moves every queued row into `out` (what it held is dropped first): the two lists change places.
    pub(crate) fn take(&self, out: &mut Vec<Row>) {
        out.clear();
        if out.capacity() > KEPT_CAPACITY {
            out.shrink_to(KEPT_CAPACITY);
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut pending.rows, out);
    }

    /// Refuses every row from now on (the writer is stopping).
    pub(crate) fn close(&self) {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::RowQueue;
    use crate::storage::{Api, Row};

    fn row(id: &str) -> Row {
        Row::arrived(id, SystemTime::now(), "r".into(), Api::OpenAi, false)
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
    fn a_closed_queue_refuses_rows() {
        let queue = RowQueue::new(10);
        queue.close();
        assert!(!queue.push(row("late")));
    }
}
