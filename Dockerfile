# syntax=docker/dockerfile:1
# ragscope app image: the Streamlit UI and the rag-ingest CLI.
#   docker build -t ragscope .                                  # CPU torch (default, ~200 MB wheel)
#   docker build --build-arg TORCH_VARIANT=cu130 -t ragscope .  # CUDA torch (multi-GB); any variant
#                                                               # download.pytorch.org/whl/<variant> serves
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG APP_UID=1000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/cache/huggingface \
    TOKENIZERS_PARALLELISM=false \
    RAG_CONFIG=/app/configs/docker.yaml \
    SEED_KB=1 \
    SEED_KB_PATH=/app/examples/kb

# OpenCV, which the OCR engine (rapidocr-onnxruntime) imports, needs libGL and GLib; slim images lack them.
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

# Non-root user; the folders that named volumes mount over are created (and owned) here, so that a
# fresh volume starts out owned by this user.
RUN useradd --create-home --uid "${APP_UID}" --shell /usr/sbin/nologin app \
    && mkdir -p /app /data /cache/huggingface \
    && chown app:app /data /cache/huggingface

WORKDIR /app

# 1) torch first, from the PyTorch index of the chosen variant (cpu = no CUDA libraries). TORCH_VERSION is
#    requirements.lock's torch pin (tests/test_packaging.py checks that they agree).
RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" "torch==${TORCH_VERSION}"

# 2) The other dependencies, read from pyproject.toml and installed at requirements.lock's versions (the
#    tested set): this layer is rebuilt when the dependencies change, not when the source does. torch is
#    already satisfied by step 1.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(d for d in deps if not d.startswith('torch')))" > /tmp/requirements.txt \
    && pip install -c requirements.lock -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# 3) The source (filtered by .dockerignore), installed editable so that rag.config finds
#    /app/configs/default.yaml and the rag-ingest console script exists.
COPY . .
RUN pip install --no-deps -e . \
    && chmod 0755 /app/docker/entrypoint.sh

USER app

EXPOSE 8501
# python:*-slim has no curl: ask Streamlit's health endpoint with the standard library.
HEALTHCHECK --interval=30s --timeout=10s --start-period=15m --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=5).status == 200 else 1)"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["serve"]
