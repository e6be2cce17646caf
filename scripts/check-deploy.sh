#!/usr/bin/env bash
# Validates the operations kit (Helm chart, docker-compose.yml, Prometheus and Grafana files) with
# the pinned Python packages of the test virtualenv; see scripts/check_deploy.py for what it checks.
# `helm` is not packaged for the test machines: scripts/helm_render.py renders the chart instead
# (the subset of Helm's template language the chart uses; anything else is an error).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${LLM_ROUTER_TEST_PYTHON:-}" ]; then
    # Run on its own: prepare the virtualenv as scripts/test.sh does.
    # shellcheck source=scripts/test-env.sh
    source scripts/test-env.sh
    ensure_venv
fi
exec "$LLM_ROUTER_TEST_PYTHON" scripts/check_deploy.py
