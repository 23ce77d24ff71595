"""Drives the gateway with the official OpenAI Python SDK (pinned in .ci/run).

Usage: openai_sdk.py BASE_URL API_KEY ROUTE [ROUTE ...]
For each route: responses.create whole and streamed with a function tool round, responses.parse with a
pydantic text_format, and chat.completions.parse (and its beta alias) with a pydantic response_format. Exits non-zero with the
reason on the first failure.
"""

import json
import sys

import openai
from pydantic import BaseModel


class City(BaseModel):
    name: str
    population: int
    coastal: bool


TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def tool_round(client, route, stream):
    question = [{"role": "user", "content": "please use the tool for Paris"}]
    if stream:
        with client.responses.stream(model=route, input=question, tools=TOOLS) as events:
            seen = [e.type for e in events]
            first = events.get_final_response()
        check(seen[:2] == ["response.created", "response.in_progress"], f"{route}: stream starts {seen[:2]}")
        check(seen[-1] == "response.completed", f"{route}: stream ends {seen[-1]}")
    else:
        first = client.responses.create(model=route, input=question, tools=TOOLS)
    check(first.status == "completed", f"{route}: status {first.status}")
    calls = [item for item in first.output if item.type == "function_call"]
    check(len(calls) == 1, f"{route}: one function_call, got {first.output}")
    call = calls[0]
    check(call.name == "get_weather" and isinstance(json.loads(call.arguments)["city"], str), f"{call}")
    result = f"sunny-{'s' if stream else 'w'}"
    follow_up = question + [call.model_dump(exclude_none=True), {
        "type": "function_call_output", "call_id": call.call_id, "output": result}]
    if stream:
        with client.responses.stream(model=route, input=follow_up, tools=TOOLS) as events:
            deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
            second = events.get_final_response()
        check(deltas == second.output_text, f"{route}: deltas {deltas!r} != {second.output_text!r}")
    else:
        second = client.responses.create(model=route, input=follow_up, tools=TOOLS)
    check(result in second.output_text, f"{route}: the tool result reaches the model: {second.output_text!r}")
    usage = second.usage
    check(usage.total_tokens == usage.input_tokens + usage.output_tokens > 0, f"{route}: usage {usage}")


def structured(client, route):
    parsed = client.responses.parse(model=route, input="Describe Lisbon.", text_format=City).output_parsed
    check(isinstance(parsed, City), f"{route}: responses.parse gave {parsed!r}")
    for completions in (client.chat.completions, client.beta.chat.completions):
        chat = completions.parse(
            model=route, messages=[{"role": "user", "content": "Describe Lisbon."}], response_format=City
        )
        check(isinstance(chat.choices[0].message.parsed, City), f"{route}: chat parse gave {chat.choices[0].message}")


def main():
    base_url, api_key, routes = sys.argv[1], sys.argv[2], sys.argv[3:]
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    for route in routes:
        tool_round(client, route, stream=False)
        tool_round(client, route, stream=True)
        structured(client, route)
        print(f"ok {route} (openai {openai.__version__})")


if __name__ == "__main__":
    main()
