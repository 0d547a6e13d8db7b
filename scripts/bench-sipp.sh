#!/usr/bin/env bash
# bench-sipp.sh - call-rate and held-call memory benchmark for hotline-gw, driven by sipp.
#
#   sipp UAC (tests/sipp/uac.xml) -> hotline-gw 127.0.0.1:5060 -> sipp UAS (tests/sipp/uas.xml) 127.0.0.1:5070
#
# With --via-kamailio the UAC calls Kamailio (scripts/kamailio-lab.sh, 127.0.0.1:5090),
# which relays to the gateway and stays in the path of the caller's leg:
#
#   sipp UAC -> Kamailio 127.0.0.1:5090 -> hotline-gw 127.0.0.1:5060 -> sipp UAS 127.0.0.1:5070
#
# Run `scripts/bench-sipp.sh --help` for the options. The script builds nothing:
# point GW_BIN (or --gw-bin) at an existing binary, e.g. after `cargo build --release`.
set -euo pipefail

# ---------------------------------------------------------------------------
# defaults
# ---------------------------------------------------------------------------
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

GW_BIN=${GW_BIN:-target/release/hotline-gw}
GW_CONFIG=config/lab.toml
GW_EXTRA_ARGS=()
ATTACH_PID=""
SIPP=${SIPP:-sipp}
SCEN_DIR=tests/sipp
IP=127.0.0.1
GW_PORT=5060
UAS_PORT=5070
UAC_PORT=5080
NUMBER=12300
QUEUE_NUMBER=""
TRANSPORT=u1
START_RATE=200
MAX_RATE=20000
RAMP_FACTOR=2
PRECISION_PCT=5
STEP_SECS=5
MAX_STEP_CALLS=200000
TALK_MS=0
MAX_RETRANS_PCT=1
MAX_SETUP_MS=250
MAX_TIME=600
RUNS=1
COOLDOWN=2
FAIL_SETTLE=40
UAS_GRACE=5
DO_CEILING=1
DO_GATEWAY=1
HOLD_N=0
HOLD_RATE=200
HOLD_SETTLE=5
OUT_DIR=""
TRACE_MSG=0
BUFF_SIZE=4194304
FIXED_RATE=0
VIA_KAM=0
KAM_PORT=5090
KAM_CHILDREN=2
KAM_SHM=256
KAM_LAB=scripts/kamailio-lab.sh
RTP_PORTS=""
UAC_SCENARIO=""
UAS_SCENARIO=""

usage() {
    cat <<EOF
Usage: scripts/bench-sipp.sh [options]

Rate mode (default): for each run, find the highest call rate with zero failed
calls, first sipp UAC -> sipp UAS directly (the harness ceiling on this machine),
then sipp UAC -> hotline-gw -> sipp UAS. Each step places rate x --step-secs short
calls over UDP; the rate ramps up by --ramp-factor until a step fails, then a
binary search narrows the gap to --precision percent. A step passes when:
  * the UAC stat CSV shows SuccessfulCall(C) = calls placed and FailedCall(C) = 0,
  * the UAS stat CSV shows FailedCall(C) = 0 and the UAS finished all its calls,
  * UAC + UAS retransmissions <= --max-retrans-pct percent of the calls,
  * the mean call-setup time (INVITE -> 200 at the UAC) is <= --max-setup-ms,
  * the UAC kept pace: all calls were placed within 3 % (+0.25 s) of the planned time.
Each step line also shows udpdrops: the system-wide growth of RcvbufErrors in
/proc/net/snmp (datagrams lost to full socket buffers) during the step.
Reported per run: sustained cps, the gateway's CPU time per call at that rate
(utime+stime from /proc/PID/stat, before/after the step, divided by the calls)
and its share of one core, the mean call-setup time, and the sipp CPU per call.

Hold mode (--hold N): start N calls at --hold-rate cps, keep them all up for
--hold-settle seconds, and print the gateway's VmRSS (from /proc/PID/status)
before, with the N calls held, and after they hung up, plus KiB per held call.
The lab profile anchors at most 4,192 calls (its RTP range fits an open-file
limit of 20,000; see config/lab.toml): more held calls get 503 unless the range
is widened on a machine with a higher hard limit.

Fixed-rate mode (--fixed-rate R): no search; each run starts a fresh gateway and
places R x --step-secs calls at R cps in one step, to the end even when calls fail
(no early stop), and reports the failed calls (sipp's -trace_stat CSVs), the
retransmissions, the setup time and the CPU per call, pass or fail. Implies
--no-ceiling.

With --runs K (rate, fixed or hold) every run starts a fresh gateway; the summary
table shows each run and the median.

Through Kamailio (--via-kamailio): every time a gateway is started, $KAM_LAB
starts Kamailio (deploy/kamailio/kamailio.cfg) on --kamailio-port in front of
it, and the UAC calls Kamailio instead of the gateway (the gateway's leg to the UAS
is direct, as the lab dialplan routes 12300/12345 to 127.0.0.1:--uas-port).
Kamailio relays from 127.0.0.1, which the lab dialplan trusts as a trunk. Each step
then also shows Kamailio's CPU per call and share of one core: utime+stime of its
main process and all its children (workers, timers) from /proc, before and after
the step. Kamailio is restarted with the gateway (after a failed step) and stopped
(SIGTERM to the lab script) at the end, on error and on Ctrl-C.

Gateway:
  --gw-bin PATH          binary (env GW_BIN; default $GW_BIN)
  --config PATH          started as: GW_BIN run --config PATH  (default $GW_CONFIG)
  --gw-arg ARG           extra argument for 'GW_BIN run' (repeatable)
  --rtp-ports MIN-MAX    run the gateway on a copy of --config (written to the output
                         dir, its "../" and "./" paths made absolute) whose [media]
                         rtp_port_min/rtp_port_max are MIN/MAX: keeps the relay's
                         ports away from other programs on a shared machine (the
                         integration tests' gateways take 20000-32287; a port
                         someone else holds makes the gateway answer 503)
  --attach PID           use an already running gateway instead of starting one
  --no-gateway, --ceiling-only
                         only measure sipp -> sipp (no gateway needed)
  --no-ceiling           skip the sipp -> sipp measurement
Kamailio in front (see above):
  --via-kamailio         start Kamailio in front of the gateway; the UAC calls it
  --kamailio-port N      its UDP/TCP port on --ip (default $KAM_PORT)
  --kamailio-children N  its UDP (and TCP) worker processes (default $KAM_CHILDREN,
                         the lab script's default)
  --kamailio-shm MB      its shared memory (default $KAM_SHM, as the systemd unit). Short
                         calls hold ~0.15 MB per cps (kamshm= on each step line shows
                         the peak): 256 MB lasts to ~1,700 cps (measured), 1024 to ~6,000 (estimate)
  --kamailio-lab PATH    the lab script (default $KAM_LAB)
Addresses (loopback only; --gw-port must match what the config listens on, and
the config must route --number to 127.0.0.1:--uas-port):
  --ip ADDR              default $IP (must be a loopback address)
  --gw-port N            default $GW_PORT
  --uas-port N           default $UAS_PORT
  --uac-port N           default $UAC_PORT
  --number N             called number, sipp -s (default $NUMBER: the lab's plain B2BUA line)
  --queue-number N       also search the rate for N in the same run, e.g. 12345 (the lab's
                         ACD queue of static seats), and print it beside the plain figure
  --transport T          sipp -t value: u1 (default), t1 or tn
Rate search:
  --start-rate N         first step (default $START_RATE cps)
  --max-rate N           stop ramping here (default $MAX_RATE cps)
  --ramp-factor F        multiply the rate by F while steps pass (default $RAMP_FACTOR)
  --precision P          stop when fail-pass <= P % of pass (default $PRECISION_PCT)
  --step-secs S          seconds of calls per step, 1..50 (default $STEP_SECS)
  --max-step-calls N     cap on calls per step (default $MAX_STEP_CALLS)
  --talk-ms MS           call duration after ACK, sipp -d (default $TALK_MS)
  --max-retrans-pct P    allowed retransmissions, percent of calls (default $MAX_RETRANS_PCT)
  --max-setup-ms MS      allowed mean INVITE->200 time at the UAC (default $MAX_SETUP_MS ms;
                         SIP T1 is 500 ms, so slower answers mean queues are growing)
  --cooldown S           pause between steps (default $COOLDOWN s)
  --fixed-rate R         fixed-rate mode: one step of R cps per run (see above)
  --fail-settle S        with --attach: after a failed step, wait up to S s for the
                         gateway to go idle before the next one (default $FAIL_SETTLE s;
                         a gateway started by this script is restarted instead)
Hold mode:
  --hold N               hold N concurrent calls (enables hold mode)
  --hold-rate N          call rate while building up the held calls (default $HOLD_RATE)
  --hold-settle S        seconds to wait once all N calls are placed, before sampling
                         the RSS (default $HOLD_SETTLE)
General:
  --runs K               repeat K times and report the median (default $RUNS)
  --max-time S           wall-clock budget for everything (default $MAX_TIME s)
  --out DIR              keep logs and CSVs here (default: a new /tmp/hotline-bench.* dir)
  --trace-msg            also keep sipp message traces (large at high rates)
  --sipp PATH            sipp binary (env SIPP; default $SIPP)
  --scenarios DIR        scenario directory (default $SCEN_DIR)
  --uac-scenario FILE    caller scenario instead of DIR/uac.xml, e.g. scripts/sipp/uac_txn.xml
                         (ignores a 180 that a multi-worker proxy relays after the 200)
  --uas-scenario FILE    callee scenario instead of DIR/uas.xml, e.g.
                         scripts/sipp/uas_bye_before_ack.xml
  -h, --help             this text

Examples:
  scripts/bench-sipp.sh --ceiling-only
  GW_BIN=target/release/hotline-gw scripts/bench-sipp.sh --runs 3
  scripts/bench-sipp.sh --hold 5000 --hold-rate 300
  scripts/bench-sipp.sh --no-ceiling --via-kamailio --start-rate 1500
  scripts/bench-sipp.sh --fixed-rate 300 --step-secs 10 --via-kamailio
  (scripts/bench-kamailio.sh alternates direct and via-Kamailio runs of both)
EOF
}

die() { echo "bench-sipp: error: $*" >&2; exit 2; }
log() { echo "[$(date +%H:%M:%S)] $*"; }

need_arg() { [[ $# -ge 2 && -n $2 ]] || die "option $1 needs a value"; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }

while [[ $# -gt 0 ]]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --gw-bin) need_arg "$@"; GW_BIN=$2; shift 2 ;;
        --config) need_arg "$@"; GW_CONFIG=$2; shift 2 ;;
        --gw-arg) need_arg "$@"; GW_EXTRA_ARGS+=("$2"); shift 2 ;;
        --rtp-ports) need_arg "$@"; RTP_PORTS=$2; shift 2 ;;
        --attach) need_arg "$@"; ATTACH_PID=$2; shift 2 ;;
        --no-gateway|--ceiling-only) DO_GATEWAY=0; shift ;;
        --no-ceiling) DO_CEILING=0; shift ;;
        --ip) need_arg "$@"; IP=$2; shift 2 ;;
        --gw-port) need_arg "$@"; GW_PORT=$2; shift 2 ;;
        --uas-port) need_arg "$@"; UAS_PORT=$2; shift 2 ;;
        --uac-port) need_arg "$@"; UAC_PORT=$2; shift 2 ;;
        --number) need_arg "$@"; NUMBER=$2; shift 2 ;;
        --queue-number) need_arg "$@"; QUEUE_NUMBER=$2; shift 2 ;;
        --transport) need_arg "$@"; TRANSPORT=$2; shift 2 ;;
        --start-rate) need_arg "$@"; START_RATE=$2; shift 2 ;;
        --max-rate) need_arg "$@"; MAX_RATE=$2; shift 2 ;;
        --ramp-factor) need_arg "$@"; RAMP_FACTOR=$2; shift 2 ;;
        --precision) need_arg "$@"; PRECISION_PCT=$2; shift 2 ;;
        --step-secs) need_arg "$@"; STEP_SECS=$2; shift 2 ;;
        --max-step-calls) need_arg "$@"; MAX_STEP_CALLS=$2; shift 2 ;;
        --talk-ms) need_arg "$@"; TALK_MS=$2; shift 2 ;;
        --max-retrans-pct) need_arg "$@"; MAX_RETRANS_PCT=$2; shift 2 ;;
        --max-setup-ms) need_arg "$@"; MAX_SETUP_MS=$2; shift 2 ;;
        --cooldown) need_arg "$@"; COOLDOWN=$2; shift 2 ;;
        --fail-settle) need_arg "$@"; FAIL_SETTLE=$2; shift 2 ;;
        --hold) need_arg "$@"; HOLD_N=$2; shift 2 ;;
        --hold-rate) need_arg "$@"; HOLD_RATE=$2; shift 2 ;;
        --hold-settle) need_arg "$@"; HOLD_SETTLE=$2; shift 2 ;;
        --runs) need_arg "$@"; RUNS=$2; shift 2 ;;
        --max-time) need_arg "$@"; MAX_TIME=$2; shift 2 ;;
        --out) need_arg "$@"; OUT_DIR=$2; shift 2 ;;
        --trace-msg) TRACE_MSG=1; shift ;;
        --sipp) need_arg "$@"; SIPP=$2; shift 2 ;;
        --scenarios) need_arg "$@"; SCEN_DIR=$2; shift 2 ;;
        --uac-scenario) need_arg "$@"; UAC_SCENARIO=$2; shift 2 ;;
        --uas-scenario) need_arg "$@"; UAS_SCENARIO=$2; shift 2 ;;
        --fixed-rate) need_arg "$@"; FIXED_RATE=$2; shift 2 ;;
        --via-kamailio) VIA_KAM=1; shift ;;
        --kamailio-port) need_arg "$@"; KAM_PORT=$2; shift 2 ;;
        --kamailio-children) need_arg "$@"; KAM_CHILDREN=$2; shift 2 ;;
        --kamailio-shm) need_arg "$@"; KAM_SHM=$2; shift 2 ;;
        --kamailio-lab) need_arg "$@"; KAM_LAB=$2; shift 2 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
