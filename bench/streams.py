#!/usr/bin/env python3
"""Stream measurements the load generator cannot make (standard library only, 127.0.0.1 only).

  streams.py ttfb PORT PATH MODEL COUNT      time to the first SSE data line, and to the end of the stream
  streams.py hold PORT PATH MODEL COUNT SECS  open COUNT streams, wait for each one's first data line, hold
                                             them SECS seconds, then close them all

`ttfb` prints `RESULT n=.. ttfb_p50=.. ttfb_p99=.. full_p50=.. full_p99=..` (microseconds);
`hold` prints `OPEN n=.. failed=.. secs=..` once every stream is open (or has failed), then `CLOSED`.
Both are bounded: every read has a timeout and `hold` gives up opening after 120 s.
BENCH_PROMPT_REPEAT=N repeats the user message N times (560 makes a 20 KB prompt; default 1).
"""
import asyncio
import json
import os
import resource
import socket
import sys
import time

HOST = "127.0.0.1"
KEY = os.environ.get("BENCH_KEY", "sim-key")
# The user message is the bench's sentence repeated this many times (560: a 20 KB prompt).
PROMPT_REPEAT = int(os.environ.get("BENCH_PROMPT_REPEAT", "1"))


def request_bytes(path, model):
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello to the benchmark, please." * PROMPT_REPEAT}],
            "stream": True}
    headers = {"Host": HOST, "Content-Type": "application/json", "Authorization": "Bearer " + KEY}
    if path == "/v1/messages":
        body["max_tokens"] = 64
        headers["x-api-key"] = KEY
        headers["anthropic-version"] = "2023-06-01"
    raw = json.dumps(body).encode()
    head = "POST %s HTTP/1.1\r\n" % path
    head += "".join("%s: %s\r\n" % kv for kv in headers.items())
    head += "Content-Length: %d\r\n\r\n" % len(raw)
    return head.encode() + raw


def complete(buf):
    """Whether `buf` holds a whole HTTP response (Content-Length or chunked)."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    for line in buf[:head_end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(buf) - head_end - 4 >= int(value)
    # Chunked: the body ends with a zero-length chunk.
    return buf.endswith(b"\r\n0\r\n\r\n")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def ttfb(port, path, model, count):
    req = request_bytes(path, model)
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    firsts, fulls = [], []
    for i in range(count + 50):  # the first 50 warm up
        start = time.perf_counter_ns()
        sock.sendall(req)
        buf = b""
        first = None
        while not complete(buf):
            data = sock.recv(65536)
            if not data:
                raise SystemExit("connection closed mid-stream (request %d)" % i)
            buf += data
            if first is None and b"\ndata:" in buf:
                first = time.perf_counter_ns()
        end = time.perf_counter_ns()
        if not buf.startswith(b"HTTP/1.1 200"):
            raise SystemExit("unexpected answer: %r" % buf[:200])
        if i >= 50:
            firsts.append((first - start) / 1000)
            fulls.append((end - start) / 1000)
    sock.close()
    print("RESULT n=%d ttfb_p50=%.0f ttfb_p99=%.0f full_p50=%.0f full_p99=%.0f" % (
        count, percentile(firsts, 50), percentile(firsts, 99), percentile(fulls, 50), percentile(fulls, 99)),
        flush=True)


async def open_one(port, req, streams):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 30)
        writer.write(req)
        buf = b""
        while b"\ndata:" not in buf:
            data = await asyncio.wait_for(reader.read(4096), 60)
            if not data:
                raise ConnectionError("closed before the first chunk")
            buf += data
        streams.append(writer)
        return True
    except (OSError, asyncio.TimeoutError, ConnectionError):
        return False


async def hold(port, path, model, count, secs):
    req = request_bytes(path, model)
    streams = []
    failed = 0
    start = time.monotonic()
    batch = 250  # connect in batches so the listen backlog never overflows
    for first in range(0, count, batch):
        if time.monotonic() - start > 120:
            failed += count - first
            break
        results = await asyncio.gather(*(open_one(port, req, streams) for _ in range(first, min(count, first + batch))))
        failed += results.count(False)
    print("OPEN n=%d failed=%d secs=%.1f" % (len(streams), failed, time.monotonic() - start), flush=True)
    await asyncio.sleep(secs)
    for writer in streams:
        writer.close()
    print("CLOSED", flush=True)


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    mode, port, path, model, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    if mode == "ttfb":
        ttfb(port, path, model, count)
    elif mode == "hold":
        asyncio.run(hold(port, path, model, count, float(sys.argv[6])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
