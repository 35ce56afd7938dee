# syntax=docker/dockerfile:1
# Warden container image. Two targets:
#   docker build --target dev  -t warden:dev  .   # watch mode; mount the source at /app
#   docker build --target prod -t warden      .   # compiled binary, non-root, health-checked
# In a container the server must bind 0.0.0.0, so WARDEN_TOKEN is required
# (Warden refuses to listen on a non-loopback address without authentication).

FROM denoland/deno:2.9.6 AS base
WORKDIR /app
ENV DENO_NO_UPDATE_CHECK=1
COPY deno.json deno.lock ./
COPY main.ts ./
COPY src ./src
# Fetch and cache every npm dependency at build time, exactly as locked.
RUN deno cache --frozen main.ts

FROM base AS dev
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
ENV HOST=0.0.0.0 PORT=8000 WARDEN_KV=/data/warden.db
VOLUME ["/data"]
EXPOSE 8000
# Mount the working tree over /app for hot reload: docker run -v "$PWD:/app" -e WARDEN_TOKEN=… warden:dev
CMD ["deno", "task", "dev"]

FROM base AS build
RUN deno compile --frozen --v8-flags=--max-old-space-size=1024 --allow-net --allow-read --allow-write --allow-env --allow-sys --allow-run=bwrap \
    --output /out/warden main.ts

FROM debian:bookworm-slim AS prod
# bubblewrap is the sandbox for eureka_forge commands (policy shell.enabled); prlimit comes with util-linux.
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /data --create-home warden
COPY --from=build /out/warden /usr/local/bin/warden
USER warden
WORKDIR /data
ENV HOST=0.0.0.0 PORT=8000 WARDEN_KV=/data/warden.db
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/warden", "health"]
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["serve"]
