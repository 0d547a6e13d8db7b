#!/usr/bin/env bash
# bench-kamailio.sh - one hotline-gw node through Kamailio vs the same node direct.
#
#   direct:   sipp UAC -> hotline-gw 127.0.0.1:5060 -> sipp UAS 127.0.0.1:5070
#   via:      sipp UAC -> Kamailio 127.0.0.1:5090 -> hotline-gw -> sipp UAS
#             (scripts/kamailio-lab.sh, deploy/kamailio/kamailio.cfg)
#
# A driver for scripts/bench-sipp.sh: for each of --runs rounds it runs, one after
# the other on the same machine, alternating which goes first,
#   ceiling  the highest rate with zero failed calls (bench-sipp's rate search,
#            --no-ceiling: no sipp->sipp search), direct and via Kamailio;
#   fixed    one step at --fixed-rate cps for --fixed-secs s (bench-sipp
#            --fixed-rate), direct and via Kamailio: failed calls from sipp's
#            -trace_stat CSVs, the gateway's and Kamailio's CPU per call.
# Every bench-sipp invocation starts a fresh gateway (and Kamailio), runs under
# coreutils `timeout` (--run-timeout), and starts with an empty data/lab.db.
# The medians and ratios are printed at the end and written to OUT/summary.txt.
#
# Options:
#   --gw-bin PATH          gateway binary (env GW_BIN; default target/release/hotline-gw)
#   --runs N               rounds (default 3)
#   --only ceiling|fixed   run one of the two measurements only
#   --only-path direct|via run one of the two paths only (e.g. another
#                          --kamailio-children against an earlier direct run)
#   --start-rate N         first rate of the search (default 2000 cps)
#   --ramp-factor F        search ramp (default 1.5)
#   --precision P          search precision, percent (default 10)
#   --step-secs S          seconds per search step (default 5)
#   --fixed-rate R         fixed rate (default 300 cps)
#   --fixed-secs S         seconds at the fixed rate (default 10)
#   --kamailio-children N  Kamailio UDP workers (default 2, the lab script's)
#   --kamailio-shm MB      Kamailio shared memory (default 256)
#   --ceiling-scenarios tolerant|stock
#   --fixed-scenarios tolerant|stock
#                          sipp scenarios of the two measurements (the same on
#                          both paths). stock = tests/sipp/uac.xml + uas.xml.
#                          tolerant = scripts/sipp/uac_txn.xml (ignores a 180 that
#                          arrives after the 200) + scripts/sipp/uas_bye_before_ack.xml
#                          (takes a BYE that arrives before the ACK). Kamailio's
#                          UDP workers relay back-to-back messages of one call in
#                          either order; real phones cope with both, the stock
#                          scenarios count such calls as failed. Defaults: the
#                          search uses tolerant (else those reorderings, not
#                          capacity, decide where it stops), the fixed rate uses
#                          stock (its failure counts include them; the summary
#                          shows how many were reorderings).
#   --rtp-ports MIN-MAX    gateway RTP range (default 10000-19999, away from the
#                          integration tests' 20000-32287)
#   --max-time S           bench-sipp's own budget per invocation (default 110)
#   --run-timeout S        hard limit per invocation (default 150)
#   --idle-wait S          before each invocation wait up to S s for the machine to
#                          be idle (< 20 % CPU busy over 2 s; default 60, 0 = no wait)
#   --out DIR              output (default a new /tmp/bench-kamailio.* dir)
#   -h, --help             this text
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

GW_BIN=${GW_BIN:-target/release/hotline-gw}
RUNS=3
ONLY=""
ONLY_PATH=""
START_RATE=2000
RAMP_FACTOR=1.5
PRECISION=10
STEP_SECS=5
FIXED_RATE=300
FIXED_SECS=10
KAM_CHILDREN=2
KAM_SHM=256
RTP_PORTS=10000-19999
CEILING_SCEN=tolerant
FIXED_SCEN=stock
MAX_TIME=110
RUN_TIMEOUT=150
IDLE_WAIT=60
OUT=""

