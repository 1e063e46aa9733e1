#!/usr/bin/env python3
"""The client of Benchmarks/serve.sh: one program that runs `/bin/true` under `agent`
through `sandbox serve` and, the same way, by spawning bwrap (and `sandbox exec`),
so both sides pay the same client costs. Prints min/median/p99 per row and the
ratios, then 16-way throughput."""
import argparse, json, os, socket, statistics, subprocess, threading, time

BWRAP = ("bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr "
         "--symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin "
         "--proc /proc --dev /dev --tmpfs /tmp --cap-drop ALL true").split()


class Connection:
    """One connection to the server; one request at a time."""
    def __init__(self, path, policy="agent"):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self.req = {"policy": policy, "argv": ["/bin/true"], "env": {"PATH": "/usr/bin:/bin"}}
        self.devnull = os.open("/dev/null", os.O_RDWR)
        self.cwd = os.open(".", os.O_PATH | os.O_DIRECTORY)
        self.n = 0

    def run(self):
        self.n += 1
        self.req["id"] = self.n
        socket.send_fds(self.s, [json.dumps(self.req).encode() + b"\n"], [self.devnull] * 3 + [self.cwd])
        r = json.loads(self.f.readline())
        if r["exitCode"] != 0:
            raise RuntimeError(r)


def spawner(argv):
    devnull = os.open("/dev/null", os.O_RDWR)
    def run():
        if subprocess.call(argv, stdin=devnull, stdout=devnull, stderr=devnull) != 0:
            raise RuntimeError(argv)
    return run


def latency(run, runs, warmup=20, pause=0.0):
    for _ in range(warmup):
        run()
        time.sleep(pause)
    out = []
    for _ in range(runs):
        time.sleep(pause)
        t = time.perf_counter()
        run()
        out.append((time.perf_counter() - t) * 1e3)
    out.sort()
    return out


def throughput(make_run, threads, total):
    runs = [make_run() for _ in range(threads)]
    for r in runs:
        r()  # warm each connection
    each = total // threads
    errors = []
    def work(r):
        try:
            for _ in range(each):
                r()
        except Exception as e:  # reported below; a failed run must not look fast
            errors.append(e)
    ts = [threading.Thread(target=work, args=(r,)) for r in runs]
    t = time.perf_counter()
    for x in ts: x.start()
    for x in ts: x.join()
    elapsed = time.perf_counter() - t
    if errors:
        raise RuntimeError(errors[0])
    return each * threads / elapsed


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--socket"); a.add_argument("--bin"); a.add_argument("--server-pid", type=int)
    a.add_argument("--runs", type=int); a.add_argument("--throughput-runs", type=int); a.add_argument("--threads", type=int)
    o = a.parse_args()
    conn = Connection(o.socket)
    rows = [
        ("serve (request on an open connection)", conn.run),
        ("bwrap (spawned)", spawner(BWRAP)),
        ("sandbox exec --server (spawned)", spawner([o.bin, "exec", "--server", o.socket, "--policy", "agent", "--", "/bin/true"])),
        ("sandbox exec (spawned)", spawner([o.bin, "exec", "--policy", "agent", "--", "/bin/true"])),
    ]
    # Interleaved in rounds, so both sides see the same machine state.
    samples = {name: [] for name, _ in rows}
    rounds = 4
    for _ in range(rounds):
        for name, run in rows:
            samples[name] += latency(run, o.runs // rounds, warmup=5)
    print(f"/bin/true under agent, {o.runs} runs each (ms)")
    print(f"{'':40} {'min':>7} {'median':>7} {'p99':>7}")
    med = {}
    for name, _ in rows:
        s = sorted(samples[name])
        med[name] = statistics.median(s)
        print(f"{name:40} {s[0]:7.2f} {med[name]:7.2f} {s[int(len(s) * 0.99) - 1]:7.2f}")
    b = med["bwrap (spawned)"]
    print(f"ratio serve/bwrap (medians) = {med['serve (request on an open connection)'] / b:.2f}")
    print(f"ratio exec --server/bwrap = {med['sandbox exec --server (spawned)'] / b:.2f}, exec/bwrap = {med['sandbox exec (spawned)'] / b:.2f}")
    # A harness that does something between its commands (here 20 ms): the server
    # builds the next sandbox meanwhile (Docs/serve.md, "Sandboxes built ahead").
    paused = {"serve": [], "bwrap": []}
    for _ in range(rounds):
        paused["serve"] += latency(conn.run, o.runs // (2 * rounds), warmup=2, pause=0.02)
        paused["bwrap"] += latency(spawner(BWRAP), o.runs // (2 * rounds), warmup=2, pause=0.02)
    pm = {k: statistics.median(v) for k, v in paused.items()}
    for k in ("serve", "bwrap"):
        v = sorted(paused[k])
        print(f"{k + ', 20 ms between requests':40} {v[0]:7.2f} {pm[k]:7.2f} {v[int(len(v) * 0.99) - 1]:7.2f}")
    print(f"ratio serve/bwrap with 20 ms between requests (medians) = {pm['serve'] / pm['bwrap']:.2f}")
    print()
    t_serve = throughput(lambda: Connection(o.socket).run, o.threads, o.throughput_runs)
    t_bwrap = throughput(lambda: spawner(BWRAP), o.threads, o.throughput_runs)
    print(f"{o.threads}-way throughput, {o.throughput_runs} runs each: serve {t_serve:.0f} runs/s, bwrap {t_bwrap:.0f} runs/s, "
          f"ratio serve/bwrap = {t_serve / t_bwrap:.2f}")
    print(f"server peak RSS after all of it: {peak_rss_kib(o.server_pid) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
