# Builds the tessera binary on Debian 12 with Debian's GDAL, and runs it on a slim image.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libgdal-dev pkg-config nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN npm ci --prefix viewer --no-audit --no-fund && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgdal32 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
WORKDIR /
ENTRYPOINT ["tessera"]
