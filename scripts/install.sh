#!/usr/bin/env bash
# Create .venv and install ragscope with the tested set of dependencies: every version pinned by
# requirements.lock, torch first as its CPU build (an unpinned torch on Linux pulls a multi-GB CUDA build).
# Usage: scripts/install.sh [EXTRAS], e.g. scripts/install.sh dev
# TORCH_INDEX_URL: where the CPU build of torch is looked for besides pip's own indexes
# (default https://download.pytorch.org/whl/cpu; empty: pip's indexes only).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
lock=requirements.lock
torch_index="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"
torch_pin="$(grep -E '^torch==' "$lock")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch alone from the CPU index (its dependencies come with the project, at the locked versions); a build of the
# locked torch version that is already installed (CPU or CUDA) is kept.
.venv/bin/python -m pip install -q --no-deps -c "$lock" ${torch_index:+--extra-index-url "$torch_index"} "$torch_pin"
.venv/bin/python -m pip install -q -c "$lock" -e ".${extras:+[$extras]}"