die() { echo "bench-kamailio: $*" >&2; exit 2; }
log() { echo "[$(date +%H:%M:%S)] $*"; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d;s/^# \{0,1\}//'; }

while (($#)); do
    case $1 in
        --gw-bin) GW_BIN=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --only-path) ONLY_PATH=${2:?}; shift 2 ;;
        --start-rate) START_RATE=${2:?}; shift 2 ;;
        --ramp-factor) RAMP_FACTOR=${2:?}; shift 2 ;;
        --precision) PRECISION=${2:?}; shift 2 ;;
        --step-secs) STEP_SECS=${2:?}; shift 2 ;;
        --fixed-rate) FIXED_RATE=${2:?}; shift 2 ;;
        --fixed-secs) FIXED_SECS=${2:?}; shift 2 ;;
        --kamailio-children) KAM_CHILDREN=${2:?}; shift 2 ;;
        --kamailio-shm) KAM_SHM=${2:?}; shift 2 ;;
        --rtp-ports) RTP_PORTS=${2:?}; shift 2 ;;
        --ceiling-scenarios) CEILING_SCEN=${2:?}; shift 2 ;;
        --fixed-scenarios) FIXED_SCEN=${2:?}; shift 2 ;;
        --max-time) MAX_TIME=${2:?}; shift 2 ;;
        --run-timeout) RUN_TIMEOUT=${2:?}; shift 2 ;;
        --idle-wait) IDLE_WAIT=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
for v in RUNS START_RATE STEP_SECS FIXED_RATE FIXED_SECS KAM_CHILDREN KAM_SHM MAX_TIME RUN_TIMEOUT IDLE_WAIT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v: non-negative integer expected (got '${!v}')"
done
(( RUNS >= 1 && RUNS <= 9 )) || die "--runs: 1..9"
(( RUN_TIMEOUT > MAX_TIME )) || die "--run-timeout must exceed --max-time"
case $ONLY in ""|ceiling|fixed) ;; *) die "--only: ceiling or fixed" ;; esac
case $ONLY_PATH in ""|direct|via) ;; *) die "--only-path: direct or via" ;; esac
for v in CEILING_SCEN FIXED_SCEN; do
    case ${!v} in tolerant|stock) ;; *) die "scenarios: tolerant or stock (got '${!v}')" ;; esac
done

