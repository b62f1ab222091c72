#!/usr/bin/env bash
# update_lock.sh - regenerate constraints.txt, the lock of every dependency (with the test and
# docs extras) that the Dockerfile, .ci/run and the public CI install through (`pip install
# -c constraints.txt ...`).
#
#   bash scripts/update_lock.sh                        # re-resolve, keeping the current pins
#   bash scripts/update_lock.sh --upgrade              # newest releases within pyproject.toml
#   bash scripts/update_lock.sh --upgrade-package X    # newest X only
#
# One lock serves Python 3.11-3.13 (this machine's 3.11 and the container's Debian 3.13): uv
# resolves "universally" (environment markers where a pin must differ) and prefers one version
# of each package for every Python ("--fork-strategy fewest"), so the container runs the
# versions that the tests ran. Afterwards it checks that every pin has a binary wheel for
# CPython 3.11, 3.12 and 3.13 on x86_64 Linux (the image installs no compiler; docopt is a
# pure-Python sdist). Needs uv (pip install uv) and PyPI. Then: reinstall the venv through the
# new lock, run the tests, and commit pyproject.toml and constraints.txt together
# (docs/development.md, "Updating the lock").
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null || { echo 'update_lock.sh: needs uv (pip install uv)' >&2; exit 1; }

export UV_CUSTOM_COMPILE_COMMAND='bash scripts/update_lock.sh'
uv pip compile pyproject.toml --extra test --extra docs --universal --fork-strategy fewest \
  --python-version 3.11 --quiet --output-file constraints.txt "$@"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for version in 3.11 3.12 3.13; do
  uv pip compile pyproject.toml --extra test --extra docs --constraint constraints.txt \
    --python-version "$version" --python-platform x86_64-manylinux_2_28 \
    --only-binary :all: --no-binary docopt --quiet --output-file "$scratch/$version.txt" ||
    { echo "update_lock.sh: a pin has no wheel for CPython $version (x86_64 Linux)" >&2; exit 1; }
done
echo "constraints.txt: $(grep -cE '^[A-Za-z0-9]' constraints.txt) pins; wheels for 3.11-3.13: ok"
