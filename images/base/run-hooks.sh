#!/bin/bash
# run-hooks.sh FOLDER, sourced by start.sh (as docker-stacks' run-hooks.sh): the start-up hooks in
# FOLDER in name order, *.sh files sourced (they may export variables for the start), other
# executables run. A hook that fails is reported with an ERROR line and the start goes on: each
# runs as the left side of `||`, where bash ignores errexit even if the hook sets it, so a failing
# command inside a sourced hook cannot end start.sh; errexit is restored after. Needs start.sh's _log.
# shellcheck shell=bash
dlab_run_hooks() {
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
dlab_run_hooks "$1"
