#!/usr/bin/env bash
# run-lab.sh - check deploy/kamailio/kamailio.cfg for real, on loopback, with sipp
# playing the gateways, callers and agents (scenarios in this folder).
#
#   deploy/kamailio/test/run-lab.sh [--base-port 15100] [--keep] [CHECK...]
#
# Each check starts its own Kamailio (scripts/kamailio-lab.sh) and sipp
# processes on ports BASE + 20*n .. BASE + 20*n + 19, and stops every one of them
# (by pid) when it ends. Every process runs under coreutils timeout.
# Prints one PASS/FAIL line per check; exit status 1 if any failed.
# --keep leaves the work directory (logs, sipp message traces) for reading.
# --config FILE runs another kamailio.cfg (default: deploy/kamailio/kamailio.cfg).
#
# Checks (default: all): call tcp failover503 silent alldown recovery register
#                        gw2agent nat tcpagent cancel norelay
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
LAB="$REPO/scripts/kamailio-lab.sh"
BASE=15100
KEEP=0
CONFIG="$REPO/deploy/kamailio/kamailio.cfg"
CHECKS=()
while (($#)); do
    case "$1" in
        --base-port) BASE=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --config) CONFIG=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) CHECKS+=("$1"); shift ;;
    esac
done
ALL=(call tcp failover503 silent alldown recovery register gw2agent nat tcpagent cancel norelay)
((${#CHECKS[@]})) || CHECKS=("${ALL[@]}")

command -v sipp >/dev/null || { echo "sipp not found" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kamailio-lab-test.XXXXXX")
IP=127.0.0.1
PIDS=()
FAILED=0

cleanup_procs() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PIDS=()
}
trap 'cleanup_procs; ((KEEP)) || rm -rf "$WORK"' EXIT

# bg NAME CMD... : run in the background in the check's dir, output to NAME.out
bg() { local n=$1; shift; (cd "$D" && exec "$@") >"$D/$n.out" 2>&1 & PIDS+=($!); }

# gateway NAME PORT SCENARIO [sipp args]
gateway() {
    local n=$1 port=$2 sc=$3; shift 3
    bg "$n" timeout 90 sipp -sf "$HERE/$sc" -i $IP -p "$port" -nostdin -trace_logs \
        -trace_msg -log_file "$D/$n.log" -message_file "$D/$n.msg" "$@"
}

# kamailio GW... : Kamailio on $KP in front of the given gateways
kamailio() {
    local args=() g
    for g in "$@"; do args+=(--gateway "$g"); done
    bg kamailio timeout 120 "$LAB" --config "$CONFIG" --listen "$IP:$KP" --run-dir "$D/run" "${args[@]}"
    for _ in $(seq 50); do
        [[ -S "$D/run/kamailio_ctl" ]] && ds_flags "$IP:$((KP + 1))" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "kamailio did not start" >&2
    return 1
}

# ds_flags ADDR:PORT -> AP / IP / TP ... of set 1 (the probed one) from kamcmd dispatcher.list
ds_flags() {
    kamcmd -s "unix:$D/run/kamailio_ctl" dispatcher.list 2>/dev/null |
        awk -v u="sip:$1" '$1=="ID:" {set = $2} set == 1 && $1=="URI:" {hit = (index($2, u) == 1)} set == 1 && hit && $1=="FLAGS:" {print $2; exit}'
}

# wait_flags ADDR:PORT PREFIX SECONDS
wait_flags() {
    local i
    for i in $(seq $(($3 * 10))); do
        [[ "$(ds_flags "$1")" == "$2"* ]] && return 0
        sleep 0.1
    done
    return 1
}

# caller NAME SCENARIO PORT [sipp args]  (foreground; returns sipp's status)
caller() {
    local n=$1 sc=$2 port=$3; shift 3
    (cd "$D" && timeout 30 sipp "$IP:$KP" -sf "$HERE/$sc" -i $IP -p "$port" -m 1 -nostdin \
        -trace_logs -trace_msg -log_file "$D/$n.log" -message_file "$D/$n.msg" "$@") \
        >"$D/$n.out" 2>&1
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
has() { grep -q -- "$2" "$D/$1" 2>/dev/null; }
count() { grep -c -- "$2" "$D/$1" 2>/dev/null || true; }

# Each check_* sets MSG and returns 0 (pass) or 1.
check_call() {   # (a) Record-Route, ACK and BYE through Kamailio, priority order
    gateway gwA $((KP + 1)) gw-uas.xml; gateway gwB $((KP + 2)) gw-uas.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    caller uac caller-uac.xml $((KP + 10)) -s 12345 || { MSG="caller's call failed"; return 1; }
    has uac.log '200 for .* carried Record-Route: <sip:127.0.0.1:'"$KP"';lr>' || { MSG="no Record-Route in 200"; return 1; }
    has gwA.log 'ACK .* arrived' && has gwA.log 'BYE .* arrived' || { MSG="ACK/BYE did not reach gateway A"; return 1; }
    has gwB.log INVITE && { MSG="gateway B (lower priority) got the call"; return 1; }
    MSG="INVITE/200 record-routed, ACK+BYE relayed to gateway A"
}

check_tcp() {    # (a) over TCP: caller on TCP, gateway A on TCP
    gateway gwA $((KP + 1)) gw-uas.xml -t t1; gateway gwB $((KP + 2)) gw-uas.xml
    kamailio "$IP:$((KP + 1));transport=tcp" "$IP:$((KP + 2))" || return 1
    wait_flags "$IP:$((KP + 1))" AP 3 || { MSG="TCP gateway not probed active"; return 1; }
    caller uacu caller-uac.xml $((KP + 10)) -s 12345 || { MSG="UDP caller -> TCP gateway failed"; return 1; }
    caller uact caller-uac.xml $((KP + 11)) -s 12345 -t t1 || { MSG="TCP caller -> TCP gateway failed"; return 1; }
    [[ $(count gwA.log 'BYE .* arrived') == 2 ]] || { MSG="gateway A did not get both BYEs"; return 1; }
    MSG="UDP and TCP callers to a TCP gateway (double Record-Route on UDP->TCP)"
}

check_failover503() {   # (b) A answers 503 to everything: INVITE fails over to B
    gateway gwA $((KP + 1)) gw-503.xml; gateway gwB $((KP + 2)) gw-uas.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    # A is still "active" (not probed yet): the INVITE goes to A, gets 503.
    local t0; t0=$(now)
    caller uac1 caller-uac.xml $((KP + 10)) -s 12345 || { MSG="call failed"; return 1; }
    local t; t=$(elapsed "$t0")
    has gwA.log 'INVITE refused with 503' || { MSG="A never saw the INVITE (no failover exercised)"; return 1; }
    has gwB.log 'BYE .* arrived' || { MSG="call did not end on B"; return 1; }
    [[ "$(ds_flags "$IP:$((KP + 1))")" == I* ]] || { MSG="A not marked inactive"; return 1; }
    # The next call goes straight to B.
    caller uac2 caller-uac.xml $((KP + 11)) -s 12345 || { MSG="second call failed"; return 1; }
    [[ $(count gwA.log 'INVITE refused') == 1 ]] || { MSG="second call tried A again"; return 1; }
    MSG="503 from A -> B at once (whole call incl. 0.5 s talk: ${t} s); A marked inactive, next call straight to B"
}

check_silent() {   # (b) A never answers: failover after GW_FR_TIMER (1.5 s)
    gateway gwA $((KP + 1)) gw-silent.xml; gateway gwB $((KP + 2)) gw-uas.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    local t0; t0=$(now)
    caller uac caller-uac.xml $((KP + 10)) -s 12345 || { MSG="call failed"; return 1; }
    local t; t=$(elapsed "$t0")
    has gwA.log 'swallowed' || { MSG="A never saw the INVITE"; return 1; }
    has gwB.log 'BYE .* arrived' || { MSG="call did not end on B"; return 1; }
    has kamailio.out 'sent no reply to INVITE' || { MSG="no timeout failover logged"; return 1; }
    awk -v t="$t" 'BEGIN {exit !(t < 3.5)}' || { MSG="too slow: ${t} s"; return 1; }
    MSG="silent A -> B after the 1.5 s timer (whole call incl. 0.5 s talk: ${t} s)"
}

check_alldown() {   # both standby: probes take both out, Kamailio answers 503 itself
    gateway gwA $((KP + 1)) gw-503.xml; gateway gwB $((KP + 2)) gw-503.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    wait_flags "$IP:$((KP + 1))" I 5 && wait_flags "$IP:$((KP + 2))" I 5 ||
        { MSG="probes did not take the 503 gateways out"; return 1; }
    caller uac caller-expect-503.xml $((KP + 10)) -s 12345 || { MSG="no 503 + Retry-After"; return 1; }
    # No probed gateway is active: the fallback set tries each (a standby
    # would hold the call until it takes over); both refuse here.
    has gwA.log 'INVITE refused' && has gwB.log 'INVITE refused' ||
        { MSG="the fallback set was not tried"; return 1; }
    MSG="OPTIONS 503 -> both inactive (IP) within 5 s; the fallback set tries both; caller gets 503 + Retry-After from Kamailio"
}

check_recovery() {   # A standby (503), then becomes active (200): back in rotation
    gateway gwA $((KP + 1)) gw-503.xml; local a503=${PIDS[-1]}
    gateway gwB $((KP + 2)) gw-uas.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    wait_flags "$IP:$((KP + 1))" I 5 || { MSG="A not taken out"; return 1; }
    caller uac1 caller-uac.xml $((KP + 10)) -s 12345 || { MSG="call while A standby failed"; return 1; }
    has gwB.log 'BYE .* arrived' || { MSG="call while A standby did not go to B"; return 1; }
    kill "$a503"; wait "$a503" 2>/dev/null
    gateway gwA2 $((KP + 1)) gw-uas.xml
    local t0; t0=$(now)
    wait_flags "$IP:$((KP + 1))" A 5 || { MSG="A not back after answering 200"; return 1; }
    local t; t=$(elapsed "$t0")
    caller uac2 caller-uac.xml $((KP + 11)) -s 12345 || { MSG="call after recovery failed"; return 1; }
    has gwA2.log 'BYE .* arrived' || { MSG="call after recovery did not go to A"; return 1; }
    MSG="A (503) out, calls to B; A answers 200 -> active again after ${t} s, calls to A"
}

check_register() {   # (c) Path on relayed REGISTERs, UDP and TCP, and after failover
    gateway gwA $((KP + 1)) gw-503.xml; gateway gwB $((KP + 2)) gw-uas.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    caller regu agent-register.xml $((KP + 15)) -s 8001 || { MSG="UDP REGISTER failed"; return 1; }
    caller regt agent-register.xml $((KP + 16)) -s 8002 -t t1 || { MSG="TCP REGISTER failed"; return 1; }
    has gwA.log '503 to a non-INVITE' || { MSG="first REGISTER did not exercise failover"; return 1; }
    has gwB.log "carried Path: <sip:127.0.0.1:$KP;lr;received=sip:127.0.0.1:$((KP + 15))>" ||
        { MSG="UDP REGISTER without the expected Path"; return 1; }
    has gwB.log "carried Path: <sip:127.0.0.1:$KP;lr;received=sip:127.0.0.1:$((KP + 16))%3Btransport%3Dtcp>" ||
        { MSG="TCP REGISTER without the expected Path"; return 1; }
    MSG="$(grep -m1 -o 'Path: .*' "$D/gwB.log") (UDP; TCP adds transport; kept across failover)"
}

check_gw2agent() {   # (d) gateway INVITEs an agent via preloaded Route; agent's BYE comes back
    gateway gwB $((KP + 2)) gw-uas.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    gateway agent $((KP + 15)) agent-uas.xml -m 1; local ag=${PIDS[-1]}
    sleep 0.3
    caller gwcall gw-calls-agent.xml $((KP + 1)) -key agent_port $((KP + 15)) -key path_params '' ||
        { MSG="gateway's call to the agent failed"; return 1; }
    wait "$ag" || { MSG="agent side failed"; return 1; }
    has agent.log "reached the agent with Record-Route: <sip:127.0.0.1:$KP;lr>" || { MSG="no Record-Route at the agent"; return 1; }
    has gwcall.log "agent's BYE .* arrived, top Via: SIP/2.0/UDP 127.0.0.1:$KP;" || { MSG="BYE did not come back via Kamailio"; return 1; }
    MSG="INVITE with Route: <sip:127.0.0.1:$KP;lr> relayed to the agent, record-routed; agent's BYE back via Kamailio"
}

check_nat() {   # (d') the Path's received= wins over the Contact in the R-URI
    gateway gwB $((KP + 2)) gw-uas.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    gateway agent $((KP + 15)) agent-uas.xml -m 1; local ag=${PIDS[-1]}
    sleep 0.3
    caller gwcall gw-calls-agent.xml $((KP + 1)) -key agent_port $((KP + 19)) \
        -key path_params ";received=sip:127.0.0.1:$((KP + 15))" || { MSG="call failed"; return 1; }
    wait "$ag" || { MSG="agent side failed"; return 1; }
    MSG="R-URI port $((KP + 19)) (nobody), Route received= port $((KP + 15)): delivered to the received= address"
}

check_tcpagent() {   # (c)+(d) softphone on TCP: REGISTER, then rung over that connection
    gateway gwA $((KP + 1)) gw-uas.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    bg agent timeout 30 sipp "$IP:$KP" -sf "$HERE/agent-register-answer.xml" -s 8003 -t t1 \
        -i $IP -p $((KP + 15)) -m 1 -cid_str "agent-tcp-$KP" -nostdin -trace_logs -trace_msg \
        -log_file "$D/agent.log" -message_file "$D/agent.msg"
    local ag=${PIDS[-1]} i path=""
    for i in $(seq 50); do
        path=$(grep -m1 -o 'received=[^>]*' "$D/gwA.log" 2>/dev/null) && break
        sleep 0.1
    done
    [[ "$path" == *transport%3Dtcp ]] || { MSG="no TCP Path at the gateway: '$path'"; return 1; }
    # The gateway (from B's address) rings the agent with the Path as Route.
    caller gwcall gw-calls-agent.xml $((KP + 2)) -cid_str "agent-tcp-$KP" \
        -key agent_port $((KP + 19)) -key path_params ";$path" || { MSG="gateway's call failed"; return 1; }
    wait "$ag" || { MSG="agent side failed"; return 1; }
    has gwcall.log "agent's BYE .* arrived" || { MSG="agent's BYE did not come back"; return 1; }
    MSG="REGISTER over TCP -> Path ;$path; INVITE reached the agent over its own connection; BYE back"
}

check_cancel() {   # CANCEL from the caller reaches the ringing gateway
    gateway gwA $((KP + 1)) gw-ring.xml; gateway gwB $((KP + 2)) gw-uas.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    caller uac caller-cancel.xml $((KP + 10)) -s 12345 || { MSG="caller did not get 200/487"; return 1; }
    has gwA.log 'CANCEL .* arrived' || { MSG="CANCEL not relayed"; return 1; }
    MSG="CANCEL relayed (t_check_trans), 487 back to the caller"
}

check_norelay() {   # forged in-dialog request to a third party: 403; Max-Forwards 0: 483
    gateway gwA $((KP + 1)) gw-uas.xml; gateway gwB $((KP + 2)) gw-uas.xml
    gateway victim $((KP + 19)) gw-uas.xml
    kamailio "$IP:$((KP + 1))" "$IP:$((KP + 2))" || return 1
    caller st stranger-relay.xml $((KP + 10)) -key victim_port $((KP + 19)) || { MSG="expected 403 and 483"; return 1; }
    has victim.log INVITE && { MSG="the forged request reached the third party"; return 1; }
    MSG="forged in-dialog INVITE to a non-gateway: 403; Max-Forwards: 0: 483"
}

n=0
for c in "${CHECKS[@]}"; do
    declare -F "check_$c" >/dev/null || { echo "unknown check: $c" >&2; FAILED=1; continue; }
    D="$WORK/$c"; mkdir -p "$D"
    KP=$((BASE + 20 * n)); n=$((n + 1))
    MSG=""
    if "check_$c"; then
        printf 'PASS  %-11s %s\n' "$c" "$MSG"
    else
        printf 'FAIL  %-11s %s (logs: %s)\n' "$c" "$MSG" "$D"
        FAILED=1; KEEP=1
    fi
    cleanup_procs
done
((KEEP)) && echo "work directory kept: $WORK"
exit $FAILED
