//! Request and response bodies that tell the connection's [`Activity`] when they end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::activity::{Activity, Phase};

/// The request body: its end stops the body timeout.
#[derive(Debug)]
pub(crate) struct RequestBody {
    inner: Incoming,
    activity: Arc<Activity>,
}

impl RequestBody {
    pub(crate) fn new(inner: Incoming, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.activity.body_done(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.activity.body_done(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body: when hyper is done with it, the connection waits for its next request.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    inner: axum::body::Body,
    activity: Arc<Activity>,
}

impl ResponseBody {
    pub(crate) fn new(inner: axum::body::Body, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if self.activity.phase() == Phase::Busy {
            self.activity.enter(Phase::Idle);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
