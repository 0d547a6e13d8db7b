#!/usr/bin/env bash
# A month's report over N call records (default 3 000 000) on SQLite and
# PostgreSQL (127.0.0.1:5432): benches/report_month.rs, bounded in time.
#
#   scripts/bench-report.sh [CALLS] [--limit SECONDS]
#
# The records are generated once by SQL and kept (the SQLite file under
# $CARGO_TARGET_DIR/bench-report/, the database hgw_bench_report_CALLS); the
# whole run is stopped after --limit seconds (default 1800). Numbers go to
# docs/benchmarks.md by hand.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CALLS=3000000
LIMIT=1800
while (( $# )); do
    case $1 in
        --limit) LIMIT=$2; shift 2 ;;
        *) CALLS=$1; shift ;;
    esac
done
exec timeout "$LIMIT" cargo bench --bench report_month -- "$CALLS"
