# syntax=docker/dockerfile:1
#
# One Dockerfile for every service of the workspace; choose the service with a build argument:
#
#   docker build --build-arg SERVICE=gateway         -t platform/gateway .
#   docker build --build-arg SERVICE=app-service     -t platform/app-service .
#   docker build --build-arg SERVICE=user-service    -t platform/user-service .
#   docker build --build-arg SERVICE=scraper-service -t platform/scraper-service .
#   docker build --build-arg SERVICE=book-service    -t platform/book-service .
#
# Why one file: the binaries share one workspace, one Cargo.lock and one dependency
# graph, so the build stages are identical but for the package name; only the runtime stages
# differ (port, and Chromium for the scraper). Needs BuildKit (the default builder since
# Docker 23), which builds only the stages the selected service uses.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
ARG SERVICE=gateway

# ---------------------------------------------------------------------------------------------
# Build stages
# ---------------------------------------------------------------------------------------------

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS chef
# cmake builds zlib-ng for pingora's compression (libz-ng-sys); every other native dependency
# (ring, zstd, the bundled SQLite) needs only the C compiler the rust image already has.
# Unpinned on purpose, as in the runtime stage below (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --version "${CARGO_CHEF_VERSION}" --locked \
    && rm -rf "${CARGO_HOME}/registry"
WORKDIR /src

# The dependency "recipe": manifests and lock file only, so it changes only when they do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG SERVICE
COPY --from=planner /src/recipe.json recipe.json
# How native dependencies are compiled (the bundled SQLite's flags): part of the recipe.
COPY .cargo .cargo
# Dependencies of the selected binary only: this layer stays cached until Cargo.lock or a
# manifest changes, so editing the code recompiles the workspace crates and nothing else.
RUN cargo chef cook --release --locked -p "${SERVICE}" --bin "${SERVICE}" --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p "${SERVICE}" --bin "${SERVICE}" \
    && install -D -m 0755 "target/release/${SERVICE}" "/out/${SERVICE}"

# ---------------------------------------------------------------------------------------------
# Runtime stages
# ---------------------------------------------------------------------------------------------

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# Debian package versions are not pinned: a stable release only ever receives security fixes,
# and the archive drops superseded versions, so pins would break rebuilds without making them
# more reproducible than the release tag already does. Trivy gates what each build gets.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed, unprivileged UID/GID, so volume ownership and Kubernetes runAsUser are predictable.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home \
        --shell /usr/sbin/nologin app \
    && install -d -o app -g app -m 0750 /var/lib/platform
COPY --chmod=0755 docker/healthcheck.sh /usr/local/bin/healthcheck
# DATA_DIR holds the SQLite files when no database URL is set (single-container trials).
ENV DATA_DIR=/var/lib/platform \
    HOME=/home/app \
    LOG_FORMAT=json \
    RUST_LOG=info
WORKDIR /var/lib/platform
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["healthcheck"]

FROM runtime AS svc-gateway
ENV HEALTHCHECK_ADDR_VAR=GATEWAY_ADDR \
    HEALTHCHECK_PORT=8000
COPY --from=builder /out/gateway /usr/local/bin/gateway
EXPOSE 8000
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/gateway"]

FROM runtime AS svc-app-service
ENV HEALTHCHECK_ADDR_VAR=APP_SERVICE_ADDR \
    HEALTHCHECK_PORT=8001
COPY --from=builder /out/app-service /usr/local/bin/app-service
EXPOSE 8001
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/app-service"]

FROM runtime AS svc-user-service
ENV HEALTHCHECK_ADDR_VAR=USER_SERVICE_ADDR \
    HEALTHCHECK_PORT=8002
COPY --from=builder /out/user-service /usr/local/bin/user-service
EXPOSE 8002
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/user-service"]

FROM runtime AS svc-book-service
ENV HEALTHCHECK_ADDR_VAR=BOOK_SERVICE_ADDR \
    HEALTHCHECK_PORT=8004
COPY --from=builder /out/book-service /usr/local/bin/book-service
EXPOSE 8004
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/book-service"]

FROM runtime AS svc-borrowings-function
ENV HEALTHCHECK_ADDR_VAR=BORROWINGS_FUNCTION_ADDR \
    HEALTHCHECK_PORT=8005
COPY --from=builder /out/borrowings-function /usr/local/bin/borrowings-function
EXPOSE 8005
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/borrowings-function"]

FROM runtime AS svc-scraper-service
# openmoney.md renders its pages with JavaScript, so the scraper drives Debian's Chromium
# through chromedriver. Fonts keep layout (and text extraction) sane; tini reaps the browser
# processes that would otherwise linger as zombies under PID 1. Unpinned as above (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        chromium chromium-driver fonts-liberation fonts-dejavu-core tini \
    && rm -rf /var/lib/apt/lists/*
ENV HEALTHCHECK_ADDR_VAR=SCRAPER_SERVICE_ADDR \
    HEALTHCHECK_PORT=8003 \
    SCRAPER_FETCHER=browser
COPY --from=builder /out/scraper-service /usr/local/bin/scraper-service
EXPOSE 8003
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/scraper-service"]

# The image that `docker build` produces: the runtime stage of the selected service.
# DL3006 ("tag the image") does not apply: svc-${SERVICE} names one of the stages above.
# hadolint ignore=DL3006
FROM svc-${SERVICE}
ARG SERVICE
LABEL org.opencontainers.image.title="platform-${SERVICE}" \
      org.opencontainers.image.description="A Rust microservices platform (one image per service)" \
      org.opencontainers.image.licenses="MIT"
