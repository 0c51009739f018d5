#!/bin/bash
# Real blurry photos without ground truth (issue 9 / RESULTS.md's "Real photos" table): the 100
# photos of Lai et al.'s real set, method `fast` (the default of `glkm deblur` until issue 24) with the blur size estimated per photo (as
# `glkm deblur` does), GLKM and native kernel branches. Needs ../shared/data/lai_real. About 50 min
# (GLKM) and 90 min (native) on one core each; both resume if interrupted. KS=31 measures the
# fixed-size rows instead (outputs without the _auto suffix).
# Each run writes summary.md (NIQE/PIQE of input and result per category), gallery.html and
# contact_sheet.png.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-eval_runs}
KS=${KS:-auto}
SUFFIX=$([ "$KS" = auto ] && echo _auto || echo "")
export OMP_NUM_THREADS=1  # two runs side by side, one core each
glkm eval lai_real --method fast --kernel-size "$KS" --out "$OUT/lai_real_fast_glkm$SUFFIX" --no-progress &
glkm eval lai_real --method fast --kernel-branch native --kernel-size "$KS" --out "$OUT/lai_real_fast_native$SUFFIX" --no-progress &
wait
python - "$OUT" "$SUFFIX" <<'PY'
import json, statistics, sys
runs = {b: json.load(open(f"{sys.argv[1]}/lai_real_fast_{b}{sys.argv[2]}/results.json"))["rows"] for b in ("glkm", "native")}
for b, rows in runs.items():
    better = lambda k: sum(r[k] is not None and r[k] < r[f"{k}_input"] for r in rows)  # noqa: E731
    secs = [r["seconds"] for r in rows]
    print(f"{b}: {len(rows)} photos; NIQE better than input on {better('niqe')}, PIQE on {better('piqe')}; "
          f"means NIQE {statistics.mean(r['niqe'] for r in rows):.2f}, PIQE {statistics.mean(r['piqe'] for r in rows):.2f}; "
          f"median {statistics.median(secs):.1f} s, max {max(secs):.1f} s")
g, n = ({r["name"]: r for r in runs[b]} for b in ("glkm", "native"))
print(f"GLKM lower than native: NIQE on {sum(g[k]['niqe'] < n[k]['niqe'] for k in g)}, PIQE on {sum(g[k]['piqe'] < n[k]['piqe'] for k in g)}")
PY
