# LocalStack's S3 for the e2e suite, built from PyPI (no registry image is pulled):
# scripts/images.py builds it on a Python >= 3.12 base (Debian trixie's 3.13 when the
# registry's python image cannot be pulled); testcontainers starts it and waits for "Ready.".
ARG BASE_IMAGE=docker.io/library/python:3.13-slim
FROM ${BASE_IMAGE}

COPY localstack-requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

ENV GATEWAY_LISTEN=0.0.0.0:4566 \
    SERVICES=s3 \
    LOCALSTACK_HOST=localhost.localstack.cloud:4566
EXPOSE 4566
CMD ["python", "-m", "localstack.runtime.main"]
