#!/usr/bin/env bash
# API throughput (issue 7): wrk -c64 -t2 against GET /api/tasks/{ID} and
# GET /api/vmRestorePoints?format=Entity, in XML and JSON with a valid session, side by side
# with a bare axum server answering a fixed body, in the same run. Prints requests/s, p50/p99
# and the ratio to bare axum (goal: >= 50%, p99 < 10 ms), and the server's peak memory.
# Usage: bench/api.sh      EMREST_API_SECONDS=10 EMREST_API_CONNECTIONS=64 bench/api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${EMREST_API_SECONDS:-10}
CONN=${EMREST_API_CONNECTIONS:-64}
T="${CARGO_TARGET_DIR:-target}/release"
if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)..." >&2
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get install -y -q wrk >/dev/null
fi
cargo build --quiet --locked --release -p emrest-cli --bin emrest
cargo build --quiet --locked --release -p emrest-server --example bare_axum

PORT=$((20000 + RANDOM % 20000))
BARE_PORT=$((PORT + 1))
DATA=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$DATA" "$DATA.log"
}
trap cleanup EXIT
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }

"$T/emrest" demo --data "$DATA" --disk-size 16M >/dev/null 2>&1
EMREST_PASSWORD=bench "$T/emrest" user add --data "$DATA" bencher >/dev/null 2>&1
"$T/emrest" serve --data "$DATA" --http "127.0.0.1:$PORT" --https off --gc-interval-minutes 0 2>"$DATA.log" &
SERVER=$!; PIDS+=("$SERVER")
"$T/examples/bare_axum" "127.0.0.1:$BARE_PORT" 2>/dev/null &
PIDS+=("$!")
wait_up "http://127.0.0.1:$PORT/api/"
wait_up "http://127.0.0.1:$BARE_PORT/"

BASE="http://127.0.0.1:$PORT/api"
TOKEN=$(curl -s -D - -o /dev/null -X POST -u bencher:bench "$BASE/sessionMngr/?v=latest" \
    | awk -F': ' 'tolower($1)=="x-restsvcsessionid" {print $2}' | tr -d '\r')
POINT=$(curl -s -H "X-RestSvcSessionId: $TOKEN" -H "Accept: application/json" "$BASE/vmRestorePoints" \
    | grep -o 'urn:veeam:VmRestorePoint:[0-9a-f-]*' | head -1 | sed 's/.*://')
TASK=$(curl -s -X POST -H "X-RestSvcSessionId: $TOKEN" -H "Accept: application/json" \
    "$BASE/vmRestorePoints/$POINT?action=restore" | grep -o '"TaskId":"[^"]*"' | cut -d'"' -f4)
for _ in $(seq 200); do
    curl -s -H "X-RestSvcSessionId: $TOKEN" -H "Accept: application/json" "$BASE/tasks/$TASK" | grep -q '"Finished"' && break
    sleep 0.1
done

# One wrk run: prints "req/s p50_ms p99_ms non2xx".
run() {
    local url=$1; shift
    wrk -c"$CONN" -t2 -d"${DUR}s" --latency "$@" "$url" | awk '
        function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
        /Requests\/sec/ {rps=$2}
        /^ +50%/ {p50=ms($2)} /^ +99%/ {p99=ms($2)}
        /Non-2xx/ {bad=$NF}
        END {printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad}'
}

echo "wrk -c$CONN -t2 -d${DUR}s on loopback, $(nproc) cores"
read -r BRPS BP50 BP99 BBAD < <(run "http://127.0.0.1:$BARE_PORT/")
printf '%-44s %10s %9s %9s %8s %8s\n' target "req/s" "p50 ms" "p99 ms" "non-2xx" "ratio"
printf '%-44s %10s %9s %9s %8s %8s\n' "bare axum, fixed body" "$BRPS" "$BP50" "$BP99" "$BBAD" "1.00"
for fmt in xml json; do
    for path in "/tasks/$TASK" "/vmRestorePoints?format=Entity"; do
        read -r RPS P50 P99 BAD < <(run "$BASE$path" -H "X-RestSvcSessionId: $TOKEN" -H "Accept: application/$fmt")
        label="GET ${path/$TASK/{ID\}} $fmt"
        printf '%-44s %10s %9s %9s %8s %8s\n' "$label" "$RPS" "$P50" "$P99" "$BAD" \
            "$(awk -v a="$RPS" -v b="$BRPS" 'BEGIN {printf "%.2f", a/b}')"
    done
done
echo "emrest peak memory $(awk '/VmHWM/ {print $2, $3}' "/proc/$SERVER/status")"
