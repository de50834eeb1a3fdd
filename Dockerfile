# One image for the gRPC server, the Celery worker and the Envoy gateway;
# docker-compose.yml picks the command. Code is generated at build time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in a layer of their own that survives code changes.
COPY pyproject.toml ./
RUN mkdir server services gateway \
    && pip install . \
    && pip uninstall --yes onboarding-reliability \
    && rmdir server services gateway

COPY . .
RUN pip install --no-deps . \
    && python -m server.codegen \
    && useradd --system --no-create-home --home-dir /app app

# /app before site-packages, so `server` is this tree and finds migrations/
# and gen/ beside it; gen/python holds the generated stubs.
ENV PYTHONPATH=/app/gen/python:/app \
    GRPC_HOST=0.0.0.0 \
    GRPC_PORT=50051 \
    LOG_FORMAT=json

USER app
EXPOSE 50051 8080
CMD ["onboarding", "serve"]
