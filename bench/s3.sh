#!/usr/bin/env bash
# The repository in an S3-compatible bucket against the same repository in a folder, side by
# side: a single-node Garage on loopback (started by crates/testkit; `scripts/test
# --install-only` builds it), the same image backed up into each and restored from each (best
# of three), with the throughput ratio and the requests per GiB backed up and restored.
# Usage: bench/s3.sh [image size in MiB, default 1024]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release --locked -p emrest-s3 --example s3_bench -- "${1:-1024}"
