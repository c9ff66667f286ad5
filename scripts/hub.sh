#!/usr/bin/env bash
# hub.sh up|down|status|prestart|reset-admin: the class server (compose.yaml). `make up` / `make down` call it.
#   up    start the hub (images must be built: make up builds them first), wait until it answers,
#         print the URL, and the admin's first password while it has not been changed;
#   down  stop the hub, which stops every student's server; every volume is kept;
#   prestart [NAME...]  start every approved account's server (or these) now, one after another
#            (hub/dlab_hub/prestart.py);
#   reset-admin  a new first password for the admin (a lost one), printed like on first start;
#   accounts ROSTER  a class's accounts from a CSV roster (hub/dlab_hub/accounts.py), approved, each with
#                    a first password on a sheet written beside the roster (ROSTER-passwords.html);
#   remove-accounts ROSTER [keep|archive|delete]  remove them at the end of a course; their homes
#                    kept (default), archived to backups/ and then deleted, or deleted;
#   signups [pending|ADDRESS]  the sign-ups waiting for approval and the accounts made by sign-up,
#                    by address; with an argument, remove the waiting ones or an address's accounts;
#   message [TEXT]   a message on every hub page (empty: none); no one's server restarts;
#   link REPO [BRANCH] [PATH]  the nbgitpuller link that puts REPO into each student's home.
# Settings: .env beside compose.yaml (see .env.example), or the file DLAB_ENV_FILE names.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# Every setting, checked against hub/dlab_hub/settings.py before anything is touched: a wrong one
# stops make up here, and the running class goes on as it was. compose.yaml takes them from the
# environment (it has no defaults of its own).
load_settings
compose=(docker compose)
prefix=$DLAB_PREFIX
shared=$DLAB_SWARM_SHARED  # set: the class on a Docker Swarm (docs/swarm.md)
if [ -n "$shared" ]; then compose=(docker compose -f compose.yaml -f compose.swarm.yaml); fi
port=$DLAB_HUB_PORT
hub=$prefix-hub
proxy=$prefix-proxy

# HTTPS: the organizer's certificate (DLAB_SSL_CERT, full chain) and key (DLAB_SSL_KEY) are read
# here, by whoever runs make up, and written into the proxy's volume, readable by the proxy (and,
# read-only, the hub) alone: a key that only root can read still works, and no key ever enters an image.
tls_files() {  # check|install CERT KEY
  local volume=()
  [ "$1" = install ] && volume=(-v "$prefix-proxy-secrets:/srv/proxy")
  { base64 -w0 "$2"; echo; base64 -w0 "$3"; echo; } | docker run --rm -i --network none --user 1001 \
      "${volume[@]}" --entrypoint /opt/venv/bin/python dlab/hub:latest -c '
import base64, os, ssl, sys, tempfile
cert, key = (base64.b64decode(line) for line in sys.stdin.read().split())
folder = "/srv/proxy" if sys.argv[1] == "install" else tempfile.mkdtemp()
os.makedirs(folder, mode=0o700, exist_ok=True)
paths = {f"{folder}/ssl-cert.pem": cert, f"{folder}/ssl-key.pem": key}
for path, data in paths.items():
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
try:
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*(p + ".new" for p in paths))
except (ssl.SSLError, ValueError) as error:
    sys.exit(f"dlab: the certificate and key are not a PEM certificate with its own private key ({error})")
changed = any(not os.path.exists(p) or open(p, "rb").read() != data for p, data in paths.items())
for path in paths:
    os.replace(path + ".new", path)
print("changed" if changed else "same")
' "$1"
}

