#!/usr/bin/env bash
# Load test (issue 5 item 8): a release `emrest serve --demo` on a temporary data folder and a
# loopback port; 500 clients (EMREST_LOAD_CLIENTS) log on, list VM restore points
# (?format=Entity, XML and JSON) and poll tasks for 60 s (EMREST_LOAD_SECONDS) while 4 restores
# run back to back. Prints requests/s, p50/p99 latency (all, while the clients still log on,
# after), logon throughput, answers by status, lost or duplicated
# tasks and the server's peak memory; exits non-zero on any 5xx, I/O error or lost task.
# Usage: bench/load.sh        EMREST_LOAD_SECONDS=5 EMREST_LOAD_CLIENTS=50 bench/load.sh
# (EMREST_LOAD_PROFILE=debug uses the debug build, EMREST_LOAD_DISK=4M smaller demo disks.)
# A large catalog: EMREST_LOAD_DATA=<a data folder holding a demo> serves a copy of that folder
# instead of a new demo, and EMREST_LOAD_LIST=<path> is what the clients list, e.g. after
#   EMREST_KEEP=1 EMREST_DEMO=1 \
#     cargo run --release -p emrest-core --example query_bench -- 1000000 1 /tmp/big
# run EMREST_LOAD_DATA=/tmp/big/data \
#     EMREST_LOAD_LIST='/api/query?type=VmRestorePoint&format=Entities&pageSize=100&page=10000' \
#     bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_=${EMREST_LOAD_SECONDS:-60}
CLIENTS=${EMREST_LOAD_CLIENTS:-500}
RESTORES=${EMREST_LOAD_RESTORES:-4}
PORT=${EMREST_LOAD_PORT:-$((20000 + RANDOM % 20000))}
PROFILE=${EMREST_LOAD_PROFILE:-release}
T="${CARGO_TARGET_DIR:-target}/$PROFILE"

flag=--release
[ "$PROFILE" = release ] || flag=
cargo build --quiet --locked $flag -p emrest-cli --bin emrest
cargo build --quiet --locked $flag -p emrest-server --example loadgen
ulimit -n 8192 2>/dev/null || true

DATA=$(mktemp -d)
SERVER=
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$DATA"
}
trap cleanup EXIT

if [ -n "${EMREST_LOAD_DATA:-}" ]; then
    cp -a "$EMREST_LOAD_DATA/." "$DATA/"
else
    "$T/emrest" demo --data "$DATA" --disk-size "${EMREST_LOAD_DISK:-64M}" >/dev/null 2>&1
fi
EMREST_PASSWORD=load "$T/emrest" user add --data "$DATA" --role PortalAdministrator loader >/dev/null 2>&1
"$T/emrest" serve --data "$DATA" --http "127.0.0.1:$PORT" --https off \
    --restore-workers "$RESTORES" --logon-max-failures 0 --gc-interval-minutes 0 \
    2>"$DATA.log" &
SERVER=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

echo "emrest serve (pid $SERVER, $PROFILE) on 127.0.0.1:$PORT: $CLIENTS clients, $SECONDS_ s, $RESTORES restores"
set +e
"$T/examples/loadgen" "127.0.0.1:$PORT" loader load "$CLIENTS" "$SECONDS_" "$RESTORES" \
    ${EMREST_LOAD_LIST:+"$EMREST_LOAD_LIST"}
rc=$?
set -e
echo "server peak memory $(awk '/VmHWM/ {print $2, $3}' "/proc/$SERVER/status")"
if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "the server died:" >&2; tail -20 "$DATA.log" >&2; rc=1
fi
rm -f "$DATA.log"
exit $rc
