//! The OpenAI Responses API (`POST /v1/responses`), server side only: the gateway decodes its requests into
//! neutral ones and writes answers and streams in its shape; targets are still called over chat completions
//! or the Messages API.

mod request;
mod response;
mod stream;
pub mod wire;

pub use request::{DecodedRequest, decode};
pub use response::encode_response;
pub use stream::StreamEncoder;
pub use wire::Echo;
