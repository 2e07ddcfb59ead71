FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --create-home opshub
USER opshub
ENTRYPOINT ["opshub"]
CMD ["api", "--host", "0.0.0.0"]
