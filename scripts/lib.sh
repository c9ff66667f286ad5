# dlab's shell library, sourced from the repository root by the scripts behind make: one `say`,
# one reader of the class's settings, and one answer to "which CA bundle, which local wheels".
# shellcheck shell=bash

say() { printf 'dlab: %s\n' "$*" >&2; }

# The settings file: DLAB_ENV_FILE, default .env.
env_file=${DLAB_ENV_FILE:-.env}

# load_settings: every class-server setting (hub/dlab_hub/settings.py declares them) into the
# environment, defaults filled, plus DLAB_HUB_SETTINGS, the hub's share as one JSON value that
# compose.yaml hands to the hub. The file is read as data, as compose reads it (NAME=value, quotes,
# # comments; a setting already in the environment wins), never run as shell code; a wrong
# setting stops the command here, before anything is touched, with every wrong one named.
# The home volume of a student, as the hub names it: PREFIX-home-<name escaped as DockerSpawner
# escapes it> (letters and digits kept, every other byte -xx: roster-07 -> roster-2d07).
home_volume() {
  python3 -c 'import string, sys
safe = set(string.ascii_letters + string.digits)
print(sys.argv[1] + "-home-" + "".join(c if c in safe else "".join(f"-{b:02x}" for b in c.encode()) for c in sys.argv[2]))' \
    "$DLAB_PREFIX" "$1"
}

# The students' image as their servers run it: on a swarm with a registry (DLAB_SWARM_SHARED and
# DLAB_SWARM_REGISTRY set), REGISTRY/IMAGE, the name make swarm-push gives it (hub/dlab_hub/config.py's
# student_images, for the hub).
student_image() {
  if [ -n "$DLAB_SWARM_SHARED" ] && [ -n "$DLAB_SWARM_REGISTRY" ]; then echo "$DLAB_SWARM_REGISTRY/$1"; else echo "$1"; fi
}

load_settings() {
  local out line
  command -v python3 >/dev/null || { say "python3 is missing: install it (apt-get install python3), then run the command again"; exit 1; }
  out=$(DLAB_ENV_FILE=$env_file PYTHONPATH=hub python3 -m dlab_hub.settings export) || exit 1
  while IFS= read -r line; do export "${line?}"; done <<<"$out"
}

# home_helper HOMES COMMAND...: run COMMAND (dlab-home, images/hub) as the hub runs it before a
# student's start: root in a throwaway dlab/hub container that may mount and use loop devices and
# nothing more, with the homes' folder HOMES at /homes. The privileges are hub/dlab_hub/folders.py's
# HOME_HELPER_PRIVILEGES, written as docker run flags (make check compares the two).
home_helper() {
  local homes=$1; shift
  docker run --rm --user root --network none \
    --cap-add SYS_ADMIN --security-opt apparmor=unconfined \
    --device-cgroup-rule 'b 7:* rwm' --device-cgroup-rule 'c 10:237 rwm' \
    -v "$homes:/homes" -v /dev:/dev dlab/hub:latest "$@"
}

# warn_if_homes_outgrow_disk HOMES: the homes' and folders' images are sparse, so together they may
# promise more than the disk has: say so at make up, before a class fills it (new ones are refused
# below 512 MB free, images/hub/dlab-home).
warn_if_homes_outgrow_disk() {
  local promised taken free
  [ -d "$1" ] || return 0
  # shellcheck disable=SC2016  # expanded by the helper's shell
  read -r promised taken free < <(home_helper "$1" sh -c 'set -- /homes/*.ext4; [ -e "$1" ] || { echo 0 0 0; exit; }
    echo "$(du -cm --apparent-size "$@" | tail -n1 | cut -f1) $(du -cm "$@" | tail -n1 | cut -f1) $(df -Pm /homes | awk "NR == 2 { print \$4 }")"' \
    2>/dev/null || echo 0 0 0)
  if [ "$((promised - taken))" -gt "${free:-0}" ]; then
    say "warning: the homes and folders may still grow by $(((promised - taken) / 1024)) GB, and $1 has $((free / 1024)) GB" \
        "free: a class filling theirs would fill the disk (no new home is made below 512 MB free)"
  fi
}

# native_arch: this machine's architecture as Docker names it (amd64, arm64).
native_arch() {
  case $(uname -m) in
    x86_64) echo amd64 ;;
    aarch64|arm64) echo arm64 ;;
    *) uname -m ;;
  esac
}

# ca_bundle: the CA bundle this machine's pip trusts (an intercepting HTTPS proxy's), or nothing:
# DLAB_CA_BUNDLE, else PIP_CERT, else pip's configured `cert`. Builds and downloads get it for the
# one run (a BuildKit secret, a read-only mount), never in an image layer.
ca_bundle() {
  local ca=${DLAB_CA_BUNDLE:-${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}}
  if [ -n "$ca" ] && [ -s "$ca" ]; then echo "$ca"; fi
}

# wheel_dirs: local folders of wheels (a wheelhouse where an index cannot be reached):
# DLAB_WHEELHOUSE, else PIP_FIND_LINKS, else pip's configured `find-links`; existing folders only.
wheel_dirs() {
  local dir
  for dir in ${DLAB_WHEELHOUSE:-${PIP_FIND_LINKS:-$(python3 -m pip config get global.find-links 2>/dev/null || true)}}; do
    if [ -d "$dir" ]; then echo "$dir"; fi
  done
}
