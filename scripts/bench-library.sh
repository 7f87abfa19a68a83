#!/usr/bin/env bash
# Load benchmark of the library's hot paths, with the separate release binaries on local
# PostgreSQL, Redis and RabbitMQ (as in production), on ports 18100-18106:
#
#   (a) borrow + return (POST /loans/, POST /loans/{id}/return) through the gateway, at
#       CONNECTIONS concurrent readers, each borrowing a title of its own: p50/p99 of each step
#       and of the pair, and the CPU the whole machine spent per pair;
#   (b) the same transaction on shorter paths, side by side, to show each hop's share:
#       straight at app-service (no gateway); as commands on RabbitMQ to the running
#       book-service (no HTTP at all: the broker's round trip plus the transaction); and
#       book-service's command handler called in process (the database transaction alone).
#       book-service has no HTTP endpoint for commands (writes arrive only over the bus), so
#       there is no "direct HTTP" row; the handler row is that comparison. Both again with one
#       reader: the difference of their p50s is the broker's round trip, free of queueing; and
#       the handler with every reader on one title, whose lock makes them take turns; and
#       the floor of the broker's round trip: one reader over RabbitMQ to a consumer that
#       answers at once, applying nothing;
#   (c) GET /books/?q= over TITLES titles (seeded with book-service's examples/seed_titles.rs)
#       at CONNECTIONS connections, straight at a book-service on PostgreSQL and one on SQLite:
#       p50/p99, with a mix of the queries seed_titles times (common words, diacritics, a word
#       too short for the vocabulary, no match); beside it, the catalogue's first page with no
#       query, the floor of any page on that path.
#
# Needs wrk, curl, psql and rabbitmqctl (Debian packages). The load generator of (a) and (b) is
# app-service's examples/circulation_load.rs.
#   scripts/bench-library.sh                     # 10 s per scenario, 32 connections, 100k titles
#   DURATION=20 CONNECTIONS=64 TITLES=20000 scripts/bench-library.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
TITLES=${TITLES:-100000}
PG_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
AMQP_URL=${BENCH_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
# One fixed name, so that a run never leaves more than one set of queues behind.
CIRCULATION_PREFIX=bench.library
SCHEMAS=(bench_lib_users bench_lib_books bench_lib_search)
WORK=$(mktemp -d)
PIDS=()
drop_schemas() {
  local schema
  for schema in "${SCHEMAS[@]}"; do
    psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  done
}
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  drop_schemas
  rabbitmqctl -q delete_queue "$CIRCULATION_PREFIX.commands" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "$CIRCULATION_PREFIX.dead" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "$CIRCULATION_PREFIX.echo.commands" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "$CIRCULATION_PREFIX.echo.dead" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# Keep the logs of a failed run for a look.
trap 'echo "bench-library: failed; last log lines:"; tail -n 15 "$WORK"/*.log' ERR

for tool in wrk curl psql rabbitmqctl; do
  command -v "$tool" >/dev/null || { echo "bench-library: $tool is required (apt-get install wrk curl postgresql-client rabbitmq-server)"; exit 1; }
done

echo "building release binaries…"
cargo build --release --quiet -p gateway -p app-service -p user-service -p book-service
cargo build --release --quiet -p app-service --example circulation_load
cargo build --release --quiet -p book-service --example seed_titles
LOAD=target/release/examples/circulation_load

drop_schemas
SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
CIRCULATION_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export SECRET_KEY CIRCULATION_SECRET AMQP_URL CIRCULATION_PREFIX
export REDIS_URL REDIS_KEY_PREFIX="bench:$$:" RUST_LOG=warn
# As compose.yaml runs the services on one host: one thread each; the gateway one per CPU.
export WORKER_THREADS=${WORKER_THREADS:-1}
export REGISTER_MAX_PER_IP=1000000 REGISTER_MAX_GLOBAL=1000000
export USER_SERVICE_ADDR=127.0.0.1:18102 USER_SERVICE_DATABASE_URL="$PG_URL" USER_SERVICE_DATABASE_SCHEMA=bench_lib_users
export USER_SERVICE_URL=http://127.0.0.1:18102 SCRAPER_SERVICE_URL=http://127.0.0.1:18103
# Nothing else may choose the databases, and events stay in process.
unset DATABASE_URL BOOK_SERVICE_DATABASE_URL NATS_URL

# Each reader of (a) and (b) borrows a title of its own (seed_titles: one copy each), so the
# rules decide nothing and no two readers queue on one title's lock: the path is all.
env -u AMQP_URL BOOK_SERVICE_DATABASE_URL="$PG_URL" BOOK_SERVICE_DATABASE_SCHEMA=bench_lib_books \
  target/release/examples/seed_titles "$CONNECTIONS" >"$WORK/seed-books.log"
BOOKS=$(psql "$PG_URL" -tAc "SELECT string_agg(id::text, ',' ORDER BY id) FROM bench_lib_books.titles")

# book-service for (a) and (b): PostgreSQL, commands over RabbitMQ; events stay in process.
BOOK_SERVICE_ADDR=127.0.0.1:18104 BOOK_SERVICE_DATABASE_URL="$PG_URL" \
  BOOK_SERVICE_DATABASE_SCHEMA=bench_lib_books DATA_DIR="$WORK/book" \
  target/release/book-service >"$WORK/book.log" 2>&1 & PIDS+=($!)
BOOK_PID=$!
target/release/user-service >"$WORK/user.log" 2>&1 & PIDS+=($!)
APP_SERVICE_ADDR=127.0.0.1:18101 BOOK_SERVICE_URL=http://127.0.0.1:18104 \
  target/release/app-service >"$WORK/app.log" 2>&1 & PIDS+=($!)
APP_PID=$!
GATEWAY_ADDR=127.0.0.1:18100 APP_SERVICE_URLS=http://127.0.0.1:18101 \
  BOOK_SERVICE_URLS=http://127.0.0.1:18104 GATEWAY_METRICS_ADDR=127.0.0.1:18190 \
  target/release/gateway >"$WORK/gateway.log" 2>&1 & PIDS+=($!)
GATEWAY_PID=$!

wait_for() { for _ in $(seq 1 150); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "bench-library: $1 did not come up"; tail -n 20 "$WORK"/*.log; exit 1; }
wait_for http://127.0.0.1:18102/healthz
wait_for http://127.0.0.1:18104/readyz
# Not /readyz: scraper-service, which it also relays to, does not run here.
wait_for http://127.0.0.1:18101/healthz
wait_for http://127.0.0.1:18100/readyz

PASSWORD="bench-password-123"
curl -fs -X POST http://127.0.0.1:18100/auth/register/ -H 'content-type: application/json' \
  -d "{\"username\":\"benchlib\",\"email\":\"benchlib@example.com\",\"password\":\"$PASSWORD\"}" >/dev/null
target/release/user-service set-role benchlib librarian >/dev/null
TOKEN=$(curl -fs -X POST http://127.0.0.1:18100/auth/login/ -H 'content-type: application/json' \
  -d "{\"username\":\"benchlib\",\"password\":\"$PASSWORD\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
# HOT: one title every reader borrows at once (enough copies for all), to show what its lock
# costs.
HOT=$(curl -fs -X POST http://127.0.0.1:18100/books/ -H 'content-type: application/json' \
  -H "Authorization: Bearer $TOKEN" \
  -d "{\"title\":\"Les Misérables\",\"author\":\"Victor Hugo\",\"isbn\":\"978-2-07-036002-4\",\"copies\":$((CONNECTIONS * 2))}" \
  | sed -E 's/^\{"id":([0-9]+).*/\1/')

# CPU time (clock ticks) spent so far by the processes given.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)
# run_load PIDS ARGS… → the generator's line (with the whole machine's CPU per pair over its
# timed run) plus " cpu_ms_per_pair=…" for PIDS.
run_load() {
  local pids=$1; shift
  local before after line pairs
  # shellcheck disable=SC2086
  before=$(ticks $pids)
  line=$("$LOAD" "$@" "$CONNECTIONS" "$DURATION" "${TITLE_IDS:-$BOOKS}")
  # shellcheck disable=SC2086
  after=$(ticks $pids)
  pairs=$(sed -E 's/^pairs=([0-9]+).*/\1/' <<<"$line")
  echo "$line $(awk -v t=$((after - before)) -v hz="$HZ" -v n="$pairs" -v p="$pids" 'BEGIN { if (n > 0 && p != "") printf "cpu_ms_per_pair=%.2f", t * 1e3 / hz / n; else print "cpu_ms_per_pair=n/a" }')"
}
field() { sed -E "s/.*$1=([^ ]+).*/\\1/" <<<"$2"; }

echo "warming up…"
"$LOAD" http http://127.0.0.1:18100 "$CONNECTIONS" 2 "$BOOKS" >/dev/null
echo "(a) and (b): borrow + return, $CONNECTIONS readers, ${DURATION}s each…"
ALL_PIDS="$GATEWAY_PID $APP_PID $BOOK_PID"
gateway=$(run_load "$ALL_PIDS" http http://127.0.0.1:18100)
app=$(run_load "$APP_PID $BOOK_PID" http http://127.0.0.1:18101)
bus=$(run_load "$BOOK_PID" bus "$AMQP_URL" "$CIRCULATION_SECRET" "$CIRCULATION_PREFIX")
handler=$(run_load "" handler "$PG_URL" bench_lib_books)
# book-service applies at most CIRCULATION_PREFETCH (8) commands at once per instance: the
# handler again at that concurrency compares like with like.
PREFETCH=${CIRCULATION_PREFETCH:-8}
handler_prefetch=$(CONNECTIONS=$PREFETCH run_load "" handler "$PG_URL" bench_lib_books)
# Every reader on one title: each borrow and return takes that title's lock, so they run one
# at a time.
handler_hot=$(TITLE_IDS=$HOT run_load "" handler "$PG_URL" bench_lib_books)
# The broker's share, with no queueing in the way: one reader over RabbitMQ, and one reader
# calling the handler in process; the difference of their p50s is the broker's round trip.
bus_one=$(CONNECTIONS=1 run_load "$BOOK_PID" bus "$AMQP_URL" "$CIRCULATION_SECRET" "$CIRCULATION_PREFIX")
handler_one=$(CONNECTIONS=1 run_load "" handler "$PG_URL" bench_lib_books)
# The floor of that difference: the same bus code and broker with a consumer that answers at
# once and applies nothing (in the generator's process, on queues of its own).
echo_one=$(CONNECTIONS=1 run_load "" echo "$AMQP_URL" "$CIRCULATION_SECRET" "$CIRCULATION_PREFIX.echo")

# (c) Search over TITLES titles: one book-service on PostgreSQL, one on SQLite, each seeded.
echo "(c) seeding $TITLES titles on PostgreSQL and on SQLite…"
env -u AMQP_URL BOOK_SERVICE_DATABASE_URL="$PG_URL" BOOK_SERVICE_DATABASE_SCHEMA=bench_lib_search \
  target/release/examples/seed_titles "$TITLES" >"$WORK/seed-pg.log"
env -u AMQP_URL DATA_DIR="$WORK/search-sqlite" \
  target/release/examples/seed_titles "$TITLES" >"$WORK/seed-sqlite.log"
env -u AMQP_URL BOOK_SERVICE_ADDR=127.0.0.1:18105 BOOK_SERVICE_DATABASE_URL="$PG_URL" \
  BOOK_SERVICE_DATABASE_SCHEMA=bench_lib_search DATA_DIR="$WORK/search-pg" \
  target/release/book-service >"$WORK/search-pg.log" 2>&1 & PIDS+=($!)
env -u AMQP_URL BOOK_SERVICE_ADDR=127.0.0.1:18106 \
  DATA_DIR="$WORK/search-sqlite" \
  target/release/book-service >"$WORK/search-sqlite.log" 2>&1 & PIDS+=($!)
wait_for http://127.0.0.1:18105/readyz
wait_for http://127.0.0.1:18106/readyz

cat >"$WORK/search.lua" <<'LUA'
-- The queries seed_titles times: common words, two words, diacritics, a prefix, no match, and
-- the hard cases (a word in ~20 % of titles, all filed under one letter; a word too short for
-- the vocabulary in ~40 %; a word inside two terms). Not here: a part of an ISBN, the one
-- route that finds every match then sorts (seed_titles times it alone).
local queries = { "zola", "%C3%89mile%20Zola", "dvorak", "ZOLA%20mer", "chateau%20perdue",
  "hist", "p%C4%83dure", "no%20such%20title", "the", "la", "mer" }
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/books/?q=" .. queries[(n % #queries) + 1])
end
LUA
# The floor beside it: the catalogue's first page with no query at all (one index range of
# 21 titles and their figures), the least any page of results costs on the same path.
cat >"$WORK/list.lua" <<'LUA'
request = function() return wrk.format("GET", "/books/") end
LUA
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v+0 } else if (v ~ /s$/) { sub(/s$/,"",v); print v*1000 } else print v }'; }
# run_wrk URL [SCRIPT] → "rps p50 p99 non2xx" (latencies in ms)
run_wrk() {
  local out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "${2:-$WORK/search.lua}" --latency \
    -H "Authorization: Bearer $TOKEN" "$1" 2>&1)
  printf '%s %s %s %s\n' "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")" \
    "$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")" \
    "$(awk '/Non-2xx/ {print $5}' <<<"$out")"
}
wrk -t2 -c"$CONNECTIONS" -d2s -s "$WORK/search.lua" -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18105/ >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s -s "$WORK/search.lua" -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18106/ >/dev/null
read -r pg_rps pg_p50 pg_p99 pg_err < <(run_wrk http://127.0.0.1:18105/)
read -r lite_rps lite_p50 lite_p99 lite_err < <(run_wrk http://127.0.0.1:18106/)
read -r pg_list_rps pg_list_p50 pg_list_p99 pg_list_err < <(run_wrk http://127.0.0.1:18105/ "$WORK/list.lua")
read -r lite_list_rps lite_list_p50 lite_list_p99 lite_list_err < <(run_wrk http://127.0.0.1:18106/ "$WORK/list.lua")

echo
echo "(a)+(b) borrow + return — $CONNECTIONS readers, ${DURATION}s each, $(nproc) cores (latencies in ms)"
row() { printf '%-44s %8s %8s %8s %8s %8s %8s %8s %7s %9s %9s\n' "$@"; }
row path "pairs/s" "borrow50" "borrow99" "return50" "return99" "pair50" "pair99" "errors" "cpu ms/pr" "all ms/pr"
show() {
  local line=$2
  row "$1" "$(field 'pairs\/s' "$line")" \
    "$(sed -E 's/.*borrow p50=([0-9.]+)ms.*/\1/' <<<"$line")" "$(sed -E 's/.*borrow p50=[0-9.]+ms p99=([0-9.]+)ms.*/\1/' <<<"$line")" \
    "$(sed -E 's/.*return p50=([0-9.]+)ms.*/\1/' <<<"$line")" "$(sed -E 's/.*return p50=[0-9.]+ms p99=([0-9.]+)ms.*/\1/' <<<"$line")" \
    "$(sed -E 's/.*pair p50=([0-9.]+)ms.*/\1/' <<<"$line")" "$(sed -E 's/.*pair p50=[0-9.]+ms p99=([0-9.]+)ms.*/\1/' <<<"$line")" \
    "$(field errors "$line")" "$(field cpu_ms_per_pair "$line")" "$(field machine_ms_per_pair "$line")"
}
show "gateway → app-service → RabbitMQ → book-svc" "$gateway"
show "app-service → RabbitMQ → book-service" "$app"
show "RabbitMQ → book-service (no HTTP)" "$bus"
show "command handler in process (no broker)" "$handler"
show "same, $PREFETCH at once (the consumer's prefetch)" "$handler_prefetch"
show "same, every reader on one title" "$handler_hot"
show "RabbitMQ → book-service, 1 reader" "$bus_one"
show "command handler in process, 1 reader" "$handler_one"
show "RabbitMQ → a consumer applying nothing, 1 rdr" "$echo_one"
p50_of() { sed -E "s/.*$1 p50=([0-9.]+)ms.*/\\1/" <<<"$2"; }
awk -v b="$(p50_of borrow "$bus_one")" -v hb="$(p50_of borrow "$handler_one")" \
    -v r="$(p50_of return "$bus_one")" -v hr="$(p50_of return "$handler_one")" \
  'BEGIN { printf "broker round trip at p50 (1 reader, RabbitMQ minus in process): borrow %.2f ms, return %.2f ms\n", b - hb, r - hr }'
echo "its floor, RabbitMQ's own round trip (1 reader, a consumer applying nothing) at p50: borrow $(p50_of borrow "$echo_one") ms, return $(p50_of return "$echo_one") ms"
echo "(cpu ms/pr: CPU the platform's processes on the path spent per pair — gateway, app-service"
echo " and book-service as applicable; RabbitMQ, PostgreSQL and the load generator not counted."
echo " all ms/pr: CPU the whole machine spent per pair, everything counted; $(nproc) cores give at most"
echo " $(nproc)000 ms of CPU a second, so $(nproc)000 / (all ms/pr) pairs/s is the most this path can do here)"
echo
echo "(c) GET /books/?q= over $TITLES titles — $CONNECTIONS connections, ${DURATION}s, straight at book-service"
printf '%-28s %9s %8s %8s %8s\n' "" "req/s" "p50 ms" "p99 ms" "non-2xx"
printf '%-28s %9s %8s %8s %8s\n' "PostgreSQL: ?q= (the mix)" "$pg_rps" "$pg_p50" "$pg_p99" "${pg_err:-0}"
printf '%-28s %9s %8s %8s %8s\n' "PostgreSQL: first page" "$pg_list_rps" "$pg_list_p50" "$pg_list_p99" "${pg_list_err:-0}"
printf '%-28s %9s %8s %8s %8s\n' "SQLite: ?q= (the mix)" "$lite_rps" "$lite_p50" "$lite_p99" "${lite_err:-0}"
printf '%-28s %9s %8s %8s %8s\n' "SQLite: first page" "$lite_list_rps" "$lite_list_p50" "$lite_list_p99" "${lite_list_err:-0}"
echo "(first page: GET /books/ with no query, the floor of any page of results on this path)"
echo
for backend in pg sqlite; do
  echo "seed_titles on $backend (one query at a time, in process: the search alone):"
  grep -hE "^(seeded|q=|author=)" "$WORK/seed-$backend.log" | sed 's/^/  /'
done
