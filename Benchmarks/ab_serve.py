#!/usr/bin/env python3
"""Two builds of `sandbox serve`, alternating round by round (A B, B A, …) so both
see the same moments of a noisy host. Each round starts a server of one build,
sends 300 requests of `/bin/true` under `agent` back to back on one connection, then
150 with 20 ms between them, and stops it. Prints per round and the medians over
rounds: the back-to-back median latency, requests/s, the server's CPU per request
(user + system of the server and the children it reaped, from /proc/PID/stat: the
spawner and the sandbox inits are not among them), and the paused median latency.

    Benchmarks/ab_serve.py OLD_BIN NEW_BIN [ROUNDS]

Run as root from any directory; it works in /tmp/ab-serve-* directories of its own.
Binaries must live under the repository (the policy search starts from them)."""
import os, statistics, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_client as sc

if len(sys.argv) < 3:
    sys.exit(__doc__)
bins = {"A": sys.argv[1], "B": sys.argv[2]}
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 4
HZ = os.sysconf("SC_CLK_TCK")

def cpu_ms(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / HZ * 1e3   # utime stime cutime cstime

def one_round(name, back_to_back=300, paused=150):
    d = f"/tmp/ab-serve-{os.getpid()}-{name}"
    subprocess.run(["rm", "-rf", d])
    os.makedirs(d + "/sock", mode=0o700)
    os.makedirs(d + "/cwd")
    server = subprocess.Popen([bins[name], "serve", "--socket", d + "/sock/s"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(d + "/sock/s"): break
            time.sleep(0.05)
        os.chdir(d + "/cwd")
        subprocess.run([bins[name], "exec", "--policy", "agent", "--", "true"], check=True)
        c = sc.Connection(d + "/sock/s")
        for _ in range(20): c.run()
        cpu0, t0, lat = cpu_ms(server.pid), time.perf_counter(), []
        for _ in range(back_to_back):
            t = time.perf_counter(); c.run(); lat.append((time.perf_counter() - t) * 1e3)
        wall = time.perf_counter() - t0
        row = (statistics.median(lat), back_to_back / wall, (cpu_ms(server.pid) - cpu0) / back_to_back)
        lat = []
        for _ in range(paused):
            time.sleep(0.02)
            t = time.perf_counter(); c.run(); lat.append((time.perf_counter() - t) * 1e3)
        return row + (statistics.median(lat),)
    finally:
        server.terminate(); server.wait()
        os.chdir("/")
        subprocess.run(["rm", "-rf", d])

results = {"A": [], "B": []}
for r in range(rounds):
    for name in (("A", "B") if r % 2 == 0 else ("B", "A")):
        results[name].append(one_round(name))
        print(f"{name} back to back {results[name][-1][0]:.2f} ms, {results[name][-1][1]:.0f} req/s, "
              f"server CPU {results[name][-1][2]:.2f} ms/req; 20 ms apart {results[name][-1][3]:.2f} ms", flush=True)
for name in ("A", "B"):
    cols = list(zip(*results[name]))
    m = [statistics.median(c) for c in cols]
    print(f"{name} ({bins[name]}) medians: back to back {m[0]:.2f} ms, {m[1]:.0f} req/s, "
          f"server CPU {m[2]:.2f} ms/req; 20 ms apart {m[3]:.2f} ms")
