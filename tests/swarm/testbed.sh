#!/usr/bin/env bash
# A Docker Swarm of several engines on this one machine, for the swarm tests (tests/swarm). Each
# node is a dockerd in a network namespace of its own (its own hostname, data root, socket and
# cgroup parent), linked by veth pairs to a bridge in a "switch" namespace: the nodes talk over a
# link of their own (10.213.0.0/24) and reach nothing else. A folder they all see at the same path
# stands in for the organizer's NFS mount; a registry from Debian's docker-registry package on the
# manager carries images to the workers, as an organizer's would (load an image on node 1, then
# make swarm-push there).
#
#   tests/swarm/testbed.sh up [NODES]     NODES engines (default 3), node 1 the manager
#   tests/swarm/testbed.sh down           stop and remove everything `up` made
#   tests/swarm/testbed.sh kill N         node N dies: its engine and every process it ran, at once
#   tests/swarm/testbed.sh load N IMAGE...   copy images from this machine's engine to node N
#   tests/swarm/testbed.sh host N         the DOCKER_HOST of node N
#
# This machine is on the link too, as 10.213.0.1 (the veth NAME-host): the tests reach the class
# server's proxy on the manager as a student's browser would.
# Names and places (DLAB_SWARM_NAME, default dlabsw): namespaces NAME-switch and NAME-1..N, cgroups
# NAME-1..N, the link NAME-host, folders /var/lib/NAME and /run/NAME. `down` removes those, by name and by recorded pid,
# and nothing else. Node N gets fake GPUs when DLAB_SWARM_GPUS="N:ID,ID" (generic resources); the nodes in
# DLAB_SWARM_PLAIN="N ..." are as a server fresh from its installation: no no-new-privileges in
# daemon.json, and an empty folder of their own where the others share one.
# Needs root, iproute2, util-linux and docker-registry (scripts/install-test-tools.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

NAME=${DLAB_SWARM_NAME:-dlabsw}
STATE=/var/lib/$NAME   # the engines' data roots, the registry's storage, the shared homes
RUN=/run/$NAME         # sockets, pid files, exec roots, logs
LINK=10.213.0          # node N is $LINK.(10+N); the registry listens on the manager's :5000
REGISTRY=$LINK.11:5000

die() { say "swarm test bed: $*"; exit 1; }
node_ip() { echo "$LINK.$((10 + $1))"; }
node_host() { echo "unix://$RUN/node-$1/docker.sock"; }
on() { local n=$1; shift; docker -H "$(node_host "$n")" "$@"; }
nodes() { for dir in "$RUN"/node-*; do [ -d "$dir" ] && echo "${dir##*-}"; done | sort -n; }

# The script each node's engine starts under, inside its namespace: `ip netns exec` mounted a
# sysfs of the namespace over /sys, which hides the cgroup hierarchies, so they are mounted again
# (in the node's private mount namespace); a tmpfs over /run/containerd makes dockerd start a
# containerd of its own rather than share the machine's; a folder of the node's own over /etc/docker
# gives it its own engine key (and so its own engine ID).
node_init='
set -e
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
while read -r dir type options; do
  mkdir -p "$dir"; mount -t "$type" -o "$options" cgroup "$dir"
done <<<"$CGROUPS"
mkdir -p /run/containerd && mount -t tmpfs tmpfs /run/containerd
if [ -n "$PLAIN" ]; then mount -t tmpfs tmpfs "$SHARED"; fi
hostname "$NODE"
mkdir -p /etc/docker "$ETC" && mount --bind "$ETC" /etc/docker
exec dockerd --config-file "$CONFIG"'

start_node() {
  local n=$1 ns=$NAME-$1 dir=$RUN/node-$1 resources=() plain="" nnp=true
  if [[ " ${DLAB_SWARM_PLAIN:-} " == *" $n "* ]]; then plain=1 nnp=false; fi
  mkdir -p "$dir" "$STATE/node-$n"
  ip netns add "$ns"
  ip link add "$ns" type veth peer name eth0 netns "$ns"
  ip link set "$ns" netns "$NAME-switch"
  ip -n "$NAME-switch" link set "$ns" master br0 up
  ip -n "$ns" addr add "$(node_ip "$n")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  if [[ ${DLAB_SWARM_GPUS:-} == "$n:"* ]]; then
    IFS=, read -ra ids <<<"${DLAB_SWARM_GPUS#*:}"
    for id in "${ids[@]}"; do resources+=("\"NVIDIA-GPU=$id\""); done
  fi
  cat >"$dir/daemon.json" <<EOF
{
  "data-root": "$STATE/node-$n",
  "exec-root": "$dir/exec",
  "pidfile": "$dir/docker.pid",
  "hosts": ["$(node_host "$n")"],
  "cgroup-parent": "$ns",
  "insecure-registries": ["$REGISTRY"],
  "no-new-privileges": $nnp,
  "node-generic-resources": [$(IFS=,; echo "${resources[*]}")],
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "3"}
}
EOF
  CGROUPS=$(awk '$3 ~ /^cgroup2?$/ {print $2, $3, $4}' /proc/self/mounts) NODE=$ns CONFIG=$dir/daemon.json ETC=$dir/etc PLAIN=$plain SHARED=$STATE/shared \
    setsid ip netns exec "$ns" unshare --uts bash -c "$node_init" >"$dir/dockerd.log" 2>&1 </dev/null &
  local engine=$!
  for _ in $(seq 1 60); do
    on "$n" info >/dev/null 2>&1 && return 0
    kill -0 "$engine" 2>/dev/null || break  # it has ended: no use waiting
    sleep 0.5
  done
  tail -20 "$dir/dockerd.log" >&2
  die "node $n's engine did not answer (its log: $dir/dockerd.log)"
}

