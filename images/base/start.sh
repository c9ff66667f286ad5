#!/bin/bash
# dlab's entrypoint (PID 1 is tini): run the start-up hooks and prepare the user, then run the
# command (by default start-notebook.py) as the notebook user. dlab's own start-up features are
# hooks too: the thread pools (start-notebook.d/10-dlab-threads.sh, every image) and, in the images
# with labs, the labs' home sync (before-notebook.d/50-dlab-labs.sh). It honours the variables of
# jupyter/docker-stacks, so their recipes work on dlab images:
#   NB_UID, NB_GID   uid and primary gid of jovyan (needs the container to start as root)
#   GRANT_SUDO       yes/1: jovyan may sudo without a password (needs root)
#   CHOWN_HOME       yes/1: chown the home to NB_UID:NB_GID (CHOWN_HOME_OPTS, e.g. -R)
#   CHOWN_EXTRA      comma-separated paths to chown as well (CHOWN_EXTRA_OPTS)
#   NB_UMASK         umask of the user's processes
#   hook folders     /usr/local/bin/start-notebook.d (first) and before-notebook.d (just before
#                    the command, still as root where the container started as root): *.sh files
#                    are sourced, other executables run, in name order
set -e

_log() {
  # WARNING and ERROR lines always; the rest unless JUPYTER_DOCKER_STACKS_QUIET is set.
  if [[ "$*" == ERROR:* ]] || [[ "$*" == WARNING:* ]] || [[ -z "${JUPYTER_DOCKER_STACKS_QUIET}" ]]; then
    echo "$@" >&2
  fi
}

run_hooks() {
  # As docker-stacks' run-hooks.sh: a hook that fails is reported with an ERROR line and the start
  # goes on. Each runs as the left side of `||`, where bash ignores errexit even if the hook sets
  # it, so a failing command inside a sourced hook cannot end start.sh; errexit is restored after.
  local dir=$1 f rc errexit=
  # Nothing to say about an empty folder: keeps `docker run dlab/cpu CMD` output clean.
  [ -d "$dir" ] && compgen -G "$dir/*" >/dev/null || return 0
  [[ $- == *e* ]] && errexit=1
  set +e
  _log "Running hooks in: $dir as uid: $(id -u) gid: $(id -g)"
  for f in "$dir"/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh) _log "Sourcing shell script: $f"
            rc=0
            # shellcheck disable=SC1090
            source "$f" || rc=$?
            set +e ;;
      *)    if [ -x "$f" ]; then
              _log "Running executable: $f"
              rc=0; "$f" || rc=$?
            else
              _log "Ignoring non-executable: $f"; rc=0
            fi ;;
    esac
    [ "$rc" = 0 ] || _log "ERROR: $f has failed, continuing execution"
  done
  _log "Done running hooks in: $dir"
  [ -z "$errexit" ] || set -e
}

