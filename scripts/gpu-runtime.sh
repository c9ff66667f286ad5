#!/usr/bin/env bash
# gpu-runtime.sh: can this Docker engine pass an NVIDIA GPU into a container? `make lab-gpu`
# asks before it builds or starts anything, and says what is missing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"  # say
runtimes=$(docker info --format '{{json .Runtimes}}' 2>/dev/null) || {
  say "no Docker engine is reachable: run \`make docker\` (as root) first"; exit 1; }
if ! grep -q '"nvidia"' <<<"$runtimes"; then
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    say "no NVIDIA GPU here: nvidia-smi finds no GPU, so there is no driver or no card. On a machine"
    say "without a GPU, \`make lab\` runs the same labs on the CPU."
  else
    say "this machine has an NVIDIA GPU ($(nvidia-smi -L | head -1)) but Docker cannot pass it in:"
    say "install the NVIDIA container toolkit, run \`nvidia-ctk runtime configure --runtime=docker\`"
    say "and restart Docker (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/)."
  fi
  exit 1
fi
