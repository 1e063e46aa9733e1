#!/usr/bin/env bash
# Time to first byte for a name allowed by a host rule vs an address allowed by a
# CIDR rule (issue 17, acceptance 8), inside one egress run, against a test host this
# script makes in a namespace of its own (sbxbenchdns, 10.207.0.2/24 behind a veth
# from the host, 10.207.0.1): a small DNS server (bench.test → 10.207.0.2, TTL 60)
# and a listener answering one line on 8080 and 8081. Each name sample is a fresh
# getaddrinfo (glibc does not cache: stub → upstream → nft set update → reply) +
# connect + first byte; each CIDR sample is connect + first byte. Prints the medians
# and p90s. Root only; takes the suite lock (the run uses the shared bridge sbx0).
# Nothing is sent to any address but the test host's.
#
#   Benchmarks/domains.sh                  # release build, 200 samples each
#   SAMPLES=50 NO_BUILD=1 Benchmarks/domains.sh
#   SANDBOX_BIN=.build/debug/sandbox NO_BUILD=1 Benchmarks/domains.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "egress runs need root"; exit 1; }
[ -n "${NO_BUILD:-}" ] || Scripts/build-release.sh >/dev/null
bin="$(realpath "${SANDBOX_BIN:-.build/release/sandbox}")"
export SANDBOX_DATA_DIR="$PWD"
samples="${SAMPLES:-200}"
ns=sbxbenchdns
veth=sbxbenchd0
work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null || true
    ip link del "$veth" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    cd /; rm -rf "$work"
}
trap cleanup EXIT
exec 9>/tmp/sandbox-suite.lock
flock 9

ip netns add "$ns"
ip link add "$veth" type veth peer name eth0 netns "$ns"
ip addr add 10.207.0.1/24 dev "$veth"
ip link set "$veth" up
ip -n "$ns" addr add 10.207.0.2/24 dev eth0
ip -n "$ns" link set lo up
ip -n "$ns" link set eth0 up
ip -n "$ns" route add default via 10.207.0.1

cat > "$work/server.py" <<'EOF'
import socket, struct, threading, time
def answer(q):
    labels, i = [], 12
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode().lower()); i += 1 + q[i]
    i += 1
    qtype = struct.unpack("!H", q[i:i + 2])[0]
    ok = ".".join(labels) == "bench.test"
    n = 1 if ok and qtype == 1 else 0
    out = struct.pack("!HHHHHH", struct.unpack("!H", q[:2])[0], 0x8180 | (0 if ok else 3), 1, n, 0, 0) + q[12:i + 4]
    if n:
        out += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("10.207.0.2")
    return out
def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.207.0.2", 53))
    while True:
        q, peer = s.recvfrom(4096)
        s.sendto(answer(q), peer)
def web(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.207.0.2", port)); s.listen(256)
    while True:
        c, _ = s.accept(); c.sendall(b"x\n"); c.close()
for t in [dns] + [lambda p=p: web(p) for p in (8080, 8081)]:
    threading.Thread(target=t, daemon=True).start()
time.sleep(600)
EOF
ip netns exec "$ns" python3 "$work/server.py" &
server_pid=$!
disown "$server_pid"   # no "Killed" line when cleanup ends it
sleep 0.5

cat > "$work/policy.toml" <<'EOF'
name = "bench-domains"
extends = ["base"]
[process]
env.set = { PATH = "/usr/local/bin:/usr/bin:/bin" }
[network]
mode = "egress"
allow = [{ host = "bench.test", ports = [8080] }, { cidr = "10.207.0.2/32", ports = [8081] }]
upstream_dns = ["10.207.0.2"]
EOF
cat > "$work/probe.py" <<'EOF'
import socket, sys, time
n = int(sys.argv[1])
def first_byte(host, port):
    t = time.perf_counter()
    addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    s = socket.create_connection((addr, port)); s.recv(8); s.close()
    return (time.perf_counter() - t) * 1000
def stats(xs):
    xs = sorted(xs); return "median %.2f ms, p90 %.2f ms, min %.2f ms" % (xs[len(xs) // 2], xs[len(xs) * 9 // 10], xs[0])
first_byte("bench.test", 8080)  # warm: the first lookup, python's imports
name = [first_byte("bench.test", 8080) for _ in range(n)]
cidr = [first_byte("10.207.0.2", 8081) for _ in range(n)]
print("name (host rule, lookup each time):", stats(name))
print("address (cidr rule):               ", stats(cidr))
EOF
cd "$work"
"$bin" exec --policy "$work/policy.toml" -- python3 -c "$(cat "$work/probe.py")" "$samples"
