# deltaglider in a container:
#   docker build -t deltaglider .
#   docker run --rm -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_ENDPOINT_URL \
#     -v "$PWD:/work" -w /work deltaglider cp build.zip s3://releases/1.2.3/
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends xdelta3 zstd \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY deltaglider ./deltaglider
RUN pip install --no-cache-dir . && rm -rf /src

RUN useradd --create-home --uid 1000 deltaglider
USER deltaglider
WORKDIR /work
ENTRYPOINT ["deltaglider"]
CMD ["--help"]
