#!/usr/bin/env bash
# Router overhead benchmark: the fake provider measured directly and through the router, in the
# same run, with the same load tool (llm-bench) and concurrency. The router is pinned to core 0;
# the fake provider and the load generator share core 1, so figures compare between runs.
# Beside the router, the same traffic goes through `tcp-relay` (a byte-for-byte TCP hop on the
# router's core): the latency any extra hop costs on this machine, with no HTTP work at all.
# Each (mode, concurrency) is measured BENCH_ROUNDS times (direct, relay, router in turn); the
# summary gives the median of the rounds' added figures, since the tail at concurrency 64 moves by
# a millisecond or more from one round to the next.
# The matrix runs twice: against a provider that answers at once (its core, shared with the load
# generator, is saturated at concurrency 64, so the tail there is mostly that core's scheduling) and,
# at concurrency 64, against one that waits BENCH_PACED_MS (default 10) before answering, as a real
# model does: the same 64 requests in flight with room left on the provider's core.
#
#   scripts/bench.sh                 # 10 s per measurement, 3 rounds
#   BENCH_DURATION=5 BENCH_ROUNDS=5 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${BENCH_DURATION:-10}
CHUNKS=${BENCH_CHUNKS:-16}
FAKE_PORT=${BENCH_FAKE_PORT:-19101}
ROUTER_PORT=${BENCH_ROUTER_PORT:-19100}
RELAY_PORT=${BENCH_RELAY_PORT:-19103}
PACED_FAKE_PORT=${BENCH_PACED_FAKE_PORT:-19104}
PACED_RELAY_PORT=${BENCH_PACED_RELAY_PORT:-19105}
PACED_ROUTER_PORT=${BENCH_PACED_ROUTER_PORT:-19106}
PACED_MS=${BENCH_PACED_MS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
ROUTER_CORE=0
LOAD_CORE=1
[ "$(nproc)" -ge 2 ] || { ROUTER_CORE=0; LOAD_CORE=0; echo "warning: one core only; figures are not comparable"; }

cargo build --release --locked --bins >&2
BIN=target/release

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 did not open" >&2; exit 1
}

# One set of processes per provider pace: a fake provider that answers at once (its core is then
# saturated at concurrency 64) and one that waits PACED_MS before answering, as a real model does
# (the same 64 requests in flight then leave its core room). Each set has its own relay and router.
start_set() { # fake-port relay-port router-port [fake flags...]
    taskset -c "$LOAD_CORE" "$BIN/fake-llm" --port "$1" --chunks "$CHUNKS" --workers 1 "${@:4}" >/dev/null 2>&1 &
    pids+=($!)
    cat > "$work/models-$1.json" <<JSON
{"bench": {"fake-model": {"providers": [
   {"id": "fake-1", "api_host": "http://127.0.0.1:$1", "api_type": "vllm", "model_path": ""}]}},
 "active_models": {"bench": ["fake-model"]}}
JSON
    LLM_ROUTER_MODELS_CONFIG="$work/models-$1.json" LLM_ROUTER_SERVER_HOST=127.0.0.1 \
    LLM_ROUTER_SERVER_PORT="$3" LLM_ROUTER_SERVER_WORKERS_COUNT=1 LLM_ROUTER_LOG_LEVEL=ERROR \
        taskset -c "$ROUTER_CORE" "$BIN/llm-router" >/dev/null 2>&1 &
    last_router=$!
    pids+=("$last_router")
    taskset -c "$ROUTER_CORE" "$BIN/tcp-relay" --port "$2" --to "127.0.0.1:$1" >/dev/null 2>&1 &
    pids+=($!)
    wait_port "$1"; wait_port "$2"; wait_port "$3"
}
start_set "$FAKE_PORT" "$RELAY_PORT" "$ROUTER_PORT"
router_pid=$last_router
cp "$work/models-$FAKE_PORT.json" "$work/models.json"
start_set "$PACED_FAKE_PORT" "$PACED_RELAY_PORT" "$PACED_ROUTER_PORT" --latency-ms "$PACED_MS"
paced_router_pid=$last_router
sleep 0.5
rss_kb() { awk -v k="$2" '$1==k {print $2}' "/proc/$1/status"; }
idle_rss=$(rss_kb "$router_pid" VmRSS:)

bench() { # url concurrency stream-flag [extra llm-bench flags]
    taskset -c "$LOAD_CORE" "$BIN/llm-bench" --url "$1" --concurrency "$2" --duration "$DUR" --warmup 1 $3 "${@:4}"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }
delta() { python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):+.3f}')" "$1" "$2"; }

