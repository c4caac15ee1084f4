# The aurum server image: a release build in a Rust image, copied into a small Debian runtime
# that runs as an unprivileged user. Build: `docker build -t aurum:0.1.0 .` (see docs/deploy.md).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them: the workspace manifests,
# then everything.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY data ./data
RUN cargo build --release --locked -p aurum-cli \
 && strip target/release/aurum

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 aurum \
 && useradd --system --uid 10001 --gid aurum --home-dir /var/lib/aurum --shell /usr/sbin/nologin aurum \
 && mkdir -p /var/lib/aurum \
 && chown aurum:aurum /var/lib/aurum
COPY --from=build /src/target/release/aurum /usr/local/bin/aurum
USER 10001:10001
ENV AURUM_DATA_DIR=/var/lib/aurum \
    AURUM_LISTEN=0.0.0.0:8080 \
    AURUM_LOG_FORMAT=json
VOLUME ["/var/lib/aurum"]
EXPOSE 8080 8081
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/aurum"]
CMD ["serve"]
