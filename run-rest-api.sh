#!/usr/bin/env bash
# Builds the release binary if it is missing or older than the sources, then starts the router.
# Configuration comes from LLM_ROUTER_* variables (see `target/release/llm-router --help`).
set -euo pipefail
cd "$(dirname "$0")"

BIN=target/release/llm-router
if [ ! -x "$BIN" ] || [ -n "$(find src actors/src Cargo.toml Cargo.lock -newer "$BIN" -print -quit 2>/dev/null)" ]; then
    echo "building $BIN ..." >&2
    cargo build --release --locked --bin llm-router
fi
exec "$BIN" "$@"
