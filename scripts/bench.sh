#!/usr/bin/env bash
# Router overhead benchmark: the fake provider measured directly and through the router, in the
# same run, with the same load tool (llm-bench) and concurrency. The router is pinned to core 0;
# the fake provider and the load generator share core 1, so figures compare between runs.
# Beside the router, the same traffic goes through `tcp-relay` (a byte-for-byte TCP hop on the
# router's core): the latency any extra hop costs on this machine, with no HTTP work at all.
# CPU per request is read by llm-bench from /proc/<pid>/stat over its measured window (warm-up
# excluded): the router's and the relay's side by side, the fake's on the direct run, and the load
# generator's own (on the direct run, fake + generator is what the load core spends per request:
# the load side is not the bottleneck while that stays well under the router's figure).
# The fake runs as `fake-llm --fast` (prepared answers on a bare HTTP/1.1 loop, fake-llm/src/fast.rs)
# so that the load core has room to spare: direct throughput several times the router's. With
# BENCH_FAKE=actix the full actix fake is used instead (its own cost then caps the direct run).
# Each (mode, concurrency) is measured BENCH_ROUNDS times (direct, relay, router in turn); the
# summary gives the median of the rounds' added figures, since the tail at concurrency 64 moves by
# a millisecond or more from one round to the next.
# The matrix runs twice: against a provider that answers at once (its core, shared with the load
# generator, is saturated at concurrency 64, so the tail there is mostly that core's scheduling) and,
# at concurrency 64, against one that waits BENCH_PACED_MS (default 10) before answering, as a real
# model does: the same 64 requests in flight with room left on the provider's core.
#
# With BENCH_BASE_ROUTER=<path to another llm-router binary> (for example a build of the previous
# main), that router is started beside this one in each set and measured in every round right after
# it, so a change is compared with its base in the same run (columns "base" in the summary).
#
#   scripts/bench.sh                 # 10 s per measurement, 3 rounds
#   BENCH_DURATION=5 BENCH_ROUNDS=5 scripts/bench.sh
#   BENCH_BASE_ROUTER=/tmp/base/llm-router scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${BENCH_DURATION:-10}
CHUNKS=${BENCH_CHUNKS:-16}
case ${BENCH_FAKE:-fast} in
    fast) FAKE_FLAGS=(--fast) ;;
    actix) FAKE_FLAGS=() ;;
    *) echo "BENCH_FAKE must be fast or actix" >&2; exit 2 ;;
