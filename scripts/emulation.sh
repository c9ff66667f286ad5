#!/usr/bin/env bash
# emulation.sh ARCH: make this machine run linux/ARCH containers (arm64 on an x86-64 machine, or
# amd64 on an ARM one) through QEMU's user-mode emulation, the way `docker run --platform` expects.
#
# Linux (Debian/Ubuntu, root): installs qemu-user-static, mounts binfmt_misc and registers the
# qemu-<cpu> handler from /usr/lib/binfmt.d with its F flag (the kernel opens the emulator once,
# so it works inside containers too). Registrations last until the next reboot; this script is
# safe to run again. Elsewhere it says what to do. Docker Desktop (macOS, Windows) emulates by itself.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"  # say, native_arch

arch=${1:?usage: scripts/emulation.sh arm64|amd64}
case $arch in
  arm64) cpu=aarch64 ;;
  amd64) cpu=x86_64 ;;
  *) say "unknown architecture '$arch' (have: arm64, amd64)"; exit 2 ;;
esac
[ "$arch" = "$(native_arch)" ] && exit 0
[ "$(uname -s)" = Linux ] || exit 0  # Docker Desktop's own virtual machine emulates

binfmt=/proc/sys/fs/binfmt_misc
handler=$binfmt/qemu-$cpu
ready() { [ -r "$handler" ] && grep -qx enabled "$handler" && grep -q '^flags:.*F' "$handler"; }
ready && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  say "running linux/$arch containers here needs QEMU's user-mode emulation: as root on Debian/Ubuntu, \
run 'sudo scripts/emulation.sh $arch' (it installs qemu-user-static and registers qemu-$cpu with binfmt_misc); \
elsewhere install qemu-user-static and register its qemu-$cpu handler with the F flag"
  exit 1
fi
if [ ! -x "/usr/bin/qemu-$cpu-static" ]; then
  say "installing qemu-user-static to run linux/$arch containers"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
fi
[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
if [ -e "$handler" ]; then
  echo 1 >"$handler"  # registered but switched off
else
  conf=/usr/lib/binfmt.d/qemu-$cpu.conf
  [ -r "$conf" ] || { say "$conf is missing: reinstall qemu-user-static"; exit 1; }
  cat "$conf" >"$binfmt/register"
fi
ready || { say "could not register qemu-$cpu with binfmt_misc ($(cat "$handler" 2>/dev/null | head -n 1))"; exit 1; }
say "linux/$arch containers run here emulated ($(/usr/bin/qemu-"$cpu"-static --version | head -n 1))"