install_certificate() {
  local cert=$DLAB_SSL_CERT key=$DLAB_SSL_KEY
  [ -n "$key" ] || { say "DLAB_SSL_CERT is set but DLAB_SSL_KEY is not: set both in $env_file"; exit 1; }
  for file in "$cert" "$key"; do
    [ -r "$file" ] || { say "cannot read $file (DLAB_SSL_CERT/DLAB_SSL_KEY in $env_file): check the path, or run make up as a user who can read it"; exit 1; }
  done
  # Both files go through a pipe (base64, one per line) into the hub image's Python, whose ssl
  # module checks that the key belongs to the certificate: first in a scratch folder, so that a
  # wrong pair stops here with the running class untouched; then into the proxy's volume.
  local changed
  tls_files check "$cert" "$key" >/dev/null \
    || { say "DLAB_SSL_CERT=$cert and DLAB_SSL_KEY=$key: fix them in $env_file, then make up again"; exit 1; }
  if ! docker volume inspect "$prefix-proxy-secrets" >/dev/null 2>&1; then
    "${compose[@]}" create proxy 2>/dev/null  # first start: its volume, made by compose as always
  fi
  changed=$(tls_files install "$cert" "$key")
  # A renewed certificate needs a proxy restart, then a hub restart that gives the new proxy its
  # routes back (students' servers keep running through both).
  if [ "$changed" = changed ]; then recreate=(--force-recreate); fi
}
recreate=()

# The engine this script talks to (DOCKER_HOST, or the default socket) is the one the hub gets.
socket=/var/run/docker.sock
case ${DOCKER_HOST:-} in
  "") ;;
  unix://*) socket=${DOCKER_HOST#unix://} ;;
  *) say "DOCKER_HOST=$DOCKER_HOST: run make up on the machine of the engine (its unix socket), not over the network"; exit 1 ;;
