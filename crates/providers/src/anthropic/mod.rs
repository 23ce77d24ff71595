//! The Anthropic Messages API: wire types, the codecs the gateway speaks it with, and the client.

mod client;
mod contract;
mod error;
mod request;
mod request_scan;
mod response;
mod stream;
pub mod wire;

pub use client::{ANTHROPIC_VERSION, AnthropicClient};
pub use error::{error_body, error_type, parse_error};
pub use request::{
    DecodedRequest, ORIGIN, decode, decode_request, from_wire as request_from_wire, to_wire as request_to_wire,
};
pub use response::{encode_response, from_wire as response_from_wire, parse_stop_reason, stop_reason_str, wire_usage};
pub use stream::{StreamDecoder, StreamEncoder};
