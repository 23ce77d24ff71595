//! The streaming rule: an attempt is not committed until its first content chunk has arrived (and
//! the validator accepts the start); after that, a failure ends the stream with one typed error.

mod commit;
mod continuation;
mod tail;

pub(crate) use commit::{Opened, open};
pub(crate) use continuation::{Continue, Continuer};
pub(crate) use tail::committed;
