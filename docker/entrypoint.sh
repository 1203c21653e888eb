#!/bin/sh
# Container entrypoint of the ragscope app image.
#   serve (default)  seed the sample knowledge base if it is empty, then run the Streamlit app
#   seed             only the seeding step (what `serve` does first), then exit
#   anything else    run as given, e.g. `rag-ingest /kb` or `rag-ingest kbs`
# Environment:
#   SEED_KB=1|0         ingest SEED_KB_PATH on start when the knowledge base holds no chunks (default 1)
#   SEED_KB_PATH=DIR    what to ingest (default /app/examples/kb, baked into the image)
#   SEED_KB_NAME=NAME   the knowledge base to seed (default: the kb.name setting)
#   STREAMLIT_PORT      port inside the container (default 8501)
#   RAG_CONFIG          settings file (the image sets /app/configs/docker.yaml)
set -eu

log() { printf '[entrypoint] %s\n' "$*"; }

seed() {
    case "${SEED_KB:-1}" in
        0|false|no|off) log "SEED_KB=${SEED_KB}: not seeding"; return 0 ;;
    esac
    path="${SEED_KB_PATH:-/app/examples/kb}"
    if [ ! -e "$path" ]; then
        log "SEED_KB_PATH $path does not exist: not seeding"
        return 0
    fi
    log "seeding the knowledge base from $path if it is empty (first start downloads the embedding model)"
    if [ -n "${SEED_KB_NAME:-}" ]; then
        set -- --kb "$SEED_KB_NAME"
    else
        set --
    fi
    # A failed seed (e.g. no network for the model download) must not keep the app from starting:
    # the app shows what is missing.
    if rag-ingest add --if-empty "$@" -- "$path"; then
        log "seeding done"
    else
        log "seeding failed (exit $?); starting the app anyway"
    fi
}

cmd="${1:-serve}"
case "$cmd" in
    serve)
        seed
        log "starting Streamlit on 0.0.0.0:${STREAMLIT_PORT:-8501}"
        exec streamlit run ui/app.py \
            --server.address=0.0.0.0 \
            --server.port="${STREAMLIT_PORT:-8501}" \
            --server.headless=true \
            --server.fileWatcherType=none \
            --browser.gatherUsageStats=false
        ;;
    seed)
        seed
        ;;
    *)
        exec "$@"
        ;;
esac
