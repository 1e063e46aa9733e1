import SandboxPolicy
import SandboxVocabulary

/// The network section of a plan: resolv.conf/hosts text and the nft ruleset loaded
/// inside the sandbox's own network namespace (Docs/design.md §5, Docs/network.md).
/// Everything rendered here comes from typed, validated values (`IPAddress`, `CIDR`,
/// `UInt16`, `Int`), never from raw policy strings; the host's addresses are parsed
/// before use and skipped if they do not parse.
enum NetworkRules {
    /// - Parameter hostAddresses: `HostFacts.hostAddresses`: the host's own addresses
    ///   and networks wholly the host's (the bridge subnet).
    /// - Throws: `PlanError` for an `allow` rule or `dns` address that lies wholly in
    ///   a range no rule may open (it could never match anything).
    ///   - hostResolvers: `HostFacts.hostResolvers`, the stub's upstream when the policy
    ///     names none.
    static func plan(_ net: NetworkPolicy, hostAddresses: [String], hostResolvers: [String] = []) throws -> NetworkPlan {
        let allow = net.allow.map {
            NetworkAllowPlan(cidr: $0.cidr.description, ports: $0.ports.sorted(), proto: $0.proto.rawValue)
        }
        guard net.mode == .egress else {
            return NetworkPlan(mode: net.mode, dns: [], resolvConf: nil,
                               hosts: hostsFile(net), allow: [], nftRuleset: nil)
        }
        let stub = try stubPlan(net, hostAddresses: hostAddresses, hostResolvers: hostResolvers)
        let resolvers = stub.map { [$0.address] } ?? net.dns.map(\.description)
        let resolv = resolvers.isEmpty ? nil : resolvers.map { "nameserver \($0)\n" }.joinedText() + "options edns0\n"
        var plan = NetworkPlan(mode: net.mode, dns: resolvers, resolvConf: resolv,
                               hosts: hostsFile(net), allow: allow,
                               nftRuleset: try ruleset(net, hostAddresses: hostAddresses))
        plan.stub = stub
        let rate = newConnectionRate(net.maxConnections)
        plan.connections = ConnectionLimits(max: net.maxConnections, perSecond: rate.perSecond, burst: rate.burst)
        return plan
    }

    // MARK: - Names (the DNS stub)

    /// Where the stub listens inside the run's namespace (on its own `lo`).
    static let stubAddress = "127.0.0.53"
    /// The set-entry timeout is the answer's TTL clamped to this range: at least long
    /// enough for the client to connect after the reply (a TTL of 0 or 1 would expire
    /// first), at most an hour, so an address a name stopped using closes in time. The
    /// TTLs in the reply are lowered to the maximum, so no client caches an address
    /// longer than its entry lives.
    static let stubTTL = DNSStubPlan.TTLRange(min: 5, max: 3600)

    /// The nft sets of host rule `index` (IPv4, IPv6).
    static func nameSets(_ index: Int) -> (v4: String, v6: String) { ("name\(index)_4", "name\(index)_6") }

    /// The stub's plan; nil without host rules.
    static func stubPlan(_ net: NetworkPolicy, hostAddresses: [String], hostResolvers: [String]) throws -> DNSStubPlan? {
        guard !net.allowHosts.isEmpty else { return nil }
        var upstream = net.upstreamDNS.map(\.description)
        var source = "network.upstream_dns"
        if upstream.isEmpty {
            upstream = hostResolvers.compactMap { IPAddress($0)?.description }
            source = "the host's /etc/resolv.conf"
        }
        guard !upstream.isEmpty else {
            throw PlanError(key: "network.upstream_dns", message: "host rules need a resolver for the DNS stub to ask, and the host's /etc/resolv.conf names none; set network.upstream_dns = [\"ADDRESS\"]")
        }
        let minimal = denyResolved(net, hostAddresses: hostAddresses)
        let names = net.allowHosts.enumerated().map { i, rule in
            let sets = nameSets(i)
            return DNSStubPlan.Name(host: rule.host, ports: rule.ports.sorted(), proto: rule.proto.rawValue,
                                    set4: sets.v4, set6: sets.v6)
        }
        var stub = DNSStubPlan(address: stubAddress, upstream: upstream, upstreamSource: source,
                               denyResolved: minimal.map(\.description), ttl: stubTTL, names: names)
        // The executor starts the check for exactly these: the names' TCP ports
        // (`DNSStubConfig.Name.tcpPorts`), which the ruleset marks (`sniPending`).
        let checked = names.filter { $0.proto == IPProtocolName.tcp.rawValue }
        if !checked.isEmpty {
            stub.serverNameCheck = ServerNameCheckPlan(rules: checked.map { .init(host: $0.host, ports: $0.ports) },
                                                       claims: [.tlsServerName, .httpHost],
                                                       resetWhen: [.notAllowed, .notResolved, .noName, .ech])
        }
        return stub
    }

