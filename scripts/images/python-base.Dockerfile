# A Python base made from Debian packages, for machines that cannot pull the registry's python
# image (air-gapped, or no registry reachable): scripts/images.py builds it on a Debian base
# imported from debootstrap. Debian's python3 with a venv on PATH, so `pip install` works as it
# does in the official python images.
ARG DEBIAN_IMAGE=localhost/debian-base:bookworm
FROM ${DEBIAN_IMAGE}

# Pinned by the Debian release (see the project Dockerfile).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/python
ENV PATH=/opt/python/bin:$PATH
