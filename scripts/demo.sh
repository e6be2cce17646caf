#!/usr/bin/env bash
# A demo anyone can run, no model server needed: starts fake providers (`fake-llm`) — three
# replicas of one vLLM-type model, an Ollama-type and an Anthropic-type one — and the router in
# front of them with a demo config, then prints the web console's URL. Ctrl-C stops everything.
#
#   scripts/demo.sh                 # console at http://127.0.0.1:8080/ui, no API key needed
#   DEMO_AUTH=1 scripts/demo.sh     # with API keys: prints an admin key to log in with
#   DEMO_PORT=9090 scripts/demo.sh  # another port (the fakes use DEMO_PORT+1 … DEMO_PORT+5)
#
# Things to try: chat with "demo-chat" and press Stop; mask a text with PESEL numbers in the
# Anonymizer; kill one replica (the PIDs are printed) and watch Status and the failover; add a
# model on the Config page and restore the previous version from the history.
# Builds the debug binaries on first use (cargo build). Files go to target/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${DEMO_PORT:-8080}"
DIR="$PWD/target/demo"
mkdir -p "$DIR"
echo "building llm-router and fake-llm (debug) ..." >&2
cargo build --quiet --bin llm-router --bin fake-llm
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
BIN="${TARGET_DIR:-target}/debug"

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# name port: one fake provider, streaming 200 tokens at 25 per second (so Stop has time to act).
fake() {
    "$BIN/fake-llm" --host 127.0.0.1 --port "$2" --name "$1" --chunks 200 --chunk-delay-ms 40 \
        --latency-ms 150 >"$DIR/$1.log" 2>&1 &
    PIDS+=("$!")
    echo "  fake provider $1 on 127.0.0.1:$2 (pid $!)"
}
echo "starting fake providers:"
fake replica-1 $((PORT + 1))
fake replica-2 $((PORT + 2))
fake replica-3 $((PORT + 3))
fake ollama-1 $((PORT + 4))
fake claude-1 $((PORT + 5))

host() { echo "http://127.0.0.1:$1"; }
cat >"$DIR/models-config.json" <<JSON
{
  "demo_models": {
    "demo-chat": {
      "providers": [
        {"id": "replica-1", "api_host": "$(host $((PORT + 1)))", "api_type": "vllm", "api_token": "", "model_path": "", "weight": 1.0},
        {"id": "replica-2", "api_host": "$(host $((PORT + 2)))", "api_type": "vllm", "api_token": "", "model_path": "", "weight": 1.0},
        {"id": "replica-3", "api_host": "$(host $((PORT + 3)))", "api_type": "vllm", "api_token": "", "model_path": "", "weight": 1.0}
      ]
    },
    "demo-ollama": {
      "providers": [
        {"id": "ollama-1", "api_host": "$(host $((PORT + 4)))", "api_type": "ollama", "api_token": "", "model_path": "llama3"}
      ]
    },
    "demo-claude": {
      "providers": [
        {"id": "claude-1", "api_host": "$(host $((PORT + 5)))", "api_type": "anthropic", "api_token": "sk-ant-demo-not-a-real-key", "model_path": "claude-demo"}
      ],
      "fallbacks": ["demo-chat"]
    }
  },
  "active_models": {"demo_models": ["demo-chat", "demo-ollama", "demo-claude"]}
}
JSON

export LLM_ROUTER_SERVER_HOST=127.0.0.1
export LLM_ROUTER_SERVER_PORT="$PORT"
export LLM_ROUTER_MODELS_CONFIG="$DIR/models-config.json"
export LLM_ROUTER_STATE_DIR="$DIR/state"
export LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS=1
export LLM_ROUTER_WEB_CONSOLE=true
KEY=""
if [ "${DEMO_AUTH:-0}" = 1 ]; then
    KEY="sk-demo-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    printf '[{"key_plain": "%s", "key_id": "demo-admin", "policy_name": "admin"}]\n' "$KEY" \
        >"$DIR/keys.json"
    export LLM_ROUTER_AUTH_ENABLED=true
    export LLM_ROUTER_AUTH_MEMORY_SEED_FILE="$DIR/keys.json"
fi
"$BIN/llm-router" >"$DIR/router.log" 2>&1 &
ROUTER=$!
PIDS+=("$ROUTER")
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$ROUTER" 2>/dev/null; then
        echo "the router did not start; see $DIR/router.log:" >&2
        tail -20 "$DIR/router.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo
echo "llm-router is running (log: $DIR/router.log)."
echo "  web console:  http://127.0.0.1:$PORT/ui"
[ -n "$KEY" ] && echo "  admin key:    $KEY"
echo "  API example:  curl -s http://127.0.0.1:$PORT/v1/chat/completions -H 'content-type: application/json' \\"
echo "                  ${KEY:+-H 'authorization: Bearer $KEY' }-d '{\"model\":\"demo-chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"
echo "  stop a replica to watch failover:  kill ${PIDS[0]}"
echo "Ctrl-C stops the demo."
wait "$ROUTER"