# Under JupyterHub the spawner may pass the command in JUPYTERHUB_... variables only.
if [ $# -eq 0 ]; then set -- start-notebook.py; fi

run_hooks /usr/local/bin/start-notebook.d
# The class server's firewall (dlab-firewall), set before anything of the student's runs; without
# root it refuses, and so the start stops (it fails closed).
if [ -n "${DLAB_FIREWALL:-}" ]; then dlab-firewall || exit 1; fi

if [ "$(id -u)" = 0 ]; then
  # Root: apply the requested identity, then drop to it.
  NB_USER=${NB_USER:-jovyan}
  NB_UID=${NB_UID:-1000}
  NB_GID=${NB_GID:-100}
  if ! [[ "$NB_UID" =~ ^[0-9]+$ && "$NB_GID" =~ ^[0-9]+$ ]]; then
    _log "ERROR: NB_UID ($NB_UID) and NB_GID ($NB_GID) must be numbers"; exit 2
  fi
  if [ "$NB_UID" = 0 ]; then
    _log "ERROR: NB_UID=0 would run Jupyter as root; use GRANT_SUDO=yes for admin rights instead"; exit 2
  fi
  if [ "$NB_GID" != "$(id -g "$NB_USER")" ]; then
    getent group "$NB_GID" >/dev/null || groupadd --gid "$NB_GID" "${NB_GROUP:-$NB_USER}"
    _log "Setting ${NB_USER}'s gid to ${NB_GID}"
    usermod --gid "$NB_GID" "$NB_USER"
  fi
  if [ "$NB_UID" != "$(id -u "$NB_USER")" ]; then
    _log "Setting ${NB_USER}'s uid to ${NB_UID}"
    usermod --non-unique --uid "$NB_UID" "$NB_USER"
  fi
  # Keep membership of users (gid 100), which owns /opt/venv: pip install keeps working.
  id -nG "$NB_USER" | grep -qw users || usermod --append --groups users "$NB_USER"  # (a read-only root: only if needed)
  if [[ "$CHOWN_HOME" == "1" || "$CHOWN_HOME" == "yes" ]]; then
    _log "Ensuring /home/${NB_USER} is owned by ${NB_UID}:${NB_GID} ${CHOWN_HOME_OPTS:+(chown options: ${CHOWN_HOME_OPTS})}"
    # shellcheck disable=SC2086
    chown $CHOWN_HOME_OPTS "${NB_UID}:${NB_GID}" "/home/${NB_USER}"
  fi
  if [ -n "$CHOWN_EXTRA" ]; then
    IFS=, read -ra extra <<<"$CHOWN_EXTRA"
    for path in "${extra[@]}"; do
      _log "Ensuring ${path} is owned by ${NB_UID}:${NB_GID} ${CHOWN_EXTRA_OPTS:+(chown options: ${CHOWN_EXTRA_OPTS})}"
      # shellcheck disable=SC2086
      chown $CHOWN_EXTRA_OPTS "${NB_UID}:${NB_GID}" "$path"
    done
  fi
  if [[ "$GRANT_SUDO" == "1" || "$GRANT_SUDO" == "yes" ]]; then
    _log "Granting ${NB_USER} passwordless sudo"
    echo "${NB_USER} ALL=(ALL) NOPASSWD:ALL" >/etc/sudoers.d/added-by-start-script
    chmod 0440 /etc/sudoers.d/added-by-start-script
  fi
  [ -n "$NB_UMASK" ] && umask "$NB_UMASK"
  run_hooks /usr/local/bin/before-notebook.d
  _log "Running as ${NB_USER} (uid ${NB_UID}): $*"
  # On the class server (dlab-firewall) the capabilities the start needed leave the bounding set too.
  bounding=()
  [ -n "${DLAB_FIREWALL:-}" ] && bounding=(--bounding-set=-all)
  exec setpriv --reuid="$NB_UID" --regid="$NB_GID" --init-groups --inh-caps=-all "${bounding[@]}" \
    env HOME="/home/${NB_USER}" USER="$NB_USER" LOGNAME="$NB_USER" "$@"
fi

# Not root: we cannot change the identity, so say so if asked to.
if [ -n "$NB_UID" ] && [ "$NB_UID" != "$(id -u)" ]; then
  _log "WARNING: NB_UID=$NB_UID is ignored: start the container with --user root (NB_UID applies, then Jupyter drops to it)"
fi
if [ -n "$NB_GID" ] && [ "$NB_GID" != "$(id -g)" ] && [ "$(id -u)" = "${NB_UID:-$(id -u)}" ]; then
  _log "WARNING: NB_GID=$NB_GID is ignored: start the container with --user root"
fi
if [[ "$GRANT_SUDO" == "1" || "$GRANT_SUDO" == "yes" ]]; then
  _log "WARNING: GRANT_SUDO is ignored: start the container with --user root"
fi
if [[ "$CHOWN_HOME" == "1" || "$CHOWN_HOME" == "yes" ]]; then
  _log "WARNING: CHOWN_HOME is ignored: start the container with --user root"
fi
# An arbitrary --user uid: give it a name (docker-stacks does the same), home stays /home/jovyan.
if ! whoami >/dev/null 2>&1 && [ -w /etc/passwd ]; then
  _log "Adding uid $(id -u) to /etc/passwd as ${NB_USER:-jovyan}"
  echo "${NB_USER:-jovyan}:x:$(id -u):$(id -g):dlab user:/home/${NB_USER:-jovyan}:/bin/bash" >>/etc/passwd
fi
[ -n "$NB_UMASK" ] && umask "$NB_UMASK"
run_hooks /usr/local/bin/before-notebook.d
exec "$@"
