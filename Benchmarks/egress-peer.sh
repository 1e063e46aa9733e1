#!/usr/bin/env bash
# The shell-out peer of an egress run (issue 16): what a script does with ip(8) and
# nft(8) to give one command the network an egress run gets — a network namespace,
# a veth pair with the peer inside, the address and default route, lo up, a
# firewall with policy drop loaded before the interface is up — then runs `true`
# inside and removes it all. It uses a bridge of its own (sbxpeer0, 10.206.0.1/24,
# created and left by the first call; `egress-peer.sh --remove` deletes it) so it
# never touches sandbox's sbx0 or the host's own interfaces. Root only.
#
#   Benchmarks/egress-peer.sh            # one run
#   Benchmarks/egress-peer.sh --remove   # delete the peer's bridge
set -euo pipefail
bridge=sbxpeer0
if [ "${1:-}" = "--remove" ]; then
    ip link del "$bridge" 2>/dev/null || true
    exit 0
fi
if [ ! -e "/sys/class/net/$bridge" ]; then
    ip link add "$bridge" type bridge
    ip addr add 10.206.0.1/24 dev "$bridge"
    ip link set "$bridge" up
fi
# A name and an address of this run's own (two runs at once do not collide).
n=$(( ($$ % 250) + 2 ))
ns="sbxpeer$$"
veth="sbxp$$"
ip netns add "$ns"
ip link add "$veth" type veth peer name eth0 netns "$ns"
ip link set "$veth" master "$bridge" up
ip netns exec "$ns" nft -f - <<EOF
table inet sandbox {
  set denied4 { type ipv4_addr . inet_proto . inet_service; flags dynamic; size 1024; counter; }
  chain output {
    type filter hook output priority filter; policy drop;
    oifname "lo" accept
    ct state established,related accept
    ip daddr 10.206.0.1 udp dport 53 accept
    ip daddr 140.82.112.0/20 tcp dport 443 accept
    meta l4proto { tcp, udp } add @denied4 { ip daddr . meta l4proto . th dport } drop
  }
}
EOF
ip -n "$ns" link set lo up
ip -n "$ns" addr add "10.206.0.$n/24" dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" route add default via 10.206.0.1
ip netns exec "$ns" true
ip link del "$veth"
ip netns del "$ns"
