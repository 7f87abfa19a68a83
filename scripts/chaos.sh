#!/usr/bin/env bash
# The start/stop/check helpers of each backend and fault are called by name ("${name}_stop"):
# shellcheck disable=SC2329
# Fault drills under load: the platform as separate processes on private PostgreSQL, Redis,
# RabbitMQ and NATS instances (their own ports and data in a temporary directory, loopback only;
# the machine's shared instances are never touched), a mixed load through the gateway
# (examples/chaos_load.rs: register, login, me, scrape, search, borrow, borrowings, return,
# logout, and logged-out tokens replayed all along), and in turn:
#
#   restart PostgreSQL (immediate stop: a crash) · restart Redis · kill -9 and restart each
#   service process · stop and start RabbitMQ · stop and start NATS
#
# After each fault the script waits for every process's /readyz; it restarts only the process
# it killed, and records any other that died or never became ready again (a manual restart).
# examples/chaos_report.rs then checks the invariants and prints a Markdown table
# (CHAOS_REPORT=FILE keeps a copy); the exit status is 0 only when every invariant held. The
# whole drill after the build is bounded by CHAOS_MAX_SECONDS (900).
#
#   scripts/chaos.sh                                # debug binaries, 3-4 minutes after the build
#   CHAOS_PROFILE=release scripts/chaos.sh
#   CHAOS_OUTAGE_SECONDS=4 CHAOS_SETTLE_SECONDS=6 CHAOS_WORKERS=4 CHAOS_KEEP=1 scripts/chaos.sh
#
# Needs the PostgreSQL server binaries (/usr/lib/postgresql/*/bin), redis-server, rabbitmq-server,
# nats-server, epmd and curl. Ports, below the kernel's ephemeral range so that no outgoing
# connection holds one: PostgreSQL 25432, Redis 26379, RabbitMQ 27672 (distribution 27673, its
# own epmd on 24369), NATS 24222, the platform 28000-28090 (CHAOS_PORT_* to change).
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${CHAOS_PROFILE:-debug}
OUTAGE=${CHAOS_OUTAGE_SECONDS:-4}
KILL_OUTAGE=${CHAOS_KILL_OUTAGE_SECONDS:-2}
SETTLE=${CHAOS_SETTLE_SECONDS:-6}
BASELINE=${CHAOS_BASELINE_SECONDS:-10}
READY_BOUND=${CHAOS_READY_SECONDS:-60}
MAX_SECONDS=${CHAOS_MAX_SECONDS:-900}
export CHAOS_WORKERS=${CHAOS_WORKERS:-4}
PG_PORT=${CHAOS_PORT_POSTGRES:-25432}
REDIS_PORT=${CHAOS_PORT_REDIS:-26379}
AMQP_PORT=${CHAOS_PORT_RABBITMQ:-27672}
AMQP_DIST_PORT=$((AMQP_PORT + 1))
EPMD_PORT=${CHAOS_PORT_EPMD:-24369}
NATS_PORT=${CHAOS_PORT_NATS:-24222}
P=${CHAOS_PORT_BASE:-28000}

for tool in curl redis-server redis-cli nats-server epmd; do
  command -v "$tool" >/dev/null || { echo "chaos: $tool is required"; exit 1; }
