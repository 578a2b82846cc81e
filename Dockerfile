# Builds the tessera binary on Debian 12 with Debian's GDAL, and runs it on a slim image as an
# unprivileged user. docker-compose.yml runs it behind an HTTP cache with a shared PostGIS.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libgdal-dev pkg-config nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN npm ci --prefix viewer --no-audit --no-fund && cargo build --release --locked --bin tessera

FROM debian:bookworm-slim
# fonts-noto-cjk: the glyphs of the default style's labels; curl: the health check.
RUN apt-get update && apt-get install -y --no-install-recommends libgdal32 ca-certificates \
        fonts-noto-cjk curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /srv/tessera --shell /usr/sbin/nologin tessera
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
COPY styles /srv/tessera/styles
WORKDIR /srv/tessera
USER tessera
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD curl --fail --silent --output /dev/null http://127.0.0.1:3000/health || exit 1
ENTRYPOINT ["tessera"]
