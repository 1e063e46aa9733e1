import Glibc

/// What an egress `allow` rule must never open by being broad (the planner's
/// `HostFacts.hostAddresses`, rendered by `NetworkRules` as drop rules before the
/// allow rules; Docs/network.md, "What a broad allow rule does not open").
public enum HostAddresses {
    /// Every address on the host's interfaces (`getifaddrs`, IPv4 and IPv6, and each
    /// IPv4 subnet's broadcast address, which the host receives too), then the
    /// bridge's gateway and, as `NETWORK/LEN`, its subnet (other runs' addresses).
    /// Link-local and loopback addresses are left out: the planner refuses those
    /// ranges whole anyway. Sorted, without duplicates, so the plan stays
    /// deterministic for one host. The bridge comes from its configuration, so the
    /// subnet is covered before the first egress run has made the bridge.
    /// Throws when the host's addresses cannot be read whole: a plan built without
    /// some of them would let a broad rule open them (the planner then refuses egress).
    public static func egressProtected(bridge: BridgeConfig = .standard) throws(KernelError) -> [String] {
        var out = Set(try interfaceAddresses())
        if let b = try? Bridge(bridge) {
            out.insert(b.gateway.description)
            out.insert(b.subnet)
        }
        return out.sorted()
    }

    /// The host's own interface addresses, without link-local and loopback ones: one
    /// RTM_GETADDR dump (`getifaddrs` dumps every link too, each with its statistics,
    /// and a host running egress sandboxes has a veth per run: it was ~4% of the
    /// server's CPU for an egress run under `sandbox serve`). Each entry gives its
    /// IFA_LOCAL and IFA_ADDRESS (the same, but for a peer address, the other end of a
    /// point-to-point address: protected too, as `getifaddrs` reports it on a
    /// broadcast link; on a point-to-point link it did not) and, IPv4, its
    /// IFA_BROADCAST, which the host receives too. A dump the kernel reports
    /// interrupted by a change is taken again (`dumpConsistently`), never used.
    static func interfaceAddresses() throws(KernelError) -> [String] {
        let replies = try RouteSocket().dumpConsistently(addressDump(), subject: "every address of the host")
        var out: [String] = []
        for reply in replies where reply.type == RTNL.RTM_NEWADDR {
            out += addresses(inNewAddr: reply.payload)
        }
        return out
    }

    static func addressDump() -> NetlinkMessage {
        var m = NetlinkMessage(type: RTNL.RTM_GETADDR, flags: RTNL.NLM_F_DUMP)
        m.raw([RTNL.AF_UNSPEC, 0, 0, 0] + le(UInt32(0)))   // struct ifaddrmsg, any family
        return m
    }

    /// The addresses one RTM_NEWADDR names (struct ifaddrmsg { u8 family, prefixlen,
    /// flags, scope; u32 index; } + attributes), less loopback and link-local ones.
    static func addresses(inNewAddr payload: [UInt8]) -> [String] {
        guard payload.count >= 8 else { return [] }
        var local: [UInt8]? = nil, address: [UInt8]? = nil, broadcast: [UInt8]? = nil
        for a in netlinkAttributes(payload, from: 8) {
            switch a.type {
            case RTNL.IFA_LOCAL: local = a.data
            case RTNL.IFA_ADDRESS: address = a.data
            case RTNL.IFA_BROADCAST: broadcast = a.data
            default: break
            }
        }
        guard let own = local ?? address else { return [] }
        let peer = local != nil && address != nil && address != local ? address : nil
        let kept: [[UInt8]?]
        switch payload[0] {
        case RTNL.AF_INET where own.count == 4:
            // 127.0.0.0/8 and 169.254.0.0/16: refused whole by the planner.
            if own[0] == 127 || (own[0] == 169 && own[1] == 254) { return [] }
            kept = [own, peer, broadcast]
        case RTNL.AF_INET6 where own.count == 16:
            // ::1 and fe80::/10: refused whole by the planner.
            if own == [UInt8](repeating: 0, count: 15) + [1] || (own[0] == 0xfe && own[1] & 0xc0 == 0x80) { return [] }
            kept = [own, peer]
        default:
            return []
        }
        return kept.compactMap { $0 }.filter { $0.count == own.count }.compactMap(AddressRange.format)
    }
}

/// The host's resolvers, for the DNS stub's default upstream (`HostFacts.hostResolvers`).
public enum HostResolvers {
    /// The `nameserver` addresses of `path`, in order ([] when it cannot be read). The
    /// stub asks them from the host's namespace, so a local resolver (127.0.0.53) works.
    public static func read(path: String = "/etc/resolv.conf") -> [String] {
        guard let f = fopen(path, "re") else { return [] }
        defer { fclose(f) }
        var out: [String] = []
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0, out.count < 8 {
            let words = String(cString: line!).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            if words.count >= 2, words[0] == "nameserver" { out.append(String(words[1])) }
        }
        return out
    }
}
