#!/usr/bin/env bash
# flowbridge's container image, built without a Docker engine: a statically linked release
# binary on an empty base (FROM scratch) with a CA bundle and a non-root passwd entry, committed
# by buildah and written as an OCI archive.
#
#   ./scripts/image.sh [--out FILE] [--tag REF] [--binary FILE | --binary-only]
#
#   --out FILE     the OCI archive (default target/image/flowbridge-oci.tar)
#   --tag REF      the image reference stored in the archive (default kind.local/flowbridge:0.1.0,
#                  the name k8s/ and scripts/cluster-up.sh use)
#   --binary FILE  use this static binary instead of building one
#   --binary-only  build the static binary, print its path and stop (no buildah needed)
#
# Load it into a kind cluster with `kind load image-archive target/image/flowbridge-oci.tar`
# (containerd's import names the image by its org.opencontainers.image.ref.name, a full
# reference here), or copy it to a registry with
# `skopeo copy oci-archive:target/image/flowbridge-oci.tar docker://…`.
#
# The binary: musl when the Rust target x86_64-unknown-linux-musl and musl-gcc are installed
# (the Dockerfile's choice), else glibc with `-C target-feature=+crt-static`. glibc 2.34+ has
# its `files` and `dns` name services built in, so a static glibc binary resolves names from
# /etc/hosts and DNS with no shared library in the image (the image's /etc/nsswitch.conf says
# `hosts: files dns`); it reads /dev/urandom, which container runtimes provide. Symbols are
# stripped.
#
# The user, port, entrypoint, command, env and config path are the Dockerfile's final stage
# (tests/image.rs checks the archive against it). Layer entries are sorted and stamped with
# the last commit's time, so packaging one binary twice gives the same image digest.
#
# Needs cargo, buildah (Debian: apt-get install buildah) and strip (binutils). Prints the
# archive's path, its compressed size and the unpacked root filesystem's size.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo_root/target/image/flowbridge-oci.tar"
tag="kind.local/flowbridge:0.1.0"
binary=""
binary_only=false

say() { echo "image: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --out | --tag | --binary)
        [[ $# -ge 2 ]] || die "$1 needs a value"
        case "$1" in
        --out) out="$2" ;;
        --tag) tag="$2" ;;
        --binary) binary="$2" ;;
        esac
        shift
        ;;
    --binary-only) binary_only=true ;;
    -h | --help)
        sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

# --- the binary ---------------------------------------------------------------------------------
if [[ -z "$binary" ]]; then
    arch="$(uname -m)"
    musl="$arch-unknown-linux-musl"
    # grep reads all of rustup's output (no -q), so pipefail never sees a SIGPIPE.
    if rustup target list --installed 2>/dev/null | grep -x "$musl" >/dev/null &&
        command -v musl-gcc >/dev/null 2>&1; then
        target="$musl"
        say "building a static musl binary ($target)"
        # musl-gcc for the target's C (ring) only; build scripts stay on the host compiler.
        (cd "$repo_root" && env "CC_${target//-/_}=musl-gcc" \
            cargo build --release --locked --bin flowbridge --target "$target")
    else
        target="$arch-unknown-linux-gnu"
        say "the Rust target $musl (or musl-gcc) is not installed: building a static glibc binary ($target, crt-static)"
        # --target keeps RUSTFLAGS off build scripts and proc macros, which stay dynamic.
        (cd "$repo_root" && RUSTFLAGS="-C target-feature=+crt-static" \
            cargo build --release --locked --bin flowbridge --target "$target")
    fi
    binary="${CARGO_TARGET_DIR:-$repo_root/target}/$target/release/flowbridge"
fi
[[ -x "$binary" ]] || die "no binary at $binary"
# ldd: "statically linked" (static-pie, glibc's crt-static) or "not a dynamic executable".
deps="$(ldd "$binary" 2>&1 || true)"
grep -qE 'statically linked|not a dynamic executable' <<<"$deps" ||
    die "$binary is dynamically linked: $(tr '\n' ' ' <<<"$deps")"
if $binary_only; then
    echo "$binary"
    exit 0
fi
command -v buildah >/dev/null 2>&1 || die "buildah not found: install it (Debian: apt-get install buildah)"
command -v strip >/dev/null 2>&1 || die "strip not found: install binutils"
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[[ -s "$ca_bundle" ]] || die "no CA bundle at $ca_bundle: install ca-certificates"

# --- the root filesystem ------------------------------------------------------------------------
work="$(mktemp -d)"
container=""
cleanup() {
    if [[ -n "$container" ]]; then buildah rm "$container" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/home/nonroot"
cp "$binary" "$rootfs/flowbridge"
strip --strip-all "$rootfs/flowbridge"
chmod 0755 "$rootfs/flowbridge"
cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$rootfs/etc/ssl/certs/ca-certificates.crt"
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
echo "hosts: files dns" >"$rootfs/etc/nsswitch.conf"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/home/nonroot"

# --- the image ----------------------------------------------------------------------------------
# vfs: no overlay mounts needed (works in unprivileged and nested sandboxes); nothing is RUN.
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"
commit_time="$(cd "$repo_root" && git log -1 --format=%ct 2>/dev/null || date +%s)"
revision="$(cd "$repo_root" && git rev-parse HEAD 2>/dev/null || echo unknown)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo_root/Cargo.toml" | head -1)"
# One layer, as a tar whose entries carry their owners (root, and nonroot's home) and the
# commit's time; `buildah add` unpacks a local tar as it is.
tar_common=(--sort=name --numeric-owner --mtime="@$commit_time" -C "$rootfs")
tar -cf "$work/layer.tar" "${tar_common[@]}" --owner=0 --group=0 --exclude=./home/nonroot .
tar -rf "$work/layer.tar" "${tar_common[@]}" --owner=65532 --group=65532 ./home/nonroot
container="$(buildah from scratch)"
buildah add --quiet "$container" "$work/layer.tar" / >/dev/null
buildah config \
    --os linux --arch "$(buildah info --format '{{.host.arch}}' 2>/dev/null || echo amd64)" \
    --user 65532:65532 \
    --port 8080/tcp \
    --created-by "scripts/image.sh: the static flowbridge binary, a CA bundle, passwd and group" \
    --env PORT=8080 \
    --env FLOWBRIDGE_CONFIG=/etc/flowbridge/config.yaml \
    --entrypoint '["/flowbridge"]' \
    --cmd '["serve"]' \
    --label org.opencontainers.image.title=flowbridge \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    --label org.opencontainers.image.description="Run Jina Flows on CloudEvents" \
    "$container"
mkdir -p "$(dirname "$out")"
rm -f "$out"
buildah commit --quiet --format oci --disable-compression=false --timestamp "$commit_time" \
    "$container" "oci-archive:$out:$tag" >/dev/null
buildah rm "$container" >/dev/null
container=""

unpacked="$(du -sb "$rootfs" | cut -f1)"
compressed="$(stat -c %s "$out")"
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
say "wrote $out ($tag)"
say "archive (gzip layers): $(mb "$compressed"); unpacked root filesystem: $(mb "$unpacked")"
echo "$out"
