import SandboxPolicy

/// The network section of a plan: resolv.conf/hosts text and the nft ruleset loaded
/// inside the sandbox's own network namespace (Docs/design.md §5). Everything rendered
/// here comes from typed, validated values (`IPAddress`, `CIDR`, `UInt16`), never
/// from raw policy strings.
enum NetworkRules {
    static func plan(_ net: NetworkPolicy) -> NetworkPlan {
        let allow = net.allow.map {
            NetworkAllowPlan(cidr: $0.cidr.description, ports: $0.ports.sorted(), proto: $0.proto.rawValue)
        }
        guard net.mode == .egress else {
            return NetworkPlan(mode: net.mode.rawValue, dns: [], resolvConf: nil,
                               hosts: hostsFile(net), allow: [], nftRuleset: nil)
        }
        let resolv = net.dns.isEmpty ? nil : net.dns.map { "nameserver \($0)\n" }.joined() + "options edns0\n"
        return NetworkPlan(mode: net.mode.rawValue, dns: net.dns.map(\.description), resolvConf: resolv,
                           hosts: hostsFile(net), allow: allow, nftRuleset: ruleset(net))
    }

    static func hostsFile(_ net: NetworkPolicy) -> String? {
        guard !net.hosts.isEmpty else { return nil }
        var text = "127.0.0.1 localhost\n::1 localhost\n"
        for name in net.hosts.keys.sorted() { text += "\(net.hosts[name]!) \(name)\n" }
        return text
    }

    /// output policy drop; lo and established accepted; DNS only to the resolvers;
    /// one accept per allow rule; everything else recorded in a `denied` set (with
    /// counters, read into the run result) and dropped. IPv6 only where allowed.
    static func ruleset(_ net: NetworkPolicy) -> String {
        var lines: [String] = []
        lines.append("table inet sandbox {")
        lines.append("  set denied4 {")
        lines.append("    type ipv4_addr . inet_proto . inet_service")
        lines.append("    flags dynamic")
        lines.append("    size 1024")
        lines.append("    counter")
        lines.append("  }")
        lines.append("  set denied6 {")
        lines.append("    type ipv6_addr . inet_proto . inet_service")
        lines.append("    flags dynamic")
        lines.append("    size 1024")
        lines.append("    counter")
        lines.append("  }")
        lines.append("  chain output {")
        lines.append("    type filter hook output priority filter; policy drop;")
        lines.append("    oifname \"lo\" accept")
        lines.append("    ct state established,related accept")
        for dns in net.dns {
            let family = dns.isV4 ? "ip" : "ip6"
            lines.append("    \(family) daddr \(dns) udp dport 53 accept")
            lines.append("    \(family) daddr \(dns) tcp dport 53 accept")
        }
        for rule in net.allow {
            let family = rule.cidr.address.isV4 ? "ip" : "ip6"
            let ports = rule.ports.sorted().map(String.init).joined(separator: ", ")
            lines.append("    \(family) daddr \(rule.cidr) \(rule.proto.rawValue) dport { \(ports) } accept")
        }
        // Record, then refuse: a TCP connect gets a reset (ECONNREFUSED at once, not a
        // two-minute SYN retry), anything else is dropped (EPERM for local senders).
        for (family, set) in [("ip", "denied4"), ("ip6", "denied6")] {
            for (proto, verdict) in [("tcp", "reject with tcp reset"), ("udp", "drop")] {
                lines.append("    meta l4proto \(proto) \(family) daddr . meta l4proto . th dport @\(set) counter \(verdict)")
                lines.append("    meta l4proto \(proto) add @\(set) { \(family) daddr . meta l4proto . th dport } \(verdict)")
            }
        }
        lines.append("    counter drop")
        lines.append("  }")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}
