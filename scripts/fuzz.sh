#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, see docs/fuzzing.md) and runs each for a while; exits
# non-zero when any target crashes, times out or runs out of memory, and prints a summary.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 20 s each, every target
#
# Environment:
#   FUZZ_SECONDS      seconds per target when no SECONDS argument is given (default 20)
#   FUZZ_SANITIZER    none (default) or address
#   FUZZ_TARGET_DIR   cargo's target dir for the fuzz build (default fuzz/target, or
#                     fuzz/target/asan with the address sanitizer)
#
# Stable Rust only. cargo fuzz's instrumentation flags (-Cpasses=sancov-module and the
# -Cllvm-args=-sanitizer-coverage-* options) are all stable, so with `--sanitizer none` the
# build needs no nightly at all. The address sanitizer is still a nightly flag
# (-Zsanitizer=address); FUZZ_SANITIZER=address sets RUSTC_BOOTSTRAP=1 for that build only,
# which lets the stable compiler accept it (its runtime ships with the stable standard
# library). Safe Rust needs no sanitizer to report panics, overflows (the build has debug
# assertions: -a), timeouts and memory blow-ups; ASan adds memory errors in the `unsafe` code
# of dependencies, at about half the speed.
#
# The binaries are run directly (not through `cargo fuzz run`, which would rebuild with its
# own defaults): each with a scratch corpus fuzz/work/<target> (grown by the run, never
# committed) and the committed seeds fuzz/corpus/<target> (read only), the dictionary
# fuzz/dicts/<target>.dict when there is one, a 10 s limit per input and 2 GB of memory.
# A failing input is written to fuzz/artifacts/<target>/; replay it with
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> fuzz/artifacts/<target>/crash-…
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

seconds="${FUZZ_SECONDS:-20}"
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  seconds="$1"
  shift
fi
sanitizer="${FUZZ_SANITIZER:-none}"
all_targets=(idno isbn routing token json_body transform transform_structured)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# The input size each target is fuzzed up to. Pages get room for deep or wide markup, but
# not for more: html5ever takes time quadratic in nesting depth (servo/html5ever#788), and a
# 64 kB page of nested <div>s would trip the 10 s limit on a known, documented weakness
# instead of finding a new one.
max_len() {
  case "$1" in
    transform) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

build_env=()
case "$sanitizer" in
  none) target_dir="${FUZZ_TARGET_DIR:-$root/fuzz/target}" ;;
  address)
    target_dir="${FUZZ_TARGET_DIR:-$root/fuzz/target/asan}"
    build_env=(RUSTC_BOOTSTRAP=1)
    ;;
  *)
    echo "FUZZ_SANITIZER must be none or address, not $sanitizer" >&2
    exit 2
    ;;
esac
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$triple/release"

echo "==> building fuzz targets (sanitizer: $sanitizer, target dir: $target_dir)"
mkdir -p "$root/fuzz/work"
build_log="$root/fuzz/work/build.log"
build_start=$SECONDS
build() {
  env "${build_env[@]}" nice cargo fuzz build -O -a --sanitizer "$sanitizer" \
    --target-dir "$target_dir" "$@" >>"$build_log" 2>&1
}
: >"$build_log"
if [ "${targets[*]}" = "${all_targets[*]}" ]; then
  built=build
  build || built=
else
  built=build
  for target in "${targets[@]}"; do build "$target" || built=; done
fi
grep -v '^ *\(Compiling\|Downloaded\|Downloading\) ' "$build_log" || true
if [ -z "$built" ]; then
  echo "fuzz: the build failed (log: $build_log)" >&2
  exit 1
fi
echo "build: $((SECONDS - build_start)) s"

passed=0
failed=0
summary=()
for target in "${targets[@]}"; do
  work="$root/fuzz/work/$target"
  artifacts="$root/fuzz/artifacts/$target"
  log="$root/fuzz/work/$target.log"
  mkdir -p "$work" "$artifacts"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$target")"
    -print_final_stats=1 -artifact_prefix="$artifacts/")
  [ -f "dicts/$target.dict" ] && args+=(-dict="dicts/$target.dict")
  echo "==> $target: ${seconds} s"
  set +e
  nice "$bin_dir/$target" "${args[@]}" "$work" "corpus/$target" >"$log" 2>&1
  status=$?
  set -e
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")"
  ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")"
  corp="$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")"
  line="$(printf '%-22s %-6s %12s execs  cov %-6s ft %-7s corpus %s' "$target" \
    "$([ $status -eq 0 ] && echo ok || echo FAIL)" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")"
  summary+=("$line")
  if [ $status -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "fuzz: $target failed (exit $status); its log: $log" >&2
    grep -E -A12 "panicked at|ERROR: libFuzzer|==ERROR|SUMMARY" "$log" | head -40 >&2 || true
    for crash in "$artifacts"/*; do
      [ -e "$crash" ] && echo "  replay: $bin_dir/$target $crash" >&2
    done
  fi
done

echo
echo "==> fuzz summary (${seconds} s per target, sanitizer: $sanitizer)"
printf '%s\n' "${summary[@]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
