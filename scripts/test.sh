#!/usr/bin/env bash
# The tests: install what is missing, build, run them. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
