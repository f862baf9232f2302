#!/usr/bin/env bash
# Start or stop a throwaway SSH host that boots real systemd: systemd-nspawn on an
# overlay of a read-only rootfs (see rootfs.sh), inside a network namespace of its own
# joined to this machine by a veth pair. Nothing outside that namespace is reachable
# from the host, and its only address is the one given here.
#
# usage: nspawn-host.sh up   NAME INDEX ROOTFS STATE_DIR
#        nspawn-host.sh down NAME INDEX ROOTFS STATE_DIR
#   NAME   short host name (also the systemd machine name)
#   INDEX  1..250, picks the /30 subnet 10.231.INDEX.0: this side .1, the host .2
#   STATE_DIR  per-host scratch folder: overlay layers, SSH key, console log
# After `up`, root@10.231.INDEX.2 accepts the key STATE_DIR/id_ed25519.
# `down` is safe to call on a host that is half up or already down.
#
# The test network: each host's default route points at this machine, which forwards
# between the hosts' veth pairs (per-interface forwarding; the global ip_forward is left
# alone), so hosts reach each other at 10.231.M.2. A policy rule refuses everything else
# that arrives from a host: nothing beyond 10.231.0.0/16 and this machine is reachable.
# env: ANDAMIO_HOST_BIND_RO  space-separated SRC:DST folders bind-mounted read-only into
#                            the host (a wheelhouse staged on this machine, for example)
set -euo pipefail

action=${1:?usage: nspawn-host.sh up|down NAME INDEX ROOTFS STATE_DIR}
name=${2:?NAME missing}
index=${3:?INDEX missing}
rootfs=${4:?ROOTFS missing}
state=${5:?STATE_DIR missing}

if ! [[ $index =~ ^[0-9]+$ ]] || ((index < 1 || index > 250)); then
    echo "INDEX must be 1..250" >&2
    exit 2
fi
netns=andamio-$name
veth_host=anda${index}h # interface names are limited to 15 characters
veth_peer=anda${index}n
host_side=10.231.$index.1
target=10.231.$index.2
merged=$state/merged
boot_timeout=${ANDAMIO_BOOT_TIMEOUT:-120}
rule_pref=$((20000 + 2 * index)) # two policy rules per host, unique per index

log() { echo "nspawn-host.sh[$name]: $*" >&2; }

down() {
    if [[ -f $state/nspawn.pid ]]; then
        local pid
        pid=$(cat "$state/nspawn.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true # nspawn turns SIGTERM into a clean poweroff
            for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then
                log "no clean poweroff after 20 s, killing nspawn $pid"
                kill -KILL "$pid" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            fi
        fi
        rm -f "$state/nspawn.pid"
    fi
    if ip netns list | grep -qw "^$netns"; then
        ip netns del "$netns"
    fi
    ip link del "$veth_host" 2>/dev/null || true
    while ip rule del pref "$rule_pref" 2>/dev/null; do :; done
    while ip rule del pref "$((rule_pref + 1))" 2>/dev/null; do :; done
    if mountpoint -q "$merged"; then
        umount "$merged" 2>/dev/null || umount -l "$merged"
    fi
    rm -rf "$state/upper" "$state/work" "$merged"
}

up() {
    [[ -f $rootfs/.andamio-complete ]] || { log "$rootfs is not a complete rootfs"; exit 1; }
    down # start from nothing, whatever a previous run left
    mkdir -p "$state/upper" "$state/work" "$merged"
    mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$state/upper,workdir=$state/work" "$merged"

    ip netns add "$netns"
    ip link add "$veth_host" type veth peer name "$veth_peer"
    ip link set "$veth_peer" netns "$netns"
    ip addr add "$host_side/30" dev "$veth_host"
    ip link set "$veth_host" up
    ip -n "$netns" addr add "$target/30" dev "$veth_peer"
    ip -n "$netns" link set "$veth_peer" up
    ip -n "$netns" link set lo up
    ip -n "$netns" route add default via "$host_side"
    ip rule add pref "$rule_pref" iif "$veth_host" to 10.231.0.0/16 lookup main
    ip rule add pref "$((rule_pref + 1))" iif "$veth_host" prohibit
    echo 1 >"/proc/sys/net/ipv4/conf/$veth_host/forwarding"

    [[ -f $state/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C "andamio-testbed" -f "$state/id_ed25519"
    install -d -m 700 "$merged/root/.ssh"
    install -m 600 "$state/id_ed25519.pub" "$merged/root/.ssh/authorized_keys"
    echo "$name" >"$merged/etc/hostname"

    # No systemd runs this machine, so nspawn must neither register with machined nor
    # ask for a scope unit.
    local binds=() bind
    for bind in ${ANDAMIO_HOST_BIND_RO:-}; do binds+=("--bind-ro=$bind"); done
    setsid systemd-nspawn --quiet --boot --register=no --keep-unit \
        --directory="$merged" --machine="$name" "${binds[@]}" \
        --network-namespace-path="/run/netns/$netns" \
        </dev/null >"$state/console.log" 2>&1 &
    echo $! >"$state/nspawn.pid"

    local deadline=$((SECONDS + boot_timeout))
    until ip netns exec "$netns" bash -c "exec 3<>/dev/tcp/$target/22" 2>/dev/null; do
        if ! kill -0 "$(cat "$state/nspawn.pid")" 2>/dev/null; then
            log "systemd-nspawn exited during boot; console:"; tail -n 20 "$state/console.log" >&2; down; exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "sshd did not answer within $boot_timeout s; console:"; tail -n 20 "$state/console.log" >&2; down; exit 1
        fi
        sleep 0.2
    done
    echo "$target"
}

case $action in
up) up ;;
down) down ;;
*) echo "unknown action $action" >&2; exit 2 ;;
esac
