#!/usr/bin/env bash
# Install ragscope, ingest the demo knowledge base (examples/kb) with BAAI/bge-m3 into the embedded Milvus
# (./data/milvus.db) and open the web app. Uses a local Ollama (http://127.0.0.1:11434) when one is running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
model="${RAG_LLM__MODEL:-qwen2.5:3b}"
if command -v ollama >/dev/null 2>&1; then
  ollama list 2>/dev/null | grep -q "^${model}" || ollama pull "$model" || echo "could not pull $model; answers need it"
else
  echo "Ollama not found: retrieval and scores work, answers need Ollama (https://ollama.com, then: ollama pull $model)"
fi
.venv/bin/rag-ingest examples/kb
exec .venv/bin/rag ui
