# Sluice, built from source. Used by docker-compose.yml.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config zlib1g-dev libssl-dev libsasl2-dev libzstd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY examples ./examples
RUN cargo build --release --locked --bin sluice

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates zlib1g libssl3 libsasl2-2 libzstd1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /sluice sluice
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
RUN mkdir -p /sluice/data && chown sluice /sluice/data
USER sluice
WORKDIR /sluice
ENTRYPOINT ["sluice"]
CMD ["run", "--config", "/etc/sluice/sluice.toml"]
