#!/usr/bin/env bash
# The one test command, from a fresh clone too: installs what the tests need (Debian packages for
# the programs they start, a pinned Python virtualenv under target/; see scripts/test-env.sh), then
# format, lints, every unit and integration test of the workspace, and the deployment kit check.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== test environment"
# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh
ensure_programs
ensure_venv
echo "   python: $LLM_ROUTER_TEST_PYTHON; $(redis-server --version | cut -d' ' -f1-3)"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== deployment kit (Helm chart, compose, Prometheus, Grafana)"
bash scripts/check-deploy.sh

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
