#!/usr/bin/env bash
# CPU-per-request regression guard: the router and the bare `tcp-relay` hop, each in front of the
# same fake provider, measured in the same run with llm-bench (non-stream, keep-alive). It fails
# when the ratio CPU-per-request(router) / CPU-per-request(relay) rises more than GUARD_TOLERANCE
# (default 25 %) over the ratio recorded in benches/guard-ratio.txt. A ratio, not absolute times:
# a slower or busier machine slows both sides alike, so the guard does not flap with the machine.
#
# Router and relay are pinned to core 0, the fake provider and llm-bench to core 1 (as in
# scripts/bench.sh). GUARD_ROUNDS pairs (relay then router) of GUARD_DURATION seconds each; the
# verdict uses the median of the pairs' ratios.
#
#   scripts/bench-guard.sh                  # check against benches/guard-ratio.txt
#   GUARD_WRITE=1 scripts/bench-guard.sh    # measure and record the ratio (commit the file)
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${GUARD_DURATION:-3}
ROUNDS=${GUARD_ROUNDS:-3}
CONC=${GUARD_CONCURRENCY:-64}
TOLERANCE=${GUARD_TOLERANCE:-0.25}
RECORD=benches/guard-ratio.txt
FAKE_PORT=${GUARD_FAKE_PORT:-19121}
RELAY_PORT=${GUARD_RELAY_PORT:-19122}
ROUTER_PORT=${GUARD_ROUTER_PORT:-19123}
ROUTER_CORE=0
LOAD_CORE=1
[ "$(nproc)" -ge 2 ] || { LOAD_CORE=0; echo "warning: one core only; the ratio is not comparable" >&2; }

cargo build --release --locked --bins >&2
BIN=target/release
TICK=$(getconf CLK_TCK)

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$work"; }
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 did not open" >&2; exit 1
}

taskset -c "$LOAD_CORE" "$BIN/fake-llm" --port "$FAKE_PORT" --chunks 16 --workers 1 >/dev/null 2>&1 &
pids+=($!)
cat > "$work/models.json" <<JSON
{"guard": {"fake-model": {"providers": [
   {"id": "fake-1", "api_host": "http://127.0.0.1:$FAKE_PORT", "api_type": "vllm", "model_path": ""}]}},
 "active_models": {"guard": ["fake-model"]}}
JSON
LLM_ROUTER_MODELS_CONFIG="$work/models.json" LLM_ROUTER_SERVER_HOST=127.0.0.1 \
LLM_ROUTER_SERVER_PORT="$ROUTER_PORT" LLM_ROUTER_SERVER_WORKERS_COUNT=1 LLM_ROUTER_LOG_LEVEL=ERROR \
    taskset -c "$ROUTER_CORE" "$BIN/llm-router" >/dev/null 2>&1 &
router_pid=$!
pids+=("$router_pid")
taskset -c "$ROUTER_CORE" "$BIN/tcp-relay" --port "$RELAY_PORT" --to "127.0.0.1:$FAKE_PORT" >/dev/null 2>&1 &
relay_pid=$!
pids+=("$relay_pid")
wait_port "$FAKE_PORT"; wait_port "$RELAY_PORT"; wait_port "$ROUTER_PORT"

bench() { # port pid
    taskset -c "$LOAD_CORE" "$BIN/llm-bench" --url "http://127.0.0.1:$1/v1/chat/completions" \
        --concurrency "$CONC" --duration "$DUR" --warmup 1 --cpu-pid "$2" --clk-tck "$TICK"
}
for round in $(seq 1 "$ROUNDS"); do
    echo "relay $(bench "$RELAY_PORT" "$relay_pid")" >> "$work/runs"
    echo "router $(bench "$ROUTER_PORT" "$router_pid")" >> "$work/runs"
done

python3 - "$work/runs" "$RECORD" "$TOLERANCE" "${GUARD_WRITE:-}" "$DUR" "$ROUNDS" "$CONC" <<'PY'
import datetime, json, statistics, sys
runs, record, tolerance, write, dur, rounds, conc = sys.argv[1:]
pairs, cur = [], {}
for line in open(runs):
    target, js = line.split(" ", 1)
    cur[target] = json.loads(js)
    if target == "router":
        pairs.append(cur)
        cur = {}
for i, p in enumerate(pairs, 1):
    for t in ("relay", "router"):
        j = p[t]
        if j["errors"] or not j["cpu_us_per_req"]:
            sys.exit(f"guard: round {i} {t}: {j['errors']} errors, cpu {j['cpu_us_per_req']}: no measurement")
    p["ratio"] = p["router"]["cpu_us_per_req"] / p["relay"]["cpu_us_per_req"]
    print(f"round {i}: relay {p['relay']['rps']:>8.0f} req/s {p['relay']['cpu_us_per_req']:>6.1f} us/req | "
          f"router {p['router']['rps']:>8.0f} req/s {p['router']['cpu_us_per_req']:>6.1f} us/req | ratio {p['ratio']:.2f}")
ratio = statistics.median(p["ratio"] for p in pairs)
if write:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(record, "w") as f:
        f.write(f"# CPU per request, router / tcp-relay: median of {rounds} pairs of {dur} s, c={conc}, "
                f"non-stream; measured {when} by GUARD_WRITE=1 scripts/bench-guard.sh\n{ratio:.3f}\n")
    print(f"guard: recorded ratio {ratio:.3f} in {record}")
    sys.exit(0)
try:
    want = float(next(l for l in open(record) if l.strip() and not l.startswith("#")))
except (OSError, StopIteration, ValueError) as e:
    sys.exit(f"guard: cannot read the recorded ratio from {record}: {e!r}")
limit = want * (1 + float(tolerance))
verdict = "ok" if ratio <= limit else "FAIL"
print(f"guard: ratio {ratio:.3f} (recorded {want:.3f}, limit {limit:.3f}): {verdict}")
sys.exit(0 if verdict == "ok" else 1)
PY