    /// The ranges no answer may open (the stub's `denyResolved`, and the ruleset's
    /// `resolved` chain): the protected ranges, IPv4-mapped IPv6 and the policy's
    /// `deny_resolved`, without ranges inside another one (nft interval sets refuse
    /// overlapping elements).
    static func denyResolved(_ net: NetworkPolicy, hostAddresses: [String]) -> [Net] {
        var deny = protectedRanges(hostAddresses: hostAddresses).map(\.net)
        // IPv4-mapped IPv6 (an AAAA answer ::ffff:169.254.169.254): never an address a
        // name needs; the packet would leave as IPv4 anyway, outside the _6 set.
        deny.append(Net(parsing: "::ffff:0:0/96")!)
        deny += net.denyResolved.map(Net.init)
        let unique = Set(deny)
        return unique.filter { n in !unique.contains { $0 != n && $0.contains(n) } }.sorted()
    }

    /// New connections a run may open per second (and its burst), from
    /// `max_connections`: an eighth of it per second, at least 1.
    static func newConnectionRate(_ maxConnections: Int) -> (perSecond: Int, burst: Int) {
        (max(1, maxConnections / 8), max(1, maxConnections))
    }

    /// Every run gets an /etc/hosts that names localhost (v4 and v6): a resolver with
    /// `hosts: files` in nsswitch.conf answers it in any network mode, rootless too;
    /// `network.hosts` adds names. (PlanCompiler leaves it out where the policy binds
    /// the host's /etc or /etc/hosts itself and adds no names.)
    static func hostsFile(_ net: NetworkPolicy) -> String? {
        var text = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
        for name in net.hosts.keys.sorted() { text += "\(net.hosts[name]!) \(name)\n" }
        return text
    }

    // MARK: - DNS

    /// The largest DNS packet (IP header included) the ruleset passes to a resolver:
    /// a query is a 12-byte header, one question (a name of at most 255 bytes) and at
    /// most an EDNS0 record, well under the classic 512-byte message.
    static let dnsMaxPacket = 576
    /// UDP header + DNS header + the smallest question (root name, type, class).
    static let dnsMinUDPLength = 8 + 12 + 5
    /// UDP datagrams per second to all resolvers together, and the burst. (TCP to port
    /// 53 is bounded by the connection cap.)
    static let dnsRate = (perSecond: 100, burst: 200)

    // MARK: - What a broad allow rule never opens

