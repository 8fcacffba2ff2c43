# syntax=docker/dockerfile:1
# The `inlet` image: one binary for every command (ingest, metastore,
# compactor, validate); the Helm chart in charts/inlet picks the command.
#
#   docker build -t inlet .
#   docker build --build-arg INLET_FEATURES=hdfs -t inlet:hdfs .
#
# Builder and runtime are both Debian bookworm, so the glibc and OpenSSL the
# binary links against are the ones it runs with.

FROM rust:1.95-bookworm AS build

# librdkafka is compiled from source by rdkafka-sys (features ssl and zstd,
# default libz): a C toolchain and make come with the image; it links
# OpenSSL and zlib. cmake is for rdkafka-sys's cmake-build feature and other
# -sys crates. libsasl2-dev would only be needed for rdkafka's gssapi
# (Kerberos) feature, which is not enabled.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# Extra cargo features of the `inlet` package, e.g. "hdfs".
ARG INLET_FEATURES=""
# Cache mounts keep the registry and the target directory between builds;
# the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin inlet --features "${INLET_FEATURES}" \
    && install -D -m 0755 target/release/inlet /out/inlet

FROM debian:bookworm-slim

# ca-certificates for TLS to S3, Kafka and schema registries; libssl3 for
# librdkafka's OpenSSL (zlib1g is part of the base image).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it; the
# chart's podSecurityContext uses the same ids.
RUN groupadd --system --gid 10001 inlet \
    && useradd --system --uid 10001 --gid inlet --home-dir /var/lib/inlet --create-home --shell /usr/sbin/nologin inlet

COPY --from=build /out/inlet /usr/local/bin/inlet

USER 10001:10001
WORKDIR /var/lib/inlet
# Configuration is read from /etc/inlet/inlet.yaml by the chart's pods.
ENV INLET_LOG=info
ENTRYPOINT ["inlet"]
CMD ["--help"]
