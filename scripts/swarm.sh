#!/usr/bin/env bash
# swarm.sh check|push: the class on a Docker Swarm (docs/swarm.md), run on a manager.
#   check  (make swarm-check) is each node ready to run students' servers? A probe runs once on
#          every node, from the students' image with the shared folder (DLAB_SWARM_SHARED) bound
#          in, and says what it found; then, per node: ready, or what is missing and what to do. A
#          ready node gets the label dlab.homes=true (students' servers go only there), a node that
#          is not loses it. Nothing else is changed. Exit 1 when a node is not ready.
#   push   (make swarm-push) the students' images, built here, into the registry the nodes pull
#          from (DLAB_SWARM_REGISTRY), as REGISTRY/IMAGE: the name the hub's services use.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
load_settings
registry=$DLAB_SWARM_REGISTRY

if [ "${1:-}" = push ]; then
  [ -n "$registry" ] || { say "set DLAB_SWARM_REGISTRY in .env: the registry (host:port) every node pulls from (docs/swarm.md)"; exit 2; }
  for local in "$DLAB_IMAGE" "$DLAB_GPU_IMAGE"; do
    if ! docker image inspect "$local" >/dev/null 2>&1; then
      build="make build"; case $local in */legacy:*|legacy:*) build="make build-legacy" ;; esac
      [ "$local" = "$DLAB_IMAGE" ] && { say "$local is not built: run $build, then make swarm-push"; exit 1; }
      continue  # no GPU image built: no GPU profile on the swarm
    fi
    docker tag "$local" "$registry/$local"
    docker push -q "$registry/$local" >/dev/null || {
      say "could not push $registry/$local: is the registry up, and trusted by this engine (insecure-registries or TLS, docs/swarm.md)?"
      exit 1
    }
    say "pushed $registry/$local ($(docker image inspect -f '{{index .RepoDigests 0}}' "$registry/$local"))"
  done
  exit 0
fi
[ "${1:-}" = check ] || { echo "usage: $0 check|push" >&2; exit 2; }

shared=$DLAB_SWARM_SHARED label=dlab.homes image=$(student_image "$DLAB_IMAGE")
[ -n "$shared" ] || { say "set DLAB_SWARM_SHARED in .env: the folder where the class's NFS export is mounted, at the same path on every node"; exit 2; }
[ "$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null)" = "active true" ] || {
  say "this Docker engine is not a swarm manager: run make swarm-check on a manager (docker swarm init, then docker swarm join on the other servers)"
  exit 2
}
[ -d "$shared" ] || { say "DLAB_SWARM_SHARED=$shared is not a folder on this manager: mount the class's NFS export there first"; exit 2; }

# A file only the folder shared with this manager holds: a node that sees it has the same folder.
marker=.dlab-node-check-$(date +%s)-$$
: >"$shared/$marker"
probe=dlab-node-check-$$
cleanup() { docker service rm "$probe" >/dev/null 2>&1 || true; rm -f "$shared/$marker"; }
trap cleanup EXIT
report='nnp=$(sed -n "s/^NoNewPrivs:[[:space:]]*//p" /proc/self/status)'
report+=" shared=\$(test -e /homes/$marker && echo yes || echo no)"
# As the hub does for a new student: root makes a file and gives it to uid 1000, who writes it
# (named after the probe container: the nodes share the folder).
report+=' writable=$(f=/homes/.dlab-write-$(hostname); : >$f 2>/dev/null && chown 1000:100 $f 2>/dev/null && setpriv --reuid 1000 --regid 100 --clear-groups bash -c "echo x >>$f" 2>/dev/null && echo yes || echo no; rm -f $f)'
docker service create --detach --quiet --name "$probe" --mode global --restart-condition none \
  --user root --entrypoint bash --mount "type=bind,source=$shared,target=/homes" \
  --log-driver json-file "$image" -c "echo $report" >/dev/null

# Each node's task ends (complete, or rejected: no folder, no image) within two minutes.
nodes=$(docker node ls --format '{{.ID}}' | wc -l)
for _ in $(seq 1 120); do
  done_tasks=$(docker service ps "$probe" --format '{{.CurrentState}}' | grep -cE '^(Complete|Rejected|Failed|Shutdown)' || true)
  [ "$done_tasks" -ge "$nodes" ] && break
  sleep 1
done

status=0
for id in $(docker node ls --format '{{.ID}}'); do
  host=$(docker node inspect "$id" --format '{{.Description.Hostname}}')
  role=$(docker node inspect "$id" --format '{{.Spec.Role}}, {{.Spec.Availability}}, {{.Status.State}}')
  # GPUs it advertises: one per named NVIDIA-GPU resource, or a count (daemon.json's node-generic-resources)
  gpus=0
  for count in $(docker node inspect "$id" --format '{{range .Description.Resources.GenericResources}}{{with .NamedResourceSpec}}{{if eq .Kind "NVIDIA-GPU"}}1 {{end}}{{end}}{{with .DiscreteResourceSpec}}{{if eq .Kind "NVIDIA-GPU"}}{{.Value}} {{end}}{{end}}{{end}}'); do
    gpus=$((gpus + count))
  done
  task=$(docker service ps "$probe" --no-trunc --filter "node=$id" --format '{{.CurrentState}}|{{.Error}}' | head -1)
  found=$(docker service logs --no-trunc "$probe" 2>/dev/null | grep "@$host " | sed 's/^[^|]*| //' | tail -1 || true)
  missing=()
  case $task in
    Complete*) ;;
    *"bind source path does not exist"*) missing+=("no folder $shared: mount the class's NFS export there") ;;
    *"No such image"*|*"pull access denied"*|*"manifest unknown"*)
      missing+=("no image $image: push it to the registry the nodes use (docs/swarm.md), or docker load it on this node") ;;
    "") missing+=("no probe ran here (the node is down or drained: docker node ls)") ;;
    *) missing+=("the probe did not run: ${task#*|}") ;;
  esac
  if [[ $task == Complete* ]]; then
    [[ $found == *"nnp=1"* ]] || missing+=('no-new-privileges is off: add "no-new-privileges": true to /etc/docker/daemon.json and restart Docker')
    [[ $found == *"shared=yes"* ]] || missing+=("$shared is not the manager's folder (a file made there is not seen): mount the class's NFS export at $shared")
    [[ $found == *"writable=yes"* ]] || missing+=("root on this node cannot make a file in $shared and give it to uid 1000, who writes it: export the folder to the nodes with no_root_squash")
  fi
  if [ ${#missing[@]} -eq 0 ]; then
    docker node update --label-add "$label=true" "$id" >/dev/null
    say "node $host ($role, $gpus GPU): ready for students (label $label=true)"
  else
    docker node update --label-rm "$label" "$id" >/dev/null 2>&1 || true
    say "node $host ($role): NOT ready, gets no student until fixed and checked again:"
    for item in "${missing[@]}"; do say "  - $item"; done
    status=1
  fi
done
exit $status