# Paths given relative to where we were called from; the defaults are relative to the repo.
abspath() { if [[ $1 == /* || ! -e $1 && ! -e $(dirname "$1") ]]; then echo "$1"; else echo "$PWD/$1"; fi; }
GW_BIN=$(abspath "$GW_BIN"); [[ -n $OUT ]] && OUT=$(abspath "$OUT")
cd "$REPO_DIR"
[[ -x $GW_BIN ]] || die "gateway binary '$GW_BIN' not found (cargo build --release, or --gw-bin)"
command -v timeout >/dev/null || die "coreutils timeout not found"
[[ -z $OUT ]] && OUT=$(mktemp -d /tmp/bench-kamailio.XXXXXX)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: >"$OUT/results.txt"

# Percent of both CPUs busy over 2 s, from /proc/stat.
cpu_busy() {
    local a b
    a=$(awk '/^cpu /{ print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat)
    sleep 2
    b=$(awk '/^cpu /{ print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        busy = y[1] - x[1]; idle = y[2] - x[2]; printf "%.0f", (busy + idle) ? 100 * busy / (busy + idle) : 0 }'
}

wait_idle() {
    local t_end=$(( $(date +%s) + IDLE_WAIT )) busy
    while :; do
        busy=$(cpu_busy)
        (( busy < 20 )) && break
        if (( $(date +%s) >= t_end )); then
            log "machine still ${busy}% busy after ${IDLE_WAIT}s; running anyway"
            break
        fi
    done
    BUSY_BEFORE=$busy
}

# Calls hit by reordering in a step directory: late_1xx = a 180/183 that reached the
# caller after its 200 (stock uac.xml aborts on it; uac_txn.xml ignores it silently,
# so "-"), bye_first = a BYE that reached the callee before the ACK (stock uas.xml:
# "unexpected BYE" aborts; uas_bye_before_ack.xml: its 5_BYE_Recv counter).
reorderings() {
    local d=$1 late=- byef=- f
    [[ -d $d ]] || { echo "late_1xx=- bye_first=-"; return; }
    f=$(awk '{ for (i = 1; i < NF; i++) if ($i == "-sf") print $(i + 1) }' "$d/uac.cmd" 2>/dev/null || true)
    if [[ -f $f ]] && ! grep -q 'start_txn' "$f"; then
        late=$(grep -o "received 'SIP/2.0 18[03]" "$d/uac_err.log" 2>/dev/null | wc -l)
    fi
    f=$(ls "$d"/uas*_counts.csv 2>/dev/null | head -n 1 || true)
    if [[ -n $f ]] && head -n 1 "$f" | grep -q '5_BYE_Recv'; then
        byef=$(awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "5_BYE_Recv") k = i; next } NF > 1 { v = $k } END { print v + 0 }' "$f")
    else
        byef=$(grep -o 'unexpected BYE' "$d/uas_err.log" 2>/dev/null | wc -l)
    fi
    echo "late_1xx=$late bye_first=$byef"
}

# one bench-sipp invocation: kind (ceiling|fixed) path (direct|via) round
bench() {
    local kind=$1 path=$2 round=$3 dir rc=0 args
    dir=$OUT/$kind-$path-$round
    args=(--gw-bin "$GW_BIN" --runs 1 --no-ceiling --rtp-ports "$RTP_PORTS" --max-time "$MAX_TIME" --out "$dir")
    local scen=$FIXED_SCEN
    [[ $kind == ceiling ]] && scen=$CEILING_SCEN
    if [[ $scen == tolerant ]]; then
        args+=(--uac-scenario scripts/sipp/uac_txn.xml --uas-scenario scripts/sipp/uas_bye_before_ack.xml)
    fi
    if [[ $kind == ceiling ]]; then
        args+=(--start-rate "$START_RATE" --ramp-factor "$RAMP_FACTOR" --precision "$PRECISION" --step-secs "$STEP_SECS")
    else
        args+=(--fixed-rate "$FIXED_RATE" --step-secs "$FIXED_SECS")
    fi
    if [[ $path == via ]]; then
        args+=(--via-kamailio --kamailio-children "$KAM_CHILDREN" --kamailio-shm "$KAM_SHM")
    fi
    rm -f "$REPO_DIR"/data/lab.db "$REPO_DIR"/data/lab.db-*
    (( IDLE_WAIT > 0 )) && wait_idle || BUSY_BEFORE=-
    log "round $round: $kind $path (machine ${BUSY_BEFORE}% busy before): scripts/bench-sipp.sh ${args[*]}"
    mkdir -p "$dir"
    echo "timeout --kill-after=10 $RUN_TIMEOUT scripts/bench-sipp.sh ${args[*]}" >"$dir/bench.cmd"
    timeout --kill-after=10 "$RUN_TIMEOUT" scripts/bench-sipp.sh "${args[@]}" >"$dir/bench.out" 2>&1 || rc=$?
    grep -E '^\[..:..:..\] (gateway|fixed) ' "$dir/bench.out" | sed 's/^/    /' | cut -c1-230 || true
    # RTP port pairs the gateway could not bind (another program held them): each
    # such call is answered 503, and Kamailio then takes the node out for ~1 s.
    local coll
    coll=$(cat "$dir"/run1/gateway*.log 2>/dev/null | grep -c 'cannot bind an RTP port pair' || true)
    local extra="scenarios=$scen rtp_collisions=${coll:-0}"
    [[ $kind == fixed ]] && extra="$extra $(reorderings "$dir/run1/fixed/r$(printf %06d "$FIXED_RATE")")"
    if [[ -s $dir/results.txt ]]; then
        sed "s/^/kind=$kind path=$path round=$round busy_before=$BUSY_BEFORE rc=$rc $extra /" "$dir/results.txt" >>"$OUT/results.txt"
    else
        echo "kind=$kind path=$path round=$round busy_before=$BUSY_BEFORE rc=$rc no_results=1" >>"$OUT/results.txt"
        log "round $round: $kind $path produced no results (rc=$rc; see $dir/bench.out)"
    fi
}

log "output: $OUT; gateway $GW_BIN; $RUNS round(s); Kamailio $KAM_CHILDREN workers, $KAM_SHM MB"
for (( round = 1; round <= RUNS; round++ )); do
    order=(direct via)
    (( round % 2 == 0 )) && order=(via direct)
    for kind in ceiling fixed; do
        [[ -n $ONLY && $ONLY != "$kind" ]] && continue
        for path in "${order[@]}"; do
            [[ -n $ONLY_PATH && $ONLY_PATH != "$path" ]] && continue
            bench "$kind" "$path" "$round"
        done
    done
done

# ---------------------------------------------------------------------------
# summary from OUT/results.txt (key=value words)
# ---------------------------------------------------------------------------
summarize() {
    awk -v runs="$RUNS" -v fixed="$FIXED_RATE" -v children="$KAM_CHILDREN" '
    function med(list,   n, a, i, j, t) {
        n = split(list, a, " ")
        # keep numbers only
        j = 0; for (i = 1; i <= n; i++) if (a[i] ~ /^[0-9.]+$/) b[++j] = a[i] + 0
        n = j; if (n == 0) return "-"
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
        return (n % 2) ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
    }
    function ratio(x, y) { return (x ~ /^[0-9.]+$/ && y ~ /^[0-9.]+$/ && y + 0 > 0) ? sprintf("%.2f", x / y) : "-" }
    {
        delete f
        for (i = 1; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
        key = f["kind"] SUBSEP f["path"] SUBSEP f["round"]
        for (k in f) R[key, k] = f[k]
        if (f["kind"] == "ceiling") { C[f["path"], "cps"] = C[f["path"], "cps"] " " f["gw_cps"]
            C[f["path"], "gw"] = C[f["path"], "gw"] " " f["gw_cpu_ms"]; C[f["path"], "kam"] = C[f["path"], "kam"] " " f["kam_cpu_ms"] }
        if (f["kind"] == "fixed") { for (k in f) F[f["path"], k] = F[f["path"], k] " " f[k] }
        seen[f["kind"]] = 1
    }
    END {
        if (seen["ceiling"]) {
            print "Highest rate with zero failed calls (bench-sipp rate search), one gateway node:"
            fmt = "%-7s | %10s %12s %5s | %10s %12s %12s %5s | %8s\n"
            printf fmt, "round", "direct cps", "gw CPU/call", "coll", "via cps", "gw CPU/call", "kam CPU/call", "coll", "via/dir"
            for (r = 1; r <= runs; r++) {
                d = R["ceiling", "direct", r, "gw_cps"]; v = R["ceiling", "via", r, "gw_cps"]
                printf fmt, r, d, R["ceiling", "direct", r, "gw_cpu_ms"] " ms", R["ceiling", "direct", r, "rtp_collisions"],
                    v, R["ceiling", "via", r, "gw_cpu_ms"] " ms", R["ceiling", "via", r, "kam_cpu_ms"] " ms",
                    R["ceiling", "via", r, "rtp_collisions"], ratio(v, d)
            }
            md = med(C["direct", "cps"]); mv = med(C["via", "cps"])
            printf fmt, "median", md, med(C["direct", "gw"]) " ms", "", mv,
                med(C["via", "gw"]) " ms", med(C["via", "kam"]) " ms", "", ratio(mv, md)
            print "CPU/call measured at that rate; coll = RTP ports the gateway found taken by another program during"
            print "the search (each gives one 503; through Kamailio it also takes the node out for ~1 s)"
            print ""
        }
        if (seen["fixed"]) {
            printf "Fixed rate %s cps (Kamailio %s workers): failed calls from sipp -trace_stat CSVs, CPU per call:\n", fixed, children
            fmt = "%-6s | %-4s %5s %4s %4s %4s %6s %9s | %-4s %5s %4s %4s %4s %6s %9s %9s %9s\n"
            printf fmt, "round", "dir", "fail", "uas", "late", "bye1", "setup", "gw ms", "via", "fail", "uas", "late", "bye1", "setup", "gw ms", "kam ms", "gw+kam"
            for (r = 1; r <= runs; r++) {
                g = R["fixed", "via", r, "gw_cpu_ms"]; k = R["fixed", "via", r, "kam_cpu_ms"]
                s = (g ~ /^[0-9.]+$/ && k ~ /^[0-9.]+$/) ? sprintf("%.3f", g + k) : "-"
                S = S " " s
                printf fmt, r,
                    R["fixed", "direct", r, "verdict"], R["fixed", "direct", r, "fail"], R["fixed", "direct", r, "uas_fail"],
                    R["fixed", "direct", r, "late_1xx"], R["fixed", "direct", r, "bye_first"],
                    R["fixed", "direct", r, "setup_ms"], R["fixed", "direct", r, "gw_cpu_ms"],
                    R["fixed", "via", r, "verdict"], R["fixed", "via", r, "fail"], R["fixed", "via", r, "uas_fail"],
                    R["fixed", "via", r, "late_1xx"], R["fixed", "via", r, "bye_first"],
                    R["fixed", "via", r, "setup_ms"], g, k, s
            }
            dg = med(F["direct", "gw_cpu_ms"]); vg = med(F["via", "gw_cpu_ms"]); vk = med(F["via", "kam_cpu_ms"]); vs = med(S)
            printf fmt, "median", "", med(F["direct", "fail"]), med(F["direct", "uas_fail"]), med(F["direct", "late_1xx"]),
                med(F["direct", "bye_first"]), med(F["direct", "setup_ms"]), dg, "",
                med(F["via", "fail"]), med(F["via", "uas_fail"]), med(F["via", "late_1xx"]), med(F["via", "bye_first"]),
                med(F["via", "setup_ms"]), vg, vk, vs
            print "fail/uas = FailedCall(C) of the caller / callee sipp; late = 180 after the 200 at the caller, bye1 = BYE"
            print "before ACK at the callee (both: reordering; counted in fail/uas with the stock scenarios); setup in ms;"
            print "gw ms, kam ms = CPU ms per call (utime+stime from /proc; Kamailio: all its processes)"
            cl = ""
            for (r = 1; r <= runs; r++) cl = cl sprintf(" %s/%s", R["fixed", "direct", r, "rtp_collisions"], R["fixed", "via", r, "rtp_collisions"])
            print "RTP ports found taken by another program, direct/via per round:" cl
            printf "ratios (medians): gw CPU/call via/direct %s; (gw+kam)/direct gw %s; kam/gw (via) %s\n",
                ratio(vg, dg), ratio(vs, dg), ratio(vk, vg)
        }
    }' "$OUT/results.txt"
}
{
    echo
    echo "================ bench-kamailio summary ($(nproc) CPUs; $(kamailio -v 2>/dev/null | head -n 1 | sed 's/^version: //'); $(date -Is)) ================"
    summarize
    echo "per-invocation logs: $OUT/{ceiling,fixed}-{direct,via}-ROUND/ (bench.cmd, bench.out, steps.log); raw: $OUT/results.txt"
} | tee "$OUT/summary.txt"
