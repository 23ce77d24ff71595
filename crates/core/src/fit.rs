//! What a target can make of one request's fields, decided before it is called (SPEC-2 section 14).
//!
//! A provider knows which fields its API can express: it translates some, drops some that do not
//! change what the answer is, and cannot honour others. The planner asks each target before calling
//! it ([`ChatModel::fit`](crate::ChatModel::fit)), skips a target that cannot honour a field, and
//! records the fields the serving target dropped on its attempt.

/// What a target makes of a request's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fit {
    /// Fields it drops (its API has no equivalent, and they do not change what the answer is), by
    /// their wire name.
    pub dropped: Vec<String>,
    /// A field it cannot honour: the target must not be called.
    pub unfit: Option<Unfit>,
}

impl Fit {
    /// A fit that drops nothing and refuses nothing.
    pub fn serves() -> Self {
        Self::default()
    }
}

/// Why a target cannot take a request's field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unfit {
    /// Its API cannot honour what the field asks for (e.g. `n > 1`, `logprobs`).
    #[error("it cannot honour `{field}`: {detail}")]
    Cannot {
        /// The field's wire name.
        field: String,
        /// What the API lacks.
        detail: String,
    },
    /// It would drop the field, and the route sets `strict_fields`.
    #[error("it would drop `{field}` and the route sets strict_fields")]
    WouldDrop {
        /// The field's wire name.
        field: String,
    },
}

impl Unfit {
    /// The field's wire name.
    pub fn field(&self) -> &str {
        match self {
            Unfit::Cannot { field, .. } | Unfit::WouldDrop { field } => field,
        }
    }
}
