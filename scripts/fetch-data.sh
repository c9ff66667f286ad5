#!/usr/bin/env bash
# make data: fetch datasets into the shared data volume (or host folder) that every lab
# container mounts read-only at /srv/data. Runs dlab-data inside dlab/cpu.
#   DATA_VOLUME   a volume name or an absolute host path (writable by uid 1000); by default the
#                 class server's, DLAB_DATA_VOLUME from .env (default dlab-data); on a swarm
#                 (DLAB_SWARM_SHARED), the shared folder's data/, which every node mounts
# Behind a proxy, HTTPS_PROXY & co. are passed on, and the machine's CA bundle is mounted for
# this run only (scripts/lib.sh's ca_bundle): it is never written into an image.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
load_settings
volume=${DATA_VOLUME:-${DLAB_SWARM_SHARED:+$DLAB_SWARM_SHARED/data}}
volume=${volume:-$DLAB_DATA_VOLUME}
[ $# -gt 0 ] || set -- --all
args=(--rm -v "$volume:/srv/data")
ca=$(ca_bundle)
if [ -n "$ca" ]; then
  args+=(-v "$ca:/etc/dlab/ca-bundle.pem:ro" -e REQUESTS_CA_BUNDLE=/etc/dlab/ca-bundle.pem)
fi
for var in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  if [ -n "${!var:-}" ]; then args+=(-e "$var"); fi
done
[ -t 1 ] && args+=(-t)
echo "dlab: fetching into ${volume} (mounted read-only at /srv/data by make lab and the class server)"
exec docker run "${args[@]}" dlab/cpu dlab-data fetch "$@"
