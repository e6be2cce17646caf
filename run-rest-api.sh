#!/usr/bin/env bash
# Builds the release binary if it is missing or older than the sources, then starts the router.
# Configuration comes from LLM_ROUTER_* variables (see `llm-router --help`). The binary is looked
# for where cargo puts it: CARGO_TARGET_DIR or build.target-dir when set, else target/.
set -euo pipefail
cd "$(dirname "$0")"

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
TARGET_DIR="${TARGET_DIR:-${CARGO_TARGET_DIR:-target}}"
BIN="$TARGET_DIR/release/llm-router"
if [ ! -x "$BIN" ] || [ -n "$(find src actors/src Cargo.toml Cargo.lock -newer "$BIN" -print -quit 2>/dev/null)" ]; then
    echo "building $BIN ..." >&2
    cargo build --release --locked --bin llm-router
fi
exec "$BIN" "$@"
