"""A command objective for tests: ``script.py MODE WORKDIR [ARG]``.

MODE ``ok`` prints metrics as a JSON line; ``exit3`` writes to stderr and exits 3; ``nojson`` prints text only;
``argv`` writes its own argument list to WORKDIR/argv.json and prints metrics; ``slow`` works 70 s in 0.25 s
steps, saving its progress in WORKDIR after each (for the time-limit requeue test).
"""

import json
import os
import sys
import time
from pathlib import Path

mode, workdir = sys.argv[1], Path(sys.argv[2])
if mode == "exit3":
    print("training diverged: loss is nan", file=sys.stderr)
    sys.exit(3)
if mode == "nojson":
    print("done, loss 0.5 (but no JSON)")
    sys.exit(0)
if mode == "argv":
    (workdir / "argv.json").write_text(json.dumps(sys.argv[1:]))
start = 0
if mode == "slow":
    state = workdir / "step"
    start = int(state.read_text()) if state.exists() else 0
    for step in range(start, 280):
        time.sleep(0.25)
        # Atomic (temp file, rename): a kill between truncate and write would leave an empty checkpoint.
        tmp = state.with_suffix(".tmp")
        tmp.write_text(str(step + 1))
        tmp.replace(state)
print("some progress line")
print(json.dumps({"value": 0.5 + len(sys.argv) / 100, "attempt": int(os.environ["GASLURM_ATTEMPT"]),
                  "resumed_from": start}))
