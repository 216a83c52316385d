#!/usr/bin/env bash
# Full and incremental backup throughput of one disk image through a backup job, against `cp`
# of the same image in the same run, and the repository's size against the image's.
# Usage: bench/backup.sh [disk size in MiB, default 1024] [work dir, default a temp dir]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p emrest-core --example backup_bench -- "${1:-1024}" ${2:+"$2"}
