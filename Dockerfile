# rcptguard container image: rcptguardd (the server) and rcptguard (the CLI:
# health checks, snapshot builds) on Debian 12 slim, non-root.
#
#   docker build -t rcptguard .
#   # Demo, no certificates (plaintext on the container's loopback):
#   docker run -d --name rcptguard-demo rcptguard \
#       --config=/etc/rcptguard/demo.textproto
#   docker exec rcptguard-demo rcptguard check alice@example.com
#   # Mutual TLS: server.crt, server.key and edge-ca.crt in ./tls
#   docker run -d -v "$PWD/tls:/etc/rcptguard/tls:ro" \
#       -p 50051:50051 -p 9464:9464 rcptguard
#
# The baked-in config (deploy/container/rcptguard.textproto) serves the
# bundled sample directory over mutual TLS with the server certificate, key
# and edge CA mounted at /etc/rcptguard/tls (docs/security.md);
# deploy/container/demo.textproto serves it without TLS on loopback. Mount
# your own config over /etc/rcptguard. See deploy/README.md ("Container
# image"). tests/unit/deploy checks this file: the build stage must install
# exactly deploy/packages-build.txt, the runtime stage's "libraries" group
# exactly the Debian packages holding the shared libraries `ldd` resolves
# for the binaries copied below, and the runtime stage's files, user,
# command and health check are run outside a container engine (bwrap, read-
# only root, UID 10001) with README's quick-start commands.

# ---- Build ----
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential \
      cmake \
      ninja-build \
      pkg-config \
      protobuf-compiler \
      protobuf-compiler-grpc \
      libprotobuf-dev \
      libgrpc++-dev \
      libgrpc-dev \
      libabsl-dev \
      prometheus-cpp-dev \
      libldap-dev \
      libidn2-dev \
      libunistring-dev \
      libgtest-dev \
      libgmock-dev \
      libbenchmark-dev \
      libsystemd-dev \
      libhiredis-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -G Ninja -S . -B /build -DCMAKE_BUILD_TYPE=Release -DRG_BENCHMARKS=OFF \
 && cmake --build /build --target rcptguardd rcptguard \
 && strip /build/server/rcptguardd /build/clients/rcptguard \
 && /build/server/rcptguardd --check_config --nocheck_files \
      --config=/src/deploy/container/rcptguard.textproto

# ---- Runtime ----
FROM debian:12-slim AS runtime
LABEL org.opencontainers.image.title="rcptguard" \
      org.opencontainers.image.description="Recipient validation and directory harvest detection for mail edges"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      # group: libraries
      libabsl20220623 \
      libc-ares2 \
      libc6 \
      libcap2 \
      libcivetweb1 \
      libffi8 \
      libgcc-s1 \
      libgcrypt20 \
      libgmp10 \
      libgnutls30 \
      libgpg-error0 \
      libgrpc++1.51 \
      libgrpc29 \
      libhiredis0.14 \
      libhogweed6 \
      libidn2-0 \
      libldap-2.5-0 \
      liblz4-1 \
      liblzma5 \
      libnettle8 \
      libp11-kit0 \
      libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 \
      libprotobuf32 \
      libre2-9 \
      libsasl2-2 \
      libssl3 \
      libstdc++6 \
      libsystemd0 \
      libtasn1-6 \
      libunistring2 \
      libzstd1 \
      zlib1g \
      # group: extras
      # CA bundle for LDAPS (snapshot build --ca_file) and TLS peers.
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 rcptguard \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/rcptguard \
      --no-create-home --shell /usr/sbin/nologin rcptguard \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/rcptguard \
      /var/lib/rcptguard/snapshot
COPY --from=build /build/server/rcptguardd /build/clients/rcptguard /usr/bin/
COPY deploy/container/rcptguard.textproto /etc/rcptguard/rcptguard.textproto
COPY deploy/container/demo.textproto /etc/rcptguard/demo.textproto
COPY deploy/examples/sample.ldif /usr/share/rcptguard/examples/sample.ldif
USER 10001:10001
WORKDIR /var/lib/rcptguard
# gRPC (mutual TLS), plaintext health-only gRPC, Prometheus metrics.
EXPOSE 50051 50052 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["/usr/bin/rcptguard", "health", "--server=127.0.0.1:50052", "--timeout_ms=3000"]
ENTRYPOINT ["/usr/bin/rcptguardd", "--config=/etc/rcptguard/rcptguard.textproto"]