done

# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------
for v in GW_PORT UAS_PORT UAC_PORT MAX_SETUP_MS START_RATE MAX_RATE STEP_SECS MAX_STEP_CALLS TALK_MS \
         COOLDOWN FAIL_SETTLE HOLD_N HOLD_RATE HOLD_SETTLE RUNS MAX_TIME UAS_GRACE FIXED_RATE \
         KAM_PORT KAM_CHILDREN KAM_SHM; do
    is_uint "${!v}" || die "$v must be a non-negative integer (got '${!v}')"
done
for v in RAMP_FACTOR PRECISION_PCT MAX_RETRANS_PCT; do
    is_num "${!v}" || die "$v must be a number (got '${!v}')"
done
[[ -n $ATTACH_PID ]] && { is_uint "$ATTACH_PID" || die "--attach needs a PID"; }
[[ $IP =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--ip must be a 127.x.y.z loopback address"
[[ $TRANSPORT =~ ^(u1|t1|tn)$ ]] || die "--transport must be u1, t1 or tn"
(( STEP_SECS >= 1 && STEP_SECS <= 50 )) || die "--step-secs must be 1..50"
(( START_RATE >= 1 )) || die "--start-rate must be >= 1"
(( MAX_RATE >= START_RATE )) || die "--max-rate must be >= --start-rate"
(( RUNS >= 1 && RUNS <= 9 )) || die "--runs must be 1..9"
(( MAX_TIME >= 30 )) || die "--max-time must be >= 30 s"
(( HOLD_RATE >= 1 )) || die "--hold-rate must be >= 1"
awk -v f="$RAMP_FACTOR" 'BEGIN{exit !(f > 1.05)}' || die "--ramp-factor must be > 1.05"
for p in GW_PORT UAS_PORT UAC_PORT; do
    (( ${!p} >= 1 && ${!p} <= 65535 )) || die "$p out of range"
done
[[ $GW_PORT != "$UAS_PORT" && $GW_PORT != "$UAC_PORT" && $UAS_PORT != "$UAC_PORT" ]] ||
    die "--gw-port, --uas-port and --uac-port must differ"
if (( VIA_KAM )); then
    (( KAM_PORT >= 1 && KAM_PORT <= 65535 )) || die "--kamailio-port out of range"
    [[ $KAM_PORT != "$GW_PORT" && $KAM_PORT != "$UAS_PORT" && $KAM_PORT != "$UAC_PORT" ]] ||
        die "--kamailio-port must differ from --gw-port, --uas-port and --uac-port"
    (( KAM_CHILDREN >= 1 && KAM_CHILDREN <= 64 )) || die "--kamailio-children must be 1..64"
    (( KAM_SHM >= 16 )) || die "--kamailio-shm must be >= 16 MB"
fi

cd "$REPO_DIR"
command -v timeout >/dev/null || die "coreutils 'timeout' not found"
command -v "$SIPP" >/dev/null || die "sipp not found ('$SIPP'); install it (apt-get install sip-tester) or pass --sipp"
for f in uac.xml uas.xml; do
    [[ -f $SCEN_DIR/$f ]] || die "missing scenario $SCEN_DIR/$f"
done
UAC_XML=$(cd "$SCEN_DIR" && pwd)/uac.xml
UAS_XML=$(cd "$SCEN_DIR" && pwd)/uas.xml
if [[ -n $UAC_SCENARIO ]]; then
    [[ -f $UAC_SCENARIO ]] || die "missing scenario $UAC_SCENARIO"
    UAC_XML=$(cd "$(dirname "$UAC_SCENARIO")" && pwd)/$(basename "$UAC_SCENARIO")
fi
if [[ -n $UAS_SCENARIO ]]; then
    [[ -f $UAS_SCENARIO ]] || die "missing scenario $UAS_SCENARIO"
    UAS_XML=$(cd "$(dirname "$UAS_SCENARIO")" && pwd)/$(basename "$UAS_SCENARIO")
fi

if (( HOLD_N > 0 )); then
    MODE=hold
    (( DO_GATEWAY )) || die "--hold measures the gateway; it cannot be combined with --ceiling-only"
    (( FIXED_RATE == 0 )) || die "--hold and --fixed-rate exclude each other"
elif (( FIXED_RATE > 0 )); then
    MODE=fixed
    (( DO_GATEWAY )) || die "--fixed-rate measures the gateway; it cannot be combined with --ceiling-only"
    [[ -z $QUEUE_NUMBER ]] || die "--fixed-rate and --queue-number exclude each other (use --number)"
    DO_CEILING=0
else
    MODE=rate
    (( DO_GATEWAY || DO_CEILING )) || die "nothing to do: both --no-ceiling and --ceiling-only given"
fi

if (( DO_GATEWAY )) && [[ -z $ATTACH_PID ]]; then
    [[ -x $GW_BIN ]] || die "gateway binary '$GW_BIN' not found or not executable (build it first, e.g. cargo build --release, or set GW_BIN)"
    [[ -f $GW_CONFIG ]] || die "gateway config '$GW_CONFIG' not found"
fi
if [[ -n $ATTACH_PID ]]; then
    [[ -r /proc/$ATTACH_PID/stat ]] || die "--attach $ATTACH_PID: no such process"
fi
if (( VIA_KAM )); then
    (( DO_GATEWAY )) || die "--via-kamailio needs the gateway (not --ceiling-only)"
    [[ -x $KAM_LAB ]] || die "Kamailio lab script '$KAM_LAB' not found or not executable"
    command -v kamailio >/dev/null || [[ -x /usr/sbin/kamailio || -n ${KAMAILIO:-} ]] ||
        die "kamailio not found (install kamailio 5.6, or set KAMAILIO)"
    KAM_LAB=$(cd "$(dirname "$KAM_LAB")" && pwd)/$(basename "$KAM_LAB")
fi
if [[ -n $RTP_PORTS ]]; then
    [[ $RTP_PORTS =~ ^([0-9]+)-([0-9]+)$ ]] || die "--rtp-ports needs MIN-MAX, e.g. 10000-19999"
    (( BASH_REMATCH[1] >= 1024 && BASH_REMATCH[2] > BASH_REMATCH[1] + 7 && BASH_REMATCH[2] <= 65535 )) ||
        die "--rtp-ports: need 1024 <= MIN < MAX - 7 <= 65528"
    [[ -z $ATTACH_PID ]] || die "--rtp-ports cannot change an --attach'ed gateway"
fi
# Where the UAC sends its calls when the gateway is measured.
SUT_PORT=$GW_PORT
(( VIA_KAM )) && SUT_PORT=$KAM_PORT

if [[ -z $OUT_DIR ]]; then
    OUT_DIR=$(mktemp -d /tmp/hotline-bench.XXXXXX)
else
    mkdir -p "$OUT_DIR"
fi
OUT_DIR=$(cd "$OUT_DIR" && pwd)
CLK_TCK=$(getconf CLK_TCK)

if [[ -n $RTP_PORTS ]] && (( DO_GATEWAY )); then
    # Derived config: same file, relative paths anchored to the original's directory,
    # the [media] port range replaced (or added if the file has none).
    cfg_dir=$(cd "$(dirname "$GW_CONFIG")" && pwd)
    derived=$OUT_DIR/gateway-rtp-$RTP_PORTS.toml
    awk -v dir="$cfg_dir" -v lo="${RTP_PORTS%-*}" -v hi="${RTP_PORTS#*-}" '
        function anchor(line,   out) {
            gsub(/"\.\.\//, "\"" dir "/../", line); gsub(/"\.\//, "\"" dir "/", line)
            gsub(/"sqlite:\.\.\//, "\"sqlite:" dir "/../", line); gsub(/"sqlite:\.\//, "\"sqlite:" dir "/", line)
            return line
        }
        /^[ \t]*\[/ { if (sect == "media" && !done) { print "rtp_port_min = " lo; print "rtp_port_max = " hi; done = 1 }
                      sect = $0; gsub(/[][ \t]/, "", sect) }
        sect == "media" && /^[ \t]*rtp_port_(min|max)[ \t]*=/ {
            if (!done) { print "rtp_port_min = " lo; print "rtp_port_max = " hi; done = 1 }
            next }
        { print anchor($0) }
        END { if (!done) { if (sect != "media") print "[media]"; print "rtp_port_min = " lo; print "rtp_port_max = " hi } }
    ' "$GW_CONFIG" >"$derived"
    GW_CONFIG=$derived
fi
T_START=$(date +%s)
DEADLINE=$(( T_START + MAX_TIME ))

# ---------------------------------------------------------------------------
# process bookkeeping and cleanup
# ---------------------------------------------------------------------------
declare -a KILL_PIDS=()   # PIDs (our own children) to stop on exit
GW_WRAPPER_PID=""         # `timeout` wrapping the gateway we started
GW_PID=""                 # the gateway itself (for /proc)
GW_RUN_DIR=""             # where its logs go
GW_STARTS=0
GW_LOG=""
KAM_WRAPPER_PID=""        # `timeout` wrapping kamailio-lab.sh
KAM_PID=""                # Kamailio's main process (its pid file)
KAM_STARTS=0
KAM_LOG=""
KAM_CTL=""                # its binrpc socket, for kamcmd

# Stop one of our background jobs. Each job is `timeout ... sipp|gateway`, so PID is
# the `timeout` and its child is the real process: TERM the wrapper (timeout forwards
# it), and if the child is still there after the grace period (sipp can take long to
# quit when overloaded) KILL the child by its PID, then the wrapper.
stop_pid() { # pid [grace-seconds]
    local pid=$1 grace=${2:-3} i kids k
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kids=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < grace * 10; i++ )); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
        sleep 0.2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for k in $kids; do   # never leave an orphan behind
        if kill -0 "$k" 2>/dev/null; then kill -KILL "$k" 2>/dev/null || true; fi
    done
}

forget_pid() {
    local p keep=()
    for p in "${KILL_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    KILL_PIDS=("${keep[@]}")
}

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${KILL_PIDS[@]}"; do stop_pid "$p" 2; done
    if [[ -n $KAM_WRAPPER_PID ]]; then stop_pid "$KAM_WRAPPER_PID" 5; fi
    if [[ -n $GW_WRAPPER_PID ]]; then stop_pid "$GW_WRAPPER_PID" 5; fi
    rm -f "${OUT_DIR:-/nonexistent}/.times"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
now() { date +%s.%N; }
remaining() { echo $(( DEADLINE - $(date +%s) )); }

udp_or_tcp_bound() { # port -> 0 if something listens on IP:port (udp or tcp)
    local out
    out=$(ss -Hlnu "sport = :$1" 2>/dev/null; ss -Hlnt "sport = :$1" 2>/dev/null) || true
    [[ -n $out ]]
}

# Value of column $2 in the last data row of sipp CSV $1 (';'-separated, header row first).
csv_last() {
    awk -F';' -v c="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
        NF > 1  { v = $k }
        END     { if (!k) exit 3; print v }' "$1"
}
# sipp timestamps look like "2026-11-27<TAB>03:19:03.218621<TAB>1795749543.218621"
csv_epoch() { csv_last "$1" "$2" | awk -F'\t' '{print $NF}'; }
# sipp durations look like "HH:MM:SS:usec"; prints milliseconds
csv_ms() { csv_last "$1" "$2" | awk -F: '{ printf "%.1f", ($1*3600 + $2*60 + $3) * 1000 + $4 / 1000 }'; }
# non-zero Failed* counters of the last row, as "Name=N ..."
csv_fail_detail() {
    awk -F';' '
        NR == 1 { for (i = 1; i <= NF; i++) h[i] = $i; n = NF; next }
        NF > 1  { for (i = 1; i <= n; i++) v[i] = $i }
        END {
            s = ""
            for (i = 1; i <= n; i++)
                if (h[i] ~ /^Failed.+\(C\)$/ && h[i] != "FailedCall(C)" && v[i] + 0 > 0)
                    s = s sprintf("%s%s=%s", s == "" ? "" : ",", substr(h[i], 7, length(h[i]) - 9), v[i])
            print s
        }' "$1"
}

proc_cpu_ticks() { # pid -> utime+stime in clock ticks
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    # the comm field may contain spaces: cut everything up to the last ')'
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"   # fields 14 and 15 of the full line
}
# System-wide count of UDP datagrams dropped because a socket buffer was full.
udp_rcvbuf_errors() {
    awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") k = i; h = 1 } else if (k) print $k }' \
        /proc/net/snmp 2>/dev/null || true
}
proc_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# user+sys seconds of all reaped children of this shell (sipp, timeout, awk, ...) -> $KIDS_CPU.
# `times` must run in this shell, not in a $(...) subshell, hence the file.
children_cpu() {
    times >"$OUT_DIR/.times"
    KIDS_CPU=$(awk 'NR == 2 {
        split($1, u, /[ms]/); split($2, s, /[ms]/)
        printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$OUT_DIR/.times")
}

median() { # numbers on stdin (one per line, "-" ignored) -> median or "-"
    { grep -E '^[0-9.]+$' || true; } | sort -g | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else printf "%g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

fcalc() { awk "BEGIN { printf \"$1\", $2 }"; }

sipp_common_args() { # -> SIPP_COMMON array
    SIPP_COMMON=(-i "$IP" -t "$TRANSPORT" -buff_size "$BUFF_SIZE" -nostdin
                 -trace_stat -fd 1 -trace_err -trace_counts)
    if [[ $TRANSPORT == tn ]]; then SIPP_COMMON+=(-max_socket 10000); fi
}

# ---------------------------------------------------------------------------
# gateway lifecycle
# ---------------------------------------------------------------------------
start_gateway() { # run-dir
    local dir=$1 i
    if [[ -n $ATTACH_PID ]]; then
        GW_PID=$ATTACH_PID
        kill -0 "$GW_PID" 2>/dev/null || die "attached gateway $GW_PID is gone"
        return 0
    fi
    for (( i = 0; i < 30; i++ )); do   # a gateway we just stopped may take a moment to release it
        udp_or_tcp_bound "$GW_PORT" || break
        sleep 0.1
    done
    if udp_or_tcp_bound "$GW_PORT"; then
        die "port $GW_PORT is already in use (another gateway running?); stop it or use --attach PID"
    fi
    local cmd=("$GW_BIN" run --config "$GW_CONFIG" "${GW_EXTRA_ARGS[@]}")
    GW_RUN_DIR=$dir
    GW_STARTS=$(( GW_STARTS + 1 ))
    GW_LOG=$dir/gateway.log
    (( GW_STARTS > 1 )) && GW_LOG=$dir/gateway.$GW_STARTS.log
    echo "${cmd[*]}" >"$dir/gateway.cmd"
    log "starting gateway: ${cmd[*]} (log: $GW_LOG)"
    # timeout only as a safety net should this script be killed with SIGKILL.
    timeout --kill-after=5 $(( MAX_TIME + 300 )) "${cmd[@]}" >"$GW_LOG" 2>&1 &
    GW_WRAPPER_PID=$!
    GW_PID=""
    for (( i = 0; i < 150; i++ )); do   # up to 15 s
        if ! kill -0 "$GW_WRAPPER_PID" 2>/dev/null; then
            tail -n 30 "$GW_LOG" >&2 || true
            die "gateway exited during start-up (log: $GW_LOG)"
        fi
        [[ -z $GW_PID ]] && GW_PID=$(pgrep -P "$GW_WRAPPER_PID" | head -n 1 || true)
        if [[ -n $GW_PID ]] && udp_or_tcp_bound "$GW_PORT"; then
            log "gateway up: pid $GW_PID, listening on $IP:$GW_PORT"
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$GW_LOG" >&2 || true
    die "gateway did not listen on port $GW_PORT within 15 s (log: $GW_LOG; wrong --gw-port?)"
}

stop_gateway() {
    [[ -n $ATTACH_PID ]] && return 0
    if [[ -n $GW_WRAPPER_PID ]]; then
        # TERM to `timeout` is forwarded to the gateway
        stop_pid "$GW_WRAPPER_PID" 10
    fi
    GW_WRAPPER_PID=""
    GW_PID=""
}

gw_alive() { [[ -n $GW_PID ]] && kill -0 "$GW_PID" 2>/dev/null; }

# ---------------------------------------------------------------------------
# Kamailio in front of the gateway (--via-kamailio)
# ---------------------------------------------------------------------------
start_kamailio() { # run-dir
    local dir=$1 i kdir
    (( VIA_KAM )) || return 0
    for (( i = 0; i < 30; i++ )); do
        udp_or_tcp_bound "$KAM_PORT" || break
        sleep 0.1
    done
    udp_or_tcp_bound "$KAM_PORT" && die "port $KAM_PORT is already in use (another Kamailio running?)"
    KAM_STARTS=$(( KAM_STARTS + 1 ))
    kdir=$dir/kamailio
    (( KAM_STARTS > 1 )) && kdir=$dir/kamailio.$KAM_STARTS
    mkdir -p "$kdir"
    KAM_LOG=$kdir/kamailio.log
    KAM_CTL=unix:$kdir/kamailio_ctl
    local cmd=("$KAM_LAB" --listen "$IP:$KAM_PORT" --gateway "$IP:$GW_PORT" --run-dir "$kdir"
               --children "$KAM_CHILDREN" --shm "$KAM_SHM")
    echo "${cmd[*]}" >"$kdir/kamailio.cmd"
    log "starting Kamailio: ${cmd[*]} (log: $KAM_LOG)"
    # SIGTERM to the lab script (what timeout and stop_pid send) stops Kamailio and
    # all its workers; if the script is SIGKILLed, its watchdog stops them.
    timeout --kill-after=5 $(( MAX_TIME + 300 )) "${cmd[@]}" >"$KAM_LOG" 2>&1 &
    KAM_WRAPPER_PID=$!
    KAM_PID=""
    for (( i = 0; i < 100; i++ )); do   # up to 10 s
        if ! kill -0 "$KAM_WRAPPER_PID" 2>/dev/null; then
            tail -n 30 "$KAM_LOG" >&2 || true
            die "Kamailio exited during start-up (log: $KAM_LOG)"
        fi
        if [[ -z $KAM_PID && -s $kdir/kamailio.pid ]]; then
            KAM_PID=$(tr -dc 0-9 <"$kdir/kamailio.pid")
        fi
        # listening, and its workers forked (a main process alone is still starting)
        if [[ -n $KAM_PID ]] && udp_or_tcp_bound "$KAM_PORT" && (( $(kam_nchildren) >= KAM_CHILDREN + 3 )); then
            sleep 0.3
            log "Kamailio up: pid $KAM_PID ($(kam_nchildren) children), listening on $IP:$KAM_PORT"
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$KAM_LOG" >&2 || true
    die "Kamailio did not start listening on port $KAM_PORT within 10 s (log: $KAM_LOG)"
}

stop_kamailio() {
    if [[ -n $KAM_WRAPPER_PID ]]; then
        stop_pid "$KAM_WRAPPER_PID" 5
    fi
    KAM_WRAPPER_PID=""
    KAM_PID=""
}

kam_nchildren() { local n; n=$(pgrep -c -P "$KAM_PID" 2>/dev/null || true); echo "${n:-0}"; }

kam_alive() { [[ -n $KAM_PID ]] && kill -0 "$KAM_PID" 2>/dev/null; }

# Kamailio's peak shared memory use since it started, in MB ("-" without kamcmd):
# tm keeps each transaction ~5 s after its final reply, so this grows with the rate.
kam_shm_peak_mb() {
    local out
    command -v kamcmd >/dev/null && kam_alive || { echo -; return; }
    out=$(timeout 3 kamcmd -s "$KAM_CTL" core.shmmem 2>/dev/null) || { echo -; return; }
    awk '/max_used:/ { printf "%.0f", $2 / 1048576; found = 1 } END { if (!found) print "-" }' <<<"$out"
}

kam_cpu_ticks() { # utime+stime of Kamailio's main process and all its children
    local t=0 p
    kam_alive || { echo 0; return; }
    for p in "$KAM_PID" $(pgrep -P "$KAM_PID" 2>/dev/null || true); do
        t=$(( t + $(proc_cpu_ticks "$p") ))
    done
    echo "$t"
}

# The system under test: the gateway, and Kamailio in front of it if asked.
start_sut() { start_gateway "$1"; start_kamailio "$1"; }
stop_sut() { stop_kamailio; stop_gateway; }

# ---------------------------------------------------------------------------
# one step: place CALLS calls at RATE cps towards TARGET_PORT
# sets S_PASS (0/1), S_REASON, S_LINE, and metrics S_*
# ---------------------------------------------------------------------------
run_step() { # label dir target-port rate calls talk-ms
    local label=$1 dir=$2 port=$3 rate=$4 calls=$5 talk=$6
    local talk_s=$(( (talk + 999) / 1000 ))
    local lim=$(( 2 * STEP_SECS + talk_s + 10 ))
    (( lim > 60 )) && lim=60
    (( lim < STEP_SECS + talk_s + 5 )) && lim=$(( STEP_SECS + talk_s + 5 ))
    local open_limit=$(( rate * (talk_s + 2) * 4 + 100 )) fd_limit
    fd_limit=$(ulimit -n)
    if [[ $fd_limit =~ ^[0-9]+$ ]] && (( open_limit > fd_limit - 200 )); then
        open_limit=$(( fd_limit - 200 ))
    fi
    mkdir -p "$dir"
    sipp_common_args
    local trace=()
    (( TRACE_MSG )) && trace=(-trace_msg)

    if udp_or_tcp_bound "$UAS_PORT"; then
        sleep 1
        udp_or_tcp_bound "$UAS_PORT" && die "port $UAS_PORT still in use before the step (stray sipp?)"
    fi

    # --- UAS
    local uas_cmd=(timeout --kill-after=5 $(( lim + UAS_GRACE + 10 )) "$SIPP" -sf "$UAS_XML"
                   -p "$UAS_PORT" -m "$calls" -recv_timeout $(( talk + 10000 ))
                   "${SIPP_COMMON[@]}" "${trace[@]}"
                   -stf "$dir/uas_stat.csv" -error_file "$dir/uas_err.log" -message_file "$dir/uas_msg.log")
    echo "${uas_cmd[*]}" >"$dir/uas.cmd"
    ( cd "$dir" && exec "${uas_cmd[@]}" ) >"$dir/uas.out" 2>&1 &
    local uas_pid=$!
    KILL_PIDS+=("$uas_pid")
    local i
    for (( i = 0; i < 50; i++ )); do
        udp_or_tcp_bound "$UAS_PORT" && break
        kill -0 "$uas_pid" 2>/dev/null || break
        sleep 0.05
    done

    # --- UAC
    local uac_cmd=(timeout --kill-after=5 $(( lim + 5 )) "$SIPP" -sf "$UAC_XML" -s "$NUMBER"
                   -p "$UAC_PORT" -r "$rate" -rp 1000 -m "$calls" -l "$open_limit" -d "$talk"
                   -recv_timeout 10000 -timeout "${lim}s" -timeout_error
                   "${SIPP_COMMON[@]}" "${trace[@]}"
                   -stf "$dir/uac_stat.csv" -error_file "$dir/uac_err.log" -message_file "$dir/uac_msg.log"
                   "$IP:$port")
    echo "${uac_cmd[*]}" >"$dir/uac.cmd"

    local cpu0=0 cpu1=0 kids0 kids1 t0 t1 kcpu0=0 kcpu1=0
    gw_alive && cpu0=$(proc_cpu_ticks "$GW_PID")
    kam_alive && kcpu0=$(kam_cpu_ticks)
    children_cpu; kids0=$KIDS_CPU
    local drops0 drops1; drops0=$(udp_rcvbuf_errors)
    t0=$(now)
    local uac_rc=0
    ( cd "$dir" && exec "${uac_cmd[@]}" ) >"$dir/uac.out" 2>&1 &
    local uac_pid=$!
    KILL_PIDS+=("$uac_pid")
    # Fail fast: once the UAC reports a failed call the step has failed; stop it
    # instead of letting an overloaded run crawl to its time limit.
    local aborted=0 f
    while kill -0 "$uac_pid" 2>/dev/null; do
        sleep 0.5
        [[ -s $dir/uac_stat.csv ]] || continue
        f=$(csv_last "$dir/uac_stat.csv" 'FailedCall(C)' 2>/dev/null || true)
        if [[ $MODE != fixed && $f =~ ^[0-9]+$ ]] && (( f > 0 )); then
            aborted=1
            stop_pid "$uac_pid" 2
            break
        fi
    done
    wait "$uac_pid" 2>/dev/null || uac_rc=$?
    forget_pid "$uac_pid"
    t1=$(now)

    # UAS: give it a moment to finish its last calls (it exits after -m calls)
    local uas_rc=0 uas_done=1
    for (( i = 0; i < UAS_GRACE * 10 && ! aborted; i++ )); do
        kill -0 "$uas_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$uas_pid" 2>/dev/null; then
        uas_done=0
        stop_pid "$uas_pid" 3
    else
        wait "$uas_pid" || uas_rc=$?
    fi
    forget_pid "$uas_pid"
    gw_alive && cpu1=$(proc_cpu_ticks "$GW_PID")
    kam_alive && kcpu1=$(kam_cpu_ticks)
    children_cpu; kids1=$KIDS_CPU
    drops1=$(udp_rcvbuf_errors)
    S_DROPS=-
    [[ $drops0 =~ ^[0-9]+$ && $drops1 =~ ^[0-9]+$ ]] && S_DROPS=$(( drops1 - drops0 ))

    # --- evaluate
    S_PASS=0; S_REASON=""; S_OK=0; S_FAIL=0; S_RETR=0; S_SETUP_MS=-; S_ACHIEVED=-
    S_GW_CPU_MS=-; S_GW_CPU_PCT=-; S_SIPP_CPU_MS=-; S_KAM_CPU_MS=-; S_KAM_CPU_PCT=-; S_UAS_FAIL=0
    local wall; wall=$(fcalc "%.2f" "$t1 - $t0")
    if [[ ! -s $dir/uac_stat.csv ]]; then
        S_REASON="no UAC stats (sipp rc=$uac_rc; see $dir/uac.out)"
    else
        S_OK=$(csv_last "$dir/uac_stat.csv" 'SuccessfulCall(C)')
        S_FAIL=$(csv_last "$dir/uac_stat.csv" 'FailedCall(C)')
        local uac_retr uas_retr=0 uas_fail=0 uas_ok=0 run_s planned_s
        uac_retr=$(csv_last "$dir/uac_stat.csv" 'Retransmissions(C)')
        if [[ -s $dir/uas_stat.csv ]]; then
            uas_retr=$(csv_last "$dir/uas_stat.csv" 'Retransmissions(C)')
            uas_fail=$(csv_last "$dir/uas_stat.csv" 'FailedCall(C)')
            uas_ok=$(csv_last "$dir/uas_stat.csv" 'SuccessfulCall(C)')
        fi
        S_UAS_FAIL=$uas_fail
        S_RETR=$(( uac_retr + uas_retr ))
        S_SETUP_MS=$(csv_ms "$dir/uac_stat.csv" 'ResponseTimesetup(C)')
        run_s=$(fcalc "%.3f" "$(csv_epoch "$dir/uac_stat.csv" CurrentTime) - $(csv_epoch "$dir/uac_stat.csv" StartTime)")
        planned_s=$(fcalc "%.3f" "$calls / $rate")
        local place_s placed
        place_s=$(fcalc "%.3f" "$run_s - $talk / 1000")
        placed=$(csv_last "$dir/uac_stat.csv" 'OutgoingCall(C)')
        S_ACHIEVED=$(fcalc "%.0f" "($place_s > 0.5 ? $placed / $place_s : 0)")
        local allowed_retr; allowed_retr=$(fcalc "%d" "int($calls * $MAX_RETRANS_PCT / 100)")
        local reasons=()
        (( aborted )) && reasons+=("stopped early at the first failed call")
        (( ! aborted && (uac_rc == 124 || uac_rc == 137) )) && reasons+=("UAC hit the step time limit (${lim}s)")
        if (( S_FAIL > 0 )); then
            reasons+=("$S_FAIL failed calls [$(csv_fail_detail "$dir/uac_stat.csv")]")
        fi
        (( S_OK != calls )) && reasons+=("$S_OK/$calls calls succeeded")
        if (( uas_fail > 0 )); then
            reasons+=("UAS: $uas_fail failed [$(csv_fail_detail "$dir/uas_stat.csv")]")
        fi
        (( uas_done == 0 && ! aborted )) && reasons+=("UAS finished only $uas_ok/$calls calls")
        (( uas_done == 1 && uas_rc != 0 && uas_fail == 0 )) && reasons+=("UAS sipp exited with $uas_rc")
        (( S_RETR > allowed_retr )) && reasons+=("$S_RETR retransmissions (> $allowed_retr)")
        if awk -v m="$S_SETUP_MS" -v x="$MAX_SETUP_MS" 'BEGIN { exit !(m > x) }'; then
            reasons+=("mean setup ${S_SETUP_MS}ms > ${MAX_SETUP_MS}ms")
        fi
        if (( ! aborted )) && awk -v r="$run_s" -v p="$planned_s" -v t="$talk" 'BEGIN { exit !(r - t / 1000 > p * 1.03 + 0.25) }'; then
            reasons+=("UAC fell behind: ${place_s}s to place calls planned for ${planned_s}s")
        fi
        if [[ -n $GW_PID ]] && ! gw_alive; then reasons+=("gateway died"); fi
        if [[ -n $KAM_PID ]] && ! kam_alive; then reasons+=("Kamailio died"); fi
        if (( ${#reasons[@]} == 0 )); then
            S_PASS=1
        else
            S_REASON=$(IFS=';'; echo "${reasons[*]}")
        fi
        if (( cpu1 > 0 )); then
            S_GW_CPU_MS=$(fcalc "%.3f" "($cpu1 - $cpu0) * 1000 / $CLK_TCK / $calls")
            S_GW_CPU_PCT=$(fcalc "%.0f" "($cpu1 - $cpu0) * 100 / $CLK_TCK / $wall")
        fi
        S_SIPP_CPU_MS=$(fcalc "%.3f" "($kids1 - $kids0) * 1000 / $calls")
        if [[ -n $KAM_PID ]]; then
            S_KAM_CPU_MS=$(fcalc "%.3f" "($kcpu1 - $kcpu0) * 1000 / $CLK_TCK / $calls")
            S_KAM_CPU_PCT=$(fcalc "%.0f" "($kcpu1 - $kcpu0) * 100 / $CLK_TCK / $wall")
        fi
    fi
    local kamtxt=""
    S_KAM_SHM=-
    if [[ -n $KAM_PID ]]; then
        S_KAM_SHM=$(kam_shm_peak_mb)
        kamtxt=" kamcpu=${S_KAM_CPU_MS}ms/call (${S_KAM_CPU_PCT}% core) kamshm=${S_KAM_SHM}/${KAM_SHM}MB"
    fi
    local verdict=FAIL
    (( S_PASS )) && verdict=PASS
    S_LINE=$(printf '%-10s %6s cps x %6s calls: %s ok=%s fail=%s retrans=%s udpdrops=%s placed=%s cps setup=%sms wall=%ss gwcpu=%sms/call (%s%% core)%s sippcpu=%sms/call%s' \
        "$label" "$rate" "$calls" "$verdict" "$S_OK" "$S_FAIL" "$S_RETR" "$S_DROPS" "$S_ACHIEVED" "$S_SETUP_MS" "$wall" \
        "$S_GW_CPU_MS" "$S_GW_CPU_PCT" "$kamtxt" "$S_SIPP_CPU_MS" "${S_REASON:+  <- $S_REASON}")
    echo "$S_LINE" >>"$OUT_DIR/steps.log"
    log "$S_LINE"
    (( S_PASS ))
}

# ---------------------------------------------------------------------------
# rate search
# sets B_RATE (best passing rate, 0 if none) and B_* metrics of that step, B_NOTE
# ---------------------------------------------------------------------------
step_secs_estimate() { echo $(( STEP_SECS + (TALK_MS + 999) / 1000 + UAS_GRACE / 2 + COOLDOWN + 3 )); }

try_rate() { # label dir port rate
    local rate=$4 calls=$(( $4 * STEP_SECS ))
    (( calls > MAX_STEP_CALLS )) && calls=$MAX_STEP_CALLS
    (( calls < 1 )) && calls=1
    local rc=0
    run_step "$1" "$2/r$(printf %06d "$rate")" "$3" "$rate" "$calls" "$TALK_MS" || rc=$?
    if (( rc == 0 )); then
        B_RATE=$rate; B_GW_CPU_MS=$S_GW_CPU_MS; B_GW_CPU_PCT=$S_GW_CPU_PCT
        B_SETUP_MS=$S_SETUP_MS; B_ACHIEVED=$S_ACHIEVED; B_SIPP_CPU_MS=$S_SIPP_CPU_MS
        B_KAM_CPU_MS=$S_KAM_CPU_MS; B_KAM_CPU_PCT=$S_KAM_CPU_PCT; B_KAM_SHM=$S_KAM_SHM
    fi
    sleep "$COOLDOWN"
    if (( rc != 0 )); then
        if [[ -n $GW_WRAPPER_PID ]]; then
            # A gateway that was just overloaded still holds transactions that keep
            # retransmitting towards the sipp ports and would poison the next step:
            # start a fresh one (only possible when this script started it).
            # (Kamailio too: it holds the same transactions.)
            log "restarting the gateway${KAM_PID:+ and Kamailio} after the failed step"
            stop_sut
            start_sut "$GW_RUN_DIR"
        else
            settle_after_failure
            if [[ -n $KAM_PID ]]; then stop_kamailio; start_kamailio "$GW_RUN_DIR"; fi
        fi
    fi
    return $rc
}

# After a failed step the gateway may still hold half-finished transactions that
# retransmit towards the sipp ports; give it time to drain before the next step
# (up to --fail-settle seconds, until it uses < 3 % of a core for a second).
settle_after_failure() {
    local t_end=$(( $(date +%s) + FAIL_SETTLE )) a b
    sleep 1
    while (( $(date +%s) < t_end )); do
        gw_alive || return 0
        a=$(proc_cpu_ticks "$GW_PID"); sleep 1; b=$(proc_cpu_ticks "$GW_PID")
        (( (b - a) * 100 < 3 * CLK_TCK )) && return 0
    done
    return 0
}

search() { # label dir port start-rate budget-end
    local label=$1 dir=$2 port=$3 rate=$4 budget_end=$5
    local lo=0 hi=0 est
    B_RATE=0; B_GW_CPU_MS=-; B_GW_CPU_PCT=-; B_SETUP_MS=-; B_ACHIEVED=-; B_SIPP_CPU_MS=-; B_NOTE=""
    B_KAM_CPU_MS=-; B_KAM_CPU_PCT=-; B_KAM_SHM=-
    est=$(step_secs_estimate)
    # ramp
    while :; do
        if (( $(date +%s) + est > budget_end )); then B_NOTE="time budget ran out while ramping"; break; fi
        if try_rate "$label" "$dir" "$port" "$rate"; then
            lo=$rate
            if (( rate >= MAX_RATE )); then B_NOTE="reached --max-rate"; break; fi
            rate=$(fcalc "%d" "int($rate * $RAMP_FACTOR + 0.5)")
            (( rate <= lo )) && rate=$(( lo + 1 ))
            (( rate > MAX_RATE )) && rate=$MAX_RATE
        else
            hi=$rate
            break
        fi
        if [[ -n $GW_PID ]] && ! gw_alive; then B_NOTE="gateway died"; return 0; fi
    done
    # bisect between lo (pass, or 0) and hi (fail)
    while (( hi > 0 )); do
        local tol; tol=$(fcalc "%d" "int($lo * $PRECISION_PCT / 100)")
        (( tol < 1 )) && tol=1
        (( hi - lo <= tol )) && break
        if (( $(date +%s) + est > budget_end )); then B_NOTE="time budget ran out while bisecting ($lo..$hi)"; break; fi
        if [[ -n $GW_PID ]] && ! gw_alive; then B_NOTE="gateway died"; break; fi
        local mid=$(( (lo + hi) / 2 ))
        if try_rate "$label" "$dir" "$port" "$mid"; then lo=$mid; else hi=$mid; fi
    done
    (( lo == 0 )) && [[ -z $B_NOTE ]] && B_NOTE="no rate passed (not even 1 cps)"
    [[ -z $B_NOTE && $hi -gt 0 ]] && B_NOTE="first failing rate $hi cps"
    return 0
}

# ---------------------------------------------------------------------------
# hold mode: N concurrent calls, RSS before / held / after
# ---------------------------------------------------------------------------
hold_run() { # run-dir
    local dir=$1/hold
    mkdir -p "$dir"
    H_BEFORE=-; H_HELD=-; H_AFTER=-; H_COUNT=0; H_KIB=-; H_NOTE=""

    # warm-up: a few calls so that lazily created state is part of the baseline
    run_step "warmup" "$1/warmup" "$SUT_PORT" 20 40 0 ||
        { H_NOTE="warm-up calls through the gateway failed: $S_REASON"; return 0; }
    sleep 1
    H_BEFORE=$(proc_rss_kib "$GW_PID")

    local ramp_s=$(( (HOLD_N + HOLD_RATE - 1) / HOLD_RATE ))
    # every call must still be up when the RSS is sampled: ramp + settle + sampling + margin
    local hold_ms=$(( (ramp_s + HOLD_SETTLE + 5) * 1000 ))
    local lim=$(( ramp_s + hold_ms / 1000 + ramp_s + 30 ))
    if (( $(date +%s) + lim > DEADLINE )); then
        H_NOTE="not enough --max-time left for ${lim}s of holding"; return 0
    fi
    sipp_common_args
    local uas_cmd=(timeout --kill-after=5 $(( lim + 20 )) "$SIPP" -sf "$UAS_XML" -p "$UAS_PORT"
                   -m "$HOLD_N" -recv_timeout $(( hold_ms + 20000 )) "${SIPP_COMMON[@]}"
                   -stf "$dir/uas_stat.csv" -error_file "$dir/uas_err.log")
    local uac_cmd=(timeout --kill-after=5 $(( lim + 5 )) "$SIPP" -sf "$UAC_XML" -s "$NUMBER" -p "$UAC_PORT"
                   -r "$HOLD_RATE" -rp 1000 -m "$HOLD_N" -l "$HOLD_N" -d "$hold_ms"
                   -recv_timeout 15000 -timeout "${lim}s" -timeout_error "${SIPP_COMMON[@]}"
                   -stf "$dir/uac_stat.csv" -error_file "$dir/uac_err.log" "$IP:$SUT_PORT")
    echo "${uas_cmd[*]}" >"$dir/uas.cmd"; echo "${uac_cmd[*]}" >"$dir/uac.cmd"
    ( cd "$dir" && exec "${uas_cmd[@]}" ) >"$dir/uas.out" 2>&1 &
    local uas_pid=$!; KILL_PIDS+=("$uas_pid")
    sleep 0.5
    log "hold: placing $HOLD_N calls at $HOLD_RATE cps, each held ${hold_ms} ms"
    ( cd "$dir" && exec "${uac_cmd[@]}" ) >"$dir/uac.out" 2>&1 &
    local uac_pid=$!; KILL_PIDS+=("$uac_pid")

    # wait until all calls have been placed and answered, then let them settle
    local t_end=$(( $(date +%s) + ramp_s + 20 )) placed=0 current=0 ok=0
    while (( $(date +%s) < t_end )); do
        sleep 0.5
        kill -0 "$uac_pid" 2>/dev/null || break
        [[ -s $dir/uac_stat.csv ]] || continue
        placed=$(csv_last "$dir/uac_stat.csv" 'OutgoingCall(C)' 2>/dev/null || echo 0)
        (( placed >= HOLD_N )) && break
    done
    sleep "$HOLD_SETTLE"   # the last calls finish INVITE/200/ACK and the gateway settles
    local max=0
    for _ in 1 2 3; do
        local r; r=$(proc_rss_kib "$GW_PID")
        (( r > max )) && max=$r
        sleep 0.5
    done
    H_HELD=$max
    current=$(csv_last "$dir/uac_stat.csv" 'CurrentCall' 2>/dev/null || echo 0)
    local failed_early; failed_early=$(csv_last "$dir/uac_stat.csv" 'FailedCall(C)' 2>/dev/null || echo 0)
    H_COUNT=$current
    log "hold: $current calls up (placed $placed, failed $failed_early), gateway VmRSS ${H_HELD} KiB (before ${H_BEFORE} KiB)"

    local rc=0
    wait "$uac_pid" || rc=$?
    forget_pid "$uac_pid"
    local i
    for (( i = 0; i < 100; i++ )); do kill -0 "$uas_pid" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$uas_pid" 3; forget_pid "$uas_pid"
    sleep 2
    H_AFTER=$(proc_rss_kib "$GW_PID")
    ok=$(csv_last "$dir/uac_stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
    local fail; fail=$(csv_last "$dir/uac_stat.csv" 'FailedCall(C)' 2>/dev/null || echo 0)
    (( H_COUNT > 0 )) && H_KIB=$(fcalc "%.2f" "($H_HELD - $H_BEFORE) / $H_COUNT")
    (( current < HOLD_N )) && H_NOTE="only $current of $HOLD_N calls were up at the sample"
    if (( fail > 0 || ok != HOLD_N )); then
        H_NOTE="${H_NOTE:+$H_NOTE; }$ok ok / $fail failed calls [$(csv_fail_detail "$dir/uac_stat.csv")] (sipp rc=$rc)"
    fi
    return 0
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
{
    echo "# bench-sipp $(date -Is)"
    echo "# host: $(uname -srm), $(nproc) CPUs; $("$SIPP" -v 2>&1 | grep -m1 -o 'SIPp v[^ ]*' || echo sipp)"
    echo "# args: mode=$MODE runs=$RUNS transport=$TRANSPORT step=${STEP_SECS}s talk=${TALK_MS}ms gw=$IP:$GW_PORT uas=$IP:$UAS_PORT uac=$IP:$UAC_PORT"
    echo "# scenarios: $UAC_XML, $UAS_XML; gateway: $GW_BIN run --config $GW_CONFIG ${GW_EXTRA_ARGS[*]}"
    if (( VIA_KAM )); then
        echo "# via Kamailio $IP:$KAM_PORT ($KAM_CHILDREN children, ${KAM_SHM} MB shm): $(kamailio -v 2>/dev/null | head -n 1 || true)"
    fi
    if [[ $MODE == fixed ]]; then echo "# fixed rate: $FIXED_RATE cps"; fi
} >"$OUT_DIR/steps.log"
log "output: $OUT_DIR (mode $MODE, $RUNS run(s), budget ${MAX_TIME}s, $(nproc) CPUs)"

declare -a R_CEIL=() R_GW=()
R_QGW=()
R_QCPU=() R_CPU=() R_PCT=() R_SETUP=() R_SIPPCPU=() R_CEIL_NOTE=() R_GW_NOTE=() R_CEIL_SETUP=()
declare -a H_B=() H_H=() H_A=() H_N=() H_K=() H_NOTES=()
declare -a R_KCPU=() R_KPCT=() R_KSHM=()
declare -a F_PASS=() F_OK=() F_FAIL=() F_UASFAIL=() F_RETR=() F_PLACED=() F_SETUP=() F_CPU=() F_PCT=() F_KCPU=() F_KPCT=() F_NOTE=()
declare -a F_KSHM=()
prev_ceil=0; prev_gw=0

for (( run = 1; run <= RUNS; run++ )); do
    rdir=$OUT_DIR/run$run
    mkdir -p "$rdir"
    runs_left=$(( RUNS - run + 1 ))
    run_budget_end=$(( $(date +%s) + $(remaining) / runs_left ))
    log "=== run $run/$RUNS (budget $(( run_budget_end - $(date +%s) ))s)"

    if [[ $MODE == hold ]]; then
        start_sut "$rdir"
        hold_run "$rdir"
        H_B+=("$H_BEFORE"); H_H+=("$H_HELD"); H_A+=("$H_AFTER"); H_N+=("$H_COUNT"); H_K+=("$H_KIB"); H_NOTES+=("$H_NOTE")
        stop_sut
        continue
    fi

    if [[ $MODE == fixed ]]; then
        start_sut "$rdir"
        log "--- run $run: $FIXED_RATE cps for ${STEP_SECS}s, sipp UAC -> ${KAM_PID:+Kamailio ($IP:$KAM_PORT) -> }hotline-gw ($IP:$GW_PORT) -> sipp UAS ($IP:$UAS_PORT)"
        if ! run_step "sanity" "$rdir/gw-sanity" "$SUT_PORT" 10 10 0; then
            echo "bench-sipp: calls through the gateway fail at 10 cps: $S_REASON" >&2
            echo "  gateway log: $GW_LOG${KAM_LOG:+; Kamailio log: $KAM_LOG}; sipp logs: $rdir/gw-sanity/" >&2
            F_PASS+=(FAIL); F_OK+=(-); F_FAIL+=(-); F_UASFAIL+=(-); F_RETR+=(-); F_PLACED+=(-); F_SETUP+=(-)
            F_CPU+=(-); F_PCT+=(-); F_KCPU+=(-); F_KPCT+=(-); F_KSHM+=(-); F_NOTE+=("sanity step failed: $S_REASON")
            stop_sut
            continue
        fi
        sleep "$COOLDOWN"
        calls=$(( FIXED_RATE * STEP_SECS ))
        (( calls > MAX_STEP_CALLS )) && calls=$MAX_STEP_CALLS
        verdict=PASS
        run_step "fixed" "$rdir/fixed/r$(printf %06d "$FIXED_RATE")" "$SUT_PORT" "$FIXED_RATE" "$calls" "$TALK_MS" || verdict=FAIL
        F_PASS+=("$verdict"); F_OK+=("$S_OK"); F_FAIL+=("$S_FAIL"); F_UASFAIL+=("$S_UAS_FAIL"); F_RETR+=("$S_RETR")
        F_PLACED+=("$S_ACHIEVED"); F_SETUP+=("$S_SETUP_MS"); F_CPU+=("$S_GW_CPU_MS"); F_PCT+=("$S_GW_CPU_PCT")
        F_KCPU+=("$S_KAM_CPU_MS"); F_KPCT+=("$S_KAM_CPU_PCT"); F_KSHM+=("$S_KAM_SHM"); F_NOTE+=("$S_REASON")
        stop_sut
        continue
    fi

    if (( DO_CEILING )); then
        # later runs start the ramp just below the previous result
        start=$START_RATE
        (( prev_ceil > 0 )) && start=$(( prev_ceil * 7 / 10 ))
        (( start < 1 )) && start=1
        end=$run_budget_end
        (( DO_GATEWAY )) && end=$(( $(date +%s) + (run_budget_end - $(date +%s)) * 2 / 5 ))
        log "--- run $run: harness ceiling, sipp UAC -> sipp UAS ($IP:$UAS_PORT)"
        GW_PID=""
        search "ceiling" "$rdir/ceiling" "$UAS_PORT" "$start" "$end"
        R_CEIL+=("$B_RATE"); R_CEIL_NOTE+=("$B_NOTE"); R_CEIL_SETUP+=("$B_SETUP_MS"); R_SIPPCPU+=("$B_SIPP_CPU_MS")
        prev_ceil=$B_RATE
        log "run $run ceiling: $B_RATE cps (placed at $B_ACHIEVED cps) ($B_NOTE)"
    fi

    if (( DO_GATEWAY )); then
        start_sut "$rdir"
        log "--- run $run: gateway, sipp UAC -> ${KAM_PID:+Kamailio ($IP:$KAM_PORT) -> }hotline-gw ($IP:$GW_PORT) -> sipp UAS ($IP:$UAS_PORT)"
        # sanity: a handful of calls must go through before searching
        if ! run_step "sanity" "$rdir/gw-sanity" "$SUT_PORT" 10 10 0; then
            echo "bench-sipp: calls through the gateway fail at 10 cps: $S_REASON" >&2
            echo "  gateway log: $GW_LOG${KAM_LOG:+; Kamailio log: $KAM_LOG}; sipp logs: $rdir/gw-sanity/" >&2
            tail -n 20 "$GW_LOG" >&2 || true
            R_GW+=(0); R_CPU+=(-); R_PCT+=(-); R_SETUP+=(-); R_GW_NOTE+=("sanity step failed")
            R_KCPU+=(-); R_KPCT+=(-); R_KSHM+=(-)
            stop_sut
            continue
        fi
        sleep "$COOLDOWN"
        start=$START_RATE
        (( prev_gw > 0 )) && start=$(( prev_gw * 7 / 10 ))
        (( start < 1 )) && start=1
        search "gateway" "$rdir/gateway" "$SUT_PORT" "$start" "$run_budget_end"
        R_GW+=("$B_RATE"); R_CPU+=("$B_GW_CPU_MS"); R_PCT+=("$B_GW_CPU_PCT"); R_SETUP+=("$B_SETUP_MS"); R_GW_NOTE+=("$B_NOTE")
        R_KCPU+=("$B_KAM_CPU_MS"); R_KPCT+=("$B_KAM_CPU_PCT"); R_KSHM+=("$B_KAM_SHM")
        prev_gw=$B_RATE
        log "run $run gateway: $B_RATE cps (placed at $B_ACHIEVED cps), ${B_GW_CPU_MS} ms CPU/call${KAM_PID:+, Kamailio $B_KAM_CPU_MS ms CPU/call} ($B_NOTE)"
        gw_alive || echo "bench-sipp: warning: the gateway is no longer running (log: $GW_LOG)" >&2
        if [[ -n $QUEUE_NUMBER ]]; then
            stop_sut
            start_sut "$rdir"
            plain_number=$NUMBER
            NUMBER=$QUEUE_NUMBER
            log "--- run $run: the same through the ACD queue (called number $NUMBER)"
            qstart=$(( B_RATE * 7 / 10 )); (( qstart < 1 )) && qstart=1
            search "queue" "$rdir/queue" "$SUT_PORT" "$qstart" "$run_budget_end"
            R_QGW+=("$B_RATE"); R_QCPU+=("$B_GW_CPU_MS")
            log "run $run queue: $B_RATE cps, ${B_GW_CPU_MS} ms CPU/call ($B_NOTE)"
            NUMBER=$plain_number
        fi
        stop_sut
    fi
done

# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------
{
echo
echo "================ bench-sipp summary ($(nproc) CPUs, transport $TRANSPORT, ${STEP_SECS}s steps, talk ${TALK_MS} ms) ================"
if (( VIA_KAM )); then
    echo "calls via Kamailio $IP:$KAM_PORT ($KAM_CHILDREN UDP workers, ${KAM_SHM} MB shm) -> hotline-gw $IP:$GW_PORT"
fi
if [[ $MODE == fixed ]]; then
    printf '%-7s | %6s %6s %6s %6s %7s %8s %8s | %11s %6s | %11s %6s | %s\n' run verdict ok fail "uasfail" retrans "placed" "setup ms" \
        "gw CPU/call" "gw %" "kam CPU/call" "kam %" notes
    printf '%s\n' "-----------------------------------------------------------------------------------------------------------------------"
    for (( i = 0; i < RUNS; i++ )); do
        printf '%-7s | %6s %6s %6s %6s %7s %8s %8s | %11s %6s | %11s %6s | %s\n' "$(( i + 1 ))" "${F_PASS[i]:--}" "${F_OK[i]:--}" \
            "${F_FAIL[i]:--}" "${F_UASFAIL[i]:--}" "${F_RETR[i]:--}" "${F_PLACED[i]:--}" "${F_SETUP[i]:--}" \
            "${F_CPU[i]:--} ms" "${F_PCT[i]:--}" "${F_KCPU[i]:--} ms" "${F_KPCT[i]:--}" "${F_NOTE[i]:-}"
    done
    if (( RUNS > 1 )); then
        printf '%s\n' "-----------------------------------------------------------------------------------------------------------------------"
        md() { printf '%s\n' "$@" | median; }
        printf '%-7s | %6s %6s %6s %6s %7s %8s %8s | %11s %6s | %11s %6s |\n' median "" "$(md "${F_OK[@]}")" "$(md "${F_FAIL[@]}")" \
            "$(md "${F_UASFAIL[@]}")" "$(md "${F_RETR[@]}")" "$(md "${F_PLACED[@]}")" "$(md "${F_SETUP[@]}")" \
            "$(md "${F_CPU[@]}") ms" "$(md "${F_PCT[@]}")" "$(md "${F_KCPU[@]}") ms" "$(md "${F_KPCT[@]}")"
    fi
    echo
    echo "fixed rate $FIXED_RATE cps x ${STEP_SECS}s = $(( FIXED_RATE * STEP_SECS )) calls per run (one step, not stopped at the first failure);"
    echo "ok/fail = SuccessfulCall(C)/FailedCall(C) of the UAC's -trace_stat CSV, uasfail = FailedCall(C) of the UAS's;"
    echo "retrans = UAC + UAS retransmissions; placed = the rate sipp really placed calls at; CPU/call = utime+stime"
    echo "from /proc over the step / calls (Kamailio: main process + all children); % = share of one core"
elif [[ $MODE == rate ]]; then
    printf '%-7s | %12s %9s | %10s %12s %10s %9s | %s\n' run "ceiling cps" "setup ms" "gw cps" "gw CPU/call" "gw core %" "setup ms" notes
    printf '%s\n' "-------------------------------------------------------------------------------------------------------------"
    for (( i = 0; i < RUNS; i++ )); do
        c=${R_CEIL[i]:--}; cs=${R_CEIL_SETUP[i]:--}; g=${R_GW[i]:--}; cpu=${R_CPU[i]:--}; pct=${R_PCT[i]:--}; su=${R_SETUP[i]:--}
        note=""
        (( DO_CEILING )) && note="ceiling: ${R_CEIL_NOTE[i]:-}"
        (( DO_GATEWAY )) && note="${note:+$note; }gw: ${R_GW_NOTE[i]:-}"
        [[ $cpu != - ]] && cpu="$cpu ms"
        printf '%-7s | %12s %9s | %10s %12s %10s %9s | %s\n' "$(( i + 1 ))" "$c" "$cs" "$g" "$cpu" "$pct" "$su" "$note"
    done
    if (( RUNS > 1 )); then
        printf '%s\n' "-------------------------------------------------------------------------------------------------------------"
        mc=$(printf '%s\n' "${R_CEIL[@]:-}" | median); mcs=$(printf '%s\n' "${R_CEIL_SETUP[@]:-}" | median)
        mg=$(printf '%s\n' "${R_GW[@]:-}" | median); mcpu=$(printf '%s\n' "${R_CPU[@]:-}" | median)
        mp=$(printf '%s\n' "${R_PCT[@]:-}" | median); ms=$(printf '%s\n' "${R_SETUP[@]:-}" | median)
        [[ $mcpu != - ]] && mcpu="$mcpu ms"
        printf '%-7s | %12s %9s | %10s %12s %10s %9s |\n' median "$mc" "$mcs" "$mg" "$mcpu" "$mp" "$ms"
    fi
    echo
    if [[ -n $QUEUE_NUMBER ]]; then
        echo
        printf '%-7s | %10s %12s | %10s %12s | %8s\n' run "plain cps" "CPU/call" "queue cps" "CPU/call" "queue %"
        for (( i = 0; i < RUNS; i++ )); do
            g=${R_GW[i]:-0}; q=${R_QGW[i]:-0}
            pct=-; (( g > 0 )) && pct=$(( q * 100 / g ))
            printf '%-7s | %10s %12s | %10s %12s | %8s\n' "$(( i + 1 ))" "$g" "${R_CPU[i]:--} ms" "$q" "${R_QCPU[i]:--} ms" "$pct"
        done
        if (( RUNS > 1 )); then
            mg=$(printf '%s\n' "${R_GW[@]:-}" | median); mq=$(printf '%s\n' "${R_QGW[@]:-}" | median)
            printf '%-7s | %10s %12s | %10s %12s | %8s\n' median "$mg" "" "$mq" "" "$(( mq * 100 / (mg > 0 ? mg : 1) ))"
        fi
        echo "plain = called number $NUMBER (B2BUA only); queue = $QUEUE_NUMBER (through the ACD), same gateway build, same run"
    fi
    echo "ceiling = highest rate sipp UAC -> sipp UAS sustained with zero failed calls (harness limit; sipp CPU/call: $(printf '%s\n' "${R_SIPPCPU[@]:-}" | median) ms)"
    echo "gw cps  = highest rate through hotline-gw with zero failed calls; gw CPU/call and core % measured at that rate"
    echo "          (sipp UAC, sipp UAS and the gateway share the same $(nproc) CPUs: when gw cps is close to the ceiling, sipp is the limit)"
    if (( VIA_KAM )); then
        echo
        printf '%-7s | %10s | %14s %10s\n' run "gw cps" "kam CPU/call" "kam core %"
        for (( i = 0; i < RUNS; i++ )); do
            printf '%-7s | %10s | %14s %10s\n' "$(( i + 1 ))" "${R_GW[i]:--}" "${R_KCPU[i]:--} ms" "${R_KPCT[i]:--}"
        done
        if (( RUNS > 1 )); then
            printf '%-7s | %10s | %14s %10s\n' median "$(printf '%s\n' "${R_GW[@]:-}" | median)" \
                "$(printf '%s\n' "${R_KCPU[@]:-}" | median) ms" "$(printf '%s\n' "${R_KPCT[@]:-}" | median)"
        fi
        echo "kam CPU/call = Kamailio's CPU (main process + all children, from /proc) per call at the gw cps rate"
    fi
else
    printf '%-7s | %8s | %14s %14s %14s | %12s | %s\n' run "held" "RSS before KiB" "RSS held KiB" "RSS after KiB" "KiB per call" notes
    printf '%s\n' "--------------------------------------------------------------------------------------------------"
    for (( i = 0; i < RUNS; i++ )); do
        printf '%-7s | %8s | %14s %14s %14s | %12s | %s\n' "$(( i + 1 ))" "${H_N[i]}" "${H_B[i]}" "${H_H[i]}" "${H_A[i]}" "${H_K[i]}" "${H_NOTES[i]}"
    done
    if (( RUNS > 1 )); then
        printf '%-7s | %8s | %14s %14s %14s | %12s |\n' median \
            "$(printf '%s\n' "${H_N[@]}" | median)" "$(printf '%s\n' "${H_B[@]}" | median)" \
            "$(printf '%s\n' "${H_H[@]}" | median)" "$(printf '%s\n' "${H_A[@]}" | median)" \
            "$(printf '%s\n' "${H_K[@]}" | median)"
    fi
    echo
    echo "KiB per call = (VmRSS with the calls held - VmRSS before) / calls held; $HOLD_N calls requested at $HOLD_RATE cps"
fi
echo "logs, sipp CSVs and commands: $OUT_DIR (steps: $OUT_DIR/steps.log; one line per run: $OUT_DIR/results.txt)"
} | tee "$OUT_DIR/summary.txt"

# Machine-readable results, one line per run (for scripts/bench-kamailio.sh and the like).
{
    for (( i = 0; i < RUNS; i++ )); do
        if [[ $MODE == fixed ]]; then
            echo "mode=fixed run=$(( i + 1 )) via_kamailio=$VIA_KAM rate=$FIXED_RATE verdict=${F_PASS[i]:--} ok=${F_OK[i]:--} fail=${F_FAIL[i]:--} uas_fail=${F_UASFAIL[i]:--} retrans=${F_RETR[i]:--} placed=${F_PLACED[i]:--} setup_ms=${F_SETUP[i]:--} gw_cpu_ms=${F_CPU[i]:--} gw_core_pct=${F_PCT[i]:--} kam_cpu_ms=${F_KCPU[i]:--} kam_core_pct=${F_KPCT[i]:--} kam_shm_peak_mb=${F_KSHM[i]:--}"
        elif [[ $MODE == rate ]]; then
            echo "mode=rate run=$(( i + 1 )) via_kamailio=$VIA_KAM ceiling_cps=${R_CEIL[i]:--} gw_cps=${R_GW[i]:--} gw_cpu_ms=${R_CPU[i]:--} gw_core_pct=${R_PCT[i]:--} setup_ms=${R_SETUP[i]:--} kam_cpu_ms=${R_KCPU[i]:--} kam_core_pct=${R_KPCT[i]:--} kam_shm_peak_mb=${R_KSHM[i]:--}"
        else
            echo "mode=hold run=$(( i + 1 )) via_kamailio=$VIA_KAM held=${H_N[i]:--} rss_before_kib=${H_B[i]:--} rss_held_kib=${H_H[i]:--} kib_per_call=${H_K[i]:--}"
        fi
    done
} >"$OUT_DIR/results.txt"

# exit status: 0 if every requested measurement found a passing rate / held calls
# (fixed rate: every run passed)
status=0
if [[ $MODE == rate ]]; then
    if (( DO_CEILING )); then for v in "${R_CEIL[@]}"; do if [[ $v == 0 ]]; then status=1; fi; done; fi
    if (( DO_GATEWAY )); then for v in "${R_GW[@]}"; do if [[ $v == 0 ]]; then status=1; fi; done; fi
elif [[ $MODE == fixed ]]; then
    for v in "${F_PASS[@]}"; do if [[ $v != PASS ]]; then status=1; fi; done
else
    for v in "${H_NOTES[@]}"; do if [[ -n $v ]]; then status=1; fi; done
fi
exit $status
