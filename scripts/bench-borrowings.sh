#!/usr/bin/env bash
# Load benchmark of GET /user/borrowings/: the borrowings function behind its local HTTP
# adapter, reading a real book-service (SQLite) — both in one process, sessions in process
# (the example borrowings-function/examples/bench_borrowings.rs). The reader holds five loans,
# the most allowed, so each request is one session check, one loan list and five title
# lookups at book-service (each of which checks the session again). For comparison, the same
# reader's GET /loans/?active=true straight at book-service (one hop, no titles).
#
# Needs wrk (Debian package). Builds the example in release mode first.
#   scripts/bench-borrowings.sh                 # 10 s per row, 32 connections
#   DURATION=20 CONNECTIONS=64 scripts/bench-borrowings.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
WORK=$(mktemp -d)
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "bench-borrowings: wrk is required (apt-get install wrk)"; exit 1; }

echo "building the example (release)…"
cargo build --release --quiet -p borrowings-function --example bench_borrowings

RUST_LOG=warn "${CARGO_TARGET_DIR:-target}/release/examples/bench_borrowings" >"$WORK/out" 2>"$WORK/err" &
PID=$!
for _ in $(seq 1 300); do
  grep -q '^TOKEN=' "$WORK/out" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/err"; exit 1; }
  sleep 0.1
done
grep -q '^TOKEN=' "$WORK/out" || { echo "bench-borrowings: the example did not start"; cat "$WORK/err"; exit 1; }
BOOKS=$(sed -n 's/^BOOKS=//p' "$WORK/out")
FUNCTION=$(sed -n 's/^FUNCTION=//p' "$WORK/out")
TOKEN=$(sed -n 's/^TOKEN=//p' "$WORK/out")

# Sanity: five borrowings, answered 200.
count=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$FUNCTION/user/borrowings/" | grep -o '"book_id"' | wc -l)
[[ "$count" == 5 ]] || { echo "bench-borrowings: expected 5 borrowings, got $count"; exit 1; }

row() {
  local name="$1" url="$2" out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$url")
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")
  printf '| %-44s | %9s | %8s | %8s | %6s |\n' "$name" "$rps" "$p50" "$p99" "${errors:-0}"
}

echo
echo "$CONNECTIONS connections, ${DURATION}s each, $(nproc) CPUs shared by wrk and the process"
printf '| %-44s | %9s | %8s | %8s | %6s |\n' "request" "req/s" "p50" "p99" "non-2xx"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "-----------" "----------" "----------" "--------"
row "GET /user/borrowings/ (function, 5 loans)" "$FUNCTION/user/borrowings/"
row "GET /loans/?active=true (book-service alone)" "$BOOKS/loans/?active=true"
