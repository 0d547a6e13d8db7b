#!/usr/bin/env bash
# Three-party mixer benchmark: how many three-party calls the relay thread (one
# core) mixes with no loss. Runs examples/mix_load.rs (the relay in-process, the
# core's orders for a three-party call, three phones per call on loopback at
# 50 packets/s each) at each size, several times, and prints one JSON line per run
# and the median per size.
#
#   scripts/bench-mix.sh [--calls "100 300 500 800"] [--seconds 10] [--runs 3]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CALLS="100 300 500 800"
SECONDS_EACH=10
RUNS=3
while (( $# )); do
    case $1 in
        --calls) CALLS=$2; shift 2 ;;
        --seconds) SECONDS_EACH=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
cargo build --release --example mix_load >&2
ulimit -n 65536 2>/dev/null || true
for n in $CALLS; do
    OUT=$(mktemp)
    for _ in $(seq 1 "$RUNS"); do
        timeout $((SECONDS_EACH + 60)) target/release/examples/mix_load --calls "$n" --seconds "$SECONDS_EACH" | tee -a "$OUT"
    done
    python3 - "$OUT" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = lambda k: statistics.median(r[k] for r in runs)
print(json.dumps({"median_of": len(runs), "calls": runs[0]["calls"], "loss": med("loss"),
                  "input_loss": med("input_loss"), "relay_cpu_share": med("relay_cpu_share"),
                  "cpu_us_per_mixed_packet": med("cpu_us_per_mixed_packet"),
                  "worst_loss": max(r["loss"] for r in runs)}))
PY
    rm -f "$OUT"
done
