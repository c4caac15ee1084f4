#!/usr/bin/env bash
# Renders the Kubernetes manifests (base and every overlay) with kustomize and validates the
# result offline against the Kubernetes API schemas (`kubernetes-validate --strict`, which ships
# the schemas). Installs kubectl from Debian's kubernetes-client when missing, and the validator
# in a venv under target/.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v kubectl >/dev/null; then
  echo "installing kubectl (Debian kubernetes-client)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq kubernetes-client >/dev/null
fi
venv=target/k8s-validate-venv
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate
fi
out=target/k8s-rendered
mkdir -p "$out"
status=0
for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
  name=$(basename "$dir")
  kubectl kustomize "$dir" > "$out/$name.yaml"
  if "$venv/bin/kubernetes-validate" --strict --quiet "$out/$name.yaml"; then
    echo "ok   $dir ($(grep -c '^kind:' "$out/$name.yaml") resources)"
  else
    echo "FAIL $dir"
    status=1
  fi
done
exit $status
