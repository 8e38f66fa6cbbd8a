# evidence-ledger service image: the locked runtime dependencies, then the project, as a non-root user.
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# `evledger report -o record.pdf` renders with WeasyPrint, which needs Pango (and HarfBuzz-Subset) and a font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
        fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY requirements/runtime.lock requirements/runtime.lock
# --require-hashes: every wheel must match the lock byte for byte; --no-deps: the lock is complete.
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY cli cli
COPY schemas schemas
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && useradd --system --create-home --home-dir /var/lib/evledger evledger
USER evledger
WORKDIR /var/lib/evledger
EXPOSE 8000
# Give EVLEDGER_DSN (and mount the ledger key) in production; without a DSN it runs an embedded PostgreSQL.
ENTRYPOINT ["evledger"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
