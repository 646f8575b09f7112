# syntax=docker/dockerfile:1
# flowbridge's container image: one static (musl) binary on distroless/static, run as non-root.
#
#   docker build -t kind.local/flowbridge:0.1.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/config/demo.yaml:/etc/flowbridge/config.yaml:ro" \
#     kind.local/flowbridge:0.1.0
#
# The port, user, entrypoint, config path and env names here must agree with the code defaults
# and k8s/ (tests/packaging.rs checks that). scripts/image.sh builds the same image without a
# Docker engine (buildah, FROM scratch); tests/image.rs checks its config against this file's
# final stage.

FROM rust:1.95-bookworm AS build
# musl-gcc compiles ring's C/assembly for the musl target; protoc comes from protoc-bin-vendored.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
ARG TARGETARCH
RUN case "${TARGETARCH:-amd64}" in \
        amd64) echo x86_64-unknown-linux-musl ;; \
        arm64) echo aarch64-unknown-linux-musl ;; \
        *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac >/rust-target \
    && rustup target add "$(cat /rust-target)"
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CC_aarch64_unknown_linux_musl=musl-gcc
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin flowbridge --target "$(cat /rust-target)" \
    && cp "target/$(cat /rust-target)/release/flowbridge" /flowbridge

# distroless/static: CA certificates (for grpcs:// gateways and https reply sinks), /etc/passwd
# with the nonroot user, nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /flowbridge /flowbridge
USER 65532:65532
# Knative sets PORT to the container port; 8080 is also the default of `listen`.
ENV PORT=8080 \
    FLOWBRIDGE_CONFIG=/etc/flowbridge/config.yaml
EXPOSE 8080
ENTRYPOINT ["/flowbridge"]
CMD ["serve"]
