#!/usr/bin/env bash
# homes.sh backup DIR [USER...] | restore DIR [USER...] | delete USER...: the students' homes (volumes
# PREFIX-home-<user>, the name escaped as the hub does), the class's course and hand-in folders (PREFIX-course, PREFIX-handin)
# and its assignments' exchange and grading folder (PREFIX-exchange, PREFIX-grading), and HTTPS's
# certificate and ACME account (PREFIX-https, with DLAB_DOMAIN) to
# and from DIR/<volume>.tar.gz (with USERS, their hand-in folders too, to DIR/PREFIX-handin-<user>.tar.gz),
# or homes and hand-in folders deleted for good. `make backup`,
# `make restore` and `make delete-home` call it. Owners and modes are kept (tar runs as root in a
# throwaway dlab/cpu container). Restore into, or delete, a stopped server's home only.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
load_settings  # the class's own prefix and homes, as make up has them
prefix=$DLAB_PREFIX
image=$DLAB_IMAGE
usage() { echo "usage: $0 backup DIR [USER...] | restore DIR [USER...] | delete USER..." >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1 dir=$2; shift 2
# tar_in_volumes MODE SCRIPT VOLUME...: SCRIPT (bash, run for each volume as $volume, mounted at
# /volumes/$volume, the backup folder at /backup) in one throwaway container for them all (a
# container per volume took minutes for a class of fifty). The homes of a fixed size are attached
# first (a file system on a loop device, which a reboot detaches), as the hub does before a start;
# a plain volume, or a missing one (a restore makes it plain; the student's next start moves it
# into a home of its own), needs nothing.
tar_in_volumes() {
  local mode=$1 script=$2 volume homes mounts=(); shift 2
  local -A fixed_size=()  # each homes' folder: its homes of a fixed size
  for volume in "$@"; do
    # nocopy: Docker fills an empty volume with the image's files at its mount point, and gives it the
    # image's owner; a backup of an empty hand-in volume put a home's dotfiles there and took it from the hub.
    mounts+=(-v "$volume:/volumes/$volume:$mode,nocopy")
    homes=$(homes_of "$volume")
    if [ -n "$homes" ]; then fixed_size[$homes]+=" $volume"; fi
  done
  for homes in "${!fixed_size[@]}"; do
    # shellcheck disable=SC2086  # volume names: no spaces
    home_helper "$homes" dlab-home attach ${fixed_size[$homes]}
  done
  docker run --rm --user root --entrypoint bash --network none "${mounts[@]}" -v "$(cd "$dir" && pwd):/backup" "$image" \
    -c "set -e; for volume in \"\$@\"; do $script; done" "$dir" "$@"
}
# The homes' folder of a home of a fixed size (its volume mounts HOMES/dev/VOLUME); empty for a
# plain volume, or none.
homes_of() {
  local device
  device=$(docker volume inspect -f '{{index .Options "device"}}' "$1" 2>/dev/null || true)
  [[ "$device" == */dev/"$1" ]] && echo "${device%/dev/"$1"}"
  return 0
}
# A student's hand-in folder, PREFIX-handin/<user> (named as the account, unescaped), holds files?
handin_volume=${prefix}-handin
has_handin() {
  docker volume inspect "$handin_volume" >/dev/null 2>&1 &&
    docker run --rm --user root --entrypoint test --network none -v "$handin_volume:/handin:ro" "$image" -d "/handin/$1"
}
# A student's own hand-in volume (DLAB_HANDIN_SIZE), PREFIX-handin-<user escaped as for homes>.
handin_of() { home_volume "$1" | sed "s/^${prefix}-home-/${prefix}-handin-/"; }
# A username from the command line names a folder: nothing that climbs out of the volume.
check_user() {
  case $1 in ""|*/*|.*) say "$1 is not a username"; exit 2 ;; esac
}
refuse_in_use() {
  if [ -n "$(docker ps -q --filter "volume=$1")" ]; then
    say "$1 is in use by a running server: stop it first (admin panel, or make down)"; exit 1
  fi
}
case $action in
  backup)
    mkdir -p "$dir"
    if [ $# -gt 0 ]; then  # these students' homes only
      volumes=$(for user in "$@"; do home_volume "$user"; handin_of "$user"; done)
    else  # every home, the class's course and hand-in folders, the assignments' exchange and grading,
          # and HTTPS's certificate and ACME account (DLAB_DOMAIN: the https volume)
      volumes=$(docker volume ls -q | grep -E "^${prefix}-(home-.+|course|handin|handin-.+|exchange|grading|https)$" || true)
    fi
    [ -n "$volumes" ] || { say "no homes to back up (no volume named ${prefix}-home-*)"; exit 0; }
    present=()
    for volume in $volumes; do
      docker volume inspect "$volume" >/dev/null 2>&1 || { say "no home $volume: nothing to back up"; continue; }
      present+=("$volume")
    done
    # Each archive written aside, renamed once complete. --sparse: a student's `truncate -s 1T ~/x`
    # is a hole, archived as one, not read as a terabyte of zeros.
    # shellcheck disable=SC2016  # expanded by the container's shell
    # HTTPS's archive holds its private keys (the certificate's, the ACME account's): root's alone.
    [ ${#present[@]} -eq 0 ] || tar_in_volumes ro 'case $volume in *-https) umask 077 ;; *) umask 022 ;; esac
      tar --sparse -czf "/backup/$volume.tar.gz.part" -C "/volumes/$volume" .
      mv "/backup/$volume.tar.gz.part" "/backup/$volume.tar.gz"
      echo "dlab: backed up $volume to $0/$volume.tar.gz" >&2' "${present[@]}"
    # These students' hand-in folders of an earlier release (folders of the one hand-in volume),
    # each to the archive their own volume's would have: a restore puts it there.
    for user in "$@"; do
      check_user "$user"
      has_handin "$user" || continue
      archive=$(handin_of "$user").tar.gz
      ! docker volume inspect "$(handin_of "$user")" >/dev/null 2>&1 || continue  # its own volume's, archived above
      docker run --rm --user root --entrypoint tar --network none -v "$handin_volume:/handin:ro" \
        -v "$(cd "$dir" && pwd):/backup" "$image" --sparse -czf "/backup/$archive.part" -C "/handin/$user" .
      mv "$dir/$archive.part" "$dir/$archive"
      say "backed up $user's hand-in folder to $dir/$archive"
    done
    ;;
  restore)
    [ -d "$dir" ] || { say "no backup folder $dir"; exit 1; }
    if [ $# -gt 0 ]; then
      archives=$(for user in "$@"; do
                   echo "$dir/$(home_volume "$user").tar.gz"
                   if [ -f "$dir/$(handin_of "$user").tar.gz" ]; then echo "$dir/$(handin_of "$user").tar.gz"; fi
                 done)
    else  # every home, the course and hand-in folders, the assignments' exchange and grading, HTTPS's
      archives=$(ls "$dir"/"${prefix}"-home-*.tar.gz "$dir/${prefix}-course.tar.gz" "$dir/${prefix}-handin.tar.gz" \
                    "$dir"/"${prefix}"-handin-*.tar.gz "$dir/${prefix}-exchange.tar.gz" "$dir/${prefix}-grading.tar.gz" \
                    "$dir/${prefix}-https.tar.gz" 2>/dev/null || true)
    fi
    [ -n "$archives" ] || { say "no ${prefix}-home-*.tar.gz in $dir"; exit 1; }
    restored=()
    for archive in $archives; do
      [ -f "$archive" ] || { say "no backup $archive"; exit 1; }
      volume=$(basename "$archive" .tar.gz)
      refuse_in_use "$volume"
      restored+=("$volume")
    done
    # shellcheck disable=SC2016  # expanded by the container's shell
    tar_in_volumes rw 'tar -xzf "/backup/$volume.tar.gz" -C "/volumes/$volume"
      echo "dlab: restored $volume from $0/$volume.tar.gz" >&2' "${restored[@]}"
    ;;
  delete)
    # dir is the first user here: delete USER...
    # The home and the hand-in folder: then the name is free for a new account (the hub refuses a
    # sign-up under a name whose files are kept).
    for user in "$dir" "$@"; do
      check_user "$user"
      found=
      for volume in "$(home_volume "$user")" "$(handin_of "$user")"; do
        docker volume inspect "$volume" >/dev/null 2>&1 || continue
        refuse_in_use "$volume"
        homes=$(homes_of "$volume")
        docker volume rm "$volume" >/dev/null
        if [ -n "$homes" ]; then home_helper "$homes" dlab-home forget "$volume"; fi
        say "deleted $volume: $user's $([[ $volume == "$handin_volume"-* ]] && echo hand-in folder || echo home) is gone"
        found=1
      done
      if has_handin "$user"; then
        # rm -rf removes the links a student made inside, never what they point to.
        docker run --rm --user root --entrypoint rm --network none -v "$handin_volume:/handin" "$image" -rf -- "/handin/$user"
        say "deleted $user's hand-in folder"
        found=1
      fi
      [ -n "$found" ] || { say "no home $(home_volume "$user") and no hand-in folder of $user"; exit 1; }
    done
    ;;
  *) usage ;;
esac
