#!/usr/bin/env bash
# The API contract: runs Schemathesis, with every check, against the one-process platform
# (`platform serve`, SQLite files in a temporary directory, loopback only), once as an
# administrator and once as a reader, and exits non-zero on any failure. docs/api-contract.md
# says how to read the result and which checks are configured away for which operation, and why.
#
# Usage: scripts/contract.sh [extra `st run` options, e.g. --max-examples 50 --seed 1]
#   PLATFORM_BIN       the binary to run (default: build target/debug/platform first)
#   CONTRACT_EXAMPLES  test cases per operation and phase (default 25)
#   CONTRACT_WORKERS   concurrent Schemathesis workers (default 2)
#
# Needs python3 with pip: Schemathesis is a pinned PyPI package installed once, from binary
# wheels, into ${PLATFORM_LINT_HOME:-~/.cache/platform-lint} (as scripts/lint-function.sh does).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

requirements=(
    "schemathesis==4.32.5"
)

# --- tools ---------------------------------------------------------------------------------------
python="${PYTHON:-python3}"
stamp="$(printf '%s\n' "${requirements[@]}" | sha256sum | cut -c1-16)"
tools="${PLATFORM_LINT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/platform-lint}/$stamp"
if [[ ! -f "$tools/.complete" ]]; then
    echo "contract: installing ${requirements[*]} into $tools"
    rm -rf "$tools"
    mkdir -p "$tools"
    PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-input \
        --only-binary=:all: --target "$tools" "${requirements[@]}"
    touch "$tools/.complete"
fi
export PYTHONPATH="$tools${PYTHONPATH:+:$PYTHONPATH}"
st() { "$python" -m schemathesis.cli "$@"; }

# --- the platform --------------------------------------------------------------------------------
if [[ -z "${PLATFORM_BIN:-}" ]]; then
    cargo build --quiet --locked --bin platform
    PLATFORM_BIN="$root/target/debug/platform"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/contract.XXXXXX")"
pid=""
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Free loopback ports, chosen by the kernel.
read -r gateway_port app_port user_port scraper_port book_port borrowings_port source_port < <("$python" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
EOF
)
base="http://127.0.0.1:$gateway_port"

# Only this process's settings; every limit a fuzzer trips in seconds is raised (the defaults
# stay what they are), and the scraper fetches from a closed loopback port, never the internet.
stack_env=(
    env -i PATH="$PATH" HOME="$HOME"
    DATA_DIR="$work/data"
    GATEWAY_ADDR="127.0.0.1:$gateway_port"
    GATEWAY_METRICS_ADDR=off
    APP_SERVICE_ADDR="127.0.0.1:$app_port"
    USER_SERVICE_ADDR="127.0.0.1:$user_port"
    SCRAPER_SERVICE_ADDR="127.0.0.1:$scraper_port"
    BOOK_SERVICE_ADDR="127.0.0.1:$book_port"
    BORROWINGS_FUNCTION_ADDR="127.0.0.1:$borrowings_port"
    SECRET_KEY="contract-run-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    MAIL_DIR="$work/mail"
    SCRAPER_FETCHER=http
    SOURCE_BASE_URL="http://127.0.0.1:$source_port"
    SCRAPE_MAX_ATTEMPTS=1
    SCRAPE_JOBS_PER_USER_PER_MINUTE=1000000
    SCRAPE_FORCED_PER_USER_PER_HOUR=1000000
    BCRYPT_COST=4
    LOGIN_MAX_FAILURES_PER_ACCOUNT=1000000
    LOGIN_MAX_FAILURES_PER_IP=1000000
    REGISTER_MAX_PER_IP=1000000
    REGISTER_MAX_GLOBAL=1000000
    GATEWAY_MAX_CONNECTIONS_PER_IP=1000
    WORKER_THREADS=1
    RUST_LOG="${CONTRACT_RUST_LOG:-warn}"
)
mkdir -p "$work/data" "$work/mail"
"${stack_env[@]}" "$PLATFORM_BIN" serve >"$work/platform.log" 2>&1 &
pid=$!

for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "contract: the platform exited during start-up:" >&2
        cat "$work/platform.log" >&2
        exit 1
    fi
    sleep 0.2
done
curl -fsS -o /dev/null "$base/readyz" || { echo "contract: the platform never got ready" >&2; tail -50 "$work/platform.log" >&2; exit 1; }

# --- accounts ------------------------------------------------------------------------------------
password="contract-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
register() {
    curl -fsS -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"email\":\"$1@example.com\",\"password\":\"$password\"}" \
        "$base/auth/register"
}
register contract-admin
register contract-reader
"${stack_env[@]}" "$PLATFORM_BIN" set-role contract-admin admin >/dev/null

# --- runs ----------------------------------------------------------------------------------------
failed=()
run_as() {
    local who="$1"
    shift
    echo
    echo "== schemathesis as $who"
    if CONTRACT_USERNAME="$who" CONTRACT_PASSWORD="$password" \
        st --config-file "$root/scripts/contract/schemathesis.toml" run "$base/openapi.json" \
        --max-examples "${CONTRACT_EXAMPLES:-25}" \
        --workers "${CONTRACT_WORKERS:-2}" \
        --request-timeout 10 \
        --generation-database none \
        --no-color \
        "$@"; then
        :
    else
        failed+=("$who")
    fi
}
run_as contract-admin "$@"
run_as contract-reader "$@"

if ! kill -0 "$pid" 2>/dev/null; then
    echo "contract: the platform died during the run:" >&2
    tail -50 "$work/platform.log" >&2
    exit 1
fi
if grep -q "panicked" "$work/platform.log"; then
    echo "contract: the platform panicked:" >&2
    grep -A5 "panicked" "$work/platform.log" >&2
    failed+=("panic")
fi

if ((${#failed[@]})); then
    echo "contract: FAILED (${failed[*]}); the platform's warnings and errors:"
    grep -E "WARN|ERROR" "$work/platform.log" | grep -v "SECRET_KEY is unset" | tail -40 || true
    exit 1
fi
echo "contract: 0 failures"
