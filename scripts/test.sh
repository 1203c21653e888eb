#!/usr/bin/env bash
# Install (with the dev extras) and run the whole test suite offline: tiny bge-m3-format model, milvus-lite,
# the suite's own Ollama-protocol server. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
