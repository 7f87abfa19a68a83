#!/usr/bin/env bash
# Load benchmark of the auth path: GET /auth/me/ through the full chain (Pingora gateway →
# app-service → user-service), through NGINX and through a logic-free Pingora proxy in front
# of the same app-service, directly at user-service; login throughput against the bcrypt
# ceiling; /auth/me/ during a login storm. Each row also gives the CPU its first hop spent per
# request (µs, from /proc), steadier than req/s on a shared machine.
#
# Runs the separate release binaries against local PostgreSQL and Redis (as in production),
# on ports 18000-18005 and 18080-18083, and prints one table. Needs wrk and nginx (Debian
# packages).
#   scripts/bench-auth.sh            # 10 s per scenario, 32 connections
#   DURATION=20 CONNECTIONS=64 scripts/bench-auth.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP SCHEMA IF EXISTS bench_auth CASCADE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in wrk nginx curl psql; do
  command -v "$tool" >/dev/null || { echo "bench-auth: $tool is required (apt-get install wrk nginx-light curl postgresql-client)"; exit 1; }
done

echo "building release binaries…"
cargo build --release --quiet -p gateway -p app-service -p user-service
cargo build --release --quiet -p gateway --example bare_pingora
cargo build --release --quiet -p platform --example bcrypt_rate

psql "$DATABASE_URL" -qc "DROP SCHEMA IF EXISTS bench_auth CASCADE" >/dev/null
SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export SECRET_KEY
export REDIS_URL REDIS_KEY_PREFIX="bench:$$:" RUST_LOG=warn
export USER_SERVICE_ADDR=127.0.0.1:18002 USER_SERVICE_DATABASE_URL="$DATABASE_URL" USER_SERVICE_DATABASE_SCHEMA=bench_auth
export APP_SERVICE_ADDR=127.0.0.1:18001 USER_SERVICE_URL=http://127.0.0.1:18002 SCRAPER_SERVICE_URL=http://127.0.0.1:18003
export GATEWAY_ADDR=127.0.0.1:18000 APP_SERVICE_URLS=http://127.0.0.1:18001 GATEWAY_METRICS_ADDR=127.0.0.1:18090
export LOGIN_MAX_FAILURES_PER_IP=1000000 LOGIN_MAX_FAILURES_PER_ACCOUNT=1000000
# As compose.yaml runs them on one host: one thread per service. The gateway keeps its
# default (one thread per CPU), as NGINX below runs one worker per CPU.
export WORKER_THREADS=${WORKER_THREADS:-1}

target/release/user-service >"$WORK/user.log" 2>&1 & PIDS+=($!)
USER_PID=$!
target/release/app-service >"$WORK/app.log" 2>&1 & PIDS+=($!)
APP_PID=$!
target/release/gateway >"$WORK/gateway.log" 2>&1 & PIDS+=($!)
GATEWAY_PID=$!
# Pingora with no logic of its own, one thread per CPU like the gateway's default.
target/release/examples/bare_pingora 127.0.0.1:18004 127.0.0.1:18001 >"$WORK/bare.log" 2>&1 & PIDS+=($!)
BARE_PID=$!
# The same in front of NGINX's hop to user-service (the reference rows below).
target/release/examples/bare_pingora 127.0.0.1:18005 127.0.0.1:18082 >"$WORK/bare-ref.log" 2>&1 & PIDS+=($!)
BARE_REF_PID=$!

