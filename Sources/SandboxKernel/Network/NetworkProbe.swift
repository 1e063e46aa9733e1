import FoundationEssentials
import Glibc

extension EgressNetwork {
    /// For `sandbox doctor`: what egress runs need from this host and what would get
    /// in their way. Read-only: nothing is created, loaded or written.
    public static func probe(bridge config: BridgeConfig = .standard) -> [String] {
        var lines: [String] = []
        guard let bridge = try? Bridge(config) else { return ["egress: the bridge configuration is invalid"] }

        // libnftables and nf_tables: a read-only listing of the host's tables.
        var hostRuleset: [[String: Any]] = []
        if geteuid() != 0 {
            // Egress needs root anyway; libnftables would only print "you must be root".
            lines.append("nft: not checked (egress runs need a root invoker)")
        } else { do {
            let json = try Nftables.run("list ruleset", json: true, operation: "nft list ruleset", subject: "host")
            let root = JSONTree.parse(json.utf8) as? [String: Any]
            hostRuleset = root?["nftables"] as? [[String: Any]] ?? []
            lines.append("nft: libnftables usable (nf_tables in the kernel)")
        } catch {
            lines.append("nft: unusable (\(error)) — egress runs will fail")
        } }

        switch RunDirectory.read(Bridge.ipForwardPath)?.trimmed {
        case "1"?: lines.append("ip_forward: 1")
        case "0"?:
            lines.append(config.manageIPForward
                ? "ip_forward: 0 — the first egress run sets net.ipv4.ip_forward = 1 (recorded in \(bridge.statePath))"
                : "ip_forward: 0 and managing it is off — egress runs will have no route out")
        default: lines.append("ip_forward: unreadable")
        }
        if HostState.read(bridge.statePath).values["ip_forward_enabled_by_sandbox"] == "1" {
            lines.append("ip_forward: was turned on by sandbox (\(bridge.statePath))")
        }

        if let rtnl = try? RouteSocket(), let link = try? rtnl.link(named: bridge.name) {
            if link.kind == "bridge" && link.alias == BridgeConfig.bridgeMark {
                lines.append("bridge: \(bridge.name) present (\(link.isUp ? "up" : "down")), subnet \(bridge.subnet)")
            } else {
                lines.append("bridge: a link named \(bridge.name) exists that sandbox did not create — egress runs will refuse it")
            }
        } else {
            lines.append("bridge: \(bridge.name) not created yet (the first egress run creates it, subnet \(bridge.subnet))")
        }

        // Forward-path blockers: a forward hook with policy drop in another table
        // (iptables-nft's FORWARD, firewalld, a hand-written one) drops our traffic
        // whatever our own table accepts — each base chain decides on its own.
        for item in hostRuleset {
            guard let chain = item["chain"] as? [String: Any], chain["hook"] as? String == "forward",
                  chain["policy"] as? String == "drop" else { continue }
            let family = chain["family"] as? String ?? "?", table = chain["table"] as? String ?? "?"
            let name = chain["name"] as? String ?? "?"
            if table == bridge.table { continue }
            lines.append("forward: \(family) \(table) \(name) has policy drop — add an accept for iifname/oifname \"\(bridge.name)\" there, or egress runs get no answers")
        }
        if let legacy = RunDirectory.read("/proc/net/ip_tables_names")?.split(separator: "\n"), legacy.contains("filter") {
            lines.append("forward: legacy iptables filter table is loaded — if its FORWARD policy is DROP, accept \(bridge.name) there")
        }
        if let ufw = RunDirectory.read("/etc/ufw/ufw.conf"), ufw.split(separator: "\n").contains(where: { String($0).trimmed == "ENABLED=yes" }) {
            lines.append("forward: UFW is enabled (default forward policy DROP) — allow routed traffic for \(bridge.name), e.g. `ufw route allow in on \(bridge.name)`")
        }
        if access("/run/firewalld", F_OK) == 0 || access("/var/run/firewalld.pid", F_OK) == 0 {
            lines.append("forward: firewalld is present — put \(bridge.name) in a zone that allows forwarding (e.g. trusted)")
        }
        if RunDirectory.read("/proc/sys/net/bridge/bridge-nf-call-iptables")?.trimmed == "1" {
            lines.append("bridge: br_netfilter passes bridged frames through iptables (bridge-nf-call-iptables = 1)")
        }
        return lines
    }
}
