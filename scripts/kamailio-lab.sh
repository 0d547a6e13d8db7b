#!/usr/bin/env bash
# kamailio-lab.sh - run Kamailio (deploy/kamailio/kamailio.cfg) in the foreground on
# loopback, in front of one or more hotline-gw nodes, for tests and labs.
#
#   scripts/kamailio-lab.sh --listen 127.0.0.1:15060 \
#       --gateway 127.0.0.1:15061 --gateway 127.0.0.1:15062 [--run-dir DIR]
#
# The first --gateway gets the highest priority (normally active node), the next
# ones lower priorities, in order. The script writes DIR/dispatcher.list and runs
# kamailio with -DD -E (no daemon, log to stderr), its runtime dir, pid file and
# control socket in DIR, and small memory pools (-m 64 -M 8; see --shm).
#
# A test spawns this script as a child process and stops it with SIGTERM (clean
# stop, exit 0) or SIGKILL: either way every Kamailio process is gone within
# about a second (see "Supervised" below; with --exec the script becomes
# kamailio itself, and SIGKILL then leaves Kamailio's workers behind).
# Query it with: kamcmd -s unix:DIR/kamailio_ctl dispatcher.list
#
# Options:
#   --listen ADDR:PORT      UDP and TCP socket (required). Repeatable (up to 3);
#                           "udp:ADDR:PORT" or "tcp:ADDR:PORT" for one transport only.
#   --gateway ADDR:PORT     a gateway node (required, repeatable). Append
#                           ";transport=tcp" to reach it over TCP.
#   --run-dir DIR           where to put dispatcher.list, pid and ctl socket
#                           (created if missing; default: a new mktemp -d dir).
#   --match-port yes|no     recognise requests FROM a gateway by source address
#                           AND port (yes, default: gateways, callers and agents
#                           share 127.0.0.1 in a lab; a gateway must then send its
#                           requests from its listening port, i.e. over UDP), or
#                           by address only (no: gateways on addresses of their
#                           own, e.g. 127.0.0.2 and 127.0.0.3; TCP works too).
#   --fr-timer MS           how long a gateway may stay silent before failover
#                           (default 1500).
#   --ping-interval S       OPTIONS probe interval (default 1).
#   --log-level N           kamailio debug level (default 2 = info; 3 = debug).
#   --children N            UDP worker processes per socket and TCP workers
#                           (default 2; the shipped config's own default is 4).
#   --shm MB                shared memory pool (default 64: enough for tests).
#                           tm keeps each transaction a few seconds after its final
#                           reply: a short call through the proxy holds about
#                           0.15 MB per call/s (measured 2026-12-07), so 64 MB runs
#                           out near 400 calls/s and the systemd unit's 256 MB near
#                           1,700 (then: "out of mem", 500 to the caller).
#   --config FILE           kamailio.cfg to run (default: deploy/kamailio/kamailio.cfg).
#   --kamailio BIN          kamailio binary (default: $KAMAILIO or kamailio in PATH,
#                           else /usr/sbin/kamailio).
#   --check                 only check the configuration (kamailio -c) and exit.
#                           (kamailio -c parses; it does not run module fixups, so
#                           some errors, e.g. an unknown $pseudo-variable, only
#                           show when Kamailio really starts.)
#   --exec                  exec kamailio instead of supervising it (see above).
#   -- ARGS                 everything after -- is passed to kamailio as is.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

CONFIG="$REPO_DIR/deploy/kamailio/kamailio.cfg"
KAMAILIO=${KAMAILIO:-}
LISTENS=()
GATEWAYS=()
RUN_DIR=""
MATCH_PORT=yes
FR_TIMER=1500
PING_INTERVAL=1
LOG_LEVEL=2
CHILDREN=2
SHM_MB=64
CHECK_ONLY=0
EXEC=0
EXTRA=()

die() { echo "kamailio-lab: $*" >&2; exit 2; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d;s/^# \{0,1\}//'; }

while (($#)); do
    case "$1" in
        --listen) LISTENS+=("${2:?--listen needs ADDR:PORT}"); shift 2 ;;
        --gateway) GATEWAYS+=("${2:?--gateway needs ADDR:PORT}"); shift 2 ;;
        --run-dir) RUN_DIR=${2:?--run-dir needs DIR}; shift 2 ;;
        --match-port) MATCH_PORT=${2:?}; shift 2 ;;
        --fr-timer) FR_TIMER=${2:?}; shift 2 ;;
        --ping-interval) PING_INTERVAL=${2:?}; shift 2 ;;
        --log-level) LOG_LEVEL=${2:?}; shift 2 ;;
        --children) CHILDREN=${2:?}; shift 2 ;;
        --shm) SHM_MB=${2:?}; shift 2 ;;
        --config) CONFIG=${2:?}; shift 2 ;;
        --kamailio) KAMAILIO=${2:?}; shift 2 ;;
        --check) CHECK_ONLY=1; shift ;;
        --exec) EXEC=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

