#!/usr/bin/env python3
"""Two builds of sandbox, one command line, alternating run by run (A B, B A, …) so
both see the same moments of a noisy host; prints min / median / p90 of each.
For an effect smaller than the drift between two hyperfine runs.

    Benchmarks/ab.py OLD_BIN NEW_BIN RUNS exec --policy strict -- /bin/true

Run from an empty directory (agent binds the cwd writable). Wall time includes this
script's fork and exec, the same for both. CPU is the user + system time of the
run's whole process tree as the kernel accounts it to this script's children (each
run's supervisor and everything it reaped), which a busy host disturbs less than
wall time."""
import os, resource, statistics, subprocess, sys, time

if len(sys.argv) < 5:
    sys.exit(__doc__)
a, b, n, args = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
devnull = open(os.devnull, "w")
times = {a: [], b: []}
cpu = {a: [], b: []}
def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
for i in range(n):
    for binary in ((a, b) if i % 2 == 0 else (b, a)):
        before = children_cpu()
        start = time.perf_counter()
        subprocess.call([binary] + args, stdout=devnull, stderr=devnull)
        times[binary].append((time.perf_counter() - start) * 1e3)
        cpu[binary].append((children_cpu() - before) * 1e3)
for binary in (a, b):
    t = sorted(times[binary])
    c = cpu[binary]
    print(f"{binary}: min {t[0]:6.2f}  median {statistics.median(t):6.2f}  p90 {t[int(0.9 * len(t))]:6.2f} ms"
          f"   cpu median {statistics.median(c):6.2f} mean {statistics.fmean(c):6.2f} ms")
