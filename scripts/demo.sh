#!/usr/bin/env bash
# The main job end to end on the embedded sample app: set-up, then scripts/demo.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npm run --silent demo
