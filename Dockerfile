FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# The CPU build of torch (it exports the local embedding model to ONNX); PyPI's default is a
# multi-GB CUDA build.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install --no-cache-dir . && useradd --create-home opshub
USER opshub
# The local embedding model's ONNX graph, exported at build time so containers start warm.
RUN python -c "from opshub.config import get_settings; from opshub.memory.minilm import ensure_graph; ensure_graph(get_settings().model_cache_dir)"
ENTRYPOINT ["opshub"]
CMD ["api", "--host", "0.0.0.0"]
