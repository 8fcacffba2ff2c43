#!/usr/bin/env bash
# Runs the whole test suite: unit, component and end-to-end tests.
# Starts (and installs if missing) the test services first: a tansu Kafka
# broker and a moto S3 server, via scripts/services.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# Fail here, not in a hundred tests, when a service cannot start.
service_env="$(scripts/services.sh start)" || { echo "test.sh: the test services did not start (see above)" >&2; exit 1; }
eval "$service_env"

if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "cargo-nextest not found; installing it" >&2
  cargo install cargo-nextest --locked
fi

# One build shared by every test binary; the end-to-end tests run the same
# `inlet` binary users run.
cargo nextest run --workspace --no-fail-fast "$@"
