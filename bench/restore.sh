#!/usr/bin/env bash
# Restore and backup figures against `cp` of the same image, measured side by side in one run.
# Usage: bench/restore.sh [disk size in MiB, default 1024] [work dir, default a temp dir]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p emrest-core --example restore_bench -- "${1:-1024}" ${2:+"$2"}
