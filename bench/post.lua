-- wrk script: POSTs one JSON body and prints a machine-readable summary line.
-- Environment: BODY (request body), PATH_ (request path), AUTH (header value, optional),
-- DELAY_MS (pause after each response, per connection: paces a fixed request rate),
-- STOP_AFTER (stop once this many responses arrived on a thread: a fixed amount of work instead of a duration).
wrk.method = "POST"
wrk.path = os.getenv("PATH_") or "/v1/chat/completions"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
  wrk.headers["x-api-key"] = string.gsub(auth, "^Bearer ", "")
end
local ver = os.getenv("ANTHROPIC_VERSION")
if ver and ver ~= "" then
  wrk.headers["anthropic-version"] = ver
end

local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

local stop_after = tonumber(os.getenv("STOP_AFTER") or "0")
if stop_after > 0 then
  local answered = 0
  function response(status, headers, body)
    answered = answered + 1
    if answered >= stop_after then
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50=%d p90=%d p99=%d max=%d non2xx=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
