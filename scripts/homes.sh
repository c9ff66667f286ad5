#!/usr/bin/env bash
# homes.sh backup DIR | restore DIR [USER...]: the students' homes (volumes PREFIX-home-<user>)
# to and from DIR/<volume>.tar.gz. `make backup` / `make restore` call it. Owners and modes are
# kept (tar runs as root in a throwaway dlab/cpu container). Restore into a stopped server's home.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'dlab: %s\n' "$*" >&2; }
prefix=${DLAB_PREFIX:-dlab}
image=${DLAB_IMAGE:-dlab/cpu:latest}
usage() { echo "usage: $0 backup DIR | restore DIR [USER...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1 dir=$2; shift 2
tar_in_volume() { # tar_in_volume VOLUME MODE TAR-ARGS...
  local volume=$1 mode=$2; shift 2
  docker run --rm --user root --entrypoint tar --network none \
    -v "$volume:/home/jovyan:$mode" -v "$(cd "$dir" && pwd):/backup" "$image" "$@"
}
case $action in
  backup)
    mkdir -p "$dir"
    volumes=$(docker volume ls -q --filter "name=^${prefix}-home-")
    [ -n "$volumes" ] || { say "no homes to back up (no volume named ${prefix}-home-*)"; exit 0; }
    for volume in $volumes; do
      tar_in_volume "$volume" ro -czf "/backup/$volume.tar.gz.part" -C /home/jovyan .
      mv "$dir/$volume.tar.gz.part" "$dir/$volume.tar.gz"   # complete archives only
      say "backed up $volume to $dir/$volume.tar.gz"
    done
    ;;
  restore)
    [ -d "$dir" ] || { say "no backup folder $dir"; exit 1; }
    if [ $# -gt 0 ]; then
      archives=$(for user in "$@"; do echo "$dir/${prefix}-home-$user.tar.gz"; done)
    else
      archives=$(ls "$dir"/"${prefix}"-home-*.tar.gz 2>/dev/null || true)
    fi
    [ -n "$archives" ] || { say "no ${prefix}-home-*.tar.gz in $dir"; exit 1; }
    for archive in $archives; do
      [ -f "$archive" ] || { say "no backup $archive"; exit 1; }
      volume=$(basename "$archive" .tar.gz)
      if [ -n "$(docker ps -q --filter "volume=$volume")" ]; then
        say "$volume is in use by a running server: stop it first (admin panel, or make down)"; exit 1
      fi
      tar_in_volume "$volume" rw -xzf "/backup/$(basename "$archive")" -C /home/jovyan
      say "restored $volume from $archive"
    done
    ;;
  *) usage ;;
esac
