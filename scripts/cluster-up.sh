#!/usr/bin/env bash
# A local Knative cluster with flowbridge and the example Flow on it.
#
#   ./scripts/cluster-up.sh [--kafka] [--overlay dev|prod|kafka] [--no-build] [--buildah]
#                           [--no-monitoring]
#
# 1. kind cluster "flowbridge" (Kubernetes v1.35, host ports 80/443 → Kourier)
# 2. Knative Serving + Kourier, sslip.io domain (127.0.0.1.sslip.io)
# 3. Knative Eventing (+ the in-memory channel and the MT channel-based Broker)
# 4. Linkerd (Jina relies on it to balance gRPC across pods), Gateway API CRDs first
# 5. --kafka: eventing-kafka-broker's KafkaSource (CRDs + controller + source data plane)
# 6. images: flowbridge (Dockerfile; with --buildah scripts/image.sh and `kind load
#    image-archive`) and the example Flow (examples/heavy-flow), loaded into kind
# 7. our manifests: kubectl apply -k k8s/overlays/<overlay> (default dev; kafka with --kafka)
# 8. monitoring (unless --no-monitoring): kubectl apply -k deploy/, Prometheus with flowbridge's
#    alert rules and Grafana with its dashboard provisioned, in namespace monitoring
#
# Idempotent: every step checks or applies declaratively, so running it again converges.
# Needs docker, kind, kubectl, linkerd (CLI) and curl on PATH (and buildah with --buildah).
set -euo pipefail

# Pinned versions (Knative Serving/Kourier/kafka-broker 1.23 and Eventing 1.22 need Kubernetes
# >= 1.34; the schemas in tests/fixtures/schemas/ are from these releases).
KIND_NODE_IMAGE="kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0" # kind v0.33.0
KNATIVE_SERVING_VERSION="knative-v1.23.0"
KNATIVE_KOURIER_VERSION="knative-v1.23.0"
KNATIVE_EVENTING_VERSION="knative-v1.22.2"
KNATIVE_KAFKA_VERSION="knative-v1.23.0"
LINKERD_VERSION="edge-26.9.3"

CLUSTER_NAME="${CLUSTER_NAME:-flowbridge}"
DOMAIN="127.0.0.1.sslip.io"
FLOWBRIDGE_IMAGE="kind.local/flowbridge:0.1.0"
FLOW_IMAGE="kind.local/heavy-flow:0.1.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kafka=false
overlay=""
build=true
buildah=false
monitoring=true

say() { echo "cluster-up: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

usage() {
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --kafka) kafka=true ;;
    --overlay)
        [[ $# -ge 2 ]] || die "--overlay needs a value (dev, prod or kafka)"
        overlay="$2"
        shift
        ;;
    --no-build) build=false ;;
    --buildah) buildah=true ;;
    --no-monitoring) monitoring=false ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
if [[ -z "$overlay" ]]; then
    if $kafka; then overlay=kafka; else overlay=dev; fi
fi
[[ -d "$repo_root/k8s/overlays/$overlay" ]] || die "no overlay k8s/overlays/$overlay"
if [[ "$overlay" == kafka ]] && ! $kafka; then
    die "--overlay kafka needs the KafkaSource CRD: add --kafka"
fi

# --- prerequisites -----------------------------------------------------------------------------
need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH: $2"
}
need docker "install Docker (https://docs.docker.com/engine/install/); kind runs its nodes as containers"
need kind "install kind v0.33.0 (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
need kubectl "install kubectl >= 1.34 (https://kubernetes.io/docs/tasks/tools/)"
need linkerd "install the Linkerd CLI $LINKERD_VERSION (https://linkerd.io/2/getting-started/)"
need curl "install curl"
docker info >/dev/null 2>&1 || die "docker is installed but its daemon is not reachable (is it running? may this user use it?)"

kubectl_apply_url() {
    say "applying $1"
    kubectl apply -f "$1" >/dev/null
}

wait_deployments() {
    say "waiting for the deployments in $1"
    kubectl wait deployment --all --namespace "$1" --for=condition=Available --timeout=300s >/dev/null
}

