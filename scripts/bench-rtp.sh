#!/usr/bin/env bash
# RTP relay benchmark: hotline-gw's relay and rtpengine (userspace), side by side
# in one run with the same traffic (examples/rtp_load.rs), alternating, on loopback.
#
#   scripts/bench-rtp.sh [--calls "200 500 1000"] [--seconds 10] [--runs 3] [--coalesce-us N]
#                        [--only hotline]
#
# Each run: N calls of G.711 (PCMA, 20 ms, 50 packets/s each way) for S seconds
# after a 2 s warm-up. Prints one JSON line per run (loss, relayed packets/s, the
# relay process's CPU per packet and packets/s per core, transit p50/p99) and a
# median summary per relay and call count. The load generator shares the 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CALLS="200 500 1000"
SECONDS_EACH=10
RUNS=3
COALESCE=
ONLY=
while (( $# )); do
    case $1 in
        --coalesce-us) COALESCE=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --calls) CALLS=$2; shift 2 ;;
        --seconds) SECONDS_EACH=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

cargo build --release --bin hotline-gw --example rtp_load >&2
GW=target/release/hotline-gw
LOAD=target/release/examples/rtp_load
OUT=$(mktemp -d /tmp/bench-rtp.XXXX)
ulimit -n 65536 2>/dev/null || true

# rtpengine below the gateway's lab range (16000-32767) and the kernel's ephemeral ports.
# A fresh rtpengine per run, as for the gateway (its calls and ports start empty).
export RTPE_PORT_MIN=5200 RTPE_PORT_MAX=9999 RTPE_THREADS=${RTPE_THREADS:-2}
GW_PID=
trap 'scripts/rtpengine-ref.sh stop >/dev/null 2>&1 || true; [[ -n $GW_PID ]] && kill $GW_PID 2>/dev/null || true' EXIT

# The lab profile, optionally with the relay's interrupt moderation set.
CONFIG=config/lab.toml
if [[ -n $COALESCE ]]; then
    CONFIG=config/.bench-lab-$$.toml
    { cat config/lab.toml; echo "relay_coalesce_us = $COALESCE"; } >"$CONFIG"
    trap 'rm -f "$CONFIG"; scripts/rtpengine-ref.sh stop >/dev/null 2>&1 || true; [[ -n $GW_PID ]] && kill $GW_PID 2>/dev/null || true' EXIT
fi

SIP=127.0.0.1:15090
HTTP=127.0.0.1:18090
for n in $CALLS; do
    for r in $(seq 1 "$RUNS"); do
        # A fresh gateway per run (lab profile: 12300 → sip:127.0.0.1:5070, the load
        # generator's callee side).
        "$GW" run --config "$CONFIG" --sip-listen $SIP --http-listen $HTTP \
            --database none 2>"$OUT/gw.log" &
        GW_PID=$!
        sleep 1
        timeout $((SECONDS_EACH + 120)) "$LOAD" hotline --gateway $SIP --number 12300 --uas-port 5070 \
            --calls "$n" --seconds "$SECONDS_EACH" --pid $GW_PID | tee -a "$OUT/runs.jsonl"
        kill $GW_PID; wait $GW_PID 2>/dev/null || true
        [[ $ONLY == hotline ]] && continue
        # The same traffic phone to phone: what the load generator adds by itself.
        timeout $((SECONDS_EACH + 60)) "$LOAD" direct --calls "$n" --seconds "$SECONDS_EACH" \
            | tee -a "$OUT/runs.jsonl"
        RTPE_PID=$(scripts/rtpengine-ref.sh start 2>/dev/null)
        timeout $((SECONDS_EACH + 120)) "$LOAD" rtpengine --ng 127.0.0.1:2223 \
            --calls "$n" --seconds "$SECONDS_EACH" --pid "$RTPE_PID" | tee -a "$OUT/runs.jsonl"
        scripts/rtpengine-ref.sh stop >/dev/null 2>&1
    done
done

python3 - "$OUT/runs.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = sorted({(r["calls"], r["relay"]) for r in rows})
print("\ncalls relay      runs  pps      loss      cpu_us/pkt  pps/core  transit p50/p99 us")
med = {}
for calls, relay in keys:
    rs = [r for r in rows if r["calls"] == calls and r["relay"] == relay]
    m = lambda k: statistics.median(r[k] for r in rs)
    if relay == "direct":
        print(f"{calls:5} {relay:10} {len(rs):4}  {m('pps'):7.0f}  {m('loss'):.6f}  {'-':>10}  {'-':>8}  "
              f"{m('transit_us_p50'):.0f}/{m('transit_us_p99'):.0f}")
        continue
    med[(calls, relay)] = m("pps_per_core")
    print(f"{calls:5} {relay:10} {len(rs):4}  {m('pps'):7.0f}  {m('loss'):.6f}  {m('cpu_us_per_packet'):10.2f}  "
          f"{m('pps_per_core'):8.0f}  {m('transit_us_p50'):.0f}/{m('transit_us_p99'):.0f}")
for calls in sorted({c for c, _ in keys}):
    h, e = med.get((calls, "hotline")), med.get((calls, "rtpengine"))
    if h and e:
        print(f"{calls} calls: hotline-gw / rtpengine packets per second per core = {h / e:.2f}")
PY
echo "raw runs: $OUT/runs.jsonl" >&2
