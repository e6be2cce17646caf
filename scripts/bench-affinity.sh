#!/usr/bin/env bash
# Cache-affinity benchmark (benches/affinity.rs): a multi-turn workload over fake replicas with a
# prefix-cache cost model, through router replicas, with cache affinity on vs `balanced` in the
# same run. Arguments go to the bench, e.g.
#   scripts/bench-affinity.sh --sessions 48 --turns 8 --concurrency 16 --replicas 4 --routers 2 \
#       --us-per-token 100 --cache-tokens 12000
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked --bench affinity -- "$@"
