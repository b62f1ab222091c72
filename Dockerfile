ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}
# bids-asl as a BIDS App container: docker run / podman / Apptainer (SIF) on HPC.
# Both stages are FROM ${BASE_IMAGE}, so any base with python3 (and its venv module) works.
#
# Stage 0 (build): a virtualenv in /opt/venv. It works the same on python:*-slim (Python in
# /usr/local) and on a Debian base whose python3 is the system's "externally managed" Python.
# Every dependency is a binary wheel: no compiler is installed or needed.
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /src
# constraints.txt pins every dependency (scripts/update_lock.sh writes it): a rebuild installs
# the versions the tests ran, so reruns stay byte-identical across image builds.
COPY pyproject.toml README.md constraints.txt ./
COPY bids_asl ./bids_asl
# pip compiles the .pyc files at install time (the run-time filesystem is read-only). Not
# needed at run time: pip itself, the test suites of numpy, scipy and pandas, and the BIDS
# validator's JavaScript source map (~16 MB, only for the validator's own stack traces).
RUN /opt/venv/bin/pip install --no-cache-dir --constraint constraints.txt . \
 && /opt/venv/bin/pip uninstall --yes --quiet pip \
 && cd /opt/venv/lib/python3*/site-packages \
 && find numpy scipy pandas -type d -name tests -prune -exec rm -rf {} + \
 && rm -f bids_validator_deno/*.js.map

# Run stage: the same base, the virtualenv, a non-root user; nothing else.
FROM ${BASE_IMAGE}
# Keep in step with bids_asl/__init__.py (the build checks it; tests/test_ci_config.py too).
ARG BIDS_ASL_VERSION=0.1.0
LABEL org.opencontainers.image.title="bids-asl" \
      org.opencontainers.image.description="BIDS App: ASL MRI to calibrated cerebral blood flow maps" \
      org.opencontainers.image.version="${BIDS_ASL_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/bids-asl/bids_asl"
COPY --from=0 /opt/venv /opt/venv
# Everything a run writes goes to the output/work directories or to /tmp, so the image runs with
# a read-only root filesystem (docker run --read-only --tmpfs /tmp; Apptainer's SIF). No run-time
# network: nipype's version check is off and the BIDS validator is a local binary.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/.cache \
    NIPYPE_NO_ET=1 \
    DENO_NO_UPDATE_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8 \
    BIDS_ASL_CONTAINER=docker:bids-asl:${BIDS_ASL_VERSION}
RUN test "$(python3 -c 'import bids_asl; print(bids_asl.__version__)')" = "${BIDS_ASL_VERSION}" \
      || { echo "BIDS_ASL_VERSION=${BIDS_ASL_VERSION} differs from bids_asl.__version__" >&2; exit 1; } \
 && useradd --uid 1000 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin bidsasl \
 && bids-asl --version && bids-validator-deno --version \
 && rm -rf /tmp/* /tmp/.[!.]*
USER bidsasl
WORKDIR /tmp
ENTRYPOINT ["bids-asl"]
CMD ["--help"]
