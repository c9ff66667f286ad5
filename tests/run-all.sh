#!/usr/bin/env bash
# tests/run-all.sh: what `make test` runs after `make check` and `make build`: every other test.
# DLAB_SKIP_GPU_IMAGE=1, DLAB_SKIP_LEGACY=1 and DLAB_SKIP_ARM64=1 leave dlab/gpu, dlab/legacy and the
# arm64 images out (neither built nor tested); PYTEST_ARGS goes to pytest (e.g. "-k labs -x").
#
# Three rounds, with three builds beside them. First the tests that wait on containers (the class
# servers, the swarm, the images already built), in N workers. Meanwhile, in the background,
# dlab/gpu builds and then its tests that do not train run, dlab/legacy builds, and the arm64 images
# build and then their tests run (emulated, each process on one core; the arm64 hub's class is
# `dlabarm`, apart from the workers'). Second, the `quiet` tests (they train models, in dlab/cpu and
# dlab/gpu) and dlab/legacy's, in N workers too (each keeps about one core busy), beside what is left
# of the arm64 tests. Last, by itself, each `alone` test: those that time the class's answers
# (docs/testing.md).
#
# DLAB_TEST_WORKERS=N (default 2; 1: one test after another) runs the first two rounds in N
# pytest-xdist workers; in the first, each has a class server of its own (tests/conftest.py says
# what runs together).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh  # say, native_arch

workers=${DLAB_TEST_WORKERS:-2}
[[ $workers =~ ^[1-9][0-9]?$ ]] || { say "DLAB_TEST_WORKERS is a number of workers (1 to 99), not '$workers'"; exit 2; }
scripts/install-test-tools.sh

gpu=yes arm64=yes legacy=yes
if [ "${DLAB_SKIP_LEGACY:-}" = 1 ]; then say "DLAB_SKIP_LEGACY=1: dlab/legacy is neither built nor tested"; legacy=no; fi
if [ "${DLAB_SKIP_GPU_IMAGE:-}" = 1 ]; then say "DLAB_SKIP_GPU_IMAGE=1: dlab/gpu is neither built nor tested"; gpu=no
elif [ "$(native_arch)" != amd64 ]; then say "dlab/gpu is built for amd64 only: its tests skip"; gpu=no; fi
if [ "${DLAB_SKIP_ARM64:-}" = 1 ]; then say "DLAB_SKIP_ARM64=1: the arm64 images are neither built nor tested"; arm64=no
elif [ "$(native_arch)" = arm64 ]; then arm64=native  # on an ARM machine the native images are the arm64 ones
elif ! scripts/emulation.sh arm64; then say "no arm64 emulation here: the arm64 tests skip"; arm64=no; fi  # (sets QEMU up as root, or says what to install)

# PYTEST_ARGS in words as the shell splits them, quotes included (-k "frameworks and not gpu").
extra=()
eval "extra=(${PYTEST_ARGS:-})"
pytest=(.venv/bin/pytest --ignore=tests/check --durations=25 "${extra[@]}")

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# pytest's exit code 5 (no test selected) fails a run only when every other run selected none either.
runs=() status=0
record() { runs+=("$1"); [ "$1" = 0 ] || [ "$1" = 5 ] || status=$1; }
# run_round NAME PYTEST-ARGS...: one round, saying when it began and ended (seconds since this script
# began, after make check and the builds; the background's tests say theirs), so that a log shows
# where the time went.
run_round() {
  local name=$1 rc=0 began=$SECONDS; shift
  say "$name: begins at ${began} s"
  "${pytest[@]}" "$@" || rc=$?
  say "$name: ended at $SECONDS s, after $((SECONDS - began)) s"
  record "$rc"
}

# In the background, each with its log: a build, then the tests of what it built that need no
# quiet machine (a pytest of their own; none where MARKS is empty). background NAME MARKS BUILD-ARGS...
background() {
  local name=$1 marks=$2 rc=0; shift 2
  scripts/build-images.sh "$@" >"$logs/$name" 2>&1 || { touch "$logs/$name.failed"; return 1; }
  [ -n "$marks" ] || return 0
  say "the $name tests: begin at $SECONDS s" 2>>"$logs/$name"
  "${pytest[@]}" -p no:cacheprovider -m "$marks" >>"$logs/$name" 2>&1 || rc=$?
  say "the $name tests: ended at $SECONDS s" 2>>"$logs/$name"
  echo "$rc" >"$logs/$name.tests"
}
# reported NAME: its build's lines and its tests' report (a failed build: its end, then stop).
reported() {
  wait "$2" || true
  [ -e "$logs/$1" ] || return 0
  grep -h '^dlab: built\|^dlab: the .* tests: begin' "$logs/$1" >&2 || true
  if [ -e "$logs/$1.failed" ]; then
    tail -n 40 "$logs/$1" >&2
    say "building the $1 images failed (above); their tests did not run"
    exit 1
  fi
  [ -e "$logs/$1.tests" ] || return 0  # (a build alone)
  say "the $1 tests, run in the background:"
  sed -n '/^=* test session starts/,$p' "$logs/$1" >&2  # (its last line: when they ended)
  record "$(cat "$logs/$1.tests")"
}
gpu_job="" arm64_job="" legacy_job=""
# dlab/gpu's tests that train wait for the second round; its others run as soon as it is built.
if [ "$gpu" = yes ]; then
  say "in the background: dlab/gpu's build, then its tests that do not train"
  background gpu "gpu_image and not quiet and not alone" gpu & gpu_job=$!
fi
arm64_images=(cpu hub)
[ "$legacy" = no ] || arm64_images+=(legacy)
if [ "$arm64" = yes ]; then
  say "in the background: the arm64 images' build, then their tests"
  background arm64 "arm64 and not alone" --arch arm64 "${arm64_images[@]}" & arm64_job=$!
fi
# dlab/legacy's build (its dlib compile runs at the lowest priority, images/legacy/Dockerfile, so the
# first round's containers come first); its tests train, so they wait for the second round.
if [ "$legacy" = yes ]; then
  say "in the background: dlab/legacy's build"
  background legacy "" legacy & legacy_job=$!
fi

side_by_side=()
[ "$workers" = 1 ] || side_by_side=(-n "$workers" --no-loadscope-reorder)
run_round "round 1 (containers, side by side)" -m "not quiet and not alone and not gpu_image and not legacy and not arm64" ${side_by_side[@]+"${side_by_side[@]}"}

[ -z "$gpu_job" ] || reported gpu "$gpu_job"
[ -z "$legacy_job" ] || reported legacy "$legacy_job"
# Here too, where they did not run in the background: dlab/gpu's tests where it is not built, and
# the arm64 ones on an ARM machine (its own images); or to skip, saying why (DLAB_SKIP_GPU_IMAGE=1,
# DLAB_SKIP_ARM64=1, no emulation).
second="quiet or legacy"
[ "$gpu" = yes ] || second+=" or gpu_image"
if [ "$arm64" = yes ]; then second="($second) and not arm64"; else second+=" or arm64"; fi
run_round "round 2 (quiet)" -m "($second) and not alone" ${side_by_side[@]+"${side_by_side[@]}" --cpu-bound-together}
[ -z "$arm64_job" ] || reported arm64 "$arm64_job"
run_round "round 3 (alone)" -m "alone"
if [ "$status" = 0 ] && ! printf '%s\n' "${runs[@]}" | grep -qx 0; then
  say "no test was selected (pytest's exit code 5): check PYTEST_ARGS"; status=5
fi
exit "$status"
