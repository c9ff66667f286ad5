#!/bin/bash
# dlab's entrypoint (PID 1 is tini): run the start-up hooks and prepare the user, then run the
# command (by default start-notebook.py) as the notebook user. dlab's own start-up features are
# hooks too (run by run-hooks.sh): in every image the thread pools (start-notebook.d/10-dlab-threads.sh)
# and the class's folders (before-notebook.d/40-dlab-class-folders.sh); in the images with labs, the
# labs' home sync (before-notebook.d/50-dlab-labs.sh). It keeps the promises of jupyter/docker-stacks' start.sh
# (docs/images.md, "Using the images", lists them, and what differs), so their recipes work here:
#   NB_USER          the user's name; with --user root, jovyan is renamed and its home moves to
#                    /home/NB_USER (NB_USER=root needs NB_UID=0 NB_GID=0: root, home /home/root)
#   NB_UID, NB_GID   uid and primary gid of the user (with --user root); NB_GROUP names a new gid
#   GRANT_SUDO       yes/1: the user may sudo without a password (with --user root)
#   CHOWN_HOME       yes/1: chown the home to NB_UID:NB_GID (CHOWN_HOME_OPTS, e.g. -R)
#   CHOWN_EXTRA      comma-separated paths to chown as well (CHOWN_EXTRA_OPTS)
#   NB_UMASK         umask of the user's processes
#   JUPYTER_ENV_VARS_TO_UNSET  comma-separated variables removed before the command runs
#   --user UID:GID   any uid: named in /etc/passwd where it can be (gid 0, as docker-stacks), the
#                    home is group users' (100); a uid that cannot write it gets a home in /tmp
#   hook folders     /usr/local/bin/start-notebook.d (first) and before-notebook.d (just before
#                    the command, still as root where the container started as root): *.sh files
#                    are sourced, other executables run, in name order
set -e