    /// Ranges no broad rule opens; an exact address inside one still can be named.
    static let fixedProtected: [(cidr: String, what: String)] = [
        ("0.0.0.0/8", "\"this network\""),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local, cloud metadata at 169.254.169.254"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        // IPv6 forms an IPv4 address travels in (red-team F5): IPv4-compatible
        // (deprecated, holds ::/128 and ::1), NAT64 (RFC 6052, 8215), Teredo and 6to4;
        // a gateway may turn each into the IPv4 address inside, 127.0.0.1 or
        // 169.254.169.254 among them. Site-local is the deprecated fec0::/10.
        ("::/96", "IPv4-compatible IPv6 (deprecated; holds the unspecified address and loopback)"),
        ("::/128", "the unspecified address"),
        ("::1/128", "loopback"),
        ("64:ff9b::/96", "NAT64, an IPv4 address inside"),
        ("64:ff9b:1::/48", "local-use NAT64, an IPv4 address inside"),
        ("2001::/32", "Teredo, an IPv4 address inside"),
        ("2002::/16", "6to4, an IPv4 address inside"),
        ("fd00:ec2::254/128", "cloud metadata"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    ]

    /// An address range as bytes (4 or 16) and a prefix length.
    struct Net: Hashable, Comparable, CustomStringConvertible {
        var bytes: [UInt8]
        var prefix: Int
        var isV4: Bool { bytes.count == 4 }
        var isExact: Bool { prefix == bytes.count * 8 }

        init(_ address: IPAddress, prefix: Int? = nil) {
            switch address {
            case .v4(let v): bytes = [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
            case .v6(let g): bytes = g.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
            }
            self.prefix = prefix ?? bytes.count * 8
            // Host bits cleared, so `description` is always a valid nft prefix.
            for i in 0..<bytes.count {
                let keep = max(0, min(8, self.prefix - i * 8))
                bytes[i] &= keep == 0 ? 0 : ~UInt8(0) << (8 - keep)
            }
        }

        init(_ cidr: CIDR) { self.init(cidr.address, prefix: cidr.prefix) }

        /// `ADDRESS` or `ADDRESS/LEN`, IPv4 or IPv6; nil if either part does not parse.
        init?(parsing text: String) {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let address = IPAddress(String(parts[0])) else { return nil }
            var prefix = address.bitWidth
            if parts.count == 2 {
                guard let p = Int(parts[1]), (0...address.bitWidth).contains(p) else { return nil }
                prefix = p
            }
            self.init(address, prefix: prefix)
        }

        /// The first `bits` bits of both are equal (same family).
        private func samePrefix(_ o: Net, bits: Int) -> Bool {
            guard bytes.count == o.bytes.count else { return false }
            for i in 0..<bytes.count {
                let n = max(0, min(8, bits - i * 8))
                if n == 0 { break }
                let mask: UInt8 = ~UInt8(0) << (8 - n)
                if bytes[i] & mask != o.bytes[i] & mask { return false }
            }
            return true
        }

        func contains(_ o: Net) -> Bool { prefix <= o.prefix && samePrefix(o, bits: prefix) }
        func overlaps(_ o: Net) -> Bool { samePrefix(o, bits: min(prefix, o.prefix)) }

        var address: IPAddress {
            if isV4 {
                return .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
            }
            return .v6(stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) })
        }

        var description: String { isExact ? address.description : "\(address)/\(prefix)" }

        static func < (a: Net, b: Net) -> Bool {
            if a.bytes.count != b.bytes.count { return a.bytes.count < b.bytes.count }
            if a.bytes != b.bytes { return a.bytes.lexicographicallyPrecedes(b.bytes) }
            return a.prefix < b.prefix
        }
    }

    /// A range an allow rule must not open by being broad. `exactOpens`: a rule naming
    /// exactly one address inside (a /32 or /128) opens that address; false for a
    /// network of the host's (the bridge subnet: only the host's own addresses in it,
    /// the gateway, can be named).
    struct Protected {
        var net: Net
        var what: String
        var exactOpens: Bool
    }

    static func protectedRanges(hostAddresses: [String]) -> [Protected] {
        var out = fixedProtected.map { Protected(net: Net(parsing: $0.cidr)!, what: $0.what, exactOpens: true) }
        for text in hostAddresses {
            guard let net = Net(parsing: text) else { continue }
            out.append(net.isExact
                ? Protected(net: net, what: "an address of this host", exactOpens: true)
                : Protected(net: net, what: "a network of this host: the sandbox bridge, its gateway and other runs", exactOpens: false))
        }
        return out
    }

    /// An exact address a rule may name although it lies in a protected range: one of
    /// the host's own addresses, or one inside ranges that all allow naming.
    static func exactMayOpen(_ net: Net, _ protected: [Protected]) -> Bool {
        guard net.isExact else { return false }
        let inside = protected.filter { $0.net.contains(net) }
        return inside.contains { $0.net == net } || inside.allSatisfy(\.exactOpens)
    }

