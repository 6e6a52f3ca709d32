#!/usr/bin/env bash
# Host side: run smoke.sh in a fresh VM for every v4l2loopback version that
# setup.sh built, and print one summary line per version. ~17 s each on 2 cores.
#   tests/vm/smoke-all.sh [VERSION...]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MODS="$HERE/../../target/vm/modules"
if (($#)); then VERS=("$@"); else
    VERS=(); for d in "$MODS"/*/v4l2loopback.ko; do VERS+=("$(basename "$(dirname "$d")")"); done
fi
summary=(); rc_all=0
for v in "${VERS[@]}"; do
    t0=$(date +%s)
    if "$HERE/run.sh" --v4l2loopback "$v" "$HERE/smoke.sh"; then r=PASS; else r=FAIL; rc_all=1; fi
    summary+=("smoke v4l2loopback $v: $r in $(( $(date +%s) - t0 )) s")
done
printf '%s\n' "${summary[@]}"
exit $rc_all
