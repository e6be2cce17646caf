#!/usr/bin/env bash
# What API keys and rate limits add per request: the same router binary in front of the same fake
# provider, in the same run, configured four ways, measured with the same load (llm-bench):
#   off      — no auth (the baseline)
#   auth     — LLM_ROUTER_AUTH_ENABLED=1, a key from the keys file in every request's Bearer header
#   limits   — auth + LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED=1, the key with rpm and tpm (in-process windows)
#   redis    — limits + Redis: every admission is one Lua script in a real redis-server, every
#              answer's tokens one more
# The key's limits are far above what the run sends, so nothing is refused: what is measured is
# the bookkeeping. The router is pinned to core 0; the fake, redis-server and the load generator
# share core 1 (as scripts/bench.sh). Each case runs BENCH_ROUNDS times in turn (off, auth, limits,
# redis); the summary gives medians and each case's added p50 / p99 / CPU per request over `off`
# of the same round. With valgrind installed (and BENCH_INSTR unset or 1) it also counts the
# router's instructions per request for off / auth / limits at concurrency 1 (deterministic,
# scripts/bench-instr.sh); the Redis case's cost is mostly the round trip, which a count misses.
#
#   scripts/bench-auth.sh                          # 10 s per measurement, 3 rounds
#   BENCH_DURATION=5 BENCH_ROUNDS=2 scripts/bench-auth.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
FAKE_PORT=${BENCH_FAKE_PORT:-19141}
REDIS_PORT=${BENCH_REDIS_PORT:-19142}
BASE_PORT=${BENCH_ROUTER_PORT:-19143}
ROUTER_CORE=0
LOAD_CORE=1
[ "$(nproc)" -ge 2 ] || { LOAD_CORE=0; echo "warning: one core only; figures are not comparable"; }
command -v redis-server >/dev/null || { echo "bench-auth: redis-server is needed (apt-get install redis-server)" >&2; exit 2; }

cargo build --release --locked --bins >&2
BIN=target/release

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench-auth: port $1 did not open" >&2; exit 1
}

KEY=sk-bench-0123456789abcdef0123456789
cat > "$work/keys.json" <<JSON
[{"key_plain": "$KEY", "key_id": "bench", "policy_name": "developer",
  "rpm": 1000000000, "tpm": 1000000000000}]
JSON
cat > "$work/models.json" <<JSON
{"bench": {"fake-model": {"providers": [
   {"id": "fake-1", "api_host": "http://127.0.0.1:$FAKE_PORT", "api_type": "vllm", "model_path": ""}]}},
 "active_models": {"bench": ["fake-model"]}}
JSON
AUTH="LLM_ROUTER_AUTH_ENABLED=1 LLM_ROUTER_AUTH_MEMORY_SEED_FILE=$work/keys.json"
LIMITS="$AUTH LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED=1"
REDIS="$LIMITS LLM_ROUTER_REDIS_HOST=127.0.0.1 LLM_ROUTER_REDIS_PORT=$REDIS_PORT"
CASES="off auth limits redis"
case_env() { case $1 in off) echo "" ;; auth) echo "$AUTH" ;; limits) echo "$LIMITS" ;; redis) echo "$REDIS" ;; esac; }

taskset -c "$LOAD_CORE" "$BIN/fake-llm" --port "$FAKE_PORT" --chunks 16 --workers 1 >/dev/null 2>&1 &
pids+=($!)
taskset -c "$LOAD_CORE" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
wait_port "$FAKE_PORT"; wait_port "$REDIS_PORT"

port=$BASE_PORT
declare -A router_port router_pid
for c in $CASES; do
    read -r -a extra <<< "$(case_env "$c")"
    env LLM_ROUTER_MODELS_CONFIG="$work/models.json" LLM_ROUTER_SERVER_HOST=127.0.0.1 \
        LLM_ROUTER_SERVER_PORT="$port" LLM_ROUTER_SERVER_WORKERS_COUNT=1 LLM_ROUTER_LOG_LEVEL=ERROR \
        LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS=0 ${extra[@]+"${extra[@]}"} \
        taskset -c "$ROUTER_CORE" "$BIN/llm-router" >"$work/router-$c.log" 2>&1 &
    router_pid[$c]=$!
    router_port[$c]=$port
    pids+=("${router_pid[$c]}")
    port=$((port + 1))
