//! The engine's model interceptors: fallback to other models, and retries of the rest of the chain.
//! Both run the same attempt loop as [`FallbackManager`](crate::FallbackManager), for answers and streams.

mod fallback;
mod retry;

pub use fallback::{ModelFallbackInterceptor, ModelFallbackInterceptorBuilder};
pub use retry::{ModelRetryInterceptor, ModelRetryInterceptorBuilder};

pub use crate::interceptor::{InterceptorChain, ModelInterceptor, Next};
