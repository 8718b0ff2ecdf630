#!/usr/bin/env bash
# nats-cluster.sh start DIR [NODES] | stop DIR | status DIR
#
# A JetStream cluster of NODES (default 3; 1 for a single server) nats-servers on free 127.0.0.1
# ports, for people and shell tests: configs from Config/fleet/*.template, data under DIR, one
# PID file per node. `start` waits until JetStream has a meta leader, then prints the client URLs
# (one line, comma separated) and writes DIR/env (NATS_URLS, the users' passwords) to source.
# `stop` stops every node by its PID (SIGTERM, SIGKILL after 5 s). Never touches the nats-server
# that Debian's package runs as a systemd unit.
#
# FLEET_COMMUNITY (default xfl) and FLEET_CONTROLLERS (default "ctl-1 ctl-2") name the community
# and its controller users; FLEET_TLS=1 puts TLS on the client ports (a CA and a server certificate
# made with openssl in DIR/tls; clients trust DIR/tls/ca.pem).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
templates="$here/Config/fleet"
server=${NATS_SERVER:-/usr/sbin/nats-server}

usage() { echo "usage: $0 start DIR [NODES] | stop DIR | status DIR" >&2; exit 2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

random_password() {
    head -c 18 /dev/urandom | base64 | tr -d '/+=\n'
}

# fill TEMPLATE KEY=VALUE...: the template with each {{KEY}} replaced (values may hold anything but newlines).
fill() {
    local text
    text=$(cat "$1")
    shift
    local pair key value
    for pair in "$@"; do
        key=${pair%%=*}
        value=${pair#*=}
        text=${text//"{{$key}}"/$value}
    done
    printf '%s\n' "$text"
}

meta_leader() {  # meta_leader MONITOR_PORT: the meta leader's name as the node sees it (a single server: its own), or nothing
    curl -fsS --max-time 1 "http://127.0.0.1:$1/jsz" 2>/dev/null | python3 -c '
import json, sys
jsz = json.load(sys.stdin)
meta = jsz.get("meta_cluster")
print((meta or {}).get("leader") or "" if meta is not None else (jsz.get("server_name") or "standalone" if jsz.get("config") else ""))
' 2>/dev/null || true
}

start() {
    local dir=$1 nodes=${2:-3}
    [[ -x "$server" ]] || { echo "nats-cluster: $server not found (Scripts/setup.sh --tests installs nats-server)" >&2; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if compgen -G "$dir/n*.pid" >/dev/null; then echo "nats-cluster: $dir already has PID files: stop it first" >&2; exit 1; fi
    local community=${FLEET_COMMUNITY:-xfl}
    local controllers=${FLEET_CONTROLLERS:-ctl-1 ctl-2}

    local office_password sys_password users="" id pw
    office_password=$(random_password)
    sys_password=$(random_password)
    {
        echo "NATS_COMMUNITY=$community"
        echo "NATS_OFFICE_USER=office"
        echo "NATS_OFFICE_PASSWORD=$office_password"
        echo "NATS_SYS_PASSWORD=$sys_password"
    } >"$dir/env.tmp"
    for id in $controllers; do
        pw=$(random_password)
        users+=$(fill "$templates/controller-user.conf.template" "COMMUNITY=$community" "CONTROLLER_ID=$id" "CONTROLLER_PASSWORD=$pw")$'\n'
        echo "NATS_PASSWORD_${id//[^A-Za-z0-9]/_}=$pw" >>"$dir/env.tmp"
    done
    fill "$templates/accounts.conf.template" "COMMUNITY=$community" "COMMUNITY_ACCOUNT=COMMUNITY_$community" \
        "OFFICE_PASSWORD=$office_password" "SYS_PASSWORD=$sys_password" "CONTROLLER_USERS=$users" >"$dir/accounts.conf"

    local tls="" scheme=nats
    if [[ "${FLEET_TLS:-0}" == 1 ]]; then
        mkdir -p "$dir/tls"
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=fleet test CA" \
            -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/tls/server.key" \
            -out "$dir/tls/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/tls/san.ext"
        openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" -CAcreateserial \
            -days 30 -extfile "$dir/tls/san.ext" -out "$dir/tls/server.pem" 2>/dev/null
        tls="tls { cert_file: \"$dir/tls/server.pem\", key_file: \"$dir/tls/server.key\", timeout: 2 }"
        scheme=tls
    fi

    local -a client=() monitor=() route=()
    local i
    for ((i = 1; i <= nodes; i++)); do
        client[i]=$(free_port); monitor[i]=$(free_port); route[i]=$(free_port)
    done
    local urls=""
    for ((i = 1; i <= nodes; i++)); do
        local cluster="" routes="" j
        if ((nodes > 1)); then
            for ((j = 1; j <= nodes; j++)); do ((j == i)) || routes+="nats-route://127.0.0.1:${route[j]}, "; done
            cluster="cluster { name: fleet, listen: 127.0.0.1:${route[i]}, routes: [ ${routes%, } ] }"
        fi
        mkdir -p "$dir/data/n$i"
        fill "$templates/server.conf.template" "SERVER_NAME=n$i" "HOST=127.0.0.1" "CLIENT_PORT=${client[i]}" \
            "MONITOR_PORT=${monitor[i]}" "STORE_DIR=$dir/data/n$i" "CLUSTER=$cluster" "TLS=$tls" >"$dir/n$i.conf"
        "$server" -c "$dir/n$i.conf" >"$dir/n$i.log" 2>&1 &
        echo $! >"$dir/n$i.pid"
        echo "${monitor[i]}" >"$dir/n$i.monitor"
        urls+="$scheme://127.0.0.1:${client[i]},"
    done
    urls=${urls%,}
    echo "NATS_URLS=$urls" >>"$dir/env.tmp"
    mv "$dir/env.tmp" "$dir/env"

    local deadline=$((SECONDS + 30)) leader
    while ((SECONDS < deadline)); do
        leader=$(meta_leader "${monitor[1]}")
        if [[ -n "$leader" ]]; then
            echo "$urls"
            return 0
        fi
        for ((i = 1; i <= nodes; i++)); do
            kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null || { echo "nats-cluster: n$i ended; see $dir/n$i.log" >&2; stop "$dir"; exit 1; }
        done
        sleep 0.1
    done
    echo "nats-cluster: no JetStream meta leader within 30 s; see $dir/n*.log" >&2
    stop "$dir"
    exit 1
}

stop() {
    local dir=$1 pidfile pid
    for pidfile in "$dir"/n*.pid; do
        [[ -e "$pidfile" ]] || continue
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            kill -CONT "$pid" 2>/dev/null || true   # a paused node cannot act on SIGTERM
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
}

status() {
    local dir=$1 pidfile name
    for pidfile in "$dir"/n*.pid; do
        [[ -e "$pidfile" ]] || continue
        name=$(basename "$pidfile" .pid)
        if kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "$name running, meta leader: $(meta_leader "$(cat "$dir/$name.monitor")")"
        else
            echo "$name stopped"
        fi
    done
}

case "${1:-}" in
    start) [[ $# -ge 2 ]] || usage; start "$2" "${3:-3}" ;;
    stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
    status) [[ $# -eq 2 ]] || usage; status "$2" ;;
    *) usage ;;
esac
