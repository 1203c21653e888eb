#!/usr/bin/env bash
# Install (with the dev extras) and run the whole test suite offline: tiny bge-m3-format model, milvus-lite,
# the suite's own Ollama-protocol server, Debian's Chromium for the browser test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# System packages for the browser test (Chromium + CJK and emoji fonts for the screenshots) and `docker-compose config`.
# Installed from Debian when running as root; otherwise those tests are skipped with the reason.
packages=(chromium fonts-noto-cjk fonts-noto-color-emoji docker-compose)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
      || echo "warning: could not install ${missing[*]}; the tests that need them will be skipped"
  fi
fi
scripts/install.sh dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/python -m pytest -n auto "$@"  # pytest-xdist: one worker per core (pass -n 0 to run in one process)
