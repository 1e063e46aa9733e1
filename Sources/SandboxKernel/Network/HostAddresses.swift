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
    public static func egressProtected(bridge: BridgeConfig = .standard) -> [String] {
        var out = Set(interfaceAddresses())
        if let b = try? Bridge(bridge) {
            out.insert(b.gateway.description)
            out.insert(b.subnet)
        }
        return out.sorted()
    }

    /// The host's own interface addresses, without link-local and loopback ones.
    static func interfaceAddresses() -> [String] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0, let first = head else { return [] }
        defer { freeifaddrs(head) }
        var out: [String] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let sa = entry.pointee.ifa_addr else { continue }
            switch Int32(sa.pointee.sa_family) {
            case AF_INET:
                let v = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
                // 127.0.0.0/8 and 169.254.0.0/16: refused whole by the planner.
                if v >> 24 == 127 || v >> 16 == 0xa9fe { continue }
                out.append(IPv4(v).description)
                // The subnet's broadcast address is delivered to the host too.
                if entry.pointee.ifa_flags & UInt32(IFF_BROADCAST) != 0, let b = entry.pointee.ifa_ifu.ifu_broadaddr, Int32(b.pointee.sa_family) == AF_INET {
                    out.append(IPv4(b.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }).description)
                }
            case AF_INET6:
                var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                let bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p -> [UInt8] in
                    var a = p.pointee.sin6_addr
                    return withUnsafeBytes(of: &a) { Array($0) }
                }
                // ::1 and fe80::/10: refused whole by the planner.
                if bytes == [UInt8](repeating: 0, count: 15) + [1] || (bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80) { continue }
                var addr = in6_addr()
                withUnsafeMutableBytes(of: &addr) { $0.copyBytes(from: bytes) }
                guard inet_ntop(AF_INET6, &addr, &text, socklen_t(text.count)) != nil else { continue }
                out.append(String(cString: text))
            default:
                continue
            }
        }
        return out
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
