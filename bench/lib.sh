# Helpers shared by bench/run, bench/part2 and bench/ab (sourced, not run). The caller sets OUT, BENCH, SECS and LOAD_CORE,
# declares the associative array R (results), and sets GW_PID (or MEASURED_PID for one call) before wrk_run.

PIDS=()
# Stops every process a script started (their PIDs are in PIDS); scripts install it with `trap cleanup EXIT`.
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}

wait_http() { # url
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    echo "nothing answers at $1" >&2
    return 1
}

# A TCP port nothing listens on now (the kernel's pick).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_shared URL: waits until the gateway's /health at URL says its state is shared through Redis; fails with a
# message after 5 s.
wait_shared() {
    for _ in $(seq 50); do
        curl -s --max-time 1 "$1" | grep -q '"state":"ok"' && return 0
        sleep 0.1
    done
    echo "the gateway at $1 did not reach Redis" >&2
    return 1
}

# sim_providers_and_routes UPSTREAM_PORT: the config blocks for the simulated upstream's two APIs (providers
# `oa` and `an`) and the routes bench/run measures and bench/pgo trains on. Route names equal the upstream model
# names, so one body serves the gateway and a direct call.
sim_providers_and_routes() {
    cat <<EOF
[providers.oa]
kind = "openai"
base_url = "http://127.0.0.1:$1/v1"
api_key = "sim-key"
[providers.an]
kind = "anthropic"
base_url = "http://127.0.0.1:$1"
api_key = "sim-key"

[routes.bench-ok]
targets = [{ provider = "oa", model = "bench-ok" }]
[routes.anthropic-ok]
targets = [{ provider = "an", model = "anthropic-ok" }]
[routes.bench-failover]
targets = [{ provider = "oa", model = "bench-500", priority = 1 }, { provider = "oa", model = "bench-ok", priority = 2 }]
[routes.bench-pace1]
targets = [{ provider = "oa", model = "bench-pace1" }]
EOF
}

rss_mb() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
hwm_mb() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }

body() { # model [stream]
    printf '{"model":"%s","messages":[{"role":"user","content":"Say hello to the benchmark, please."}],"max_tokens":64%s}' \
        "$1" "${2:+,\"stream\":true}"
}

# wrk_run KEY PORT PATH BODY CONNECTIONS [DELAY_MS]: stores KEY.p50/.p99/.requests/.rps/.non2xx/.errors, and .cpu (the
# measured process's share of one core, %), .cpu_us (its CPU time per request, µs) and .sys_us (the part of it spent in
# the kernel). AUTH (default "Bearer sim-key") is the client key sent.
wrk_run() {
    local key=$1 port=$2 path=$3 body=$4 conns=$5 delay=${6:-0}
    local version=""
    [[ $path == /v1/messages ]] && version=2023-06-01
    local before after line
    before=$(cpu_ticks "${MEASURED_PID:-$GW_PID}")
    local sys_before sys_after
    sys_before=$(sys_ticks "${MEASURED_PID:-$GW_PID}")
    line=$(BODY=$body PATH_=$path AUTH=${AUTH:-"Bearer sim-key"} ANTHROPIC_VERSION=$version DELAY_MS=$delay \
        taskset -c "$LOAD_CORE" wrk -t1 -c"$conns" -d"${SECS}s" --timeout 5s -s "$BENCH/post.lua" \
        "http://127.0.0.1:$port" | tee -a "$OUT/wrk.log" | grep '^RESULT')
    after=$(cpu_ticks "${MEASURED_PID:-$GW_PID}")
    sys_after=$(sys_ticks "${MEASURED_PID:-$GW_PID}")
    [[ -n $line ]] || { echo "wrk printed no result for $key" >&2; exit 1; }
    local requests duration_us p50 p99 non2xx errors
    requests=$(sed -E 's/.* requests=([0-9]+).*/\1/' <<<"$line")
    duration_us=$(sed -E 's/.* duration_us=([0-9]+).*/\1/' <<<"$line")
    p50=$(sed -E 's/.* p50=([0-9]+).*/\1/' <<<"$line")
    p99=$(sed -E 's/.* p99=([0-9]+).*/\1/' <<<"$line")
    non2xx=$(sed -E 's/.* non2xx=([0-9]+).*/\1/' <<<"$line")
    errors=$(sed -E 's/.* errors=([0-9]+).*/\1/' <<<"$line")
    R[$key.p50]=$p50
    R[$key.p99]=$p99
    R[$key.requests]=$requests
    R[$key.rps]=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN {printf "%.0f", r / d * 1e6}')
    R[$key.non2xx]=$non2xx
    R[$key.errors]=$errors
    # Share of one core the gateway used during the run (100 ticks/s).
    R[$key.cpu]=$(awk -v t=$((after - before)) -v d="$duration_us" 'BEGIN {printf "%.0f", t / 100 / (d / 1e6) * 100}')
    R[$key.cpu_us]=$(awk -v t=$((after - before)) -v r="$requests" 'BEGIN {if (r > 0) printf "%.1f", t / 100 * 1e6 / r; else print "-"}')
    # Of which in the kernel (system time): the sockets' work, which a proxy cannot do without.
    R[$key.sys_us]=$(awk -v t=$((sys_after - sys_before)) -v r="$requests" 'BEGIN {if (r > 0) printf "%.1f", t / 100 * 1e6 / r; else print "-"}')
    echo "  $key: $line gateway_cpu=${R[$key.cpu]}%" >&2
}

# ---------------------------------------------------------------- table cells
ms() { awk -v u="$1" 'BEGIN {printf "%.3f", u / 1000}'; }
ratio() { awk -v g="$1" -v d="$2" 'BEGIN {if (d > 0) printf "%.2f", g / d; else printf "-"}'; }
diff_ms() { awk -v g="$1" -v d="$2" 'BEGIN {printf "%+.3f", (g - d) / 1000}'; }
us_per_req() { awk -v c="$1" -v r="$2" 'BEGIN {if (r > 0) printf "%.0f", c / 100 * 1e6 / r; else print "-"}'; }
row() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
