# deltaglider in a container. `make image` builds it (docker buildx when present, else podman;
# with a local Debian base when the registry's python image cannot be pulled):
#   docker run --rm -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_ENDPOINT_URL \
#     -v "$PWD:/work" beshultd/deltaglider cp build.zip s3://releases/1.2.3/
ARG BASE_IMAGE=docker.io/library/python:3.11-slim
FROM ${BASE_IMAGE}

ARG VERSION=0.0.0
ARG SOURCE=https://github.com/beshu-tech/deltaglider
LABEL org.opencontainers.image.title="deltaglider" \
      org.opencontainers.image.description="Versioned build artifacts on S3 as binary deltas, restored byte-identical" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

# The codecs come from the base's Debian release, which already pins them: a stable release
# changes a package only for security fixes, and an exact `=version` pin would break the build
# on the day such a fix replaces it in the archive.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends xdelta3 zstd \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY deltaglider ./deltaglider
RUN pip install --no-cache-dir --disable-pip-version-check . \
    && rm -rf /src

# A fixed numeric uid/gid, so `--user` and bind-mount ownership are predictable on any host.
RUN groupadd --gid 1000 deltaglider \
    && useradd --uid 1000 --gid 1000 --create-home --home-dir /home/deltaglider deltaglider \
    && mkdir -p /work && chown 1000:1000 /work
USER 1000:1000
# Each `docker run` starts clean, so references are cached for one process (encrypted); to keep
# them between runs mount a volume and set DG_CACHE_BACKEND=persistent DG_CACHE_DIR=/cache.
# The defaults deltaglider 6.x's image documented, spelled out (each can be overridden with -e).
ENV HOME=/home/deltaglider DG_CACHE_BACKEND=filesystem DG_LOG_LEVEL=WARNING DG_MAX_RATIO=0.5 \
    DG_CACHE_MEMORY_SIZE_MB=100
WORKDIR /work
# `docker ps` shows the container healthy once the CLI and both codecs answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["sh", "-c", "deltaglider --version && xdelta3 -V >/dev/null 2>&1"]
ENTRYPOINT ["deltaglider"]
CMD ["--help"]
