#!/usr/bin/env bash
# container_ci.sh - build the project's Dockerfile and run the BIDS App in it, as on HPC.
#
#   bash scripts/container_ci.sh
#
# 1. builds the image with scripts/container_check.sh (rootful podman, a local Debian base image
#    swapped in for python:3.12-slim: no registry needed);
# 2. writes a small synthetic BIDS dataset with the package's own generator;
# 3. runs the participant level, then the group level, in the container as an unprivileged uid
#    with a read-only root filesystem, no network, the input mounted read-only and only the
#    output directory writable (container_check.sh run --sif-like), and checks the outputs
#    (subject reports; the group level must exit 0 and write group/ and group.html);
# 4. converts the image to a SIF and runs the same participant command with Apptainer as an
#    unprivileged user; checks the outputs again;
# 5. prints the image and SIF sizes and the time of each step.
#
# Needs root (podman). When not root, or when podman cannot be installed, it prints why and
# exits 0 (skipped), unless CONTAINER_CI_REQUIRED=1.
#
# Settings: PYTHON (interpreter that imports bids_asl, default python3), BIDS_ASL_IMAGE (tag,
# default localhost/bids-asl:ci), CONTAINER_CI_NO_SIF=1 (skip step 4), CONTAINER_CI_KEEP=1
# (keep the scratch directory), and container_check.sh's CCHK_* variables.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

CCHK=scripts/container_check.sh
TAG=${BIDS_ASL_IMAGE:-localhost/bids-asl:ci}
PYTHON=${PYTHON:-python3}
ME=container_ci

log() { printf '%s: %s\n' "$ME" "$*" >&2; }
die() { printf '%s: FAILED: %s\n' "$ME" "$*" >&2; exit 1; }
skip() {
  if [[ ${CONTAINER_CI_REQUIRED:-0} == 1 ]]; then die "$* (CONTAINER_CI_REQUIRED=1)"; fi
  printf '%s: SKIPPED: %s\n' "$ME" "$*" >&2
  exit 0
}

[[ $(id -u) -eq 0 ]] || skip "needs root for rootful podman (running as uid $(id -u))"
setup_log=$(mktemp)
if ! bash "$CCHK" setup >"$setup_log" 2>&1; then
  cat "$setup_log" >&2; rm -f "$setup_log"
  skip "podman could not be installed or does not work here (output above)"
fi
rm -f "$setup_log"
"$PYTHON" -c 'import bids_asl' 2>/dev/null ||
  die "$PYTHON cannot import bids_asl (pip install -e . first, or set PYTHON)"

scratch=$(mktemp -d "${CCHK_TMPDIR:-/var/tmp}/bids-asl-container-ci.XXXXXX")
cleanup() {
  if [[ ${CONTAINER_CI_KEEP:-0} == 1 ]]; then log "kept $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT

TIMES=()
timed() { # NAME CMD... : run CMD, record its wall time
  local name=$1 t0 t1 rc=0
  shift
  log "== $name"
  t0=$(date +%s.%N)
  "$@" || rc=$?
  t1=$(date +%s.%N)
  TIMES+=("$(printf '%-44s %7.1f s' "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")")
  return "$rc"
}

check_outputs() { # OUT_DIR LABEL
  local out=$1 n
  n=$(find "$out" -path '*/sub-*/perf/*_cbf.nii.gz' -type f | wc -l)
  ((n > 0)) || die "$2: no sub-*/perf/*_cbf.nii.gz in the output"
  [[ -s $out/dataset_description.json ]] || die "$2: no dataset_description.json in the output"
  "$PYTHON" - "$out/dataset_description.json" "$VERSION" "$2" <<'EOF'
import json, sys
desc, version, label = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
container = desc['GeneratedBy'][0].get('Container')
expected = {'Type': 'docker', 'Tag': f'bids-asl:{version}'}
if container != expected:
    sys.exit(f'{label}: GeneratedBy.Container is {container}, expected {expected}')
EOF
  log "$2: $n CBF map(s), dataset_description.json with GeneratedBy.Container: ok"
}

check_group() { # OUT_DIR LABEL: the group level's tables and reports
  local out=$1 n_sub n_rows
  n_sub=$(find "$out" -maxdepth 1 -name 'sub-*.html' -type f | wc -l)
  ((n_sub > 0)) || die "$2: no sub-*.html subject report in the output"
  [[ -s $out/group.html ]] || die "$2: no group.html in the output"
  [[ -s $out/group/group_desc-qc_cbf.tsv ]] || die "$2: no group/group_desc-qc_cbf.tsv"
  n_rows=$(($(wc -l < "$out/group/group_desc-qc_cbf.tsv") - 1))
  ((n_rows > 0)) || die "$2: the group QC table has no run"
  log "$2: $n_sub subject report(s), group.html, group QC table with $n_rows run(s): ok"
}

fresh_dir() { # a directory the container's unprivileged uid can write
  mkdir -p "$1" && chmod 0777 "$1"
}

VERSION=$("$PYTHON" -c 'import bids_asl; print(bids_asl.__version__)')
bids=$scratch/bids
timed 'synthetic BIDS dataset (host)' "$PYTHON" -c \
  "from bids_asl.synthetic import make_dataset; make_dataset('$bids')"
chmod -R a+rX "$scratch"

# the full podman build output goes to a log; its tail is shown if the build fails
log "building $TAG (first time: the local Debian base image too, a few minutes)"
if ! timed 'image build (container_check.sh build)' bash "$CCHK" build . "$TAG" \
    >"$scratch/build.log" 2>&1; then
  tail -40 "$scratch/build.log" >&2
  die "the image did not build"
fi
grep -E '^container_check: (base|built|installing|debootstrap)' "$scratch/build.log" >&2 || true
size_mb=$(podman image inspect -f '{{.Size}}' "$TAG" | awk '{ printf "%.0f", $1 / 1e6 }')

# participant, then group: unprivileged uid, read-only root and input, no network
out=$scratch/out-podman
fresh_dir "$out"
run_app() { bash "$CCHK" run "$TAG" --sif-like -v "$bids:/data:ro" -v "$out:/out" -- "$@"; }
timed 'participant, podman --sif-like (--nprocs 2)' run_app /data /out participant --nprocs 2 ||
  die "participant level failed in the container"
check_outputs "$out" 'podman participant'
timed 'group, podman --sif-like' run_app /data /out group ||
  die "group level failed in the container"
check_group "$out" 'podman group'

if [[ ${CONTAINER_CI_NO_SIF:-0} != 1 ]]; then
  sif=$scratch/bids-asl.sif
  timed 'SIF build (container_check.sh sif)' bash "$CCHK" sif "$TAG" "$sif" ||
    die "could not convert the image to a SIF"
  sif_mb=$(du -m "$sif" | cut -f1)
  out=$scratch/out-sif
  fresh_dir "$out"
  timed 'participant, apptainer run (unprivileged)' bash "$CCHK" sif-run "$sif" \
    -v "$bids:/data:ro" -v "$out:/out" -- /data /out participant --nprocs 2 ||
    die "participant level failed in the SIF"
  check_outputs "$out" 'apptainer participant'
fi

echo "== container CI: passed"
echo "image $TAG: ${size_mb} MB (podman image inspect .Size)"
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$TAG"
[[ -z ${sif_mb:-} ]] || echo "SIF: ${sif_mb} MB"
printf '%s\n' "${TIMES[@]}"