matrix() { # pace-label fake-port relay-port router-port router-pid concurrency...
    local label=$1 fport=$2 xport=$3 rport=$4 rpid=$5 mode flag conc round d x r c0 c1 cpu_us t j extra
    for mode in json sse; do
        flag=""; [ "$mode" = sse ] && flag="--stream"
        for conc in "${@:6}"; do
            for round in $(seq 1 "$ROUNDS"); do
                d=$(bench "http://127.0.0.1:$fport/v1/chat/completions" "$conc" "$flag")
                x=$(bench "http://127.0.0.1:$xport/v1/chat/completions" "$conc" "$flag")
                c0=$(cpu_ticks "$rpid")
                r=$(bench "http://127.0.0.1:$rport/v1/chat/completions" "$conc" "$flag")
                c1=$(cpu_ticks "$rpid")
                # Router CPU per request (includes the 1 s warm-up's requests in the ticks: an upper bound).
                cpu_us=$(python3 -c "import sys; t,tck,n,d,w=map(float,sys.argv[1:]); print(f'{t/tck*1e6/(n*(d+w)/d):.1f}')" \
                    "$((c1 - c0))" "$TICK" "$(field "$r" requests)" "$DUR" 1)
                for t in direct relay router; do
                    case $t in direct) j=$d ;; relay) j=$x ;; router) j=$r ;; esac
                    echo "$label $mode $conc $round $t $cpu_us $j" >> "$work/rounds"
                    echo "pace $label $mode c=$conc round $round $t $j" >> "$work/raw"
                    extra=""
                    [ $t != direct ] && extra="$(delta "$(field "$j" p50_ms)" "$(field "$d" p50_ms)") / $(delta "$(field "$j" p99_ms)" "$(field "$d" p99_ms)") / $(delta "$(field "$j" ttfb_p50_ms)" "$(field "$d" ttfb_p50_ms)")"
                    [ $t = router ] && extra="$extra; cpu ${cpu_us} us/req"
                    [ "$(field "$j" errors)" = 0 ] || extra="$extra ERRORS=$(field "$j" errors)"
                    printf '%-5s %-5s %4s %5s | %-6s %10s %9s %9s %10s | %s\n' "$label" "$mode" "$conc" "$round" "$t" \
                        "$(field "$j" rps)" "$(field "$j" p50_ms)" "$(field "$j" p99_ms)" "$(field "$j" ttfb_p50_ms)" "$extra"
                done
            done
        done
    done
}

printf '%-5s %-5s %4s %5s | %-6s %10s %9s %9s %10s | %s\n' pace mode conc round target "req/s" "p50 ms" "p99 ms" "ttfb p50" "added vs direct p50 / p99 / ttfb ms; router cpu/req"
matrix "0ms" "$FAKE_PORT" "$RELAY_PORT" "$ROUTER_PORT" "$router_pid" 1 64
matrix "${PACED_MS}ms" "$PACED_FAKE_PORT" "$PACED_RELAY_PORT" "$PACED_ROUTER_PORT" "$paced_router_pid" 64
echo
echo "median over $ROUNDS round(s) (added = target - direct of the same round; pace = provider's wait before answering):"
python3 - "$work/rounds" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    pace, mode, conc, rnd, target, cpu, js = line.split(" ", 6)
    rows.setdefault((pace, mode, int(conc)), {}).setdefault(int(rnd), {})[target] = (json.loads(js), float(cpu))
print(f"{'pace':5} {'mode':5} {'conc':>4} | {'direct req/s':>12} {'router req/s':>12} {'added p50':>10} {'added p99':>10} {'added ttfb':>10} {'cpu/req':>8} | {'relay added p50':>15} {'relay added p99':>15}")
for (pace, mode, conc), rounds in rows.items():
    def med(target, key):
        return statistics.median(r[target][0][key] - r["direct"][0][key] for r in rounds.values())
    drps = statistics.median(r["direct"][0]["rps"] for r in rounds.values())
    rps = statistics.median(r["router"][0]["rps"] for r in rounds.values())
    cpu = statistics.median(r["router"][1] for r in rounds.values())
    print(f"{pace:5} {mode:5} {conc:>4} | {drps:>12.0f} {rps:>12.0f} {med('router','p50_ms'):>+10.3f} {med('router','p99_ms'):>+10.3f} "
          f"{med('router','ttfb_p50_ms'):>+10.3f} {cpu:>6.1f}us | {med('relay','p50_ms'):>+15.3f} {med('relay','p99_ms'):>+15.3f}")