done
for c in $CASES; do wait_port "${router_port[$c]}"; done
# The Redis case must really use Redis: its /health says the limiter's backend is Redis once the
# first probe ran.
limiter_backend() {
    python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]))["rate_limits"].get("backend"))' \
        "http://127.0.0.1:$1/health" 2>/dev/null || true
}
for _ in $(seq 1 100); do [ "$(limiter_backend "${router_port[redis]}")" = redis ] && break; sleep 0.05; done
[ "$(limiter_backend "${router_port[redis]}")" = redis ] \
    || { echo "bench-auth: the redis case's limiter is not on Redis (see $work/router-redis.log)" >&2; exit 1; }
[ "$(limiter_backend "${router_port[limits]}")" = local ] \
    || { echo "bench-auth: the limits case has no local limiter" >&2; exit 1; }

TICK=$(getconf CLK_TCK)
for round in $(seq 1 "$ROUNDS"); do
    for mode in json sse; do
        flag=""; [ "$mode" = sse ] && flag="--stream"
        for conc in 1 16; do
            for c in $CASES; do
                hdr=(); [ "$c" = off ] || hdr=(--header "Authorization: Bearer $KEY")
                j=$(taskset -c "$LOAD_CORE" "$BIN/llm-bench" --url "http://127.0.0.1:${router_port[$c]}/v1/chat/completions" \
                    --concurrency "$conc" --duration "$DUR" --warmup 1 --cpu-pid "${router_pid[$c]}" \
                    --clk-tck "$TICK" $flag ${hdr[@]+"${hdr[@]}"})
                echo "$round $mode $conc $c $j" >> "$work/rounds"
                echo "round $round $mode c=$conc $c $j" >&2
            done
        done
    done
done

echo "per case: median over $ROUNDS rounds of $DUR s; added = case minus 'off' of the same round (median)"
python3 - "$work/rounds" <<'PY'
import collections, json, statistics, sys
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, mode, conc, case, j = line.split(" ", 4)
    rows[(mode, int(conc), rnd)][case] = json.loads(j)
keys = sorted({(m, c) for m, c, _ in rows})
print(f"{'case':<7} {'mode':<5} {'conc':>4} | {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu us/req':>10} | "
      f"{'added p50':>9} {'added p99':>9} {'added cpu':>9} | errors")
for mode, conc in keys:
    rounds = [r for (m, c, _), r in rows.items() if (m, c) == (mode, conc)]
    for case in ["off", "auth", "limits", "redis"]:
        med = lambda f: statistics.median(r[case][f] for r in rounds)
        add = lambda f: statistics.median(r[case][f] - r["off"][f] for r in rounds)
        errs = sum(r[case]["errors"] for r in rounds)
        added = "" if case == "off" else f"{add('p50_ms'):>+9.3f} {add('p99_ms'):>+9.3f} {add('cpu_us_per_req'):>+9.1f}"
        print(f"{case:<7} {mode:<5} {conc:>4} | {med('rps'):>8.0f} {med('p50_ms'):>8.3f} {med('p99_ms'):>8.3f} "
              f"{med('cpu_us_per_req'):>10.1f} | {added:<29} | {errs}")
PY

if command -v valgrind >/dev/null && [ "${BENCH_INSTR:-1}" = 1 ]; then
    echo
    echo "instructions per request of the router (callgrind, scripts/bench-instr.sh, json and sse at c=1):"
    for c in off auth limits; do
        hdr=""; [ "$c" = off ] || hdr="Authorization: Bearer $KEY"
        INSTR_SKIP_BUILD=1 INSTR_CASES="json:1 sse:1" INSTR_ROUTER_ENV="$(case_env "$c")" INSTR_HEADER="$hdr" \
            scripts/bench-instr.sh | awk -v c="$c" '$1 == "router" { printf "%-7s %s %s %s\n", c, $2, $3, $4 }'
    done
fi
