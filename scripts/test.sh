#!/usr/bin/env bash
# The whole test suite: set-up (apt components + npm ci), then typecheck and node --test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npm test
