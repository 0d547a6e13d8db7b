#!/usr/bin/env bash
# rtpengine-ref.sh - run rtpengine (Debian rtpengine-daemon, userspace forwarding only)
# as a reference RTP relay on loopback, controlled over its ng protocol
# (see scripts/ng_client.py).
#
#   scripts/rtpengine-ref.sh [start]   install if missing, start, wait for ng ping -> pong
#   scripts/rtpengine-ref.sh stop      stop the instance this script started
#   scripts/rtpengine-ref.sh restart
#   scripts/rtpengine-ref.sh status    exit 0 if running and answering ping
#
# start/stop are idempotent. Settings (environment):
#   RTPE_IFACE=127.0.0.1          media address (loopback only)
#   RTPE_NG=127.0.0.1:2223        ng control socket (UDP)
#   RTPE_PORT_MIN=30000 RTPE_PORT_MAX=39999   media port range (2 ports per stream side
#                                 and call leg: RTP+RTCP, so ~2500 calls per 10000 ports)
#   RTPE_THREADS=2                worker threads (--num-threads)
#   RTPE_LOG_LEVEL=5              5=notice (one line per call), 6=info, 7=debug
#   RTPE_LOG=/tmp/rtpengine-ref.log   stderr log file
#   RTPE_PIDFILE=/tmp/rtpengine-ref.pid
#   RTPE_EXTRA_ARGS="..."         appended to the command line,
#                                 e.g. "--endpoint-learning=immediate"
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NG_CLIENT="$SCRIPT_DIR/ng_client.py"

RTPE_IFACE=${RTPE_IFACE:-127.0.0.1}
RTPE_NG=${RTPE_NG:-127.0.0.1:2223}
RTPE_PORT_MIN=${RTPE_PORT_MIN:-30000}
RTPE_PORT_MAX=${RTPE_PORT_MAX:-39999}
RTPE_THREADS=${RTPE_THREADS:-2}
RTPE_LOG_LEVEL=${RTPE_LOG_LEVEL:-5}
RTPE_LOG=${RTPE_LOG:-/tmp/rtpengine-ref.log}
RTPE_PIDFILE=${RTPE_PIDFILE:-/tmp/rtpengine-ref.pid}
RTPE_EXTRA_ARGS=${RTPE_EXTRA_ARGS:-}
RTPE_BIN=${RTPE_BIN:-/usr/bin/rtpengine}

case "$RTPE_IFACE" in 127.*) ;; *) echo "RTPE_IFACE must be a 127.0.0.0/8 address" >&2; exit 2 ;; esac
case "$RTPE_NG" in 127.*:*) ;; *) echo "RTPE_NG must be 127.x.x.x:PORT" >&2; exit 2 ;; esac

log() { echo "rtpengine-ref: $*" >&2; }

ping_ng() {
    RTPENGINE_NG="$RTPE_NG" RTPENGINE_NG_TIMEOUT=${1:-0.5} \
        python3 "$NG_CLIENT" ping 2>/dev/null | grep -qx pong
}

running_pid() {
    # print the pid from the pid file if that process is our rtpengine
    [[ -f "$RTPE_PIDFILE" ]] || return 1
    local pid
    pid=$(tr -dc '0-9' <"$RTPE_PIDFILE")
    [[ -n "$pid" ]] || return 1
    [[ "$(cat /proc/"$pid"/comm 2>/dev/null)" == rtpengine ]] || return 1
    echo "$pid"
}

install_pkg() {
    [[ -x "$RTPE_BIN" ]] && return 0
    log "installing rtpengine-daemon"
    export DEBIAN_FRONTEND=noninteractive
    # keep the package's own service (config /etc/rtpengine/rtpengine.conf, also on ng
    # port 2223) from being started by the postinst, where a policy-rc.d is not already there
    local tmp_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        tmp_policy=1
    fi
    local rc=0
    apt-get update >&2 || rc=$?
    [[ $rc -eq 0 ]] && { apt-get install -y --no-install-recommends rtpengine-daemon >&2 || rc=$?; }
    [[ $tmp_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
    [[ $rc -eq 0 && -x "$RTPE_BIN" ]] || { log "install failed"; exit 1; }
}

do_start() {
    local pid
    if pid=$(running_pid); then
        if ping_ng 1; then
            log "already running, pid $pid"
            echo "$pid"
            return 0
        fi
        log "pid $pid exists but does not answer ng ping; restarting"
        do_stop
    fi
    install_pkg
    if ping_ng 0.3; then
        log "something else already answers ng on $RTPE_NG (not started by this script); refusing"
        exit 1
    fi

    local args=(
        --config-file=none               # do not read /etc/rtpengine/rtpengine.conf
        --foreground
        --log-stderr
        --log-level="$RTPE_LOG_LEVEL"
        --pidfile="$RTPE_PIDFILE"
        --table=-1                       # userspace forwarding only, no kernel module
        --interface="$RTPE_IFACE"
        --listen-ng="$RTPE_NG"
        --port-min="$RTPE_PORT_MIN"
        --port-max="$RTPE_PORT_MAX"
        --num-threads="$RTPE_THREADS"
        --delete-delay=0                 # free ports at once on delete (default keeps 30 s)
        --timeout=60
    )
    # shellcheck disable=SC2206
    [[ -n "$RTPE_EXTRA_ARGS" ]] && args+=($RTPE_EXTRA_ARGS)

    rm -f "$RTPE_PIDFILE"
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    log "starting: $RTPE_BIN ${args[*]}"
    nohup "$RTPE_BIN" "${args[@]}" </dev/null >>"$RTPE_LOG" 2>&1 &
    local bgpid=$!
    echo "$bgpid" >"$RTPE_PIDFILE"   # rtpengine rewrites the same pid (it does not fork in --foreground)

    local i
    for i in $(seq 1 50); do
        if ! kill -0 "$bgpid" 2>/dev/null; then
            log "rtpengine exited during startup; last log lines:"
            tail -n 20 "$RTPE_LOG" >&2
            rm -f "$RTPE_PIDFILE"
            exit 1
        fi
        if ping_ng 0.2; then
            log "up, pid $bgpid, ng $RTPE_NG, log $RTPE_LOG"
            echo "$bgpid"
            return 0
        fi
        sleep 0.2
    done
    log "no pong from $RTPE_NG after 10 s+; stopping pid $bgpid"
    kill "$bgpid" 2>/dev/null || true
    rm -f "$RTPE_PIDFILE"
    exit 1
}

do_stop() {
    local pid i
    if ! pid=$(running_pid); then
        rm -f "$RTPE_PIDFILE"
        log "not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still alive after 5 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RTPE_PIDFILE"
    log "stopped pid $pid"
}

do_status() {
    local pid
    if pid=$(running_pid) && ping_ng 1; then
        echo "running pid $pid ng $RTPE_NG"
        return 0
    fi
    echo "not running"
    return 1
}

case "${1:-start}" in
    start) do_start ;;
    stop) do_stop ;;
    restart) do_stop; do_start ;;
    status) do_status ;;
    -h|--help|help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) echo "usage: $0 [start|stop|restart|status]" >&2; exit 2 ;;
esac
