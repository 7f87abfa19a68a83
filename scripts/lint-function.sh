#!/usr/bin/env bash
# Lints the borrowings function's deployment: its AWS SAM template (cfn-lint, which expands
# the SAM transform and checks the result against the CloudFormation resource schemas), and
# that the function links no database driver (its only read path is book-service's API).
# Exits non-zero on any finding; every check runs, so one pass shows them all.
#
# Needs only python3 with pip (and cargo for the dependency check): cfn-lint is a pinned PyPI
# package installed once, from binary wheels, into ${PLATFORM_LINT_HOME:-~/.cache/platform-lint}
# (the same cache as scripts/lint-delivery.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

requirements=(
    "cfn-lint==1.58.0"
)
template=borrowings-function/template.yaml

# --- tools ---------------------------------------------------------------------------------------
python="${PYTHON:-python3}"
stamp="$(printf '%s\n' "${requirements[@]}" | sha256sum | cut -c1-16)"
tools="${PLATFORM_LINT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/platform-lint}/$stamp"
if [[ ! -f "$tools/.complete" ]]; then
    echo "lint-function: installing ${requirements[*]} into $tools"
    rm -rf "$tools"
    mkdir -p "$tools"
    # --target instead of a venv: works without python3-venv and on an "externally managed"
    # system Python (PEP 668), and keeps the tools out of every other environment.
    PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-input \
        --only-binary=:all: --target "$tools" "${requirements[@]}"
    touch "$tools/.complete"
fi
export PATH="$tools/bin:$PATH"
export PYTHONPATH="$tools${PYTHONPATH:+:$PYTHONPATH}"

# --- checks --------------------------------------------------------------------------------------
failed=()
run() {
    local name="$1"
    shift
    echo "== $name"
    if "$@"; then
        echo "   ok"
    else
        failed+=("$name")
    fi
}

# Every rule, informational ones included; any finding fails. The function deploys to
# whichever region the operator picks, so the template is checked against the main ones.
run "cfn-lint $template" \
    cfn-lint --include-checks I --format parseable \
    --regions us-east-1 eu-central-1 eu-west-1 ap-southeast-1 -- "$template"

# The original function read book-service's database directly; this one must not be able to.
no_database_driver() {
    local found
    found="$(cargo tree --quiet --offline -p borrowings-function -e normal --prefix none \
        | grep -E '^(sqlx|sqlx-[a-z-]+|libsqlite3-sys|tokio-postgres|postgres|diesel|service-kit) ' || true)"
    if [[ -n "$found" ]]; then
        echo "   borrowings-function links a database driver:"
        sort -u <<<"$found" | sed 's/^/     /'
        return 1
    fi
}
if command -v cargo >/dev/null 2>&1; then
    run "borrowings-function links no database driver" no_database_driver
else
    echo "== borrowings-function links no database driver: skipped (cargo is not installed)"
fi

if ((${#failed[@]})); then
    echo "lint-function: FAILED: ${failed[*]}"
    exit 1
fi
echo "lint-function: all checks passed"