cat >"$WORK/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  # Connections are kept for good on both sides, as Pingora keeps them (NGINX's default
  # closes them after 1000 requests).
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:18001; keepalive 64; keepalive_requests 1000000; }
  upstream user { server 127.0.0.1:18002; keepalive 64; keepalive_requests 1000000; }
  upstream hop { server 127.0.0.1:18082; keepalive 64; keepalive_requests 1000000; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header X-Forwarded-For \$remote_addr;
  server { listen 127.0.0.1:18080; location / { proxy_pass http://app; } }
  # Reference: two NGINX hops in front of user-service (what two cheap hops cost).
  server { listen 127.0.0.1:18082; location / { proxy_pass http://user; } }
  server { listen 127.0.0.1:18083; location / { proxy_pass http://hop; } }
}
NGINX
nginx -c "$WORK/nginx.conf"

wait_for() { for _ in $(seq 1 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "bench-auth: $1 did not come up"; cat "$WORK"/*.log; exit 1; }
wait_for http://127.0.0.1:18002/healthz
wait_for http://127.0.0.1:18001/healthz
wait_for http://127.0.0.1:18000/healthz
wait_for http://127.0.0.1:18080/healthz
wait_for http://127.0.0.1:18004/healthz
wait_for http://127.0.0.1:18005/healthz
NGINX_PIDS=$(pgrep -P "$(cat "$WORK/nginx.pid")" | tr '\n' ' ')

PASSWORD="bench-password-123"
curl -fs -X POST http://127.0.0.1:18000/auth/register/ -H 'content-type: application/json' \
  -d "{\"username\":\"bench\",\"email\":\"bench@example.com\",\"password\":\"$PASSWORD\"}" >/dev/null
TOKEN=$(curl -fs -X POST http://127.0.0.1:18000/auth/login/ -H 'content-type: application/json' \
  -d "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

cat >"$WORK/login.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"username":"bench","password":"$PASSWORD"}'
wrk.headers["Content-Type"] = "application/json"
LUA

# CPU time (clock ticks) spent so far by the processes given.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)

# run_wrk "PIDS" WRK_ARGS... → "rps p50 p99 non2xx cpu" (latencies in ms; cpu: µs the
# processes PIDS spent per request)
run_wrk() {
  local pids=$1; shift
  local before out after
  # shellcheck disable=SC2086
  before=$(ticks $pids)
  out=$(wrk "$@" --latency 2>&1)
  # shellcheck disable=SC2086
  after=$(ticks $pids)
  local rps p50 p99 non2xx total cpu
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$total" 'BEGIN { if (n > 0) printf "%.0f", t * 1e6 / hz / n; else print "n/a" }')
  printf '%s %s %s %s %s\n' "$rps" "$(to_ms "$p50")" "$(to_ms "$p99")" "${non2xx:-0}" "$cpu"
}
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v+0 } else if (v ~ /s$/) { sub(/s$/,"",v); print v*1000 } else print v }'; }

ME=(-t2 -c"$CONNECTIONS" -d"${DURATION}s" -H "Authorization: Bearer $TOKEN")
echo "warming up…"
wrk -t2 -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18000/auth/me/ >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18002/auth/me/ >/dev/null

read -r direct_rps direct_p50 direct_p99 direct_err direct_cpu < <(run_wrk "$USER_PID" "${ME[@]}" http://127.0.0.1:18002/auth/me/)
read -r chain_rps chain_p50 chain_p99 chain_err chain_cpu < <(run_wrk "$GATEWAY_PID" "${ME[@]}" http://127.0.0.1:18000/auth/me/)
read -r nginx_rps nginx_p50 nginx_p99 nginx_err nginx_cpu < <(run_wrk "$NGINX_PIDS" "${ME[@]}" http://127.0.0.1:18080/auth/me/)
read -r bare_rps bare_p50 bare_p99 bare_err bare_cpu < <(run_wrk "$BARE_PID" "${ME[@]}" http://127.0.0.1:18004/auth/me/)
read -r app_rps app_p50 app_p99 app_err app_cpu < <(run_wrk "$APP_PID" "${ME[@]}" http://127.0.0.1:18001/auth/me/)
read -r ref_rps ref_p50 ref_p99 ref_err ref_cpu < <(run_wrk "$NGINX_PIDS" "${ME[@]}" http://127.0.0.1:18083/auth/me/)
read -r pref_rps pref_p50 pref_p99 pref_err pref_cpu < <(run_wrk "$BARE_REF_PID" "${ME[@]}" http://127.0.0.1:18005/auth/me/)

bcrypt_rate=$(target/release/examples/bcrypt_rate 12 5 | awk '{print $4}')
read -r login_rps login_p50 login_p99 login_err _ < <(run_wrk "" -t2 -c8 -d"${DURATION}s" -s "$WORK/login.lua" http://127.0.0.1:18000/auth/login/)

# /auth/me/ while a login storm runs through the same gateway.
wrk -t1 -c16 -d"$((DURATION + 4))s" -s "$WORK/login.lua" http://127.0.0.1:18000/auth/login/ >/dev/null 2>&1 &
storm=$!
sleep 2
read -r storm_rps storm_p50 storm_p99 storm_err storm_cpu < <(run_wrk "$GATEWAY_PID" "${ME[@]}" http://127.0.0.1:18000/auth/me/)
wait "$storm" || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "GET /auth/me/ — $CONNECTIONS connections, ${DURATION}s each (wrk -t2), $(nproc) cores"
# The scenario is padded by characters, not bytes (printf's width counts bytes, and → is three).
row() { printf '%s%*s %9s %8s %8s %8s %11s\n' "$1" $((44 - ${#1})) '' "${@:2}"; }
row scenario "req/s" "p50 ms" "p99 ms" "non-2xx" "hop µs/req"
row "direct: user-service" "$direct_rps" "$direct_p50" "$direct_p99" "$direct_err" "$direct_cpu"
row "app-service → user-service" "$app_rps" "$app_p50" "$app_p99" "$app_err" "$app_cpu"
row "NGINX → app-service → user-service" "$nginx_rps" "$nginx_p50" "$nginx_p99" "$nginx_err" "$nginx_cpu"
row "bare Pingora → app-service → user-service" "$bare_rps" "$bare_p50" "$bare_p99" "$bare_err" "$bare_cpu"
row "gateway → app-service → user-service" "$chain_rps" "$chain_p50" "$chain_p99" "$chain_err" "$chain_cpu"
row "same, during a login storm" "$storm_rps" "$storm_p50" "$storm_p99" "$storm_err" "$storm_cpu"
row "reference: NGINX → NGINX → user-service" "$ref_rps" "$ref_p50" "$ref_p99" "$ref_err" "$ref_cpu"
row "reference: bare Pingora → NGINX → user-svc" "$pref_rps" "$pref_p50" "$pref_p99" "$pref_err" "$pref_cpu"
echo "(hop µs/req: CPU the first hop spent per request; NGINX → NGINX counts both hops, which share"
echo " NGINX's workers; the gateway's during the storm includes the logins)"
echo
echo "full chain / direct throughput:  $(ratio "$chain_rps" "$direct_rps")   (target ≥ 0.50, p99 < 10 ms)"
echo "gateway hop / NGINX hop throughput: $(ratio "$chain_rps" "$nginx_rps")   (target ≥ 1.00)"
echo "bare Pingora hop / NGINX hop throughput: $(ratio "$bare_rps" "$nginx_rps")   (no gateway logic: the ceiling for any Pingora gateway)"
echo "two NGINX hops / direct throughput: $(ratio "$ref_rps" "$direct_rps");  bare Pingora + NGINX hop / direct: $(ratio "$pref_rps" "$direct_rps")"
echo
echo "POST /auth/login/ through the gateway (8 connections): $login_rps req/s, p50 $login_p50 ms, p99 $login_p99 ms, non-2xx $login_err"
echo "bcrypt ceiling (cost 12, all cores): $bcrypt_rate verifications/s → login/bcrypt = $(ratio "$login_rps" "$bcrypt_rate") (target ≥ 0.90)"
echo "GET /auth/me/ p99 during the login storm: $storm_p99 ms (target < 20 ms)"
