# syntax=docker/dockerfile:1
# chatio's container image. From the repository root:
#   docker build -t registry.example.com/chatio:0.1.0 .
#   docker run --rm -p 8080:8080 registry.example.com/chatio:0.1.0
# Stage 1 builds chatio's wheel and installs it, with the `fast` extra and the dependency versions that
# pyproject.toml allows, into a virtual environment; stage 2 copies only that environment and the static
# page onto a clean base. No compiler, tests, Node.js or build tools reach the final image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY chatio/ chatio/
# The wheel is installed by its path, never by name: a package called chatio on PyPI must not win.
# pip and setuptools leave the environment afterwards: nothing at run time needs them.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/chatio \
 && set -- /wheels/chatio-*.whl \
 && /opt/chatio/bin/pip install "$1[fast]" \
 && /opt/chatio/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="chatio" \
      org.opencontainers.image.description="Socket.IO-compatible realtime chat server" \
      org.opencontainers.image.licenses="MIT"
# A fixed numeric UID/GID, so Kubernetes can check runAsNonRoot and the Deployment can name them.
RUN groupadd --system --gid 10001 chatio \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin chatio
# Owned by root and only readable by chatio: the process cannot change its own code or page.
COPY --from=build /opt/chatio /opt/chatio
COPY static/ /app/static/
ENV PATH=/opt/chatio/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CHATIO_HOST=0.0.0.0 \
    CHATIO_STATIC_DIR=/app/static
WORKDIR /app
USER 10001:10001
EXPOSE 8080
# Exec form: python is PID 1 and receives SIGTERM itself, which starts chatio's drain. No HEALTHCHECK:
# Kubernetes ignores it and probes /healthz and /readyz itself (k8s/deployment.yaml).
CMD ["python", "-m", "chatio"]
