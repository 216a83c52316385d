#!/usr/bin/env bash
# The emrest benchmark table: full restore against cp, QuickRollback at 1% with and without
# changed-block tracking, full and incremental backups and a restore against restic on the same
# image, with repository sizes and peak memory, all measured side by side in one run.
# Usage: bench/restore.sh [disk size in MiB, default 4096] [work dir, default a temp dir]
# EMREST_BENCH_CHUNK_KIB=1024 bench/restore.sh 1024  compares another chunk size;
# EMREST_BENCH_RESTIC=0 skips restic.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EMREST_BENCH_RESTIC:-1}" != 0 ] && ! command -v restic >/dev/null; then
    echo "installing restic (Debian package) for the comparison..." >&2
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get install -y -q restic >/dev/null || echo "restic unavailable: its rows are skipped" >&2
fi
cargo build --quiet --release -p emrest-server --example restore_bench
exec "${CARGO_TARGET_DIR:-target}/release/examples/restore_bench" "${1:-4096}" ${2:+"$2"}