start_registry() {
  mkdir -p "$STATE/registry"
  cat >"$RUN/registry.yml" <<EOF
version: 0.1
storage:
  filesystem: {rootdirectory: $STATE/registry}
http:
  addr: $REGISTRY
EOF
  setsid ip netns exec "$NAME-1" docker-registry serve "$RUN/registry.yml" >"$RUN/registry.log" 2>&1 </dev/null &
  echo $! >"$RUN/registry.pid"
  for _ in $(seq 1 40); do
    ip netns exec "$NAME-1" bash -c "exec 3<>/dev/tcp/${REGISTRY%:*}/${REGISTRY#*:}" 2>/dev/null && return 0
    sleep 0.25
  done
  die "the registry did not listen on $REGISTRY (its log: $RUN/registry.log)"
}

up() {
  local count=${1:-3}
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces and engines of its own)"
  [[ $count =~ ^[1-9]$ ]] || die "NODES is a number from 1 to 9, not '$count'"
  for command in ip unshare docker-registry dockerd; do
    command -v "$command" >/dev/null || die "$command is missing: run scripts/install-test-tools.sh (as root)"
  done
  [ -e "/run/netns/$NAME-switch" ] && die "a test bed named $NAME is up already: tests/swarm/testbed.sh down first"
  mkdir -p "$RUN" "$STATE/shared"
  ip netns add "$NAME-switch"
  ip -n "$NAME-switch" link add br0 type bridge
  ip -n "$NAME-switch" link set br0 up
  ip link add "$NAME-host" type veth peer name host netns "$NAME-switch"
  ip -n "$NAME-switch" link set host master br0 up
  ip addr add "$LINK.1/24" dev "$NAME-host"
  ip link set "$NAME-host" up
  for n in $(seq 1 "$count"); do start_node "$n" & done
  wait  # every engine answers (or the script has said which did not)
  for n in $(seq 1 "$count"); do on "$n" info >/dev/null 2>&1 || die "node $n did not start"; done
  # 10.214.0.0/16 for the overlay networks: addresses of the test bed's own, inside the nodes.
  on 1 swarm init --advertise-addr "$(node_ip 1)" --default-addr-pool 10.214.0.0/16 --dispatcher-heartbeat 1s >/dev/null
  local token; token=$(on 1 swarm join-token -q worker)
  for n in $(seq 2 "$count"); do
    on "$n" swarm join --token "$token" --advertise-addr "$(node_ip "$n")" "$(node_ip 1):2377" >/dev/null &
  done
  wait
  start_registry
  say "swarm test bed up: $count nodes (manager: DOCKER_HOST=$(node_host 1)), registry $REGISTRY, shared folder $STATE/shared"
}

# kill_cgroup CGROUP: every process in the node's containers (cgroup-parent NAME-N), at once.
kill_cgroup() {
  local cg pids
  for cg in /sys/fs/cgroup/pids/"$1" /sys/fs/cgroup/memory/"$1"; do
    [ -d "$cg" ] || continue
    mapfile -t pids < <(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
    [ ${#pids[@]} -eq 0 ] || kill -9 "${pids[@]}" 2>/dev/null || true
  done
}

kill_node() {
  local n=$1 ns=$NAME-$1
  [ -e "/run/netns/$ns" ] || die "there is no node $n"
  kill_cgroup "$ns"
  ip netns pids "$ns" | xargs -r kill -9 2>/dev/null || true  # the engine, its containerd and shims
  kill_cgroup "$ns"
  ip -n "$ns" link set eth0 down 2>/dev/null || true
}

down() {
  local n pid ns cg
  # A clean stop first: each engine removes its containers (and so their mounts) as it goes.
  for n in $(nodes); do
    pid=$(cat "$RUN/node-$n/docker.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && on "$n" info >/dev/null 2>&1; then
      on "$n" swarm leave --force >/dev/null 2>&1 || true
      on "$n" ps -aq | xargs -r timeout 60 docker -H "$(node_host "$n")" rm -f >/dev/null 2>&1 || true
      kill "$pid" 2>/dev/null || true
    fi
  done
  if [ -f "$RUN/registry.pid" ]; then kill "$(cat "$RUN/registry.pid")" 2>/dev/null || true; fi
  for _ in $(seq 1 40); do
    [ -z "$(for ns in $(ip netns list | awk '{print $1}' | grep -E "^$NAME-[0-9]+$"); do ip netns pids "$ns"; done)" ] && break
    sleep 0.5
  done
  # Then whatever is left: by name only (our namespaces, our cgroups).
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$NAME-([0-9]+|switch)$"); do
    kill_cgroup "$ns"
    ip netns pids "$ns" | xargs -r kill -9 2>/dev/null || true
    sleep 0.2
    ip netns del "$ns"
  done
  ip link del "$NAME-host" 2>/dev/null || true  # gone with the switch, unless that was left half made
  for cg in /sys/fs/cgroup/*/"$NAME"-[0-9]*; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$RUN" "$STATE"
  say "swarm test bed $NAME removed"
}

load() {
  local n=$1; shift
  docker save "$@" | on "$n" load -q >/dev/null
}


case ${1:-} in
  up) up "${2:-3}" ;;
  down) down ;;
  kill) kill_node "${2:?which node}" ;;
  load) shift; load "$@" ;;
  host) node_host "${2:?which node}" ;;
  *) die "usage: $0 up [NODES] | down | kill N | load N IMAGE... | host N" ;;
esac