esac
FAKE_PORT=${BENCH_FAKE_PORT:-19101}
ROUTER_PORT=${BENCH_ROUTER_PORT:-19100}
RELAY_PORT=${BENCH_RELAY_PORT:-19103}
PACED_FAKE_PORT=${BENCH_PACED_FAKE_PORT:-19104}
PACED_RELAY_PORT=${BENCH_PACED_RELAY_PORT:-19105}
PACED_ROUTER_PORT=${BENCH_PACED_ROUTER_PORT:-19106}
PACED_MS=${BENCH_PACED_MS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
BASE_ROUTER=${BENCH_BASE_ROUTER:-}
BASE_OFFSET=20 # the base router of a set listens on its router's port + 20
[ -z "$BASE_ROUTER" ] || [ -x "$BASE_ROUTER" ] || { echo "BENCH_BASE_ROUTER=$BASE_ROUTER is not an executable" >&2; exit 2; }
ROUTER_CORE=0
LOAD_CORE=1
[ "$(nproc)" -ge 2 ] || { ROUTER_CORE=0; LOAD_CORE=0; echo "warning: one core only; figures are not comparable"; }

cargo build --release --locked --bins >&2
BIN=target/release

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

run_router() { # models-config binary port
    LLM_ROUTER_MODELS_CONFIG="$1" LLM_ROUTER_SERVER_HOST=127.0.0.1 \
    LLM_ROUTER_SERVER_PORT="$3" LLM_ROUTER_SERVER_WORKERS_COUNT=1 LLM_ROUTER_LOG_LEVEL=ERROR \
        taskset -c "$ROUTER_CORE" "$2" >/dev/null 2>&1 &
    pids+=($!)
}

# One set of processes per provider pace: a fake provider that answers at once (its core is then
# saturated at concurrency 64) and one that waits PACED_MS before answering, as a real model does
# (the same 64 requests in flight then leave its core room). Each set has its own relay and router.
start_set() { # fake-port relay-port router-port [fake flags...]
    taskset -c "$LOAD_CORE" "$BIN/fake-llm" --port "$1" --chunks "$CHUNKS" --workers 1 "${FAKE_FLAGS[@]}" "${@:4}" >/dev/null 2>&1 &
    last_fake=$!
    pids+=("$last_fake")
    cat > "$work/models-$1.json" <<JSON
{"bench": {"fake-model": {"providers": [
   {"id": "fake-1", "api_host": "http://127.0.0.1:$1", "api_type": "vllm", "model_path": ""}]}},
 "active_models": {"bench": ["fake-model"]}}
JSON
    run_router "$work/models-$1.json" "$BIN/llm-router" "$3"
    last_router=${pids[-1]}
    last_base=""
    if [ -n "$BASE_ROUTER" ]; then
        run_router "$work/models-$1.json" "$BASE_ROUTER" $(($3 + BASE_OFFSET))
        last_base=${pids[-1]}
        wait_port $(($3 + BASE_OFFSET))
    fi
    taskset -c "$ROUTER_CORE" "$BIN/tcp-relay" --port "$2" --to "127.0.0.1:$1" >/dev/null 2>&1 &
    last_relay=$!
    pids+=("$last_relay")
    wait_port "$1"; wait_port "$2"; wait_port "$3"
}
start_set "$FAKE_PORT" "$RELAY_PORT" "$ROUTER_PORT"
fake_pid=$last_fake router_pid=$last_router relay_pid=$last_relay base_pid=$last_base
cp "$work/models-$FAKE_PORT.json" "$work/models.json"
start_set "$PACED_FAKE_PORT" "$PACED_RELAY_PORT" "$PACED_ROUTER_PORT" --latency-ms "$PACED_MS"
paced_fake_pid=$last_fake paced_router_pid=$last_router paced_relay_pid=$last_relay paced_base_pid=$last_base
sleep 0.5
rss_kb() { awk -v k="$2" '$1==k {print $2}' "/proc/$1/status"; }
idle_rss=$(rss_kb "$router_pid" VmRSS:)

TICK=$(getconf CLK_TCK)
bench() { # url concurrency stream-flag pid-whose-cpu-to-count [extra llm-bench flags]
    taskset -c "$LOAD_CORE" "$BIN/llm-bench" --url "$1" --concurrency "$2" --duration "$DUR" --warmup 1 \
        --cpu-pid "$4" --clk-tck "$TICK" $3 "${@:5}"
}
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }
# The load core's CPU per request on a direct run: the fake's plus the load generator's own.
load_cpu() { python3 -c "import json,sys; j=json.loads(sys.argv[1]); print(f\"{j['cpu_us_per_req']+j['bench_cpu_us_per_req']:.1f}\")" "$1"; }
delta() { python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):+.3f}')" "$1" "$2"; }

