# Two stages: the first exports the local embedding model to ONNX with torch (the `export`
# extra, ~1 GB); the image keeps only the exported folder and the runtime packages.
# Both install from the hash-pinned locks in requirements/.
FROM python:3.11-slim AS export
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY requirements/export.lock ./
# torch's CPU build is on PyTorch's own index (PyPI's is a multi-GB CUDA build).
RUN pip install --no-cache-dir --require-hashes \
      --extra-index-url https://download.pytorch.org/whl/cpu -r export.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps . \
    && python -c "from pathlib import Path; from opshub.memory.minilm import ensure_graph; ensure_graph(Path('/models'))"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OPSHUB_MODEL_CACHE_DIR=/opt/opshub/models
WORKDIR /app
COPY requirements/main.lock ./
RUN pip install --no-cache-dir --require-hashes -r main.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps . && useradd --create-home opshub
COPY --from=export /models /opt/opshub/models
USER opshub
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["opshub"]
CMD ["api", "--host", "0.0.0.0"]
