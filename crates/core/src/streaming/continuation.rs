//! `after_commit = "continue"`: what splicing another target's answer into a broken stream needs, and the
//! check that a continuation verifiably continues the delivered text before it is spliced.

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;

use crate::error::Error;
use crate::model::ChatStream;
use crate::types::{ChatChunk, ChatRequest, Usage};

/// Asks the remaining targets to continue a broken stream: the continuation request, and the ids
/// of the targets used so far (the next one comes after the last of them).
pub(crate) type Continuer =
    Arc<dyn Fn(ChatRequest, Vec<String>) -> BoxFuture<'static, Result<ChatStream, Error>> + Send + Sync>;

/// What `after_commit = "continue"` needs to splice another target's answer into a broken stream.
pub(crate) struct Continue {
    /// The original request.
    pub(crate) request: ChatRequest,
    pub(crate) continuer: Continuer,
    /// The text the caller has received.
    pub(super) text: String,
    /// A tool-call fragment was sent: such a stream is never spliced.
    pub(super) tool_calls: bool,
    /// Usage reported by the streams that broke.
    pub(super) merged: Usage,
    /// The current stream's latest usage report, held back to be merged.
    pub(super) latest: Option<Usage>,
    /// The caller's text ends with whitespace that the prefill dropped: trim the continuation's start.
    pub(super) trim_start: bool,
}

impl Continue {
    pub(crate) fn new(request: ChatRequest, continuer: Continuer) -> Self {
        Self {
            request,
            continuer,
            text: String::new(),
            tool_calls: false,
            merged: Usage::default(),
            latest: None,
            trim_start: false,
        }
    }
}

/// Whether a continuation may be spliced after the text the caller has.
pub(super) enum Verdict {
    /// Yes: these chunks (held while checking, a repeated start already dropped) come first.
    Splice(Vec<ChatChunk>),
    /// No, for this reason.
    Reject(&'static str),
}

/// Reads the start of a continuation, holding it back, until it shows whether it continues `delivered`:
/// - it does not begin like the delivered text (its first word differs): a continuation, spliced as it is;
/// - it begins with the whole delivered text (whitespace-normalised): the model restarted its answer the
///   same way (deterministic models do): the repeated part is dropped and only the rest spliced;
/// - it begins like the delivered text but diverges, or ends, or breaks before that is clear: a different
///   restart, which cannot be joined; never spliced.
pub(super) async fn verify(delivered: &str, stream: &mut ChatStream) -> Verdict {
    let target: Vec<char> = normalized(delivered).map(|(c, _)| c).collect();
    // "Begins like" = its first word matches: a continuation rarely repeats the answer's first word.
    let like = target.iter().position(|c| *c == ' ').unwrap_or(target.len());
    let mut held: Vec<ChatChunk> = Vec::new();
    let mut text = String::new();
    loop {
        match stream.next().await {
            Some(Ok(ChatChunk::Text { text: piece })) => {
                text.push_str(&piece);
                held.push(ChatChunk::Text { text: piece });
            }
            Some(Ok(ChatChunk::ToolCall(_))) => return Verdict::Reject("it answered with a tool call"),
            Some(Ok(ChatChunk::Finish { .. })) | None => {
                return Verdict::Reject("it ended before it could be told from a restart");
            }
            Some(Ok(chunk @ ChatChunk::Usage(_))) => {
                held.push(chunk);
                continue;
            }
            Some(Err(_)) => return Verdict::Reject("it broke before it could be checked"),
        }
        let mut matched = 0;
        let mut cut = None;
        let mut diverged = false;
        for (c, end) in normalized(&text) {
            if matched == target.len() {
                break;
            }
            if c != target[matched] {
                diverged = true;
                break;
            }
            matched += 1;
            if matched == target.len() {
                cut = Some(end);
            }
        }
        if let Some(cut) = cut {
            // A restart with the same text: keep what comes after the repeated part.
            let rest = text[cut..].to_owned();
            held.retain(|c| !matches!(c, ChatChunk::Text { .. }));
            if !rest.is_empty() {
                held.push(ChatChunk::Text { text: rest });
            }
            return Verdict::Splice(held);
        }
        if diverged {
            return if matched >= like {
                Verdict::Reject("it restarted the answer differently")
            } else {
                Verdict::Splice(held)
            };
        }
    }
}

/// The text with leading whitespace dropped and each run of whitespace as one space, each char with the
/// byte offset just after it in the original.
fn normalized(text: &str) -> impl Iterator<Item = (char, usize)> + '_ {
    let mut started = false;
    let mut in_space = false;
    text.char_indices().filter_map(move |(i, c)| {
        let end = i + c.len_utf8();
        if c.is_whitespace() {
            let emit = started && !in_space;
            in_space = true;
            emit.then_some((' ', end))
        } else {
            started = true;
            in_space = false;
            Some((c, end))
        }
    })
}
