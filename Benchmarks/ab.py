#!/usr/bin/env python3
"""Two builds of sandbox, one command line, alternating run by run (A B, B A, …) so
both see the same moments of a noisy host; prints min / median / p90 of each.
For an effect smaller than the drift between two hyperfine runs.

    Benchmarks/ab.py OLD_BIN NEW_BIN RUNS exec --policy strict -- /bin/true

Run from an empty directory (agent binds the cwd writable). Wall time includes this
script's fork and exec, the same for both."""
import os, statistics, subprocess, sys, time

if len(sys.argv) < 5:
    sys.exit(__doc__)
a, b, n, args = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
devnull = open(os.devnull, "w")
times = {a: [], b: []}
for i in range(n):
    for binary in ((a, b) if i % 2 == 0 else (b, a)):
        start = time.perf_counter()
        subprocess.call([binary] + args, stdout=devnull, stderr=devnull)
        times[binary].append((time.perf_counter() - start) * 1e3)
for binary in (a, b):
    t = sorted(times[binary])
    print(f"{binary}: min {t[0]:6.2f}  median {statistics.median(t):6.2f}  p90 {t[int(0.9 * len(t))]:6.2f} ms")
