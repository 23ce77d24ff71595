//! The common upstream request (text messages, no tools) written by hand: the bytes
//! `serde_json::to_vec(&to_wire(..))` writes for it (the tests compare them), without the wire request's copy
//! of every message and serde's field-by-field writer (5.4k instructions of a short call under callgrind).
//! Anything else takes the wire type.

use serde::Serialize;
use switchyard::{
    ChatRequest, Error, Part, Role,
    types::{Continuation, ContinuationStyle},
};

use super::request::extra_and_max_tokens;
use crate::json_out::{push_str, push_u64};

/// The body for `request` to `model`, or `None` when it holds more than text messages (tools, a tool choice,
/// a message of parts, images, tool calls or results): [`super::request::to_wire`] writes those.
pub(super) fn write(request: &ChatRequest, model: &str, stream: bool) -> Result<Option<Vec<u8>>, Error> {
    if !request.tools.is_empty() || request.tool_choice.is_some() {
        return Ok(None);
    }
    let texts = request.messages.iter().map(|m| match (m.role, m.content.as_slice()) {
        (Role::User, [Part::Text { text }]) => Some(("user", text.as_str())),
        (Role::Assistant, [Part::Text { text }]) => Some(("assistant", text.as_str())),
        _ => None,
    });
    let mut length = 64 + model.len() + request.system.as_ref().map_or(0, |s| s.len() + 32);
    for text in texts.clone() {
        let Some((_, text)) = text else { return Ok(None) };
        length += text.len() + 32;
    }
    // Only now: the extra fields are the one part that can be refused, as the wire path refuses them.
    let (extra, max_tokens) = extra_and_max_tokens(request)?;
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(b"{\"model\":");
    push_str(&mut out, model);
    out.extend_from_slice(b",\"messages\":[");
    let instruction = match &request.continuation {
        Some(Continuation { style: ContinuationStyle::Instruction, instruction }) => {
            Some(("user", instruction.as_str()))
        }
        _ => None,
    };
    let system = request.system.as_deref().map(|s| ("system", s));
    for (i, (role, text)) in system.into_iter().chain(texts.flatten()).chain(instruction).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"role\":\"");
        out.extend_from_slice(role.as_bytes());
        out.extend_from_slice(b"\",\"content\":");
        push_str(&mut out, text);
        out.push(b'}');
    }
    out.push(b']');
    let o = &request.options;
    if let Some(temperature) = o.temperature {
        out.extend_from_slice(b",\"temperature\":");
        let Some(()) = push_json(&mut out, &temperature) else { return Ok(None) };
    }
    if let Some(top_p) = o.top_p {
        out.extend_from_slice(b",\"top_p\":");
        let Some(()) = push_json(&mut out, &top_p) else { return Ok(None) };
    }
    if let Some(max_tokens) = max_tokens {
        out.extend_from_slice(b",\"max_tokens\":");
        push_u64(&mut out, u64::from(max_tokens));
    }
    if !o.stop.is_empty() {
        out.extend_from_slice(b",\"stop\":[");
        for (i, stop) in o.stop.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(&mut out, stop);
        }
        out.push(b']');
    }
    if let Some(parallel) = o.parallel_tool_calls {
        out.extend_from_slice(if parallel {
            b",\"parallel_tool_calls\":true"
        } else {
            b",\"parallel_tool_calls\":false"
        });
    }
    if stream {
        out.extend_from_slice(b",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    }
    // The wire type flattens these after its own fields, in the map's (sorted) order.
    for (key, value) in &extra {
        out.push(b',');
        push_str(&mut out, key);
        out.push(b':');
        let Some(()) = push_json(&mut out, value) else { return Ok(None) };
    }
    out.push(b'}');
    Ok(Some(out))
}

/// A number or a forwarded value, as serde_json writes it; `None` when it cannot (the wire path then reports
/// the same failure).
fn push_json(out: &mut Vec<u8>, value: &impl Serialize) -> Option<()> {
    serde_json::to_writer(out, value).ok()
}

#[cfg(test)]
mod tests {
    use switchyard::{ChatRequest, Message, Part, Role, ToolChoice};

    use super::write;
    use crate::openai::request::to_wire;

    fn by_wire(request: &ChatRequest, stream: bool) -> Vec<u8> {
        serde_json::to_vec(&to_wire(request, "gpt-up", stream).unwrap()).unwrap()
    }

    fn openai(body: &str) -> ChatRequest {
        crate::openai::decode_request(body.as_bytes()).unwrap()
    }

    fn anthropic(body: &str) -> ChatRequest {
        crate::anthropic::decode_request(body.as_bytes()).unwrap()
    }

    #[test]
    fn text_requests_are_written_as_the_wire_type_writes_them() {
        let every_ascii: String = (0u8..=0x7f).map(char::from).collect();
        let escaped = serde_json::to_string(&every_ascii).unwrap();
        let requests = [
            openai(r#"{"model":"m","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}"#),
            openai(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
            openai(&format!(
                r#"{{"model":"m","messages":[{{"role":"system","content":"Be brief. ✓"}},{{"role":"user","content":{escaped}}},
                {{"role":"assistant","content":"héllo 🦀"}},{{"role":"user","content":"again"}}],
                "temperature":0.7,"top_p":0.30000000000000004,"stop":["\n\n","END"],"parallel_tool_calls":false,
                "user":"u-1","seed":7,"logit_bias":{{"50256":-100}},"response_format":{{"type":"json_object"}}}}"#
            )),
            openai(
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1,"top_p":1e-7,"stop":"one"}"#,
            ),
            openai(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":100}"#),
            openai(
                r#"{"model":"m","messages":[{"role":"developer","content":"rules"},{"role":"user","content":"x"}],"parallel_tool_calls":true}"#,
            ),
            anthropic(
                r#"{"model":"m","max_tokens":300,"system":"Be brief.","messages":[{"role":"user","content":"hi"},
                {"role":"assistant","content":[{"type":"text","text":"Hel"}]}],"metadata":{"user_id":"u-9"},
                "thinking":{"type":"enabled","budget_tokens":5000},"stop_sequences":["STOP"],"temperature":0.2}"#,
            ),
            anthropic(
                r#"{"model":"m","max_tokens":30,"messages":[{"role":"user","content":"hi"}],
                "output_config":{"effort":"max","format":{"type":"json_schema","schema":{"type":"object"}}}}"#,
            ),
        ];
        for (i, request) in requests.iter().enumerate() {
            for stream in [false, true] {
                let ours = write(request, "gpt-up", stream).unwrap().unwrap_or_else(|| panic!("request {i} is plain"));
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(by_wire(request, stream)).unwrap(),
                    "request {i}, stream {stream}"
                );
            }
        }
    }

    #[test]
    fn a_continuation_is_written_as_the_wire_type_writes_it() {
        use switchyard::types::{Continuation, ContinuationStyle};
        let mut request = openai(r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":9}"#);
        request.messages.push(Message { role: Role::Assistant, content: vec![Part::Text { text: "Hel".into() }] });
        for style in [ContinuationStyle::Prefill, ContinuationStyle::Instruction] {
            request.continuation = Some(Continuation { style, instruction: "Go on from \"Hel\".".into() });
            let ours = write(&request, "gpt-up", true).unwrap().unwrap();
            assert_eq!(ours, by_wire(&request, true), "{style:?}");
        }
    }

    #[test]
    fn tools_parts_and_tool_turns_are_left_to_the_wire_type() {
        let tools = openai(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],
            "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}"#,
        );
        let mut choice = openai(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#);
        choice.tool_choice = Some(ToolChoice::None);
        let parts = openai(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"#,
        );
        let image = openai(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}"#,
        );
        let turns = openai(
            r#"{"model":"m","messages":[{"role":"user","content":"x"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"42"}]}"#,
        );
        for (name, request) in
            [("tools", tools), ("tool choice", choice), ("parts", parts), ("image", image), ("tool turns", turns)]
        {
            assert_eq!(write(&request, "gpt-up", false).unwrap(), None, "{name}");
        }
    }

    #[test]
    fn a_refused_field_is_refused_as_the_wire_type_refuses_it() {
        // The request is read as an OpenAI caller's; `n: 2` is refused toward every target.
        let mut request = openai(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#);
        request.extra.fields.insert("n".into(), serde_json::json!(2));
        let expected = to_wire(&request, "gpt-up", false).unwrap_err();
        let ours = write(&request, "gpt-up", false).unwrap_err();
        assert_eq!((ours.kind(), ours.to_string()), (expected.kind(), expected.to_string()));
        assert!(ours.to_string().contains("`n`"), "{ours}");
    }
}
