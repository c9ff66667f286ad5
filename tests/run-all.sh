#!/usr/bin/env bash
# tests/run-all.sh: what `make test` runs after `make check` and `make build`: every other test.
# DLAB_SKIP_GPU_IMAGE=1 and DLAB_SKIP_ARM64=1 leave dlab/gpu and the arm64 images out (neither built
# nor tested); PYTEST_ARGS goes to pytest (e.g. "-k labs -x").
#
# Two rounds. dlab/gpu and the arm64 images build in the background while the first runs the tests
# that wait on containers (the class server, the swarm, the images already built); the second runs,
# one at a time, the tests of the images just built and the `quiet` ones (models trained, the
# class's answers timed), which need the CPU to themselves (docs/testing.md).
#
# DLAB_TEST_WORKERS=N (default 2; 1: one test after another) runs the first round in N pytest-xdist
# workers, each with a class server of its own (tests/conftest.py says what runs together).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh  # say, native_arch

workers=${DLAB_TEST_WORKERS:-2}
[[ $workers =~ ^[1-9][0-9]?$ ]] || { say "DLAB_TEST_WORKERS is a number of workers (1 to 99), not '$workers'"; exit 2; }
scripts/install-test-tools.sh

later=()  # the images built after base, cpu and hub: gpu, arm64
if [ "${DLAB_SKIP_GPU_IMAGE:-}" = 1 ]; then say "DLAB_SKIP_GPU_IMAGE=1: dlab/gpu is neither built nor tested"
else later+=(gpu); fi
if [ "${DLAB_SKIP_ARM64:-}" = 1 ]; then say "DLAB_SKIP_ARM64=1: the arm64 images are neither built nor tested"
elif [ "$(native_arch)" = arm64 ]; then :  # on an ARM machine the native images are the arm64 ones
elif scripts/emulation.sh arm64; then later+=(arm64)  # sets QEMU up as root, or says what to install
else say "no arm64 emulation here: the arm64 tests skip"; fi
build_later() {
  local image
  for image in "${later[@]}"; do
    case $image in
      gpu) scripts/build-images.sh gpu ;;
      arm64) scripts/build-images.sh --arch arm64 cpu hub ;;
    esac
  done
}

# PYTEST_ARGS in words as the shell splits them, quotes included (-k "frameworks and not gpu").
extra=()
eval "extra=(${PYTEST_ARGS:-})"
pytest=(.venv/bin/pytest --ignore=tests/check --durations=25 "${extra[@]}")

build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
[ ${#later[@]} -eq 0 ] || say "building ${later[*]} in the background while the first round of tests runs"
build_later >"$build_log" 2>&1 &
builder=$!
# pytest's exit code 5 (no test selected) fails a round only when the other round selected none either.
rounds=() status=0
run_round() {
  local rc=0
  "${pytest[@]}" "$@" || rc=$?
  rounds+=("$rc")
  [ "$rc" = 0 ] || [ "$rc" = 5 ] || status=$rc
}
side_by_side=()
[ "$workers" = 1 ] || side_by_side=(-n "$workers" --no-loadscope-reorder)
run_round -m "not quiet and not gpu_image and not arm64" ${side_by_side[@]+"${side_by_side[@]}"}
if ! wait "$builder"; then
  tail -n 40 "$build_log" >&2
  say "building ${later[*]} failed (above); their tests did not run"
  exit 1
fi
grep -h '^dlab: built' "$build_log" >&2 || true
run_round -m "quiet or gpu_image or arm64"
if [ "$status" = 0 ] && ! printf '%s\n' "${rounds[@]}" | grep -qx 0; then
  say "no test was selected (pytest's exit code 5): check PYTEST_ARGS"; status=5
fi
exit "$status"
