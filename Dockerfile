# syntax=docker/dockerfile:1
# Build: a static fedas binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/fedas ./cmd/fedas

# Run: distroless static, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fedas /usr/local/bin/fedas
USER nonroot:nonroot
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/fedas", "healthcheck", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/fedas"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
