#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: the router (one worker) and the bare
# `tcp-relay` hop, each in front of the same fake provider, under the same llm-bench load. A count,
# not a time: the same binary and load give the same figure on a busy or a quiet machine (within a
# percent or two), so an A/B of two builds and a CI regression guard can run anywhere. It sees only
# user-space work (no syscalls, no cache misses): scripts/bench.sh measures time.
#
#   scripts/bench-instr.sh                                   # router vs relay, json/sse, c=1/16
#   INSTR_BINS="before=/tmp/old-router after=target/release/llm-router" scripts/bench-instr.sh
#   INSTR_GUARD=1 scripts/bench-instr.sh                     # CI guard against benches/guard-instr.txt
#   INSTR_GUARD=1 INSTR_WRITE=1 scripts/bench-instr.sh       # measure and record the guard's ratios
#   INSTR_ROUTER_ENV="LLM_ROUTER_AUTH_ENABLED=1 ..." INSTR_HEADER="Authorization: Bearer k" \
#       scripts/bench-instr.sh                               # extra router variables / request header
#   INSTR_PROVIDERS=2 INSTR_ROUTER_ENV=LLM_ROUTER_HEDGE_AFTER_MS=5000 scripts/bench-instr.sh  # hedging armed
#
# The guard fails when instructions per request of the router, divided by the relay's of the same
# run, rise more than INSTR_TOLERANCE (25 %) over the ratio recorded for that case.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "bench-instr: valgrind is not installed (Debian: apt-get install valgrind)" >&2; exit 2; }
[ -n "${INSTR_SKIP_BUILD:-}" ] || cargo build --release --locked --bins >&2
BIN=target/release
DUR=${INSTR_DURATION:-6}
TOLERANCE=${INSTR_TOLERANCE:-0.25}
RECORD=benches/guard-instr.txt
BINS=${INSTR_BINS:-router=$BIN/llm-router}
# The guard uses concurrency 1: no batching of requests per wake-up, so the count barely moves
# between machines of different speed (at 16 the relay's count varies most).
if [ -n "${INSTR_GUARD:-}" ]; then CASES=${INSTR_CASES:-"json:1 sse:1"}; else CASES=${INSTR_CASES:-"json:1 json:16 sse:1 sse:16"}; fi
FAKE_PORT=${INSTR_FAKE_PORT:-19131}
PORT=${INSTR_PORT:-19132}
# Extra variables for the measured processes (word-split: VAR=value VAR=value) and one request
# header for every request (scripts/bench-auth.sh measures auth and limits with them).
read -r -a ROUTER_ENV <<< "${INSTR_ROUTER_ENV:-}"
HDR=(); [ -z "${INSTR_HEADER:-}" ] || HDR=(--header "$INSTR_HEADER")

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

wait_http() { # port
    for _ in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench-instr: port $1 did not open" >&2; exit 1
}

"$BIN/fake-llm" --port "$FAKE_PORT" --chunks 16 --workers 1 >/dev/null 2>&1 &
pids+=($!)
wait_http "$FAKE_PORT"
# INSTR_PROVIDERS (default 1) providers of the model, all the same fake (hedging needs two).
providers=$(python3 -c 'import json,sys; print(json.dumps([{"id": f"fake-{i}", "api_host": sys.argv[1], "api_type": "vllm", "model_path": ""} for i in range(1, int(sys.argv[2]) + 1)]))' \
    "http://127.0.0.1:$FAKE_PORT" "${INSTR_PROVIDERS:-1}")
cat > "$work/models.json" <<JSON
{"bench": {"fake-model": {"providers": $providers}},
 "active_models": {"bench": ["fake-model"]}}
JSON

