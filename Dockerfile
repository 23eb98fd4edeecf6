# RevOps Suite image: all three servers and the `revops` CLI, installed from the committed lock.
FROM python:3.11-slim AS build
# The same uv that wrote uv.lock (from PyPI, like `make setup`), so the lock format is understood.
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY packages packages
COPY servers servers
COPY src src
# --frozen: exactly uv.lock; --no-dev: no test tools in the image; --no-editable: code lives in the venv.
RUN uv sync --frozen --no-dev --all-packages --no-editable

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data revops \
    && mkdir -p /data && chown revops /data
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    REVOPS_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER revops
WORKDIR /data
EXPOSE 8101 8102 8103
CMD ["revops", "doctor"]
