#!/usr/bin/env bash
# Records which functions a running router executes, hottest first, into scripts/symbol-order.txt:
# build.rs hands that list to the linker, which puts those functions together at the start of the
# release binary's code (see build.rs for why). The router runs under valgrind's callgrind from
# startup through the usual traffic against the fake provider (OpenAI chat non-stream and stream at
# concurrency 1 and 64, the Ollama and Anthropic routes, models, health, metrics, a malformed body,
# an unknown model); every function with any executed instruction is listed, by instructions spent
# in it. Needs valgrind and a release build; takes about a minute.
#
#   cargo build --release --bins && scripts/symbol-order.sh && cargo build --release --bins
#
# Re-run it after changing the request path (then rebuild): names that no longer exist are skipped
# by the linker, so a stale list costs only locality, never correctness. The mangled names carry
# the crates' metadata hashes, so the list also goes stale with a new rustc or dependency version.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=target/release
ROUTER=${1:-$BIN/llm-router}
OUT=scripts/symbol-order.txt
FAKE_PORT=19261
PORT=19262
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 did not open" >&2; exit 1
}

"$BIN/fake-llm" --port "$FAKE_PORT" --chunks 16 --workers 1 --fast >/dev/null 2>&1 &
pids+=($!)
cat > "$work/models.json" <<JSON
{"bench": {"fake-model": {"providers": [
   {"id": "fake-1", "api_host": "http://127.0.0.1:$FAKE_PORT", "api_type": "vllm", "model_path": ""}]}},
 "active_models": {"bench": ["fake-model"]}}
JSON
LLM_ROUTER_MODELS_CONFIG="$work/models.json" LLM_ROUTER_SERVER_HOST=127.0.0.1 \
LLM_ROUTER_SERVER_PORT=$PORT LLM_ROUTER_SERVER_WORKERS_COUNT=1 LLM_ROUTER_USE_PROMETHEUS=1 \
    valgrind --tool=callgrind --demangle=no --dump-instr=no \
    --callgrind-out-file="$work/cg.out" "$ROUTER" >/dev/null 2>"$work/valgrind.log" &
router=$!
pids+=("$router")
wait_port "$FAKE_PORT"; wait_port "$PORT"

url=http://127.0.0.1:$PORT
for stream in "" --stream; do
    for c in 1 64; do
        "$BIN/llm-bench" --url "$url/v1/chat/completions" --concurrency "$c" --duration 2 \
            --warmup 0 $stream >/dev/null
    done
done
chat='"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]'
for _ in 1 2 3; do
    curl -sf "$url/api/chat" -d "{$chat, \"stream\": false}" >/dev/null
    curl -sf "$url/api/chat" -d "{$chat}" >/dev/null
    curl -sf "$url/v1/messages" -H 'content-type: application/json' \
        -d "{$chat, \"max_tokens\": 8}" >/dev/null
    curl -sf "$url/v1/models" >/dev/null
    curl -sf "$url/api/tags" >/dev/null
    curl -sf "$url/health" >/dev/null
    curl -sf "$url/metrics" >/dev/null
    curl -s "$url/v1/chat/completions" -d '{"model": ' >/dev/null
    curl -s "$url/v1/chat/completions" -d '{"model": "no-such-model", "messages": []}' >/dev/null
done
kill -INT "$router"
wait "$router" 2>/dev/null || true

python3 - "$(basename "$ROUTER")" "$work"/cg.out* > "$OUT.new" <<'PY'
# Self cost per function of the router's own object, summed over the dump files (callgrind's
# format: "ob=", "fn=" name the current object and function, compressed as "(id) name" once and
# "(id)" after; a cost line right after "calls=" is the callee's inclusive cost, not self cost).
import collections, re, sys

binary, files = sys.argv[1], sys.argv[2:]
cost = collections.Counter()
names = re.compile(r"^(c?ob|c?fn|c?fi|c?fe|fl)=\((\d+)\)(?: (.*))?$")
for path in files:
    objects, functions = {}, {}
    ob = fn = None
    after_calls = False
    for line in open(path, errors="replace"):
        m = names.match(line.rstrip("\n"))
        if m:
            kind, idx, name = m.groups()
            table = objects if kind.endswith("ob") else functions if kind.endswith("fn") else None
            if table is not None and name is not None:
                table[idx] = name
            if kind == "ob":
                ob = objects.get(idx)
            elif kind == "fn":
                fn = functions.get(idx)
            continue
        if line.startswith("calls="):
            after_calls = True
            continue
        if line[:1].isdigit() or line[:1] in "+-*":
            if after_calls:
                after_calls = False
            elif ob and ob.endswith("/" + binary) and fn:
                fields = line.split()
                if len(fields) > 1:
                    cost[re.sub(r"'\d+$", "", fn)] += int(fields[1])
for name, _ in sorted(cost.items(), key=lambda kv: -kv[1]):
    if not name.startswith("0x") and " " not in name:
        print(name)
PY
mv "$OUT.new" "$OUT"
echo "$OUT: $(wc -l < "$OUT") functions"
