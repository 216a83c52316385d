#!/usr/bin/env bash
# API throughput (issue 7): wrk -c64 -t2 against GET /api/tasks/{ID} and
# GET /api/vmRestorePoints?format=Entity, in XML and JSON with a valid session, side by side
# with a bare axum server answering a fixed body, in the same run. Prints requests/s, p50/p99
# and the ratio to bare axum (goal: >= 50%, p99 < 10 ms), and the server's peak memory.
# For context, each emrest answer's size is also served by the bare server ("bare axum, same
# bytes": a fixed body of that many bytes, /bytes/N) and the last column is emrest's ratio to
# that: what emrest itself costs once the bytes on the wire are the same. The goal's ratio is
# the one against the small fixed body.
# Usage: bench/api.sh      EMREST_API_SECONDS=10 EMREST_API_CONNECTIONS=64 bench/api.sh
#        EMREST_API_BASELINE=/tmp/emrest-old bench/api.sh   (an older build, side by side)
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

# EMREST_API_BASELINE=/path/to/an/older/emrest measures that binary too, in the same run,
# on a data folder of its own (before/after figures side by side).
BASELINE=${EMREST_API_BASELINE:-}
PORT=$((20000 + RANDOM % 20000))
BARE_PORT=$((PORT + 1))
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }

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

"$T/examples/bare_axum" "127.0.0.1:$BARE_PORT" 2>/dev/null &
PIDS+=("$!")
wait_up "http://127.0.0.1:$BARE_PORT/"

echo "wrk -c$CONN -t2 -d${DUR}s on loopback, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
read -r BRPS BP50 BP99 BBAD < <(run "http://127.0.0.1:$BARE_PORT/")
BSIZE=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$BARE_PORT/")
ROW='%-66s %8s %10s %9s %9s %8s %8s %10s\n'
printf "$ROW" target "body B" "req/s" "p50 ms" "p99 ms" "non-2xx" "ratio" "same-size"
printf "$ROW" "bare axum, fixed body" "$BSIZE" "$BRPS" "$BP50" "$BP99" "$BBAD" "1.00" "-"

# req/s of the bare server answering N bytes, measured once per size (and printed then); a
# size within 1% of one measured already (the same answer with another port or date in its
# URLs and names) reuses that figure.
declare -A SAME_BYTES=()
same_bytes() {
    local n=$1 label=$2 k
    for k in "${!SAME_BYTES[@]}"; do
        if [ $(( (n > k ? n - k : k - n) * 100 )) -le "$k" ]; then SAME_BYTES[$n]=${SAME_BYTES[$k]}; fi
    done
    if [ -z "${SAME_BYTES[$n]:-}" ]; then
        local rps p50 p99 bad
        read -r rps p50 p99 bad < <(run "http://127.0.0.1:$BARE_PORT/bytes/$n")
        SAME_BYTES[$n]=$rps
        printf "$ROW" "bare axum, same bytes as $label" "$n" "$rps" "$p50" "$p99" "$bad" \
            "$(awk -v a="$rps" -v b="$BRPS" 'BEGIN {printf "%.2f", a/b}')" "1.00"
    fi
}

# Measure one emrest binary: a demo data folder, a logon, one finished restore task, then the
# four wrk runs. $1 = binary, $2 = label suffix, $3 = port.
measure() {
    local bin=$1 tag=$2 port=$3 data="$TMP/data$3"
    "$bin" demo --data "$data" --disk-size 16M >/dev/null 2>&1
    EMREST_PASSWORD=bench "$bin" user add --data "$data" --role PortalAdministrator bencher >/dev/null 2>&1
    "$bin" serve --data "$data" --http "127.0.0.1:$port" --https off --gc-interval-minutes 0 2>"$TMP/log$port" &
    local server=$!; PIDS+=("$server")
    wait_up "http://127.0.0.1:$port/api/"
    local base="http://127.0.0.1:$port/api" token point task
    token=$(curl -s -D - -o /dev/null -X POST -u bencher:bench "$base/sessionMngr/?v=latest" \
        | awk -F': ' 'tolower($1)=="x-restsvcsessionid" {print $2}' | tr -d '\r')
    point=$(curl -s -H "X-RestSvcSessionId: $token" -H "Accept: application/json" "$base/vmRestorePoints" \
        | grep -o 'urn:veeam:VmRestorePoint:[0-9a-f-]*' | head -1 | sed 's/.*://')
    task=$(curl -s -X POST -H "X-RestSvcSessionId: $token" -H "Accept: application/json" \
        "$base/vmRestorePoints/$point?action=restore" | grep -o '"TaskId":"[^"]*"' | cut -d'"' -f4)
    for _ in $(seq 200); do
        curl -s -H "X-RestSvcSessionId: $token" -H "Accept: application/json" "$base/tasks/$task" | grep -q '"Finished"' && break
        sleep 0.1
    done
    for fmt in xml json; do
        for path in "/tasks/$task" "/vmRestorePoints?format=Entity"; do
            local hdr=(-H "X-RestSvcSessionId: $token" -H "Accept: application/$fmt") size
            label="GET ${path/$task/{ID\}} $fmt"
            size=$(curl -s -o /dev/null -w '%{size_download}' "${hdr[@]}" "$base$path")
            same_bytes "$size" "$label"
            read -r RPS P50 P99 BAD < <(run "$base$path" "${hdr[@]}")
            printf "$ROW" "$label$tag" "$size" "$RPS" "$P50" "$P99" "$BAD" \
                "$(awk -v a="$RPS" -v b="$BRPS" 'BEGIN {printf "%.2f", a/b}')" \
                "$(awk -v a="$RPS" -v b="${SAME_BYTES[$size]}" 'BEGIN {printf "%.2f", a/b}')"
        done
    done
    echo "emrest$tag peak memory $(awk '/VmHWM/ {print $2, $3}' "/proc/$server/status")"
    kill "$server"; wait "$server" 2>/dev/null || true
}

if [ -n "$BASELINE" ]; then measure "$BASELINE" " (baseline)" $((PORT + 2)); fi
measure "$T/emrest" "" "$PORT"
