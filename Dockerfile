# Sluice, built from source; used by docker-compose.yml.
#   docker build -t sluice .
# The build dependencies are installed by scripts/setup (the same command the test machines
# run), so there is one list of them.
FROM rust:1-bookworm AS build
# A stripped binary without debug information (the repository's release profile keeps line
# tables for profiling).
ENV CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols
WORKDIR /src
COPY scripts/setup scripts/lib.sh scripts/
RUN scripts/setup build-deps && rm -rf /var/lib/apt/lists/*
# The dependencies in their own layer, built against placeholder sources: a change to Sluice's
# code rebuilds only Sluice. (Cargo wants every target the manifest names to exist.)
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src tests examples \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && awk '/^\[\[(test|example)\]\]/ { dir = ($0 ~ /test/) ? "tests" : "examples" } \
         /^name = / && dir { gsub(/"/, "", $3); print dir "/" $3 ".rs"; dir = "" }' Cargo.toml \
    | while read -r f; do echo 'fn main() {}' > "$f"; done \
 && cargo build --release --locked --bin sluice \
 && rm -rf src tests examples target/release/.fingerprint/sluice-* \
           target/release/deps/sluice-* target/release/deps/libsluice-*
COPY src ./src
COPY tests ./tests
COPY examples ./examples
RUN cargo build --release --locked --bin sluice

FROM debian:bookworm-slim
# The shared libraries the binary links (librdkafka itself is linked in statically).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /sluice sluice \
 && mkdir -p /sluice/data && chown sluice /sluice/data
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
USER sluice
WORKDIR /sluice
EXPOSE 8083
# Needs [api] listen on port 8083 (docker/sluice.toml has it); `sluice probe` GETs /ready.
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 CMD ["sluice", "probe"]
ENTRYPOINT ["sluice"]
CMD ["run", "--config", "/etc/sluice/sluice.toml"]
