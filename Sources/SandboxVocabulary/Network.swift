/// A read-only file the sandbox sees that exists only in memory: its text is a plan
/// field, never a host file. A `file` mount step names the field (its `source`).
public enum InMemoryFile: String, Sendable, Hashable, CaseIterable, Codable {
    case resolvConf = "network.resolvConf"
    case hosts = "network.hosts"

    /// Where the sandbox sees it.
    public var destination: String {
        switch self {
        case .resolvConf: "/etc/resolv.conf"
        case .hosts: "/etc/hosts"
        }
    }
}

/// The nft names of a run's own ruleset, loaded inside its network namespace: the
/// planner writes the ruleset, the kernel layer lists the sets the result reports.
public enum NftRunTable {
    /// `table inet sandbox`.
    public static let family = "inet"
    public static let name = "sandbox"
    // The sets of destinations the ruleset refused, with packet counts: a pair
    // (IPv4, IPv6) per reason, `EgressRefusal.sets`.

    /// The server name check (Docs/network.md): `table ip`/`ip6 sandbox_sni`, chain
    /// `output` after the run's own, where the supervisor appends the queue rule.
    public static let sniTable = "sandbox_sni"
    public static let sniChain = "output"
    /// Conntrack marks of a host rule's TCP flows: not yet checked (set when the
    /// rule admits the SYN), checked and passed, refused. A packet mark with the
    /// passed or refused value is the supervisor's verdict on a repeated packet.
    public static let sniPending: UInt32 = 0x5a1
    public static let sniPassed: UInt32 = 0x5a2
    public static let sniRefused: UInt32 = 0x5a3
    /// Elements in each of a host rule's sets (`name<i>_4`, `name<i>_6`): the planner
    /// declares them with this size, the DNS stub refuses an answer that would
    /// overflow one (`set_full`) without asking the kernel.
    public static let nameSetSize = 4096
}

/// Why the egress firewall refused a new flow (the result's `egressDenied[].reason`).
/// Each reason has its own chain and its own pair of sets in the run's ruleset, so the
/// supervisor reads the reason from where the kernel recorded the refusal.
public enum EgressRefusal: String, Sendable, Codable, CaseIterable {
    /// No allow rule admits the destination.
    case notAllowed = "not_allowed"
    /// Allowed, but the run already had `network.max_connections` connections tracked.
    case connectionLimit = "connection_limit"
    /// Allowed, but the run opened new connections faster than its rate (an eighth of
    /// `network.max_connections` per second, burst `max_connections`).
    case connectionRate = "connection_rate"
    /// A UDP datagram to a resolver's port 53 that did not look like a DNS query, or
    /// came over the DNS rate (100 a second, burst 200).
    case dnsCheck = "dns_check"

    /// Its sets in `table inet sandbox` (IPv4, IPv6), each element
    /// `daddr . l4proto . dport` with a packet counter.
    public var sets: (v4: String, v6: String) {
        switch self {
        case .notAllowed: ("denied4", "denied6")
        case .connectionLimit: ("limit4", "limit6")
        case .connectionRate: ("rate4", "rate6")
        case .dnsCheck: ("dns4", "dns6")
        }
    }

    /// The chain that records it in `sets`, then resets or drops.
    public var chain: String {
        switch self {
        case .notAllowed: "refuse"
        case .connectionLimit: "refuse_limit"
        case .connectionRate: "refuse_rate"
        case .dnsCheck: "refuse_dns"
        }
    }

    /// The reason a set of that name records; nil for other sets of the table.
    public init?(set name: String) {
        guard let r = Self.allCases.first(where: { $0.sets.v4 == name || $0.sets.v6 == name }) else { return nil }
        self = r
    }
}

/// A flow the server name check refused, with how often (the run result's `sniDenied`).
public struct ServerNameRefusal: Sendable, Equatable, Hashable {
    public enum Reason: String, Sendable, Codable {
        /// The name is allowed on this port but did not resolve to this address in this run.
        case notResolved = "not_resolved"
        /// No host rule admits the name on this port.
        case notAllowed = "not_allowed"
        /// No name in the first data: not a TLS ClientHello or HTTP/1 request, or one
        /// whose server name is not in its first segment.
        case noName = "no_name"
        /// A ClientHello with encrypted_client_hello (the real name is hidden).
        case ech = "ech"
    }
    public var daddr: String
    public var dport: UInt16
    /// The name the flow claimed (TLS server_name or HTTP Host); empty for `no_name`, `ech`.
    public var name: String
    public var reason: Reason
    public var count: UInt64
    public init(daddr: String, dport: UInt16, name: String, reason: Reason, count: UInt64) {
        self.daddr = daddr; self.dport = dport; self.name = name; self.reason = reason; self.count = count
    }
}

/// The nft table every egress run shares on the host (forward and masquerade for
/// the bridge's subnet).
public enum NftHostTable {
    /// `table inet sandbox_host` (the default; a bridge configuration may name another).
    public static let name = "sandbox_host"
}

/// A question the stub refused, with how often (the run result's `dnsDenied`).
public struct DNSRefusal: Sendable, Equatable, Hashable {
    public init(name: String, type: String, reason: Reason, count: UInt64) {
        self.name = name; self.type = type; self.reason = reason; self.count = count
    }
    public enum Reason: String, Sendable, Codable {
        /// No host rule admits the name: NXDOMAIN, never asked upstream.
        case notAllowed = "not_allowed"
        /// HTTPS/SVCB (they would hide the server name: ECH) or another type than A/AAAA.
        case recordType = "record_type"
        /// An answer lay in `deny_resolved` (loopback, metadata, …): left out, not opened.
        case deniedAddress = "denied_address"
        /// More questions than the upstream rate (100/s, burst 200): SERVFAIL, not asked.
        case rateLimited = "rate_limited"
        /// More questions in flight than the stub serves at once: SERVFAIL.
        case busy = "busy"
        /// The rule's set holds as many addresses as it can: SERVFAIL, nothing opened.
        case setFull = "set_full"
        /// An answer held more addresses than one answer may open (32): the rest left out.
        case tooManyAddresses = "too_many_addresses"
        /// A TCP connection to the stub while 16 were open: closed before a question
        /// was read (the entry's name and type are empty).
        case tooManyConnections = "too_many_connections"
    }
    public var name: String
    public var type: String
    public var reason: Reason
    public var count: UInt64

    /// The name is a host name: labels of letters, digits, "-" and "_" only. The stub
    /// shows any other name escaped (RFC 1035 `\DDD`); such a name is never repeated
    /// inside a suggested policy edit, which it could otherwise forge (red-team F3).
    public var nameIsHostName: Bool {
        !name.isEmpty && name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x5f }
        }
    }
}
