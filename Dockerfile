# syntax=docker/dockerfile:1
# Build: a static fedas binary, its version stamped from the build args
# (the build context has no .git: .dockerignore), e.g.
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg REVISION=$(git rev-parse HEAD) -t fedas .
FROM golang:1.26-bookworm AS build
ARG VERSION=
ARG REVISION=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/fedas ./cmd/fedas \
 && mkdir -p /out/state

# Run: distroless static, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fedas /usr/local/bin/fedas
# /var/lib/fedas belongs to nonroot so that a named volume mounted there
# starts writable (fedas keygen --dir /var/lib/fedas; deploy/).
COPY --from=build --chown=65532:65532 /out/state /var/lib/fedas
# No config, no server: a forgotten mount must not start the embedded demo
# with its public secrets (`serve --demo` runs it on purpose). The public
# listener is on every interface of the container; the healthcheck reads
# the same variable.
ENV FEDAS_REQUIRE_CONFIG=1 \
    FEDAS_LISTEN=0.0.0.0:8080
USER nonroot:nonroot
EXPOSE 8080 8081
# Readiness (storage reachable) on the address serve listens on.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/fedas", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/fedas"]
CMD ["serve", "--config", "/etc/fedas/fedas.yaml"]