    /// The protected ranges to refuse before the allow rules: those a non-exempt rule
    /// (or resolver) overlaps, without ranges inside another one (nft interval sets
    /// refuse overlapping elements). Throws for a rule lying wholly inside one.
    static func refusedRanges(_ net: NetworkPolicy, _ protected: [Protected]) throws -> [Net] {
        var refused: [Net] = []
        func check(_ target: Net, key: String, what: String, shown: String) throws {
            if exactMayOpen(target, protected) { return }
            for p in protected where p.net.overlaps(target) {
                if p.net.contains(target) {
                    let fix = p.exactOpens
                        ? "name the one address exactly (a /\(target.bytes.count * 8)) to open it"
                        : "only the host's own addresses in it (the gateway) can be named, each exactly"
                    throw PlanError(key: key, message: "\(what) \(shown) lies inside \(p.net) (\(p.what)), which no rule opens by being broad; \(fix)")
                }
                refused.append(p.net)
            }
        }
        for address in net.dns {
            try check(Net(address), key: "network.dns", what: "resolver", shown: address.description)
        }
        for (i, rule) in net.allow.enumerated() {
            try check(Net(rule.cidr), key: "network.allow[\(i)]", what: "cidr", shown: rule.cidr.description)
        }
        let unique = Set(refused)
        return unique.filter { n in !unique.contains { $0 != n && $0.contains(n) } }.sorted()
    }

    // MARK: - The ruleset

    /// Elements in each set of refused destinations; past it packets are still
    /// refused (the chain's final `counter drop`), not itemised.
    static let deniedSetSize = 1024

