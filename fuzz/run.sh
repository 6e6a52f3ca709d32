#!/usr/bin/env bash
# Runs each fuzz target for a bounded time and fails on the first crash.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, all targets)
#
# Needs cargo-fuzz (`cargo install --locked cargo-fuzz`). cargo-fuzz builds
# with -Zsanitizer=address, a nightly flag; the machine has only the stable
# toolchain, so RUSTC_BOOTSTRAP=1 lets it accept the flag.
#
# New interesting inputs land in fuzz/corpus/<target>/ (commit a minimised
# set with `cargo fuzz cmin <target>` now and then); a crash lands in
# fuzz/artifacts/<target>/ and should be copied to fuzz/regressions/<target>/
# with its fix, where tests/fuzz_corpus.rs replays it in `cargo test`.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(reassembly button decode)
export RUSTC_BOOTSTRAP=1

# Build once up front so each time budget below is spent fuzzing, not compiling.
cargo fuzz build
summary=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log=$(mktemp)
    echo "== fuzzing $target for $seconds s"
    # -rss_limit_mb: the targets' own limits are far below this; a real leak
    # or a wire-sized allocation trips it.
    if ! cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=262144 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz/run.sh: $target crashed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo '?')
    summary+=("$target: $runs executions in $seconds s, coverage $cov edges, corpus $(ls "corpus/$target" | wc -l) inputs")
    rm -f "$log"
done
printf '%s\n' "${summary[@]}"