# --- 1. kind cluster ---------------------------------------------------------------------------
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    say "kind cluster $CLUSTER_NAME exists"
else
    say "creating kind cluster $CLUSTER_NAME"
    kind create cluster --name "$CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --wait 120s --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      # Kourier's NodePorts (patched below) on the host's 80/443: http://<ksvc>.<ns>.$DOMAIN
      - containerPort: 31080
        hostPort: 80
        listenAddress: 127.0.0.1
      - containerPort: 31443
        hostPort: 443
        listenAddress: 127.0.0.1
EOF
fi
kubectl config use-context "kind-$CLUSTER_NAME" >/dev/null

# --- 2. Knative Serving + Kourier + domain -------------------------------------------------------
kubectl_apply_url "https://github.com/knative/serving/releases/download/$KNATIVE_SERVING_VERSION/serving-crds.yaml"
kubectl wait crd --all --for=condition=Established --timeout=120s >/dev/null
kubectl_apply_url "https://github.com/knative/serving/releases/download/$KNATIVE_SERVING_VERSION/serving-core.yaml"
wait_deployments knative-serving
kubectl_apply_url "https://github.com/knative-extensions/net-kourier/releases/download/$KNATIVE_KOURIER_VERSION/kourier.yaml"
wait_deployments kourier-system
kubectl patch configmap/config-network --namespace knative-serving --type merge \
    --patch '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}' >/dev/null
# Kourier's Service as NodePorts matching the kind port mappings above.
kubectl patch service/kourier --namespace kourier-system --type merge --patch '{
  "spec": {"type": "NodePort", "ports": [
    {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 31080},
    {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443, "nodePort": 31443}]}}' >/dev/null
# http://<ksvc>.<namespace>.127.0.0.1.sslip.io resolves to 127.0.0.1 (the kind port mapping).
kubectl patch configmap/config-domain --namespace knative-serving --type merge \
    --patch "{\"data\":{\"$DOMAIN\":\"\"}}" >/dev/null
say "Knative Serving $KNATIVE_SERVING_VERSION with Kourier, domain $DOMAIN"

# --- 3. Knative Eventing -----------------------------------------------------------------------
kubectl_apply_url "https://github.com/knative/eventing/releases/download/$KNATIVE_EVENTING_VERSION/eventing-crds.yaml"
kubectl wait crd --all --for=condition=Established --timeout=120s >/dev/null
kubectl_apply_url "https://github.com/knative/eventing/releases/download/$KNATIVE_EVENTING_VERSION/eventing-core.yaml"
kubectl_apply_url "https://github.com/knative/eventing/releases/download/$KNATIVE_EVENTING_VERSION/in-memory-channel.yaml"
kubectl_apply_url "https://github.com/knative/eventing/releases/download/$KNATIVE_EVENTING_VERSION/mt-channel-broker.yaml"
wait_deployments knative-eventing
say "Knative Eventing $KNATIVE_EVENTING_VERSION"

# --- 4. Linkerd ----------------------------------------------------------------------------------
if kubectl get namespace linkerd >/dev/null 2>&1; then
    say "Linkerd is installed"
else
    linkerd version --client --short 2>/dev/null | grep -q "${LINKERD_VERSION#edge-}" ||
        say "warning: linkerd CLI is not $LINKERD_VERSION ($(linkerd version --client --short 2>/dev/null || echo unknown))"
    # Linkerd needs the Gateway API CRDs; let it install a compatible version when none exist.
    gateway_api=false
    kubectl get crd httproutes.gateway.networking.k8s.io >/dev/null 2>&1 || gateway_api=true
    say "installing Linkerd (Gateway API CRDs by Linkerd: $gateway_api)"
    linkerd install --crds --set "installGatewayAPI=$gateway_api" | kubectl apply -f - >/dev/null
    linkerd install | kubectl apply -f - >/dev/null
