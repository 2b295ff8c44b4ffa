# syntax=docker/dockerfile:1.7
#
# One recipe, one target per deployable; each target carries only its own extras:
#   api      tandem api serve                      .[api]
#   worker   tandem worker coordinator|executor|accounting, tandem beat, tandem db upgrade
#                                                  .[engines]
#   scorer   tandem worker scorer                  .[engines,scorer]   (onnxruntime)
#   engine   tandem engine serve (local TGI-compatible server, CPU)
#                                                  .[engine-server]    (torch from the CPU index)
# Build one with:  docker build --target api -t tandem-serve:0.1.0-api .
# No secret is baked in: every credential arrives through the environment at run time.

FROM python:3.11.13-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir "pip==24.3.1" "setuptools==75.6.0" "wheel==0.45.1"

# ---------------------------------------------------------------- dependency layers
# Installed from pyproject.toml alone, so they are rebuilt only when it changes.
FROM base AS deps
WORKDIR /build
COPY pyproject.toml ./
COPY deploy/docker/requirements.py ./

FROM deps AS deps-api
RUN python requirements.py pyproject.toml api > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

FROM deps AS deps-worker
RUN python requirements.py pyproject.toml engines > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

FROM deps AS deps-scorer
RUN python requirements.py pyproject.toml engines,scorer > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

FROM deps AS deps-engine
# torch first, from the PyTorch CPU index: from PyPI it would pull gigabytes of CUDA.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
    && python requirements.py pyproject.toml engine-server > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

# ---------------------------------------------------------------- the project itself
# Installed in editable mode at /app so that `tandem db upgrade` finds alembic.ini and
# migrations/ beside the code, exactly as in a checkout.
FROM base AS source
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY shared ./shared
COPY services ./services
COPY tandem ./tandem
COPY migrations ./migrations
# The shipped classifiers: the scorer serves the default one until a version is activated.
COPY models/classifier/*.onnx models/classifier/*.json ./models/classifier/

FROM deps-api AS build-api
COPY --from=source /app /app
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e /app

FROM deps-worker AS build-worker
COPY --from=source /app /app
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e /app

FROM deps-scorer AS build-scorer
COPY --from=source /app /app
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e /app

FROM deps-engine AS build-engine
COPY --from=source /app /app
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e /app

# ---------------------------------------------------------------- runtime
# Code and virtualenv are owned by root and read-only to the service user; the only
# writable place is /var/lib/tandem (the working directory: Celery beat's schedule file,
# the local engine's converted-model cache).
FROM base AS runtime
RUN groupadd --system --gid 10001 tandem \
    && useradd --system --uid 10001 --gid tandem --home-dir /var/lib/tandem \
       --shell /usr/sbin/nologin tandem \
    && install -d -o tandem -g tandem -m 0750 /var/lib/tandem
# No HF_HUB_OFFLINE here: huggingface_hub would then refuse every request, including the
# workers' requests to their TGI engines. The engine server turns offline mode on for itself.
ENV HOME=/var/lib/tandem \
    TANDEM_ENVIRONMENT=production
WORKDIR /var/lib/tandem

FROM runtime AS api
COPY --from=build-api /opt/venv /opt/venv
COPY --from=build-api /app /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["tandem", "api", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM runtime AS worker
COPY --from=build-worker /opt/venv /opt/venv
COPY --from=build-worker /app /app
USER 10001:10001
EXPOSE 9100
CMD ["tandem", "--help"]

FROM runtime AS scorer
COPY --from=build-scorer /opt/venv /opt/venv
COPY --from=build-scorer /app /app
USER 10001:10001
EXPOSE 9100
CMD ["tandem", "worker", "scorer"]

FROM runtime AS engine
COPY --from=build-engine /opt/venv /opt/venv
COPY --from=build-engine /app /app
ENV TRANSFORMERS_OFFLINE=1
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
CMD ["tandem", "engine", "serve", "--backend", "gguf", "--model", "smollm2-135m", "--host", "0.0.0.0", "--port", "8080"]
