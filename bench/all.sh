#!/usr/bin/env bash
# Every benchmark of the performance issue in one command: the restore/backup table
# (bench/restore.sh: full restore through the API against cp, QuickRollback with and without
# changed-block tracking, backups and a restore against restic, repository sizes), the API
# throughput table (bench/api.sh: wrk against emrest beside a bare axum server) and the load
# run (bench/load.sh: 500 clients for 60 s with 4 restores, latency during and after their
# logon storm, logon throughput, peak memory) and the object-store table (bench/s3.sh: the
# repository in a Garage bucket against a folder, requests per GiB).
# Usage: bench/all.sh [disk size in MiB for the restore table, default 4096]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== restore and backup (bench/restore.sh ${1:-4096})"
bench/restore.sh "${1:-4096}"
echo
echo "== API throughput (bench/api.sh)"
bench/api.sh
echo
echo "== load (bench/load.sh)"
bench/load.sh
echo
echo "== repository in a bucket (bench/s3.sh)"
bench/s3.sh
