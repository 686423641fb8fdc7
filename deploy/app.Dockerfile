# The example service: an instrumented LangGraph chat graph streaming SSE.
FROM python:3.11-slim
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY lg_otel ./lg_otel
COPY examples ./examples
# [otlp]: the compose file points OTEL_EXPORTER_OTLP_ENDPOINT at the collector (HTTP).
RUN pip install --no-cache-dir ".[otlp]" "fastapi>=0.110" "uvicorn>=0.29"
EXPOSE 8000
CMD ["uvicorn", "examples.sse_app:app", "--host", "0.0.0.0", "--port", "8000"]
