# Sluice in a container. Build:  docker build -t sluice .
# Run (a volume for the data, a token: beyond the container's loopback Sluice refuses to serve without one):
#   docker run -d --name sluice -p 8086:8086 -v sluice-data:/var/lib/sluice -e SLUICE_AUTH_TOKENS=change-me sluice
# Stop cleanly: docker stop --time 45 sluice  (longer than shutdown_timeout_ms, 30 s by default:
# Docker's own 10 s would SIGKILL a shutdown flush; the WAL would keep the data for the next start).

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist/src dist/src
COPY --from=build /app/dist/ingest dist/ingest
COPY --from=build /app/dist/flush dist/flush
COPY config config
RUN mkdir -p /var/lib/sluice && chown node:node /var/lib/sluice
VOLUME /var/lib/sluice
ENV SLUICE_DATA_DIR=/var/lib/sluice SLUICE_HTTP_HOST=0.0.0.0
EXPOSE 8086
USER node
# Exec form: node itself is PID 1 and receives docker stop's SIGTERM (no shell, no npm in between);
# it handles SIGTERM and SIGINT, and starts no child processes to reap.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--initial-old-space-size=64", "dist/src/cli/main.js"]
CMD ["serve"]
