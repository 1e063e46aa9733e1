#!/usr/bin/env python3
"""The warm path of an egress run (issue 16, acceptance 3), for Benchmarks/egress.sh:
`/bin/true` under bench-egress.toml and under bench.toml (no network) through
`sandbox serve` (a request on an open connection), beside the shell-out peer
(egress-peer.sh) spawned by the same client, interleaved in rounds so every line
sees the same machine state. Prints min/median/p99 and the ratios to the peer."""
import argparse, statistics
from serve_client import Connection, latency, spawner


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--socket"); a.add_argument("--egress-policy"); a.add_argument("--none-policy")
    a.add_argument("--peer"); a.add_argument("--runs", type=int)
    o = a.parse_args()
    rows = [
        ("serve egress", Connection(o.socket, o.egress_policy).run),
        ("serve none", Connection(o.socket, o.none_policy).run),
        ("shell-out peer (spawned)", spawner(["bash", o.peer])),
    ]
    samples = {name: [] for name, _ in rows}
    rounds = 4
    for _ in range(rounds):
        for name, run in rows:
            samples[name] += latency(run, max(1, o.runs // rounds), warmup=3)
    med = {name: statistics.median(s) for name, s in samples.items()}
    peer = med["shell-out peer (spawned)"]
    print("| through sandbox serve | min | median | p99 | median ÷ peer |")
    print("|---|---|---|---|---|")
    for name, _ in rows:
        s = sorted(samples[name])
        print(f"| {name} | {s[0]:.1f} ms | {med[name]:.1f} ms | {s[max(0, int(len(s) * 0.99) - 1)]:.1f} ms | {med[name] / peer:.2f}× |")
    print(f"\nwhat egress adds through serve (median): {med['serve egress'] - med['serve none']:.1f} ms")


if __name__ == "__main__":
    main()
