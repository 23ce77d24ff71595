#!/usr/bin/env python3
"""Sends COUNT requests to the bench-ok route (BENCH_MODEL: another) over one keep-alive connection (whole or streamed answers),
checks that every answer is a 200, and prints how many SSE data lines the last answer had. Standard library
only; 127.0.0.1 only.

  drive.py PORT COUNT whole|stream        (BENCH_KEY: the bearer token, default sim-key)

BENCH_SDK_HEADERS=1 adds the headers the OpenAI Python SDK sends with each request (its User-Agent, Accept and
X-Stainless-* headers), as a real client's request carries them.
"""
import json, os, socket, sys
port, count, stream = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "stream"
body = {"model": os.environ.get("BENCH_MODEL", "bench-ok"), "messages": [{"role": "user", "content": "Say hello to the benchmark, please."}],
        "max_tokens": 64, "stream": stream}
raw = json.dumps(body).encode()
sdk = ("Accept: application/json\r\nUser-Agent: OpenAI/Python 1.99.0\r\nX-Stainless-Lang: python\r\n"
       "X-Stainless-Package-Version: 1.99.0\r\nX-Stainless-OS: Linux\r\nX-Stainless-Arch: x64\r\n"
       "X-Stainless-Runtime: CPython\r\nX-Stainless-Runtime-Version: 3.12.3\r\nX-Stainless-Async: false\r\n"
       "x-stainless-retry-count: 0\r\nx-stainless-read-timeout: 600\r\n") if os.environ.get("BENCH_SDK_HEADERS") == "1" else ""
head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n%s"
        "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (sdk, os.environ.get("BENCH_KEY", "sim-key"), len(raw))).encode()
sock = socket.create_connection(("127.0.0.1", port), timeout=30)
events = 0
for i in range(count):
    sock.sendall(head + raw)
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            raise SystemExit("connection closed mid-answer")
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            continue
        length = [l for l in buf[:end].lower().split(b"\r\n") if l.startswith(b"content-length:")]
        if length and len(buf) - end - 4 >= int(length[0].split(b":")[1]):
            break
        if not length and buf.endswith(b"\r\n0\r\n\r\n"):
            break
    if not buf.startswith(b"HTTP/1.1 200"):
        raise SystemExit("unexpected answer: %r" % buf[:200])
    events = buf.count(b"data:")
print(events)
