#!/usr/bin/env bash
# What `make test` needs on the host besides Docker and .venv, from Debian:
#   chromium   the browser tests drive it through Playwright (Playwright's own download is not used);
#   openssl    the HTTPS tests make a self-signed certificate;
#   certutil   (libnss3-tools) the ACME test makes chromium trust its authority's root (an NSS database);
#   e2fsprogs, util-linux   the bad-input tests make a small disk (mkfs.ext4, losetup) and hide
#              the Docker socket from one command (unshare);
#   iproute2   the network tests make a namespace of their own with listeners at private,
#              link-local and documentation addresses (ip netns, veth);
#   docker-registry   the swarm tests' test bed (tests/swarm/testbed.sh) carries images to its
#              nodes through it, as an organizer's registry would.
set -euo pipefail
declare -A package_of=([chromium]=chromium [openssl]=openssl [certutil]=libnss3-tools [mkfs.ext4]=e2fsprogs [losetup]=util-linux
                       [unshare]=util-linux [ip]=iproute2
                       [docker-registry]=docker-registry)
missing=()
for command in "${!package_of[@]}"; do
  command -v "$command" >/dev/null || missing+=("${package_of[$command]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "dlab: installing ${missing[*]} for the tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "dlab: the tests need ${missing[*]}: run \`sudo apt-get install ${missing[*]}\`, then \`make test\`" >&2
  exit 1
fi
