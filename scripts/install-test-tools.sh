#!/usr/bin/env bash
# What `make test` needs on the host besides Docker and .venv: Debian's chromium, which the
# browser tests drive through Playwright (Playwright's own browser download is not used).
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "dlab: installing chromium for the browser tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "dlab: the browser tests need Debian's chromium: run \`sudo apt-get install chromium\`, then \`make test\`" >&2
  exit 1
fi
