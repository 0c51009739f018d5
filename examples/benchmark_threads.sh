#!/bin/bash
# Seconds of the example deblur (`glkm deblur examples/data/blurry.png --method $METHOD`, default METHOD=fast,
# the default method when the table in RESULTS.md, "Threads", was measured; other settings default) on an otherwise idle
# machine and with one competing busy process (a single-threaded Python loop), for --threads 1 (the
# default) and --threads 2 (what torch picks by itself on 2 cores, the default before). Median of RUNS
# wall-clock runs per cell. Run it on an idle machine: anything else running skews the "idle" column.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=$(mktemp -d)
trap 'kill $BUSY 2>/dev/null || true; rm -rf "$OUT"' EXIT
BUSY=

seconds() {  # median wall seconds of RUNS example deblurs with --threads $1
    for _ in $(seq "$RUNS"); do
        start=$(date +%s.%N)
        glkm deblur examples/data/blurry.png -o "$OUT/o.png" --force --method "${METHOD:-fast}" --threads "$1" >/dev/null 2>&1
        echo "$(date +%s.%N) - $start" | bc
    done | sort -n | awk '{a[NR] = $1} END {printf "%.1f", a[int((NR + 1) / 2)]}'
}

declare -A idle loaded
for t in 1 2; do idle[$t]=$(seconds "$t"); done
python -c "while True: pass" &
BUSY=$!
for t in 1 2; do loaded[$t]=$(seconds "$t"); done
echo "| --threads | idle (s) | one busy process beside (s) | loaded / idle |"
echo "| --- | ---: | ---: | ---: |"
for t in 1 2; do
    echo "| $t | ${idle[$t]} | ${loaded[$t]} | $(echo "scale=1; ${loaded[$t]} / ${idle[$t]}" | bc) |"
done
