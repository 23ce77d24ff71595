"""Drives the gateway with the official Anthropic Python SDK (pinned in .ci/run).

Usage: anthropic_sdk.py BASE_URL API_KEY ROUTE [ROUTE ...]
For each route: messages.parse with a pydantic output_format, whole and streamed (messages.stream with the same
output_format), and the answer parses into the schema. Exits non-zero with the reason on the first failure.
"""

import sys

import anthropic
from pydantic import BaseModel


class City(BaseModel):
    name: str
    population: int
    coastal: bool


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def structured(client, route):
    question = [{"role": "user", "content": "Describe Lisbon."}]
    whole = client.messages.parse(model=route, max_tokens=300, messages=question, output_format=City)
    check(isinstance(whole.parsed_output, City), f"{route}: messages.parse gave {whole.content!r}")
    with client.messages.stream(model=route, max_tokens=300, messages=question, output_format=City) as events:
        kinds = [event.type for event in events]
        final = events.get_final_message()
    check(kinds[0] == "message_start" and kinds[-1] == "message_stop", f"{route}: stream events {kinds}")
    check(isinstance(final.parsed_output, City), f"{route}: the streamed answer gave {final.content!r}")


def main():
    base_url, api_key, routes = sys.argv[1], sys.argv[2], sys.argv[3:]
    client = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0)
    for route in routes:
        structured(client, route)
        print(f"ok {route} (anthropic {anthropic.__version__})")


if __name__ == "__main__":
    main()
