//! Model interceptors and the chain that runs them: the first registered is the outermost.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Error;
use crate::fit::Fit;
use crate::model::{ChatModel, ChatStream, SharedModel};
use crate::types::{ChatRequest, ChatResponse};

/// Wraps every model call: it may change the request, call `next` any number of times (or not at
/// all), and change the answer. Both modes have a default that passes straight through.
#[async_trait]
pub trait ModelInterceptor: Send + Sync {
    /// A short name for logs (e.g. `ModelFallback`).
    fn name(&self) -> &str;

    /// Intercepts a whole-response call.
    async fn intercept(&self, request: ChatRequest, next: Next<'_>) -> Result<ChatResponse, Error> {
        next.complete(request).await
    }

    /// Intercepts a streaming call.
    async fn intercept_stream(&self, request: ChatRequest, next: Next<'_>) -> Result<ChatStream, Error> {
        next.stream(request).await
    }
}

/// The rest of the chain after one interceptor. It is itself a [`ChatModel`], so an interceptor
/// can hand it to anything that takes a model (e.g. the engine's attempt loop).
#[derive(Clone, Copy)]
pub struct Next<'a> {
    interceptors: &'a [Arc<dyn ModelInterceptor>],
    model: &'a dyn ChatModel,
}

impl<'a> Next<'a> {
    /// Calls the rest of the chain for a whole response.
    pub async fn complete(self, request: ChatRequest) -> Result<ChatResponse, Error> {
        match self.interceptors.split_first() {
            Some((first, rest)) => first.intercept(request, Next { interceptors: rest, model: self.model }).await,
            None => self.model.complete(request).await,
        }
    }

    /// Calls the rest of the chain for a stream.
    pub async fn stream(self, request: ChatRequest) -> Result<ChatStream, Error> {
        match self.interceptors.split_first() {
            Some((first, rest)) => {
                first.intercept_stream(request, Next { interceptors: rest, model: self.model }).await
            }
            None => self.model.stream(request).await,
        }
    }
}

#[async_trait]
impl ChatModel for Next<'_> {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        (*self).complete(request).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        (*self).stream(request).await
    }
}

/// A model wrapped in interceptors; `interceptors[0]` is the outermost.
#[derive(Clone)]
pub struct InterceptorChain {
    interceptors: Vec<Arc<dyn ModelInterceptor>>,
    model: SharedModel,
}

impl InterceptorChain {
    /// A chain with no interceptors around `model`.
    pub fn new(model: SharedModel) -> Self {
        Self { interceptors: Vec::new(), model }
    }

    /// Adds an interceptor inside the ones already added.
    pub fn with(mut self, interceptor: Arc<dyn ModelInterceptor>) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// Adds several, in order.
    pub fn with_all(mut self, interceptors: impl IntoIterator<Item = Arc<dyn ModelInterceptor>>) -> Self {
        self.interceptors.extend(interceptors);
        self
    }

    /// The interceptors' names, outermost first.
    pub fn names(&self) -> Vec<&str> {
        self.interceptors.iter().map(|i| i.name()).collect()
    }

    fn head(&self) -> Next<'_> {
        Next { interceptors: &self.interceptors, model: self.model.as_ref() }
    }
}

#[async_trait]
impl ChatModel for InterceptorChain {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        self.head().complete(request).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        self.head().stream(request).await
    }

    // What the wrapped model can take and count is what the chain can: interceptors do not change fields.
    fn fit(&self, request: &ChatRequest, stream: bool) -> Fit {
        self.model.fit(request, stream)
    }

    async fn count_tokens(&self, request: &ChatRequest) -> Result<Option<u64>, Error> {
        self.model.count_tokens(request).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::types::Message;

    struct Echo;

    #[async_trait]
    impl ChatModel for Echo {
        async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
            let seen = request.messages.iter().map(Message::text).collect::<Vec<_>>().join("|");
            Ok(ChatResponse::text("echo", seen))
        }

        async fn stream(&self, _request: ChatRequest) -> Result<ChatStream, Error> {
            Err(Error::invalid_request("no streams here", None))
        }
    }

    struct Tag {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl ModelInterceptor for Tag {
        fn name(&self) -> &str {
            self.name
        }

        async fn intercept(&self, mut request: ChatRequest, next: Next<'_>) -> Result<ChatResponse, Error> {
            self.log.lock().unwrap().push(format!("enter {}", self.name));
            request.messages.push(Message::user(self.name));
            let response = next.complete(request).await;
            self.log.lock().unwrap().push(format!("leave {}", self.name));
            response
        }
    }

    #[tokio::test]
    async fn first_registered_is_outermost() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let chain = InterceptorChain::new(Arc::new(Echo))
            .with(Arc::new(Tag { name: "a", log: log.clone() }))
            .with(Arc::new(Tag { name: "b", log: log.clone() }));
        assert_eq!(chain.names(), ["a", "b"]);
        let response = chain.complete(ChatRequest::user("q")).await.unwrap();
        assert_eq!(response.message.text(), "q|a|b");
        assert_eq!(*log.lock().unwrap(), ["enter a", "enter b", "leave b", "leave a"]);
    }

    #[tokio::test]
    async fn default_stream_hook_passes_through() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let chain = InterceptorChain::new(Arc::new(Echo)).with(Arc::new(Tag { name: "a", log }));
        let err = chain.stream(ChatRequest::user("q")).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidRequest);
    }
}