matrix() { # pace-label fake-port relay-port router-port fake-pid relay-pid router-pid base-pid concurrency...
    local label=$1 fport=$2 xport=$3 rport=$4 fpid=$5 xpid=$6 rpid=$7 bpid=$8 mode flag conc round d x r b t j extra targets
    targets="direct relay router"; [ -n "$bpid" ] && targets="$targets base"
    for mode in json sse; do
        flag=""; [ "$mode" = sse ] && flag="--stream"
        for conc in "${@:9}"; do
            for round in $(seq 1 "$ROUNDS"); do
                d=$(bench "http://127.0.0.1:$fport/v1/chat/completions" "$conc" "$flag" "$fpid")
                x=$(bench "http://127.0.0.1:$xport/v1/chat/completions" "$conc" "$flag" "$xpid")
                r=$(bench "http://127.0.0.1:$rport/v1/chat/completions" "$conc" "$flag" "$rpid")
                [ -n "$bpid" ] && b=$(bench "http://127.0.0.1:$((rport + BASE_OFFSET))/v1/chat/completions" "$conc" "$flag" "$bpid")
                for t in $targets; do
                    case $t in direct) j=$d ;; relay) j=$x ;; router) j=$r ;; base) j=$b ;; esac
                    echo "$label $mode $conc $round $t $j" >> "$work/rounds"
                    echo "pace $label $mode c=$conc round $round $t $j" >> "$work/raw"
                    extra=""
                    [ $t != direct ] && extra="$(delta "$(field "$j" p50_ms)" "$(field "$d" p50_ms)") / $(delta "$(field "$j" p99_ms)" "$(field "$d" p99_ms)") / $(delta "$(field "$j" ttfb_p50_ms)" "$(field "$d" ttfb_p50_ms)")"
                    case $t in
                        direct) extra="load core $(load_cpu "$j") us/req (fake $(field "$j" cpu_us_per_req) + llm-bench $(field "$j" bench_cpu_us_per_req))" ;;
                        *) extra="$extra; cpu $(field "$j" cpu_us_per_req) us/req" ;;
                    esac
                    [ "$(field "$j" errors)" = 0 ] || extra="$extra ERRORS=$(field "$j" errors)"
                    printf '%-5s %-5s %4s %5s | %-6s %10s %9s %9s %10s | %s\n' "$label" "$mode" "$conc" "$round" "$t" \
                        "$(field "$j" rps)" "$(field "$j" p50_ms)" "$(field "$j" p99_ms)" "$(field "$j" ttfb_p50_ms)" "$extra"
                done
            done
        done
    done
}

printf '%-5s %-5s %4s %5s | %-6s %10s %9s %9s %10s | %s\n' pace mode conc round target "req/s" "p50 ms" "p99 ms" "ttfb p50" "added vs direct p50 / p99 / ttfb ms; cpu/req"
matrix "0ms" "$FAKE_PORT" "$RELAY_PORT" "$ROUTER_PORT" "$fake_pid" "$relay_pid" "$router_pid" "$base_pid" 1 64
matrix "${PACED_MS}ms" "$PACED_FAKE_PORT" "$PACED_RELAY_PORT" "$PACED_ROUTER_PORT" "$paced_fake_pid" "$paced_relay_pid" "$paced_router_pid" "$paced_base_pid" 64
echo
echo "median over $ROUNDS round(s) (added = target - direct of the same round; pace = provider's wait before answering):"
python3 - "$work/rounds" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    pace, mode, conc, rnd, target, js = line.split(" ", 5)
    rows.setdefault((pace, mode, int(conc)), {}).setdefault(int(rnd), {})[target] = json.loads(js)
print(f"{'pace':5} {'mode':5} {'conc':>4} | {'direct req/s':>12} {'router req/s':>12} {'added p50':>10} {'added p99':>10} {'added ttfb':>10} {'cpu/req':>8} | "
      f"{'relay req/s':>11} {'relay cpu':>9} {'cpu ratio':>9} {'relay added p50':>15} {'relay added p99':>15} | {'load cpu':>8}")
for (pace, mode, conc), rounds in rows.items():
    def med(target, key):
        return statistics.median(r[target][key] - r["direct"][key] for r in rounds.values())
    def mid(target, key):
        return statistics.median(r[target][key] or 0 for r in rounds.values())
    ratio = statistics.median(r["router"]["cpu_us_per_req"] / r["relay"]["cpu_us_per_req"]
                              for r in rounds.values() if r["relay"]["cpu_us_per_req"])
    load = statistics.median(r["direct"]["cpu_us_per_req"] + r["direct"]["bench_cpu_us_per_req"] for r in rounds.values())
    print(f"{pace:5} {mode:5} {conc:>4} | {mid('direct','rps'):>12.0f} {mid('router','rps'):>12.0f} {med('router','p50_ms'):>+10.3f} {med('router','p99_ms'):>+10.3f} "
          f"{med('router','ttfb_p50_ms'):>+10.3f} {mid('router','cpu_us_per_req'):>6.1f}us | {mid('relay','rps'):>11.0f} {mid('relay','cpu_us_per_req'):>7.1f}us {ratio:>9.2f} "
          f"{med('relay','p50_ms'):>+15.3f} {med('relay','p99_ms'):>+15.3f} | {load:>6.1f}us")