# Counts one target: name, mode, concurrency, command... Prints "name mode c Ir/req requests".
measure() {
    local name=$1 mode=$2 conc=$3; shift 3
    local out="$work/cg.$name.$mode.$conc"
    LLM_ROUTER_MODELS_CONFIG="$work/models.json" LLM_ROUTER_SERVER_HOST=127.0.0.1 \
    LLM_ROUTER_SERVER_PORT="$PORT" LLM_ROUTER_SERVER_WORKERS_COUNT=1 LLM_ROUTER_LOG_LEVEL=ERROR \
    LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS=0 \
        env ${ROUTER_ENV[@]+"${ROUTER_ENV[@]}"} valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>"$work/vg.log" &
    local pid=$!
    pids+=("$pid")
    wait_http "$PORT"
    local stream=""; [ "$mode" = sse ] && stream="--stream"
    "$BIN/llm-bench" --url "http://127.0.0.1:$PORT/v1/chat/completions" --concurrency "$conc" \
        --duration 2 --warmup 0 $stream ${HDR[@]+"${HDR[@]}"} >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    local res
    res=$("$BIN/llm-bench" --url "http://127.0.0.1:$PORT/v1/chat/completions" --concurrency "$conc" \
        --duration "$DUR" --warmup 0 $stream ${HDR[@]+"${HDR[@]}"})
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$out.1" "$res" "$name" "$mode" "$conc" <<'PY'
import json, sys
path, res, name, mode, conc = sys.argv[1:]
res = json.loads(res)
total = next(int(l.split()[1]) for l in open(path) if l.startswith("summary:"))
n = res["completed_total"]
if res["errors"] or n == 0:
    sys.exit(f"bench-instr: {name} {mode} c={conc}: {res['errors']} errors, {n} requests")
print(name, mode, conc, round(total / n), n)
PY
}

for case in $CASES; do
    mode=${case%%:*}; conc=${case##*:}
    measure relay "$mode" "$conc" "$BIN/tcp-relay" --port "$PORT" --to "127.0.0.1:$FAKE_PORT" >> "$work/runs"
    for b in $BINS; do
        measure "${b%%=*}" "$mode" "$conc" "${b#*=}" >> "$work/runs"
    done
done

python3 - "$work/runs" "$RECORD" "$TOLERANCE" "${INSTR_GUARD:-}" "${INSTR_WRITE:-}" <<'PY'
import datetime, sys
runs, record, tolerance, guard, write = sys.argv[1:]
rows = [l.split() for l in open(runs)]
relay = {(m, c): int(ir) for name, m, c, ir, _ in rows if name == "relay"}
print(f"{'target':<10} {'case':<9} {'instr/req':>10} {'x relay':>8} {'requests':>9}")
ratios = {}
for name, m, c, ir, n in rows:
    r = int(ir) / relay[(m, c)]
    if name != "relay":
        ratios[(name, m, c)] = r
    print(f"{name:<10} {m + ' c=' + c:<9} {int(ir):>10} {r:>8.2f} {n:>9}")
if not guard:
    sys.exit(0)
mine = {(m, c): r for (name, m, c), r in ratios.items() if name == "router"}
if write:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(record, "w") as f:
        f.write(f"# instructions per request, router / tcp-relay (callgrind); measured {when} by "
                f"INSTR_GUARD=1 INSTR_WRITE=1 scripts/bench-instr.sh\n")
        for (m, c), r in sorted(mine.items()):
            f.write(f"{m} {c} {r:.2f}\n")
    print(f"bench-instr: recorded {len(mine)} ratios in {record}")
    sys.exit(0)
want = {}
for line in open(record):
    if line.strip() and not line.startswith("#"):
        m, c, r = line.split()
        want[(m, c)] = float(r)
failed = False
for key, r in sorted(mine.items()):
    if key not in want:
        sys.exit(f"bench-instr: no recorded ratio for {key} in {record}")
    limit = want[key] * (1 + float(tolerance))
    ok = r <= limit
    failed |= not ok
    print(f"guard {key[0]} c={key[1]}: ratio {r:.2f} (recorded {want[key]:.2f}, limit {limit:.2f}): {'ok' if ok else 'FAIL'}")
sys.exit(1 if failed else 0)
PY