PY
# Converted streams: an Ollama / Anthropic client through the router to the same OpenAI-wire
# provider, beside the passthrough (OpenAI client) stream and the direct baseline, same run.
echo
printf '%-22s %4s | %10s %9s %9s %10s | %s\n' "converted stream" conc "req/s" "p50 ms" "p99 ms" "ttfb p50" "added vs direct: p50 / ttfb ms; cpu/req"
for conc in 1 64; do
    d=$(bench "http://127.0.0.1:$FAKE_PORT/v1/chat/completions" "$conc" --stream)
    for spec in "openai /v1/chat/completions" "ollama /api/chat" "anthropic /v1/messages"; do
        set -- $spec
        c0=$(cpu_ticks "$router_pid")
        r=$(bench "http://127.0.0.1:$ROUTER_PORT$2" "$conc" --stream --dialect "$1")
        c1=$(cpu_ticks "$router_pid")
        cpu_us=$(python3 -c "import sys; t,tck,n,d,w=map(float,sys.argv[1:]); print(f'{t/tck*1e6/(n*(d+w)/d):.1f}')" \
            "$((c1 - c0))" "$TICK" "$(field "$r" requests)" "$DUR" 1)
        echo "convert $1 c=$conc router $r (direct $d)" >> "$work/raw"
        extra="$(delta "$(field "$r" p50_ms)" "$(field "$d" p50_ms)") / $(delta "$(field "$r" ttfb_p50_ms)" "$(field "$d" ttfb_p50_ms)"); cpu ${cpu_us} us/req"
        [ "$(field "$r" errors)" = 0 ] || extra="$extra ERRORS=$(field "$r" errors)"
        printf '%-22s %4s | %10s %9s %9s %10s | %s\n' "$1 client -> openai" "$conc" \
            "$(field "$r" rps)" "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" "$(field "$r" ttfb_p50_ms)" "$extra"
    done
done
# first_available with leases in Redis vs in-process (one provider: one request at a time).
if command -v redis-server >/dev/null 2>&1; then
    REDIS_PORT=${BENCH_REDIS_PORT:-19102}
    taskset -c "$LOAD_CORE" redis-server --port "$REDIS_PORT" --save "" --appendonly no >/dev/null 2>&1 &
    pids+=($!)
    wait_port "$REDIS_PORT"
    start_router() { # port [extra env...]
        env LLM_ROUTER_MODELS_CONFIG="$work/models.json" LLM_ROUTER_SERVER_HOST=127.0.0.1 \
            LLM_ROUTER_SERVER_PORT="$1" LLM_ROUTER_SERVER_WORKERS_COUNT=1 LLM_ROUTER_LOG_LEVEL=ERROR \
            LLM_ROUTER_BALANCE_STRATEGY=first_available "${@:2}" \
            taskset -c "$ROUTER_CORE" "$BIN/llm-router" >/dev/null 2>&1 &
        pids+=($!)
        wait_port "$1"
    }
    start_router $((ROUTER_PORT + 10))
    start_router $((ROUTER_PORT + 11)) LLM_ROUTER_REDIS_HOST=127.0.0.1 LLM_ROUTER_REDIS_PORT="$REDIS_PORT"
    sleep 1
    echo
    printf '%-30s %4s | %10s %9s %9s | %s\n' "first_available (json)" conc "req/s" "p50 ms" "p99 ms" "added vs direct p50 / p99 ms"
    d=$(bench "http://127.0.0.1:$FAKE_PORT/v1/chat/completions" 1 "")
    for spec in "in-process $((ROUTER_PORT + 10))" "redis $((ROUTER_PORT + 11))"; do
        set -- $spec
        r=$(bench "http://127.0.0.1:$2/v1/chat/completions" 1 "")
        echo "first_available $1 c=1 router $r (direct $d)" >> "$work/raw"
        extra="$(delta "$(field "$r" p50_ms)" "$(field "$d" p50_ms)") / $(delta "$(field "$r" p99_ms)" "$(field "$d" p99_ms)")"
        [ "$(field "$r" errors)" = 0 ] || extra="$extra ERRORS=$(field "$r" errors)"
        printf '%-30s %4s | %10s %9s %9s | %s\n' "leases $1" 1 "$(field "$r" rps)" "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" "$extra"
    done
    echo
    echo "provider choice cost per strategy (cargo bench -p llm-router-actors --bench choice):"
    cargo bench --locked -p llm-router-actors --bench choice 2>/dev/null | grep -v "^$"
else
    echo "redis-server not installed: shared-state figures skipped"
fi

echo
echo "conversion cost per frame (cargo bench --bench conversion):"
cargo bench --locked --bench conversion 2>/dev/null | grep -E "ns/frame|passthrough"

peak_rss=$(rss_kb "$router_pid" VmHWM:)
echo
echo "router RSS: idle $((idle_rss / 1024)) MiB ($idle_rss kB), peak $((peak_rss / 1024)) MiB ($peak_rss kB)"
echo "raw results:"; cat "$work/raw"