done
PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
[ -x "$PG_BIN/initdb" ] || { echo "chaos: PostgreSQL server binaries not found under /usr/lib/postgresql"; exit 1; }
RABBIT_BIN=/usr/lib/rabbitmq/bin
[ -x "$RABBIT_BIN/rabbitmq-server" ] || { echo "chaos: rabbitmq-server not found in $RABBIT_BIN"; exit 1; }
for port in "$PG_PORT" "$REDIS_PORT" "$AMQP_PORT" "$AMQP_DIST_PORT" "$EPMD_PORT" "$NATS_PORT" \
  "$P" $((P + 1)) $((P + 2)) $((P + 3)) $((P + 4)) $((P + 5)) $((P + 14)) $((P + 24)) $((P + 90)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "chaos: port $port is in use (another run?); set CHAOS_PORT_*"; exit 1
  fi
done

echo "chaos: building the $PROFILE binaries…"
CARGO_PROFILE=()
[ "$PROFILE" = release ] && CARGO_PROFILE=(--release)
cargo build "${CARGO_PROFILE[@]}" --quiet -p gateway -p app-service -p user-service \
  -p scraper-service -p book-service -p borrowings-function
cargo build "${CARGO_PROFILE[@]}" --quiet -p platform --example chaos_load --example chaos_report
BIN=target/$PROFILE

WORK=$(mktemp -d /tmp/chaos.XXXXXX)
chmod 755 "$WORK"
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/redis" "$WORK/nats" "$WORK/rabbitmq/home" "$WORK/mail"
declare -A PID=()
BACKEND_PIDS=()
LOAD_PID=
WATCHDOG_PID=

now() { date +%s%3N; }
say() { printf 'chaos: [%s] %s\n' "$(date +%T)" "$*"; }

# --- Private backends --------------------------------------------------------------------------
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PGDATA=$WORK/pg/data
pg_start() { as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg/postgres.log" -w -t 60 start >/dev/null; }
pg_stop() { as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -m "${1:-fast}" -w -t 60 stop >/dev/null; }
pg_up() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
pg_init() {
  mkdir -p "$WORK/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$WORK/pg"
  as_postgres "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust >"$LOGS/initdb.log"
  cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK/pg'
max_connections = 200
CONF
}

redis_start() {
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis" --appendonly yes \
    --save '' --protected-mode yes >>"$LOGS/redis.log" 2>&1 &
  REDIS_PID=$!
  BACKEND_PIDS+=("$REDIS_PID")
}
redis_stop() { redis-cli -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true; wait "$REDIS_PID" 2>/dev/null || true; }
redis_up() { [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

# A second RabbitMQ node of its own: its name, ports, epmd, Erlang cookie (HOME), data and logs;
# no plugins (so no management or Prometheus listener).
rabbit() {
  env HOME="$WORK/rabbitmq/home" RABBITMQ_NODENAME=chaos@localhost \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQP_PORT" \
    RABBITMQ_DIST_PORT="$AMQP_DIST_PORT" ERL_EPMD_PORT="$EPMD_PORT" ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    RABBITMQ_MNESIA_BASE="$WORK/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$LOGS/rabbitmq" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$WORK/rabbitmq/enabled_plugins" \
    RABBITMQ_PID_FILE="$WORK/rabbitmq/pid" RABBITMQ_CONFIG_FILE="$WORK/rabbitmq/rabbitmq" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$WORK/rabbitmq/advanced.config" \
    RABBITMQ_CONF_ENV_FILE="$WORK/rabbitmq/rabbitmq-env.conf" \
    "$RABBIT_BIN/$1" "${@:2}"
}
rabbit_start() {
  echo '[].' >"$WORK/rabbitmq/enabled_plugins"
  rabbit rabbitmq-server >>"$LOGS/rabbitmq-server.log" 2>&1 &
  RABBIT_PID=$!
  BACKEND_PIDS+=("$RABBIT_PID")
}
rabbit_stop() { rabbit rabbitmqctl -q -n chaos@localhost stop >/dev/null 2>&1 || true; wait "$RABBIT_PID" 2>/dev/null || true; }
rabbit_up() { rabbit rabbitmq-diagnostics -q -n chaos@localhost check_port_connectivity >/dev/null 2>&1; }

nats_start() {
  nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/nats" >>"$LOGS/nats.log" 2>&1 &
  NATS_PID=$!
  BACKEND_PIDS+=("$NATS_PID")
}
nats_stop() { kill "$NATS_PID" 2>/dev/null || true; wait "$NATS_PID" 2>/dev/null || true; }
nats_up() { (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null; }

cleanup() {
  set +e
  [ -n "$WATCHDOG_PID" ] && kill "$WATCHDOG_PID" 2>/dev/null
  [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null
  for name in "${!PID[@]}"; do kill "${PID[$name]}" 2>/dev/null; done
  sleep 1
  for name in "${!PID[@]}"; do kill -9 "${PID[$name]}" 2>/dev/null; done
  [ -f "$PGDATA/postmaster.pid" ] && pg_stop immediate 2>/dev/null
  redis_stop
  rabbit_stop
  nats_stop
  # The epmd this run's RabbitMQ started on its own port (never the machine's).
  ERL_EPMD_PORT=$EPMD_PORT epmd -kill >/dev/null 2>&1
  if [ "${CHAOS_KEEP:-0}" = 1 ]; then echo "chaos: logs and data kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "chaos: interrupted"; exit 124' TERM INT
# The time bound: past it the drill is stopped (and cleaned up) whatever it is doing.
watchdog() {
  sleep "$MAX_SECONDS" &
  local nap=$!
  # shellcheck disable=SC2064 # the sleep's pid is meant to be fixed now
  trap "kill $nap 2>/dev/null; exit 0" TERM
  if wait "$nap"; then echo "chaos: over CHAOS_MAX_SECONDS=$MAX_SECONDS; stopping"; kill -TERM $$; fi
}
watchdog &
WATCHDOG_PID=$!

wait_until() { # wait_until SECONDS COMMAND… → 0 once COMMAND succeeds
  local deadline=$(($(date +%s) + $1)); shift
  until "$@"; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

say "starting private PostgreSQL :$PG_PORT, Redis :$REDIS_PORT, RabbitMQ :$AMQP_PORT, NATS :$NATS_PORT in $WORK"
pg_init
pg_start
redis_start
rabbit_start
nats_start
wait_until 60 pg_up || { echo "chaos: PostgreSQL did not start"; tail "$WORK/pg/postgres.log"; exit 1; }
wait_until 30 redis_up || { echo "chaos: Redis did not start"; exit 1; }
wait_until 30 nats_up || { echo "chaos: NATS did not start"; exit 1; }
wait_until 90 rabbit_up || { echo "chaos: RabbitMQ did not start"; tail "$LOGS/rabbitmq-server.log"; exit 1; }

# --- The platform ------------------------------------------------------------------------------
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
CIRCULATION_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export SECRET_KEY CIRCULATION_SECRET ALGORITHM=HS256
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" REDIS_KEY_PREFIX="chaos:"
export AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f" NATS_URL="nats://127.0.0.1:$NATS_PORT"
export DATABASE_URL="$PG_URL" USER_SERVICE_DATABASE_SCHEMA=chaos_users
export SCRAPER_SERVICE_DATABASE_SCHEMA=chaos_scraper BOOK_SERVICE_DATABASE_SCHEMA=chaos_books
export USER_SERVICE_URL="http://127.0.0.1:$((P + 2))" SCRAPER_SERVICE_URL="http://127.0.0.1:$((P + 3))"
# app-service and the function read book-service through one URL (in compose and Kubernetes a
# name that spreads over every instance); here the first primary.
export BOOK_SERVICE_URL="http://127.0.0.1:$((P + 4))"
export WORKER_THREADS=1 LOG_FORMAT=text RUST_LOG=${RUST_LOG:-info}
# bcrypt at cost 4: the drill is about faults, not about hashing (cost 12 would cap the whole
# load at a few logins per second on two cores). Registration throttling off for one address.
export BCRYPT_COST=4 REGISTER_MAX_PER_IP=1000000 REGISTER_MAX_GLOBAL=1000000
export MAIL_DIR="$WORK/mail"
unset JWT_PRIVATE_KEY_FILE JWKS_URL OTEL_EXPORTER_OTLP_ENDPOINT SMTP_URL

SERVICES=(user-service scraper-service book-service-1 book-service-2 book-service-backup
  borrowings-function app-service gateway)
# name → "port of its /healthz and /readyz"
declare -A PORT=([gateway]=$P [app-service]=$((P + 1)) [user-service]=$((P + 2))
  [scraper-service]=$((P + 3)) [book-service-1]=$((P + 4)) [book-service-2]=$((P + 14))
  [book-service-backup]=$((P + 24)) [borrowings-function]=$((P + 5)))

exec_service() {
  local name=$1
  case $name in
    user-service) USER_SERVICE_ADDR=127.0.0.1:$((P + 2)) exec "$BIN/user-service" ;;
    scraper-service)
      SCRAPER_SERVICE_ADDR=127.0.0.1:$((P + 3)) SCRAPER_FETCHER=http SOURCE_BASE_URL="$SITE_URL" \
        SCRAPE_LEASE_SECONDS=10 SCRAPE_POLL_INTERVAL_MS=200 SCRAPE_RETRY_BASE_MS=200 \
        SCRAPE_RETRY_MAX_MS=2000 exec "$BIN/scraper-service" ;;
    book-service-*)
      BOOK_SERVICE_ADDR=127.0.0.1:${PORT[$name]} DATA_DIR="$WORK/$name" exec "$BIN/book-service" ;;
    borrowings-function) BORROWINGS_FUNCTION_ADDR=127.0.0.1:$((P + 5)) exec "$BIN/borrowings-function" ;;
    app-service) APP_SERVICE_ADDR=127.0.0.1:$((P + 1)) exec "$BIN/app-service" ;;
    gateway)
      GATEWAY_ADDR=127.0.0.1:$P APP_SERVICE_URLS=http://127.0.0.1:$((P + 1)) \
        BOOK_SERVICE_URLS=http://127.0.0.1:$((P + 4)),http://127.0.0.1:$((P + 14)) \
        BOOK_SERVICE_BACKUP_URLS=http://127.0.0.1:$((P + 24)) \
        BORROWINGS_URL=http://127.0.0.1:$((P + 5)) GATEWAY_METRICS_ADDR=127.0.0.1:$((P + 90)) \
        HEALTH_CHECK_INTERVAL_MS=500 exec "$BIN/gateway" ;;
  esac
}
launch() { (exec_service "$1") >>"$LOGS/$1.log" 2>&1 & PID[$1]=$!; }
probe() { curl -fs -m 2 -o /dev/null "http://127.0.0.1:${PORT[$1]}/$2"; }
healthy() { probe "$1" healthz; }
ready() { probe "$1" readyz; }
# The services not ready, space-separated (empty: all are).
not_ready() { local s out=(); for s in "${SERVICES[@]}"; do ready "$s" || out+=("$s"); done; echo "${out[*]}"; }
all_ready() { [ -z "$(not_ready)" ]; }

# The load generator first: it serves the openmoney stand-in the scraper is pointed at.
export CHAOS_PASSWORD="chaos-librarian-$RANDOM$RANDOM"
"$BIN/examples/chaos_load" "$WORK" "http://127.0.0.1:$P" >"$LOGS/chaos_load.log" 2>&1 &
LOAD_PID=$!
wait_until 30 test -s "$WORK/site.url" || { echo "chaos: the load generator did not start"; cat "$LOGS/chaos_load.log"; exit 1; }
SITE_URL=$(cat "$WORK/site.url")

say "starting the platform (${#SERVICES[@]} processes, $PROFILE)"
for s in user-service scraper-service book-service-1 book-service-2 book-service-backup; do launch "$s"; done
for s in user-service scraper-service book-service-1 book-service-2 book-service-backup; do
  wait_until 120 healthy "$s" || { echo "chaos: $s did not start"; tail -n 20 "$LOGS/$s.log"; exit 1; }
done
for s in borrowings-function app-service gateway; do launch "$s"; done
wait_until "$READY_BOUND" all_ready || { echo "chaos: not ready: $(not_ready)"; tail -n 5 "$LOGS"/*.log; exit 1; }

curl -fs -o /dev/null -X POST "http://127.0.0.1:$P/auth/register/" -H 'content-type: application/json' \
  -d "{\"username\":\"chaos_librarian\",\"email\":\"chaos_librarian@example.com\",\"password\":\"$CHAOS_PASSWORD\"}"
USER_SERVICE_ADDR=127.0.0.1:0 "$BIN/user-service" set-role chaos_librarian librarian >/dev/null
touch "$WORK/go"
wait_until 30 test -f "$WORK/load.started" || { echo "chaos: the load did not start"; cat "$LOGS/chaos_load.log"; exit 1; }
say "load running ($CHAOS_WORKERS readers + a replayer of logged-out tokens); baseline ${BASELINE}s"
sleep "$BASELINE"

# --- Faults ------------------------------------------------------------------------------------
# After a fault ends: every process ready again (bounded), and none died but the one killed.
# Anything else is restarted here and recorded as a manual restart.
MANUAL=
settle_after() {
  local s manual=()
  wait_until "$READY_BOUND" all_ready || true
  for s in "${SERVICES[@]}"; do
    if ! kill -0 "${PID[$s]}" 2>/dev/null; then
      manual+=("$s(exited)"); launch "$s"
    elif ! ready "$s"; then
      manual+=("$s(not ready after ${READY_BOUND}s)"); kill -9 "${PID[$s]}" 2>/dev/null; wait "${PID[$s]}" 2>/dev/null; launch "$s"
    fi
  done
  if [ ${#manual[@]} -gt 0 ]; then
    wait_until "$READY_BOUND" all_ready || true
    MANUAL=$(IFS=' '; echo "${manual[*]}")
  else
    MANUAL=-
  fi
}
record() { # record NAME START END
  local ready_at
  settle_after
  ready_at=$(now)
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$ready_at" "$MANUAL" >>"$WORK/faults.tsv"
  say "  $1: outage $((($3 - $2) / 100))ds, ready $(((ready_at - $3) / 100))ds after; manual restarts: $MANUAL"
  sleep "$SETTLE"
}

backend_fault() { # backend_fault NAME STOP START UP
  local start end
  say "fault: $1"
  # From the moment the stop is ordered: what fails while it takes effect is this fault's.
  start=$(now)
  $2
  sleep "$OUTAGE"
  $3
  wait_until 120 "$4" || { echo "chaos: $1 did not come back"; exit 1; }
  end=$(now)
  record "$1" "$start" "$end"
}

kill_fault() { # kill_fault SERVICE
  local start end
  say "fault: kill -9 $1"
  start=$(now)
  kill -9 "${PID[$1]}"
  wait "${PID[$1]}" 2>/dev/null || true
  sleep "$KILL_OUTAGE"
  launch "$1"
  wait_until 120 healthy "$1" || { echo "chaos: $1 did not restart"; tail -n 20 "$LOGS/$1.log"; exit 1; }
  end=$(now)
  record "kill -9 $1" "$start" "$end"
}

pg_crash() { pg_stop immediate; }
backend_fault "PostgreSQL restart (crash stop)" pg_crash pg_start pg_up
backend_fault "Redis restart" redis_stop redis_start redis_up
for s in "${SERVICES[@]}"; do kill_fault "$s"; done
backend_fault "RabbitMQ stop/start" rabbit_stop rabbit_start rabbit_up
backend_fault "NATS stop/start" nats_stop nats_start nats_up

say "stopping the load; checking the invariants…"
touch "$WORK/stop"
wait_until 30 test -f "$WORK/load.done" || { echo "chaos: the load did not stop"; exit 1; }
status=0
"$BIN/examples/chaos_report" "$WORK" "http://127.0.0.1:$P" "$PG_URL" chaos_scraper chaos_books \
  | tee "$WORK/report.md" || status=$?
if [ -n "${CHAOS_REPORT:-}" ]; then cp "$WORK/report.md" "$CHAOS_REPORT"; fi
exit "$status"
