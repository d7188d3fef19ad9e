#!/usr/bin/env bash
# Fuzzes safegate with cargo-fuzz (nightly, address sanitizer): every RPC's request checks
# (`requests`), the policy parser (`policy`) and the offline export verifier
# (`export_verify`). Each target starts from the seeds in fuzz/seeds/<target> plus
# whatever fuzz/corpus/<target> has gathered, and keeps what it finds there.
#
# Usage: fuzz/run.sh [--runs N | --seconds S] [TARGET...]
#   --runs N      executions per target (default 10000000, the long run)
#   --seconds S   time per target instead (CI's short run)
# A crash stops the script with the reproducer in fuzz/artifacts/<target>/; replay it with
# `cargo +nightly fuzz run <target> <file>` and make it a test before fixing it.
set -euo pipefail

cd "$(dirname "$0")"
limit=(-runs=10000000)
targets=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --runs) limit=("-runs=$2"); shift 2 ;;
        --seconds) limit=("-max_total_time=$2"); shift 2 ;;
        -*) echo "usage: $0 [--runs N | --seconds S] [TARGET...]" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ "${#targets[@]}" -gt 0 ] || targets=(requests policy export_verify)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
    exit 2
fi
cargo +nightly fuzz build

summary=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    log="$(mktemp)"
    started=$SECONDS
    # -rss_limit_mb: a request may be up to 4 MiB; far above that is a leak or a blow-up.
    if ! cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        "${limit[@]}" -rss_limit_mb=2048 -print_final_stats=1 2>"$log"; then
        tail -n 60 "$log" >&2
        echo "fuzz: $target found a crash; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    summary+=("$target: $runs executions in $((SECONDS - started)) s, no crash")
    rm -f "$log"
done
printf '%s\n' "${summary[@]}"