    /// output policy drop. In order: `lo`; every UDP packet to a resolver's port 53 must
    /// look like a DNS query (size, header, rate); established traffic; new connections
    /// to the resolvers' port 53 and to exact addresses a rule may name inside the
    /// protected ranges; the protected ranges a broad rule overlaps refused; host
    /// rules' sets (through `resolved`, which refuses deny_resolved); the other allow
    /// rules. Every new
    /// connection that is allowed passes `admit`, which refuses it once the run has
    /// `maxConnections` tracked (`ct count`) or opens them too fast. Whatever is refused
    /// goes to the chain of its reason (`EgressRefusal`: `refuse`, `refuse_limit`,
    /// `refuse_rate`, `refuse_dns`): recorded in that reason's sets (with counters, read
    /// into the run result), then a TCP reset or a drop. IPv6 only where allowed.
    static func ruleset(_ net: NetworkPolicy, hostAddresses: [String] = []) throws -> String {
        let protected = protectedRanges(hostAddresses: hostAddresses)
        // A resolver no rule could reach is a plan error here, so every one gets rules.
        let refused = try refusedRanges(net, protected)
        let resolvers = net.dns
        func family(_ a: IPAddress) -> String { a.isV4 ? "ip" : "ip6" }

        var lines: [String] = []
        lines.append("table \(NftRunTable.family) \(NftRunTable.name) {")
        for reason in EgressRefusal.allCases {
            for (set, type) in [(reason.sets.v4, "ipv4_addr"), (reason.sets.v6, "ipv6_addr")] {
                lines.append("  set \(set) {")
                lines.append("    type \(type) . inet_proto . inet_service")
                lines.append("    flags dynamic")
                lines.append("    size \(deniedSetSize)")
                lines.append("    counter")
                lines.append("  }")
            }
        }
        // One pair of sets per host rule, filled by the DNS stub with the addresses its
        // name resolved to, each for the answer's (clamped) TTL.
        for i in net.allowHosts.indices {
            let sets = nameSets(i)
            for (set, type) in [(sets.v4, "ipv4_addr"), (sets.v6, "ipv6_addr")] {
                lines.append("  set \(set) {")
                lines.append("    type \(type)")
                lines.append("    flags timeout")
                lines.append("    size \(NftRunTable.nameSetSize)")
                lines.append("  }")
            }
        }
        lines.append("  chain output {")
        lines.append("    type filter hook output priority filter; policy drop;")
        lines.append("    oifname \"lo\" accept")
        // With the stub, DNS goes to it (on lo, above) and nowhere else — also not
        // through an allow rule's port 53 — and DNS over TLS (853) not at all: every
        // name the run resolves passes the stub's allowlist.
        if !net.allowHosts.isEmpty {
            lines.append("    meta l4proto { tcp, udp } th dport { 53, 853 } goto refuse")
        }
        // Before `established`: a resolver's answer makes the UDP flow established, and
        // every later datagram on it must still look like a query.
        for dns in resolvers {
            lines.append("    \(family(dns)) daddr \(dns) udp dport 53 jump dns")
        }
        lines.append("    ct state established,related accept")
        for dns in resolvers {
            lines.append("    \(family(dns)) daddr \(dns) udp dport 53 goto admit")
            lines.append("    \(family(dns)) daddr \(dns) tcp dport 53 goto admit")
        }
        func allowLine(_ rule: AllowRule) -> String {
            let ports = rule.ports.sorted().map(String.init).joinedText(separator: ", ")
            return "    \(family(rule.cidr.address)) daddr \(rule.cidr) \(rule.proto.rawValue) dport { \(ports) } goto admit"
        }
        let exact = net.allow.filter { exactMayOpen(Net($0.cidr), protected) }
        let broad = net.allow.filter { !exactMayOpen(Net($0.cidr), protected) }
        for rule in exact { lines.append(allowLine(rule)) }
        for (fam, v4) in [("ip", true), ("ip6", false)] {
            let ranges = refused.filter { $0.isV4 == v4 }
            if !ranges.isEmpty {
                lines.append("    \(fam) daddr { \(ranges.map(\.description).joinedText(separator: ", ")) } goto refuse")
            }
        }
        // Host rules: the addresses the stub put in the rule's sets, each checked again
        // in the kernel against deny_resolved (chain `resolved`): the stub leaves such
        // answers out, but its filter must not be the only fence (red-team F6b). The
        // protected ranges refused above are only those a broad rule overlaps, so they
        // do not cover this. A TCP flow they admit is marked for the server name check
        // (`sandbox_sni`).
        for (i, rule) in net.allowHosts.enumerated() {
            let sets = nameSets(i)
            let ports = rule.ports.sorted().map(String.init).joinedText(separator: ", ")
            let mark = rule.proto == .tcp ? "ct mark set \(hex(NftRunTable.sniPending)) " : ""
            lines.append("    ip daddr @\(sets.v4) \(rule.proto.rawValue) dport { \(ports) } \(mark)goto resolved")
            lines.append("    ip6 daddr @\(sets.v6) \(rule.proto.rawValue) dport { \(ports) } \(mark)goto resolved")
        }
        for rule in broad { lines.append(allowLine(rule)) }
        lines.append("    goto refuse")
        lines.append("  }")

        // A destination a name's set admitted: never one in deny_resolved (v4 and v6),
        // whatever put it in the set. Only set matches come here, so a CIDR rule that
        // opens such a range itself still does.
        if !net.allowHosts.isEmpty {
            let deny = denyResolved(net, hostAddresses: hostAddresses)
            lines.append("  chain resolved {")
            for (fam, v4) in [("ip", true), ("ip6", false)] {
                let ranges = deny.filter { $0.isV4 == v4 }
                if !ranges.isEmpty {
                    lines.append("    \(fam) daddr { \(ranges.map(\.description).joinedText(separator: ", ")) } goto refuse")
                }
            }
            lines.append("    goto admit")
            lines.append("  }")
        }

        // A UDP datagram to a resolver: the size of a query, a query's header (QR 0,
        // opcode QUERY, one question, no answer or authority records, at most the EDNS0
        // record), at a bounded rate. What follows the header is not parsed: the resolver
        // must be trusted (Docs/network.md, DNS).
        let notDNS = EgressRefusal.dnsCheck.chain
        lines.append("  chain dns {")
        lines.append("    meta length > \(dnsMaxPacket) goto \(notDNS)")
        lines.append("    udp length < \(dnsMinUDPLength) goto \(notDNS)")
        lines.append("    @th,80,5 != 0 goto \(notDNS)")
        lines.append("    @th,96,16 != 1 goto \(notDNS)")
        lines.append("    @th,112,32 != 0 goto \(notDNS)")
        lines.append("    @th,144,16 > 1 goto \(notDNS)")
        lines.append("    limit rate over \(dnsRate.perSecond)/second burst \(dnsRate.burst) packets goto \(notDNS)")
        lines.append("  }")

        // The connection cap: `ct count` counts this run's tracked connections (its own
        // namespace's conntrack; closed TCP ones are not counted), so at most
        // `maxConnections` of them reach the host's conntrack table at once. A flow
        // already admitted (a retransmitted SYN, more UDP before an answer) passes: the
        // count also holds refused attempts until they are collected, which must not
        // cut a connection that is already out.
        // Closed TCP connections are not counted but stay in the host's table (TIME_WAIT,
        // 120 s): new connections are also rate-limited, so a run leaves at most
        // rate × 120 s closed entries there (red-team review of issue 12).
        let rate = Self.newConnectionRate(net.maxConnections)
        lines.append("  chain admit {")
        lines.append("    ct status confirmed accept")
        lines.append("    ct count over \(net.maxConnections) goto \(EgressRefusal.connectionLimit.chain)")
        lines.append("    limit rate over \(rate.perSecond)/second burst \(rate.burst) packets goto \(EgressRefusal.connectionRate.chain)")
        lines.append("    accept")
        lines.append("  }")

        // Record, then refuse: a TCP connect gets a reset (ECONNREFUSED at once, not a
        // two-minute SYN retry), anything else is dropped (EPERM for local senders). One
        // chain per reason, each with its own sets: the result tells a destination no
        // rule allows from an allowed one the cap or a rate refused.
        for reason in EgressRefusal.allCases {
            lines.append("  chain \(reason.chain) {")
            for (fam, set) in [("ip", reason.sets.v4), ("ip6", reason.sets.v6)] {
                for (proto, verdict) in [("tcp", "reject with tcp reset"), ("udp", "drop")] {
                    lines.append("    meta l4proto \(proto) \(fam) daddr . meta l4proto . th dport @\(set) counter \(verdict)")
                    lines.append("    meta l4proto \(proto) add @\(set) { \(fam) daddr . meta l4proto . th dport } \(verdict)")
                }
            }
            lines.append("    counter drop")
            lines.append("  }")
        }
        lines.append("}")
        if net.allowHosts.contains(where: { $0.proto == .tcp }) { lines += serverNameTables() }
        return lines.joinedText(separator: "\n") + "\n"
    }