fi
linkerd check --wait 5m >/dev/null || die "linkerd check failed; run 'linkerd check' for details"
# Mesh the Knative data plane so gRPC calls between Jina units are balanced per request.
for ns in knative-serving kourier-system; do
    if [[ "$(kubectl get namespace "$ns" -o jsonpath='{.metadata.annotations.linkerd\.io/inject}')" != enabled ]]; then
        kubectl annotate namespace "$ns" linkerd.io/inject=enabled --overwrite >/dev/null
        kubectl rollout restart deployment --namespace "$ns" >/dev/null
    fi
    wait_deployments "$ns"
done
say "Linkerd $LINKERD_VERSION"

# --- 5. KafkaSource (optional) -------------------------------------------------------------------
if $kafka; then
    kubectl_apply_url "https://github.com/knative-extensions/eventing-kafka-broker/releases/download/$KNATIVE_KAFKA_VERSION/eventing-kafka-controller.yaml"
    kubectl_apply_url "https://github.com/knative-extensions/eventing-kafka-broker/releases/download/$KNATIVE_KAFKA_VERSION/eventing-kafka-source.yaml"
    wait_deployments knative-eventing
    say "KafkaSource $KNATIVE_KAFKA_VERSION (a Kafka cluster is not installed: point k8s/overlays/kafka/kafkasource.yaml at yours)"
fi

# --- 6. images -----------------------------------------------------------------------------------
images=("$FLOW_IMAGE")
if $buildah; then
    # The same image without the Docker build: a static binary FROM scratch, as an OCI archive.
    archive="$repo_root/target/image/flowbridge-oci.tar"
    if $build || [[ ! -f "$archive" ]]; then
        say "building $FLOWBRIDGE_IMAGE with scripts/image.sh"
        "$repo_root/scripts/image.sh" --out "$archive" --tag "$FLOWBRIDGE_IMAGE" >/dev/null
    fi
    kind load image-archive "$archive" --name "$CLUSTER_NAME" >/dev/null
else
    images+=("$FLOWBRIDGE_IMAGE")
fi
if $build; then
    for image in "${images[@]}"; do
        say "building $image"
        case "$image" in
        "$FLOWBRIDGE_IMAGE") docker build --quiet -t "$image" "$repo_root" >/dev/null ;;
        *) docker build --quiet -t "$image" "$repo_root/examples/heavy-flow" >/dev/null ;;
        esac
    done
fi
for image in "${images[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 || die "image $image not found (run without --no-build)"
    kind load docker-image "$image" --name "$CLUSTER_NAME" >/dev/null
done

# --- 7. flowbridge, the Flow, Broker, Triggers, sources ----------------------------------------------
say "applying k8s/overlays/$overlay"
kubectl apply -k "$repo_root/k8s/overlays/$overlay" >/dev/null
kubectl wait ksvc --all --namespace flowbridge --for=condition=Ready --timeout=600s >/dev/null ||
    die "Knative Services in namespace flowbridge are not Ready: kubectl get ksvc -n flowbridge"
kubectl wait broker/default --namespace flowbridge --for=condition=Ready --timeout=120s >/dev/null

# --- 8. Prometheus and Grafana -----------------------------------------------------------------
if $monitoring; then
    say "applying deploy/: Prometheus (flowbridge's alert rules) and Grafana (its dashboard)"
    kubectl apply -k "$repo_root/deploy" >/dev/null
    wait_deployments monitoring
    say "Grafana: kubectl -n monitoring port-forward svc/grafana 3000:3000, then http://localhost:3000/d/flowbridge"
fi
say "ready. Send an event into the Broker:"
broker_url="$(kubectl get broker default --namespace flowbridge -o jsonpath='{.status.address.url}')"
cat >&2 <<EOF
  kubectl run send --rm -i --restart=Never --namespace flowbridge --image=curlimages/curl -- \\
    -sS -X POST '$broker_url' -H 'ce-specversion: 1.0' -H 'ce-id: order-1001' \\
    -H 'ce-type: com.example.order.created' -H 'ce-source: /shop/eu' \\
    -H 'content-type: application/json' \\
    -d '{"id": "order-1001", "items": [{"sku": "A-1", "title": "Blue mug"}]}'
  kubectl logs --namespace flowbridge -l serving.knative.dev/service=event-display -c user-container -f
EOF
