#!/usr/bin/env bash
# hub.sh up|down|status|reset-admin: the class server (compose.yaml). `make up` / `make down` call it.
#   up    start the hub (images must be built: make up builds them first), wait until it answers,
#         print the URL, and the admin's first password while it has not been changed;
#   down  stop the hub, which stops every student's server; every volume is kept;
#   reset-admin  a new first password for the admin (a lost one), printed like on first start.
# Settings: .env beside compose.yaml (see .env.example), or the file DLAB_ENV_FILE names.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'dlab: %s\n' "$*" >&2; }

# The settings file (DLAB_ENV_FILE, default .env): compose reads it, and so does this script.
env_file=${DLAB_ENV_FILE:-.env}
compose=(docker compose)
if [ -e "$env_file" ]; then compose+=(--env-file "$env_file"); fi
if [ -f "$env_file" ]; then
  set -a
  # shellcheck disable=SC1090
  . "$env_file"
  set +a
fi
prefix=${DLAB_PREFIX:-dlab}
port=${DLAB_HUB_PORT:-8000}
hub=$prefix-hub

socket=/var/run/docker.sock
[ -S "$socket" ] || { say "no Docker engine at $socket: run \`make docker\` (as root), then \`make up\` again"; exit 1; }
# The hub joins the socket's group: its only privilege.
DOCKER_GID=$(stat -c %g "$socket")
export DOCKER_GID

case ${1:-} in
  up)
    for image in dlab/hub:latest "${DLAB_IMAGE:-dlab/cpu:latest}"; do
      docker image inspect "$image" >/dev/null 2>&1 || { say "$image is not built: run \`make build\`"; exit 1; }
    done
    if command -v ss >/dev/null && ss -Hltn "sport = :$port" | grep -q . && \
       [ -z "$(docker ps -q --filter "name=^${hub}$")" ]; then
      say "port $port is taken by another program: set DLAB_HUB_PORT in .env (see .env.example)"
      exit 1
    fi
    "${compose[@]}" up -d --wait --wait-timeout 180 hub || {
      say "the hub did not become healthy; its last log lines:"
      docker logs --tail 30 "$hub" 2>&1 | uniq >&2 || true
      "${compose[@]}" stop hub >/dev/null 2>&1 || true   # no restart loop; volumes are kept
      say "stopped it: fix what the log says (settings: $env_file, see .env.example), then make up again"
      exit 1
    }
    host=$(hostname -f 2>/dev/null || hostname)
    say "the class server is up: http://${host}:${port} (on this machine: http://localhost:${port})"
    say "admin account: ${DLAB_ADMIN:-admin}; approve sign-ups at http://localhost:${port}/hub/authorize"
    if password=$(docker exec "$hub" cat /srv/jupyterhub/secrets/admin-password 2>/dev/null); then
      say "admin's first password: ${password} (change it at /hub/change-password; then this line goes away)"
    fi
    ;;
  down)
    "${compose[@]}" down --timeout 120
    # Servers the hub could not stop (it was killed, say): remove their containers, never a volume.
    left=$(docker ps -aq --filter "label=org.dlab.hub=$prefix")
    if [ -n "$left" ]; then
      # shellcheck disable=SC2086
      docker rm -f $left >/dev/null
    fi
    say "stopped; every volume is kept (students' homes: docker volume ls --filter name=${prefix}-home-)"
    ;;
  reset-admin)
    # A lost admin password: forget the admin's password, so that the hub makes a new one on restart.
    [ -n "$(docker ps -q --filter "name=^${hub}$")" ] || { say "the hub is not running: make up first"; exit 1; }
    docker exec "$hub" python -c 'import sqlite3, sys
db = sqlite3.connect("/srv/jupyterhub/jupyterhub.sqlite")
db.execute("DELETE FROM users_info WHERE username = ?", (sys.argv[1],))
db.commit()' "${DLAB_ADMIN:-admin}"
    docker restart "$hub" >/dev/null
    exec "$0" up
    ;;
  status)
    "${compose[@]}" ps
    docker ps --filter "label=org.dlab.hub=$prefix" --format 'table {{.Names}}\t{{.Status}}\t{{.Image}}'
    ;;
  *)
    echo "usage: $0 up|down|status|reset-admin" >&2
    exit 2
    ;;
esac
