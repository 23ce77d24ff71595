//! The OpenAI chat-completions API: wire types, the codecs the gateway speaks it with, and the client.

mod answer_scan;
mod chunk_scan;
mod client;
mod contract;
mod error;
pub(crate) mod request;
mod request_out;
mod request_scan;
mod response;
mod stream;
pub mod wire;

pub use client::OpenAiClient;
pub use error::{error_body, parse_error};
pub use request::{
    DecodedRequest, ORIGIN, decode, decode_request, from_wire as request_from_wire, to_wire as request_to_wire,
};
pub use response::{
    encode_response, finish_reason_str, from_wire as response_from_wire, parse_finish_reason, wire_usage,
    write_response,
};
pub use stream::{StreamDecoder, StreamEncoder};
