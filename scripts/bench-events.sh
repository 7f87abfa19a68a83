#!/usr/bin/env bash
# Benchmarks of circulation events and notifications (docs/events.md), release build, with
# book-service and user-service in one process (user-service/examples/bench_events.rs) on local
# PostgreSQL and NATS JetStream; the circulation commands use the in-process bus.
#   (a) return → hold_ready at the holder's open SSE stream: p50 / p99 over RETURNS returns,
#       one at a time (goal: p99 < 250 ms);
#   (b) events relayed per second outbox → JetStream, and end to end to the notifier's stored
#       notifications, for EVENTS events committed at once (goal: ≥ 5,000/s).
#   scripts/bench-events.sh
#   RETURNS=200 EVENTS=20000 BENCH_DATABASE_URL=postgres://… NATS_URL=nats://… scripts/bench-events.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RETURNS=${RETURNS:-200}
EVENTS=${EVENTS:-20000}
export BENCH_DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
export NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export RUST_LOG=${RUST_LOG:-off}

for port in 5432 4222; do
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null \
    || { echo "bench-events: nothing listens on 127.0.0.1:$port (PostgreSQL, NATS with -js)"; exit 1; }
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (figures are only comparable when it is low)"

echo "building the release example…"
cargo build --release --quiet -p user-service --example bench_events
BIN=target/release/examples/bench_events

"$BIN" latency "$RETURNS"
"$BIN" throughput "$EVENTS"