esac
export DLAB_DOCKER_SOCKET=$socket
[ -S "$socket" ] || { say "no Docker engine at $socket: run \`make docker\` (as root), then \`make up\` again"; exit 1; }
docker version >/dev/null 2>&1 || {
  say "the Docker engine does not answer at $socket: start it (systemctl start docker, or \`make docker\` as root)"
  say "(as a user other than root: be in the docker group, then log in again)"
  exit 1
}
# The class's address, as students type it (printed by up, on the password sheets, in links).
host=$(hostname -f 2>/dev/null || hostname)
scheme=http; [ -n "$DLAB_SSL_CERT" ] && scheme=https
class_url=${DLAB_SUBDOMAIN_HOST:-${scheme}://${host}:${port}}
hub_running() {
  [ -n "$(docker ps -q --filter "name=^${hub}$")" ] || { say "the hub is not running: make up first"; exit 1; }
}
roster_file() {
  [ -n "${1:-}" ] || { say "which roster? make ${2} ROSTER=class.csv (one student a line: username[,name[,email]])"; exit 2; }
  [ -f "$1" ] && [ -r "$1" ] || { say "cannot read the roster $1: check the path"; exit 2; }
}

# The hub joins the socket's group: its only privilege.
DOCKER_GID=$(stat -c %g "$socket")
export DOCKER_GID

# On a swarm: the students' servers are services; their image is REGISTRY/IMAGE (make swarm-push).
student_image=$(student_image "$DLAB_IMAGE")
swarm_services() { docker service ls -q --filter "label=org.dlab.hub=$prefix"; }

# On a swarm: this engine is a manager, and the shared folder holds the class's folders, made by
# root (the hub may not chown): homes/ (each student's made at their first start), course/ and
# handin/ owned by the hub (uid 1001) and the students' group, data/ for make data.
swarm_up() {
  [ "$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null)" = "active true" ] || {
    say "DLAB_SWARM_SHARED is set but this Docker engine is not a swarm manager: run make up on a manager (docs/swarm.md), or empty DLAB_SWARM_SHARED for one machine"
    exit 1
  }
  [ -d "$shared" ] || { say "DLAB_SWARM_SHARED=$shared is not a folder here: mount the class's NFS export there (docs/swarm.md)"; exit 1; }
  docker run --rm --user root --network none --cap-drop ALL --cap-add CHOWN --cap-add FOWNER --cap-add FSETID \
      --security-opt no-new-privileges -v "$shared:/shared" --entrypoint sh dlab/hub:latest -c '
    install -d -m 0755 /shared/homes
    install -d -o 1001 -g 100 /shared/course /shared/data /shared/handin
    chmod 2775 /shared/course /shared/data && chmod 2770 /shared/handin' \
    || { say "could not make the class's folders in $shared: root on this manager must own files there (no_root_squash)"; exit 1; }
}

# Docker 20.10 drops a node's attachment to the class network with its last task on it, and then
# rejects the next task placed there ("node is missing network attachments"): a small service on
# every ready node keeps each attached (docs/swarm.md).
swarm_anchor() {
  docker service inspect "$prefix-anchor" >/dev/null 2>&1 && return 0
  docker service create --detach --quiet --name "$prefix-anchor" --mode global --label "org.dlab.hub=$prefix" \
    --network "$DLAB_NETWORK" --constraint node.labels.dlab.homes==true --limit-memory 64M --user 1000 \
    --read-only --cap-drop ALL --no-healthcheck --log-driver json-file --log-opt max-size=1m --entrypoint sleep "$student_image" infinity >/dev/null
}

# A class an earlier release made: its database to this release's JupyterHub schema, in a one-off
# container of the new hub image (dlab_hub.upgrade), while no hub runs on it. The copy it keeps goes
# back on any failure, and the hub that ran starts again, as it was.
upgrade_database() {
  docker volume inspect "$prefix-hub-state" >/dev/null 2>&1 || return 0  # the class's first start
  local rc=0 running
  hub_upgrade check || rc=$?
  [ "$rc" = 0 ] && return 0
  [ "$rc" = 10 ] || { say "could not read the hub's database (above): the class is left as it was"; exit 1; }
  running=$(docker ps -q --filter "name=^${hub}$")
  say "this release's JupyterHub needs the hub's database upgraded: the hub stops meanwhile (students' servers keep running)"
  [ -z "$running" ] || docker stop --time 30 "$hub" >/dev/null
  hub_upgrade run && return 0
  [ -z "$running" ] || { docker start "$hub" >/dev/null && say "the hub that ran is started again"; }
  exit 1
}
hub_upgrade() {
  docker run --rm --network none --user 1001 --cap-drop ALL --security-opt no-new-privileges \
    -v "$prefix-hub-state:/srv/jupyterhub" --entrypoint python dlab/hub:latest -m dlab_hub.upgrade "$1"
}

case ${1:-} in
  up)
    for image in dlab/hub:latest "$student_image"; do
      docker image inspect "$image" >/dev/null 2>&1 || {
        if [ "$image" = "$student_image" ] && [ "$image" != "$DLAB_IMAGE" ]; then
          say "$image is not in the class's registry: run make build, then make swarm-push"
        else
          say "$image is not built: run \`make build\`"
        fi
        exit 1
      }
    done
    if [ -n "$shared" ]; then swarm_up; fi
    # Students' servers write to Docker's disk (their homes are volumes there): refuse to start a
    # class on a nearly full one, rather than let each student meet a failed start.
    root_dir=$(docker info -f '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker)
    free_gb=$(df -P -BG "$root_dir" 2>/dev/null | awk 'NR == 2 { sub("G", "", $4); print $4 }')
    if [ -n "$free_gb" ] && [ "$free_gb" -lt "$DLAB_MIN_FREE_GB" ]; then
      say "only ${free_gb} GB free on $root_dir (Docker's disk, where the students' homes are); dlab wants $DLAB_MIN_FREE_GB GB (DLAB_MIN_FREE_GB)"
      say "free some space (docker system df shows what uses it; docker image prune removes old images), then make up again"
      exit 1
    fi
    # Homes of a fixed size are file systems on loop devices (images/hub/dlab-home): say so now
    # where there are none, rather than at each student's start.
    if [ -z "$shared" ] && [ "$DLAB_HOME_SIZE" != 0 ] && [ ! -e /dev/loop-control ]; then
      say "this machine has no loop devices (/dev/loop-control), which homes of a fixed size (DLAB_HOME_SIZE) need"
      say "set DLAB_HOME_SIZE=0 in $env_file for homes without a size limit (plain Docker volumes), then make up again"
      exit 1
    fi
    if [ -z "$shared" ] && [ "$DLAB_HOME_SIZE" != 0 ]; then warn_if_homes_outgrow_disk "$DLAB_HOMES_DIR"; fi
    # Upgrading from a release whose hub published the class port itself: stop that hub, so that the
    # proxy's container can take the port (students' servers keep running; compose recreates the hub).
    if docker port "$hub" 8000 >/dev/null 2>&1; then
      say "upgrading: the class port moves from the hub's container to the proxy's"
      docker stop --time 30 "$hub" >/dev/null
    fi
    if command -v ss >/dev/null && ss -Hltn "sport = :$port" | grep -q . && \
       [ -z "$(docker ps -q --filter "name=^${proxy}$")" ]; then
      say "port $port is taken by another program: set DLAB_HUB_PORT in .env (see .env.example)"
      exit 1
    fi
    if [ -n "$DLAB_SSL_CERT" ]; then install_certificate; fi
    upgrade_database
    "${compose[@]}" up -d "${recreate[@]}" --wait --wait-timeout 180 proxy hub || {
      say "the class server did not become healthy; the last log lines of its proxy and hub:"
      docker logs --tail 10 "$proxy" 2>&1 | uniq >&2 || true
      docker logs --tail 30 "$hub" 2>&1 | uniq >&2 || true
      "${compose[@]}" stop hub proxy >/dev/null 2>&1 || true   # no restart loop; volumes are kept
      say "stopped it: fix what the log says (settings: $env_file, see .env.example), then make up again"
      exit 1
    }
    if [ -n "$shared" ]; then swarm_anchor; fi
    if [ -n "$DLAB_SUBDOMAIN_HOST" ]; then
      say "the class server is up: ${DLAB_SUBDOMAIN_HOST} (students' servers on its subdomains; proxy on port ${port})"
    else
      say "the class server is up: ${scheme}://${host}:${port} (on this machine: ${scheme}://localhost:${port})"
    fi
    say "admin account: $DLAB_ADMIN; approve sign-ups at ${scheme}://localhost:${port}/hub/authorize"
    if password=$(docker exec "$hub" cat /srv/jupyterhub/secrets/admin-password 2>/dev/null); then
      say "admin's first password: ${password} (change it at /hub/change-password; then this line goes away)"
    fi
    ;;
  down)
    if [ -n "$shared" ]; then
      # The students' services (and the anchor) first: the class network goes only once they have left it.
      services=$(swarm_services)
      # shellcheck disable=SC2086
      [ -z "$services" ] || docker service rm $services >/dev/null
      "${compose[@]}" down --timeout 60 2>/dev/null || true
      for _ in $(seq 1 60); do
        docker network inspect "$DLAB_NETWORK" >/dev/null 2>&1 || break
        docker network rm "$DLAB_NETWORK" >/dev/null 2>&1 || sleep 1
      done
      say "stopped; every home is kept (in $shared/homes)"
      exit 0
    fi
    "${compose[@]}" down --timeout 60
    # The students' servers outlive a hub restart (cleanup_servers = False): stop them now, with
    # the time Jupyter needs to save and shut its kernels down; then remove the containers. Never a volume.
    left=$(docker ps -aq --filter "label=org.dlab.hub=$prefix")
    if [ -n "$left" ]; then
      # shellcheck disable=SC2086
      docker stop --time 30 $left >/dev/null && docker rm -f $left >/dev/null
    fi
    say "stopped; every volume is kept (students' homes: docker volume ls --filter name=${prefix}-home-)"
    ;;
  prestart)
    # Before the class: every approved account's server, started in turn by the hub's prestart
    # service (its token is in the hub's secrets) and held from the idle culler (DLAB_PRESTART_HOLD).
    hub_running
    docker exec "$hub" python -m dlab_hub.prestart now --hold "$DLAB_PRESTART_HOLD" --organizer "$DLAB_ADMIN" "${@:2}"
    ;;
  accounts)
    roster_file "${2:-}" accounts; hub_running
    sheet="${2%.csv}-passwords.html"
    # The sheet holds passwords: only whoever ran make accounts reads it. Written whole or not at all.
    (umask 077; docker exec -i "$hub" python -m dlab_hub.accounts add --url "$class_url" --organizer "$DLAB_ADMIN" \
       --password-length "$(( DLAB_MIN_PASSWORD_LENGTH > 12 ? DLAB_MIN_PASSWORD_LENGTH : 12 ))" \
       < "$2" > "$sheet.part") && rc=0 || rc=$?
    if grep -q 'class="slip"' "$sheet.part"; then
      mv "$sheet.part" "$sheet"
      say "the first passwords: $sheet (print it, hand each student their slip, then delete it)"
    else
      rm -f "$sheet.part"
    fi
    exit $rc
    ;;
  remove-accounts)
    roster_file "${2:-}" remove-accounts; hub_running
    homes=${3:-keep}
    case $homes in keep|archive|delete) ;; *) say "HOMES=$homes: choose keep, archive or delete"; exit 2 ;; esac
    removed=$(docker exec -i "$hub" python -m dlab_hub.accounts remove --organizer "$DLAB_ADMIN" < "$2" 2>&1 \
              | tee /dev/stderr | sed -n 's/^dlab accounts: removed //p') || true
    with_home=()  # the removed accounts that have a home (a server of theirs ever started)
    for name in $removed; do
      if docker volume inspect "$(home_volume "$name")" >/dev/null 2>&1; then with_home+=("$name"); fi
    done
    if [ ${#with_home[@]} -gt 0 ] && [ "$homes" != keep ]; then
      if [ "$homes" = archive ]; then scripts/homes.sh backup "${BACKUP_DIR:-backups}" "${with_home[@]}"; fi
      scripts/homes.sh delete "${with_home[@]}"
    elif [ ${#with_home[@]} -gt 0 ]; then
      say "their ${#with_home[@]} homes and hand-in folders are kept, and so their names stay taken (no sign-up gets" \
          "them): make backup USERS=..., then make delete-home USERS=... when you choose"
    fi
    ;;
  signups)
    hub_running
    docker exec "$hub" python -m dlab_hub.accounts signups --organizer "$DLAB_ADMIN" --clear "${2:-}"
    ;;
  message)
    hub_running
    printf '%s' "${*:2}" | docker exec -i "$hub" sh -c 'cat > /srv/jupyterhub/message.new && mv /srv/jupyterhub/message.new /srv/jupyterhub/message'
    if [ -n "${*:2}" ]; then say "every hub page now shows: ${*:2}"; else say "no message on the hub's pages"; fi
    ;;
  link)
    [ -n "${2:-}" ] || { say "which repository? make link REPO=https://github.com/you/course [BRANCH=main] [OPEN=lab1.ipynb]"; exit 2; }
    python3 - "$class_url" "$2" "${3:-}" "${4:-}" <<'PY'
import os, re, sys, urllib.parse
url, repo, branch, path = sys.argv[1:]
repo = repo.rstrip("/")
parts = urllib.parse.urlsplit(repo)
if parts.scheme not in ("https", "http") or not parts.hostname or re.search(r"[\s\\]", repo):
    sys.exit(f"dlab: {repo!r} is not a git repository's https:// URL (like https://github.com/you/course)")
hosts = {h.lower() for h in re.split(r"[\s,]+", os.environ.get("DLAB_LINK_HOSTS", "")) if h}
if hosts and parts.hostname.lower() not in hosts:
    sys.exit(f"dlab: {parts.hostname} is not in DLAB_LINK_HOSTS ({', '.join(sorted(hosts))}): students' "
             "servers would refuse the link; add the host to DLAB_LINK_HOSTS in .env, then make up")
# The folder in each home, named explicitly (students' servers refuse hidden folders).
folder = repo.rsplit("/", 1)[-1].removesuffix(".git").lstrip(".") or "course-material"
if folder in ("course", "handin", "handins", "labs"):  # dlab's own folders in the home
    folder = f"{folder}-material"
query = {"repo": repo, **({"branch": branch} if branch else {}), "targetpath": folder}
query["urlpath"] = f"lab/tree/{folder}/{path.lstrip('/')}".rstrip("/")
print(f"{url.rstrip('/')}/hub/user-redirect/git-pull?{urllib.parse.urlencode(query)}")
PY
    ;;
  reset-admin)
    # A lost admin password: a new first one, written in place (hub/dlab_hub/accounts.py). The account
    # is never deleted meanwhile, so no sign-up can take the organizer's name. The restart drops
    # what the hub's database session holds of the old password.
    hub_running
    docker exec "$hub" python -m dlab_hub.accounts reset-admin --organizer "$DLAB_ADMIN"
    docker restart "$hub" >/dev/null
    exec "$0" up
    ;;
  status)
    "${compose[@]}" ps
    if [ -n "$shared" ]; then docker service ls --filter "label=org.dlab.hub=$prefix"; fi
    docker ps --filter "label=org.dlab.hub=$prefix" --format 'table {{.Names}}\t{{.Status}}\t{{.Image}}'
    ;;
  *)
    echo "usage: $0 up|down|status|prestart|reset-admin|accounts|remove-accounts|signups|message|link" >&2
    exit 2
    ;;
esac