_log() {
  # docker-stacks' lines, LEVEL[date] message, on stderr: a message given as "WARNING: ..." or
  # "ERROR: ..." always, the rest (INFO) unless JUPYTER_DOCKER_STACKS_QUIET is set; coloured on a
  # terminal unless NO_COLOR is set.
  local level=INFO message=$* color=
  case "$message" in
    "WARNING: "*) level=WARNING message=${message#WARNING: } color=33 ;;
    "ERROR: "*) level=ERROR message=${message#ERROR: } color=31 ;;
  esac
  [ "$level" != INFO ] || [ -z "${JUPYTER_DOCKER_STACKS_QUIET:-}" ] || return 0
  message="${level}[$(date '+%Y-%m-%d %H:%M:%S')] ${message}"
  if [ -n "$color" ] && [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then message=$'\033[0;'"${color}m${message}"$'\033[0m'; fi
  echo "$message" >&2
}

is_on() { [[ "$1" == 1 || "$1" == yes ]]; }

# HOME and every exported variable that points into the home (KERAS_HOME, XDG_*...) follow the
# home from $1 to $2, and so does the working directory.
move_home() {
  local old=$1 new=$2 var
  [ "$old" != "$new" ] || return 0
  for var in $(compgen -e); do
    case "$var" in PWD | OLDPWD) continue ;; esac
    if [[ "${!var}" == "$old" || "${!var}" == "$old"/* ]]; then
      export "$var=${new}${!var#"$old"}"
    fi
  done
  export HOME=$new
  if [[ "$PWD/" == "$old"/* ]]; then
    _log "Changing working directory to ${new}${PWD#"$old"}"
    cd "${new}${PWD#"$old"}" || cd "$new"
  fi
}

# JUPYTER_ENV_VARS_TO_UNSET: variables the hooks may use (a secret, say) but the command must not see.
unset_requested_variables() {
  local var vars
  [ -n "${JUPYTER_ENV_VARS_TO_UNSET:-}" ] || return 0
  IFS=', ' read -ra vars <<<"$JUPYTER_ENV_VARS_TO_UNSET"
  for var in "${vars[@]}"; do
    [ -n "$var" ] || continue
    if [[ ! "$var" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
      _log "WARNING: JUPYTER_ENV_VARS_TO_UNSET names '${var}', which is not a variable name: ignored"
      continue
    fi
    _log "Unset ${var} due to JUPYTER_ENV_VARS_TO_UNSET"
    unset "$var"
  done
  unset JUPYTER_ENV_VARS_TO_UNSET
}

_log "Entered start.sh with args: $*"
# Under JupyterHub the spawner may pass the command in JUPYTERHUB_... variables only.
if [ $# -eq 0 ]; then set -- start-notebook.py; fi

# `docker run IMAGE start.sh CMD` (a docker-stacks recipe): start.sh is the entrypoint already and
# has done its work, so the inner one only runs CMD.
if [ "${_START_SH_EXECUTED:-}" = 1 ]; then
  _log "start.sh is the image's entrypoint already: executing the command: $*"
  exec "$@"
fi
export _START_SH_EXECUTED=1

source /usr/local/bin/run-hooks.sh /usr/local/bin/start-notebook.d
# The class server's firewall (dlab-firewall), set before anything of the student's runs; without
# root it refuses, and so the start stops (it fails closed).
if [ -n "${DLAB_FIREWALL:-}" ]; then dlab-firewall || exit 1; fi

if [ "$(id -u)" = 0 ]; then
  # Root: make the requested user, then drop to it.
  NB_USER=${NB_USER:-jovyan}
  NB_UID=${NB_UID:-1000}
  NB_GID=${NB_GID:-100}
  if ! [[ "$NB_UID" =~ ^[0-9]+$ && "$NB_GID" =~ ^[0-9]+$ ]]; then
    _log "ERROR: NB_UID ($NB_UID) and NB_GID ($NB_GID) must be numbers"; exit 2
  fi
  if ! [[ "$NB_USER" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]]; then
    _log "ERROR: NB_USER='$NB_USER' cannot be a user name: use up to 32 lower-case letters, digits, - and _, starting with a letter"; exit 2
  fi
  if [ "$NB_USER" = root ]; then
    # docker-stacks' way to run the command as root, asked for in full.
    if [ "$NB_UID" != 0 ] || [ "$NB_GID" != 0 ]; then
      _log "ERROR: NB_USER=root needs NB_UID=0 and NB_GID=0 as well; for a user with admin rights use GRANT_SUDO=yes instead"; exit 2
    fi
    if [ -n "${DLAB_FIREWALL:-}" ]; then _log "ERROR: the class server never runs a student's server as root"; exit 2; fi
    sed -i 's|:/root:|:/home/root:|' /etc/passwd
  elif [ "$NB_UID" = 0 ]; then
    _log "ERROR: NB_UID=0 would run Jupyter as root; use GRANT_SUDO=yes for admin rights instead (or NB_USER=root NB_UID=0 NB_GID=0)"; exit 2
  elif [ "$NB_USER" != jovyan ]; then
    # jovyan becomes NB_USER (on a restarted container it already has).
    if id -u jovyan &>/dev/null && id -u "$NB_USER" &>/dev/null; then
      _log "ERROR: NB_USER=$NB_USER is an account of the image already; choose another name"; exit 2
    elif id -u jovyan &>/dev/null; then
      _log "Renaming the user jovyan to ${NB_USER}, home /home/${NB_USER}"
      usermod --login "$NB_USER" --home "/home/$NB_USER" jovyan
    elif ! id -u "$NB_USER" &>/dev/null; then
      _log "ERROR: neither jovyan nor ${NB_USER} exists (was this container started before with another NB_USER?): start a new container"; exit 2
    fi
  fi
  if [ "$NB_USER" != root ] && { [ "$NB_UID" != "$(id -u "$NB_USER")" ] || [ "$NB_GID" != "$(id -g "$NB_USER")" ]; }; then
    # Made anew rather than usermod'ed, which would chown every file of a mounted home.
    _log "Setting ${NB_USER}'s uid:gid to ${NB_UID}:${NB_GID}"
    userdel "$NB_USER"  # first: it would remove a group of the same name made before it
    getent group "$NB_GID" >/dev/null || groupadd --gid "$NB_GID" "${NB_GROUP:-$NB_USER}"
    useradd --no-log-init --no-create-home --non-unique --home-dir "/home/$NB_USER" --shell /bin/bash \
      --uid "$NB_UID" --gid "$NB_GID" "$NB_USER"
  fi
  # Membership of users (gid 100), which may write the image's home and /opt/venv: pip install works.
  if [ "$NB_USER" != root ] && ! id -nG "$NB_USER" | grep -qw users; then usermod --append --groups users "$NB_USER"; fi

  # The home follows the name: a copy of /home/jovyan, unless one is there (mounted) already.
  home=/home/$NB_USER
  if [ "$NB_USER" != jovyan ] && [ ! -e "$home" ]; then
    _log "Copying /home/jovyan to ${home}"
    if cp -a /home/jovyan "$home"; then
      chown -R "${NB_UID}:${NB_GID}" "$home"  # a copy made here is the user's (a mounted home is not touched)
    else
      _log "WARNING: could not copy /home/jovyan to ${home} (disk full?): ${home} links to /home/jovyan instead"
      rm -rf -- "$home"
      ln -s /home/jovyan "$home"
    fi
  fi
  move_home /home/jovyan "$home"

  if is_on "$CHOWN_HOME"; then
    _log "Ensuring ${home} is owned by ${NB_UID}:${NB_GID} ${CHOWN_HOME_OPTS:+(chown options: ${CHOWN_HOME_OPTS})}"
    # shellcheck disable=SC2086
    chown $CHOWN_HOME_OPTS "${NB_UID}:${NB_GID}" "$home"
  fi
  if [ -n "$CHOWN_EXTRA" ]; then
    IFS=, read -ra extra <<<"$CHOWN_EXTRA"
    for path in "${extra[@]}"; do
      _log "Ensuring ${path} is owned by ${NB_UID}:${NB_GID} ${CHOWN_EXTRA_OPTS:+(chown options: ${CHOWN_EXTRA_OPTS})}"
      # shellcheck disable=SC2086
      chown $CHOWN_EXTRA_OPTS "${NB_UID}:${NB_GID}" "$path"
    done
  fi
  # (sudo finds /opt/venv/bin first: /etc/sudoers.d/path, written when the image is built.)
  if is_on "$GRANT_SUDO"; then
    _log "Granting ${NB_USER} passwordless sudo"
    echo "${NB_USER} ALL=(ALL) NOPASSWD:ALL" >/etc/sudoers.d/added-by-start-script
    chmod 0440 /etc/sudoers.d/added-by-start-script
  fi
  [ -n "$NB_UMASK" ] && umask "$NB_UMASK"
  source /usr/local/bin/run-hooks.sh /usr/local/bin/before-notebook.d
  unset_requested_variables
  _log "Running as ${NB_USER}: $*"
  if [ "$NB_USER" = root ]; then exec "$@"; fi
  # On the class server (dlab-firewall) the capabilities the start needed leave the bounding set too.
  bounding=()
  [ -n "${DLAB_FIREWALL:-}" ] && bounding=(--bounding-set=-all)
  exec dlab-as-user "${bounding[@]}" env USER="$NB_USER" LOGNAME="$NB_USER" "$@"
fi

# Not root (--user UID:GID, or the image's default, jovyan): the identity cannot change.
is_on "$GRANT_SUDO" && _log "WARNING: GRANT_SUDO is ignored: start the container with --user root"
is_on "$CHOWN_HOME" && _log "WARNING: CHOWN_HOME is ignored: start the container with --user root"
# The image's own ids, to tell a changed NB_UID or NB_GID from the image's default below.
jovyan_uid=$(id -u jovyan 2>/dev/null || true)
jovyan_gid=$(id -g jovyan 2>/dev/null || true)
# An arbitrary uid gets a name, as in docker-stacks: /etc/passwd is writable by group root (gid 0)
# only, never by users, whose members could otherwise give root an empty password.
if ! whoami &>/dev/null; then
  if [ -w /etc/passwd ]; then
    _log "Adding uid $(id -u) to /etc/passwd as ${NB_USER:-jovyan} (the image's jovyan becomes nayvoj)"
    passwd_copy=$(mktemp)
    sed 's/^jovyan:/nayvoj:/' /etc/passwd >"$passwd_copy"
    echo "${NB_USER:-jovyan}:x:$(id -u):$(id -g):,,,:/home/jovyan:/bin/bash" >>"$passwd_copy"
    cat "$passwd_copy" >/etc/passwd  # (sed -i would need to write in /etc)
    rm -f "$passwd_copy"
  else
    _log "WARNING: uid $(id -u) has no name (only group 0 may add one to /etc/passwd): start with --user $(id -u):0 to have one; Jupyter works without it"
  fi
fi
if [ -n "$NB_USER" ] && [ "$NB_USER" != jovyan ] && [ "$NB_USER" != "$(id -un 2>/dev/null)" ]; then
  _log "WARNING: NB_USER=$NB_USER is ignored: start the container with --user root to rename the user"
fi
if [ -n "$NB_UID" ] && [ "$NB_UID" != "$jovyan_uid" ] && [ "$NB_UID" != "$(id -u)" ]; then
  _log "WARNING: NB_UID=$NB_UID is ignored: start the container with --user root (NB_UID applies, then Jupyter drops to it), or with --user $NB_UID"
fi
if [ -n "$NB_GID" ] && [ "$NB_GID" != "$jovyan_gid" ] && [ "$NB_GID" != "$(id -g)" ]; then
  _log "WARNING: NB_GID=$NB_GID is ignored: start the container with --user root"
fi
# A uid that may not write the home (not in group users) still gets a working Jupyter: a home of its
# own in /tmp, which goes with the container.
if [ ! -w "$HOME" ]; then
  own_home=/tmp/home-$(id -u)
  _log "WARNING: uid $(id -u) gid $(id -g) may not write $HOME, so this container's home is ${own_home} (lost with the container): add --group-add users to use $HOME, or mount a folder this uid owns there"
  [ -d "$own_home" ] || mkdir -m 700 "$own_home"
  cp -rn /etc/skel/. "$own_home"/ 2>/dev/null || true
  move_home "$HOME" "$own_home"
fi
[ -n "$NB_UMASK" ] && umask "$NB_UMASK"
source /usr/local/bin/run-hooks.sh /usr/local/bin/before-notebook.d
unset_requested_variables
_log "Executing the command: $*"
exec "$@"