print("(cpu/req: CPU time per request over the measured window, from /proc/<pid>/stat; cpu ratio: router / relay;")
print(" load cpu: the fake's + llm-bench's per request on the direct run, both on the load core)")
if any("base" in r for rounds in rows.values() for r in rounds.values()):
    print()
    print("against the base router (BENCH_BASE_ROUTER), same rounds; change = router - base, median of the rounds:")
    print(f"{'pace':5} {'mode':5} {'conc':>4} | {'router req/s':>12} {'base req/s':>10} {'router cpu':>10} {'base cpu':>8} {'cpu change':>10} "
          f"{'p50 change':>10} {'p99 change':>10} {'ttfb change':>11}")
    for (pace, mode, conc), rounds in rows.items():
        rs = [r for r in rounds.values() if "base" in r]
        def mid(target, key):
            return statistics.median(r[target][key] for r in rs)
        def change(key):
            return statistics.median(r["router"][key] - r["base"][key] for r in rs)
        cpu = statistics.median(r["router"]["cpu_us_per_req"] / r["base"]["cpu_us_per_req"] - 1
                                for r in rs if r["base"]["cpu_us_per_req"])
        print(f"{pace:5} {mode:5} {conc:>4} | {mid('router','rps'):>12.0f} {mid('base','rps'):>10.0f} {mid('router','cpu_us_per_req'):>8.1f}us "
              f"{mid('base','cpu_us_per_req'):>6.1f}us {cpu*100:>+9.1f}% {change('p50_ms'):>+10.3f} {change('p99_ms'):>+10.3f} {change('ttfb_p50_ms'):>+11.3f}")
PY
# Converted streams: an Ollama / Anthropic client through the router to the same OpenAI-wire
# provider, beside the passthrough (OpenAI client) stream and the direct baseline, same run.
echo
printf '%-22s %4s | %10s %9s %9s %10s | %s\n' "converted stream" conc "req/s" "p50 ms" "p99 ms" "ttfb p50" "added vs direct: p50 / ttfb ms; cpu/req"
for conc in 1 64; do
    d=$(bench "http://127.0.0.1:$FAKE_PORT/v1/chat/completions" "$conc" --stream "$fake_pid")
    for spec in "openai /v1/chat/completions" "ollama /api/chat" "anthropic /v1/messages"; do
        set -- $spec
        r=$(bench "http://127.0.0.1:$ROUTER_PORT$2" "$conc" --stream "$router_pid" --dialect "$1")
        echo "convert $1 c=$conc router $r (direct $d)" >> "$work/raw"
        extra="$(delta "$(field "$r" p50_ms)" "$(field "$d" p50_ms)") / $(delta "$(field "$r" ttfb_p50_ms)" "$(field "$d" ttfb_p50_ms)"); cpu $(field "$r" cpu_us_per_req) us/req"
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
        last_router=$!
        pids+=("$last_router")
        wait_port "$1"
    }
    start_router $((ROUTER_PORT + 10))
    in_process_pid=$last_router
    start_router $((ROUTER_PORT + 11)) LLM_ROUTER_REDIS_HOST=127.0.0.1 LLM_ROUTER_REDIS_PORT="$REDIS_PORT"
    redis_router_pid=$last_router
    sleep 1
    echo
    printf '%-30s %4s | %10s %9s %9s | %s\n' "first_available (json)" conc "req/s" "p50 ms" "p99 ms" "added vs direct p50 / p99 ms"
    d=$(bench "http://127.0.0.1:$FAKE_PORT/v1/chat/completions" 1 "" "$fake_pid")
    for spec in "in-process $((ROUTER_PORT + 10)) $in_process_pid" "redis $((ROUTER_PORT + 11)) $redis_router_pid"; do
        set -- $spec
        r=$(bench "http://127.0.0.1:$2/v1/chat/completions" 1 "" "$3")
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
