#!/usr/bin/env bash
# scripts/hub.sh COMMAND...: the organizer's command, dlab (hub/dlab_hub/cli.py: up, down, status,
# prestart, accounts, remove-accounts, signups, message, link, reset-admin, backup, restore,
# delete-home), run from this checkout with the host's python3. `dlab --help` says more.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "dlab: python3 is missing: install it (apt-get install python3), then run the command again" >&2; exit 1; }
PYTHONPATH=hub${PYTHONPATH:+:$PYTHONPATH} exec python3 -m dlab_hub.cli "$@"
