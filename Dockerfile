# Builds the manager image: a static Go binary on distroless, run as a
# non-root user. Build it with `make docker-build IMG=...`, which needs a
# Docker engine (or CONTAINER_TOOL=podman).
#
# NOTE: the build context is the repository root; without a .dockerignore it
# includes bin/ (several hundred MB of tools), which only slows the upload.

FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH

WORKDIR /workspace
# Download the modules in their own layer, so that a source change does not
# download them again.
COPY go.mod go.sum ./
RUN go mod download

COPY main.go ./
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/

# CGO_ENABLED=0 gives a static binary for the distroless static image.
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o manager .

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
# 65532 is the nonroot user of the distroless images; a numeric UID lets the
# kubelet check runAsNonRoot.
USER 65532:65532
ENTRYPOINT ["/manager"]