((${#LISTENS[@]})) || die "--listen ADDR:PORT is required"
((${#LISTENS[@]} <= 3)) || die "at most 3 --listen"
((${#GATEWAYS[@]})) || die "at least one --gateway ADDR:PORT is required"
[[ -r "$CONFIG" ]] || die "cannot read $CONFIG"
[[ "$FR_TIMER" =~ ^[0-9]+$ ]] || die "--fr-timer: milliseconds expected"
[[ "$PING_INTERVAL" =~ ^[0-9]+$ ]] || die "--ping-interval: seconds expected"
[[ "$LOG_LEVEL" =~ ^-?[0-9]+$ ]] || die "--log-level: integer expected"
[[ "$CHILDREN" =~ ^[1-9][0-9]?$ ]] || die "--children: 1..99 expected"
[[ "$SHM_MB" =~ ^[1-9][0-9]*$ ]] || die "--shm: megabytes expected"

if [[ -z "$KAMAILIO" ]]; then
    KAMAILIO=$(command -v kamailio || true)
    [[ -n "$KAMAILIO" ]] || KAMAILIO=/usr/sbin/kamailio
fi
[[ -x "$KAMAILIO" ]] || die "kamailio binary not found: $KAMAILIO"

if [[ -z "$RUN_DIR" ]]; then
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kamailio-lab.XXXXXX")
fi
mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
# Quotes and spaces would break the -A string defines below.
[[ "$RUN_DIR" != *[\"\ \\]* ]] || die "--run-dir must not contain quotes, spaces or backslashes"

for l in "${LISTENS[@]}"; do
    # Kamailio would write 0.0.0.0 into Record-Route and Path.
    [[ "$l" != *0.0.0.0* && "$l" != *"[::]"* ]] || die "--listen needs a concrete address, not $l"
done

case "$MATCH_PORT" in
    yes) DS_FROM_MODE=2 ;;   # address and port, any protocol
    no) DS_FROM_MODE=3 ;;    # address only
    *) die "--match-port: yes or no" ;;
esac

# Dispatcher list: set 1, first gateway highest priority.
DS_LIST="$RUN_DIR/dispatcher.list"
{
    echo "# written by kamailio-lab.sh: set 1 (probed: flags 8), priority order = --gateway order;"
    echo "# set 2: the same gateways, never probed, tried when none of set 1 is active"
    for set in 1 2; do
        flags=$(( set == 1 ? 8 : 0 ))
        prio=$((10 * ${#GATEWAYS[@]}))
        n=0
        for g in "${GATEWAYS[@]}"; do
            uri=$g
            [[ "$uri" == sip:* ]] || uri="sip:$uri"
            echo "$set $uri $flags $prio name=gw$n"
            prio=$((prio - 10))
            n=$((n + 1))
        done
    done
} >"$DS_LIST"

ARGS=(-f "$CONFIG"
      -A "DS_LIST=\"$DS_LIST\""
      -A "CTL_SOCKET=\"unix:$RUN_DIR/kamailio_ctl\""
      -A "DS_FROM_MODE=$DS_FROM_MODE"
      -A "GW_FR_TIMER=$FR_TIMER"
      -A "DS_PING_INTERVAL=$PING_INTERVAL"
      -A "LOG_LEVEL=$LOG_LEVEL"
      -A "CHILDREN=$CHILDREN" -A "TCP_CHILDREN=$CHILDREN")
i=0
for l in "${LISTENS[@]}"; do
    case $i in 0) name=LISTEN ;; 1) name=LISTEN2 ;; *) name=LISTEN3 ;; esac
    ARGS+=(-A "$name=$l")
    i=$((i + 1))
done

if ((CHECK_ONLY)); then
    exec "$KAMAILIO" -c "${ARGS[@]}" "${EXTRA[@]}"
fi

KAM_CMD=("$KAMAILIO" -DD -E -Y "$RUN_DIR" -P "$RUN_DIR/kamailio.pid" -m "$SHM_MB" -M 8
         "${ARGS[@]}" "${EXTRA[@]}")
# -DD: stay in the foreground (children are still forked); -E: log to stderr;
# -Y: runtime dir (default /run/kamailio is root's); -m/-M: shm/pkg MB.

if ((EXEC)); then
    echo "kamailio-lab: run dir $RUN_DIR, gateways ${GATEWAYS[*]} (match port: $MATCH_PORT), kamailio pid $$" >&2
    exec "${KAM_CMD[@]}"
fi

# Supervised (default). Kamailio's main process forks its workers; if the main
# process is SIGKILLed (what Rust's Child::kill() sends), they stay behind
# holding the ports. So Kamailio runs in a process group of its own, and:
#  - SIGTERM/SIGINT/SIGHUP to this script are passed on to Kamailio, which
#    stops its workers and exits (status 0); this script exits with its status;
#  - a watchdog (also in a group of its own) notices when this script dies
#    however it dies (SIGKILL included) and stops the whole Kamailio group.
set -m
"${KAM_CMD[@]}" &
KPID=$!
SELF=$$
(
    trap '' INT TERM HUP
    while kill -0 "$SELF" 2>/dev/null && kill -0 "$KPID" 2>/dev/null; do sleep 0.2; done
    kill -TERM "$KPID" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 -- "-$KPID" 2>/dev/null || exit 0; sleep 0.1; done
    kill -KILL -- "-$KPID" 2>/dev/null || true
) </dev/null >/dev/null 2>&1 &
WD=$!
set +m
echo "kamailio-lab: run dir $RUN_DIR, gateways ${GATEWAYS[*]} (match port: $MATCH_PORT), kamailio pid $KPID, lab pid $$" >&2

stop() { kill -TERM "$KPID" 2>/dev/null || true; }
trap stop TERM INT HUP
rc=0
while :; do
    wait "$KPID" && rc=0 || rc=$?
    kill -0 "$KPID" 2>/dev/null || break    # wait was interrupted by a trapped signal
done
# Workers left behind (main crashed)? Stop the group.
kill -TERM -- "-$KPID" 2>/dev/null || true
kill "$WD" 2>/dev/null || true
exit "$rc"