    static func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

    /// The server name check (Docs/network.md): after the run's own chain, a flow a
    /// host rule marked pending has its packets queued to the supervisor until one
    /// with data decides; the verdict comes back as the packet's mark on a repeat of
    /// this chain and becomes the flow's: passed (never queued again) or refused
    /// (this and every later packet answered with a reset). The queue rule itself is
    /// appended by the supervisor (`ServerNameCheck`, an x_tables NFQUEUE target: this
    /// kernel need not have nft's `queue`), without bypass; until it is there, and
    /// whenever nobody reads the queue, pending flows' packets are dropped (policy
    /// drop). Separate ip and ip6 tables: x_tables targets need a family.
    static func serverNameTables() -> [String] {
        let (pending, passed, refused) = (hex(NftRunTable.sniPending), hex(NftRunTable.sniPassed), hex(NftRunTable.sniRefused))
        var lines: [String] = []
        for family in ["ip", "ip6"] {
            lines.append("table \(family) \(NftRunTable.sniTable) {")
            lines.append("  chain \(NftRunTable.sniChain) {")
            lines.append("    type filter hook output priority filter + 1; policy drop;")
            // The reset a reject makes for the client comes back through this hook, on
            // lo, in the refused flow: it must pass.
            lines.append("    oifname \"lo\" accept")
            lines.append("    ct mark \(refused) meta l4proto tcp reject with tcp reset")
            lines.append("    ct mark != \(pending) accept")
            lines.append("    meta mark \(passed) ct mark set \(passed) accept")
            lines.append("    meta mark \(refused) meta l4proto tcp ct mark set \(refused) reject with tcp reset")
            lines.append("  }")
            lines.append("}")
        }
        return lines
    }
}
