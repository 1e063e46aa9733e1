// The shared words (NetworkMode, SeccompAction, SocketFamily, …) are part of the
// policy model's API: whoever reads a Policy reads them.
@_exported import SandboxVocabulary

/// The typed policy model. A `Policy` value only exists after `PolicyLoader` has
/// parsed, merged (`extends`) and validated every key, so code downstream never
/// re-checks what is written here: sizes are bytes, durations are milliseconds,
/// CIDRs are parsed, names are known.
///
/// Paths are still templates (`{cwd}`, `{home}`, …) because their values depend on
/// the invocation; `{policy_dir}` is already expanded, since it differs per file of an
/// `extends` chain.
public struct Policy: Sendable, Equatable {
    public var version: Int
    public var name: String
    /// Files that were merged to make this policy, base first.
    public var sources: [String]
    /// SHA-256 (hex) of each file in `sources`, of the bytes the loader parsed.
    public var sourceDigests: [String] = []
    public var process: ProcessPolicy
    public var filesystem: FilesystemPolicy
    public var landlock: LandlockPolicy
    public var seccomp: SeccompPolicy
    public var capabilities: CapabilitiesPolicy
    public var resources: ResourcesPolicy
    public var network: NetworkPolicy
    public var binary: BinaryPolicy
    public var audit: AuditPolicy

    public init(version: Int = 1, name: String, sources: [String] = [],
                process: ProcessPolicy = .init(), filesystem: FilesystemPolicy = .init(),
                landlock: LandlockPolicy = .init(), seccomp: SeccompPolicy = .init(),
                capabilities: CapabilitiesPolicy = .init(), resources: ResourcesPolicy = .init(),
                network: NetworkPolicy = .init(), binary: BinaryPolicy = .init(),
                audit: AuditPolicy = .init()) {
        self.version = version; self.name = name; self.sources = sources
        self.process = process; self.filesystem = filesystem; self.landlock = landlock
        self.seccomp = seccomp; self.capabilities = capabilities; self.resources = resources
        self.network = network; self.binary = binary; self.audit = audit
    }
}

/// A path as written in a policy, possibly containing `{cwd}`, `{home}`, `{uid}`,
/// `{gid}`, `{run_id}`. Validated to be absolute once expanded.
///
/// A trailing `?` in the policy (`"/lib64?"`) makes the entry optional: skipped when
/// the host path does not exist, instead of failing the run (bwrap's `--ro-bind-try`).
///
/// An `ro` or `rw` entry written `{ src = "{cwd}", dst = "/workspace" }` is mounted at
/// `destination` instead of at its own path; list edits still compare entries by
/// `raw`, the source.
public struct PathTemplate: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The template without the optional marker.
    public let raw: String
    public let optional: Bool
    /// Where a bind is mounted inside, when not at its own path: an absolute, normalised
    /// path without templates.
    public let destination: String?
    public init(_ raw: String, optional: Bool = false, destination: String? = nil) {
        self.raw = raw; self.optional = optional; self.destination = destination
    }
    public var description: String {
        let source = optional ? raw + "?" : raw
        return destination.map { "\(source) -> \($0)" } ?? source
    }
    /// The path inside as written: `destination`, else the path itself.
    public var inside: String { destination ?? raw }
    public static func < (a: PathTemplate, b: PathTemplate) -> Bool { a.description < b.description }
}

public enum UserSpec: Sendable, Hashable {
    /// Run as the invoking user (the default): files written to rw paths keep their owner.
    case invoker
    case id(UInt32)
}

public struct ProcessPolicy: Sendable, Equatable {
    public var hostname: String = "sandbox"
    public var user: UserSpec = .invoker
    /// nil: the same as `user`.
    public var group: UserSpec? = nil
    /// nil: `{cwd}` if it is visible inside, else `/`.
    public var workdir: PathTemplate? = nil
    public var envPass: [String] = []
    public var envSet: [String: String] = [:]
    /// Wall-clock limit in milliseconds; nil = none.
    public var timeoutMs: UInt64? = nil
    /// Time between SIGTERM and SIGKILL when the timeout fires.
    public var graceMs: UInt64 = 5_000
    public var newSession: Bool = true
    /// Which host uid the command runs as (a root invoker's runs; rootless runs are
    /// always the invoker's, mapped into a user namespace).
    public var hostUID: HostUID = .own
    /// Namespaces (the default), nested, or namespaces where they can be made
    /// (`Isolation`; Docs/policy-reference.md, "Nested isolation").
    public var isolation: Isolation = .namespaces
    /// What a nested run may lack (`NestedGap`); anything else it cannot fence the
    /// usual way is fenced another way or refuses the run.
    public var nestedWithout: [NestedGap] = []
    public init() {}
}


public struct FilesystemPolicy: Sendable, Equatable {
    public var ro: [PathTemplate] = []
    public var rw: [PathTemplate] = []
    public var tmpfs: [PathTemplate] = []
    /// Names (relative, e.g. `.git`) made read-only again inside every rw path.
    public var protect: [String] = []
    public var mask: [PathTemplate] = []
    public var unixSockets: [PathTemplate] = []
    /// Trees the search for unix sockets under `ro` binds leaves out: the policy
    /// vouches that nothing binds a socket there (package-managed system trees).
    public var socketScanSkip: [PathTemplate] = []
    /// Directory entries that search may read per plan; a plan that needs more is
    /// refused (never a partial search).
    public var socketScanLimit: Int = FilesystemPolicy.defaultSocketScanLimit
    public static let defaultSocketScanLimit = 10_000
    /// The range `socket_scan_limit` accepts.
    public static let socketScanLimitRange = 0...10_000_000
    public init() {}
}



public struct LandlockPolicy: Sendable, Equatable {
    public var mode: FenceMode = .enforce
    /// The lowest Landlock ABI the policy accepts, whatever features it uses (for
    /// deployments that want e.g. the ABI 5 ioctl rules guaranteed). nil: derived
    /// from the features used.
    public var minABI: Int? = nil
    /// nil: TCP connect is not handled by Landlock (the network fence decides).
    /// A list, even empty: only these ports may be connected to (ABI 4).
    public var connectTCP: [UInt16]? = nil
    public var bindTCP: [UInt16]? = nil
    public var scope: [LandlockScope] = []
    public init() {}
}



public struct SeccompPolicy: Sendable, Equatable {
    /// nil: no profile (only `deny` and `socket_families` apply, default allow).
    public var profile: SeccompProfile? = nil
    /// Syscall names denied with `onViolation`; validated against the syscall table.
    public var deny: [String] = []
    /// nil: socket families are not restricted.
    public var socketFamilies: [SocketFamily]? = nil
    public var onViolation: ViolationAction = .errno
    public init() {}
}

public struct CapabilitiesPolicy: Sendable, Equatable {
    /// Capability names without the `CAP_` prefix, lower-case (`net_bind_service`).
    public var keep: [String] = []
    public init() {}
}

public enum Rlimit: String, Sendable, Hashable, CaseIterable, Comparable {
    case cpu, fsize, data, stack, core, rss, nproc, nofile, memlock, `as`, locks, sigpending, msgqueue, nice, rtprio, rttime
    public static func < (a: Rlimit, b: Rlimit) -> Bool { a.rawValue < b.rawValue }
    /// RLIMIT_* value on Linux (generic and x86 agree for these).
    public var number: Int32 {
        switch self {
        case .cpu: 0; case .fsize: 1; case .data: 2; case .stack: 3; case .core: 4; case .rss: 5
        case .nproc: 6; case .nofile: 7; case .memlock: 8; case .as: 9; case .locks: 10
        case .sigpending: 11; case .msgqueue: 12; case .nice: 13; case .rtprio: 14; case .rttime: 15
        }
    }
}

public enum RlimitValue: Sendable, Hashable {
    case unlimited
    case value(UInt64)
}

public struct ResourcesPolicy: Sendable, Equatable {
    public var memoryBytes: UInt64? = nil
    /// nil with a memory limit means swap 0.
    public var swapBytes: UInt64? = nil
    public var pids: UInt64? = nil
    /// Cores, > 0.
    public var cpu: Double? = nil
    /// cgroup io weight 1…10000.
    public var ioWeight: UInt64? = nil
    public var rlimits: [Rlimit: RlimitValue] = [:]
    /// Limits (`memory`, `swap`, `pids`, `cpu`, `io`) that may be skipped when the host
    /// lacks their controller; the run result then lists them.
    public var bestEffort: [String] = []
    public init() {}
}


public enum IPProtocolName: String, Sendable, Hashable, CaseIterable {
    case tcp, udp
}

public struct AllowRule: Sendable, Hashable {
    public var cidr: CIDR
    public var ports: [UInt16]
    public var proto: IPProtocolName
    public init(cidr: CIDR, ports: [UInt16], proto: IPProtocolName) {
        self.cidr = cidr; self.ports = ports; self.proto = proto
    }
}

/// An allow rule naming hosts (`{ host = "pypi.org", ports = [443] }`): the DNS stub
/// opens the addresses the name resolves to, for the answer's TTL (Docs/network.md).
public struct HostRule: Sendable, Hashable {
    public var host: HostPattern
    public var ports: [UInt16]
    public var proto: IPProtocolName
    public init(host: HostPattern, ports: [UInt16], proto: IPProtocolName) {
        self.host = host; self.ports = ports; self.proto = proto
    }
}

public struct NetworkPolicy: Sendable, Equatable {
    public var mode: NetworkMode = .none
    public var dns: [IPAddress] = []
    public var allow: [AllowRule] = []
    /// Allow rules naming hosts; any makes the run's resolver the DNS stub.
    public var allowHosts: [HostRule] = []
    /// The resolvers the stub asks (from the host side); empty: the host's own, read
    /// from its resolv.conf when the plan is made.
    public var upstreamDNS: [IPAddress] = []
    /// Ranges an answer may never open, on top of those that are always refused
    /// (loopback, link-local, unspecified, multicast, the host's own addresses, the
    /// bridge subnet), e.g. private ranges.
    public var denyResolved: [CIDR] = []
    /// Extra `/etc/hosts` entries: name → address.
    public var hosts: [String: IPAddress] = [:]
    /// Egress: connections the run may have tracked at once (`ct count`); new ones
    /// over it are refused. Bounds what one run adds to the host's conntrack table.
    public var maxConnections: Int = NetworkPolicy.defaultMaxConnections
    public static let defaultMaxConnections = 256
    /// The range `max_connections` accepts.
    public static let maxConnectionsRange = 1...65536
    public init() {}
}

public struct BinaryPolicy: Sendable, Equatable {
    public var requireRootOwned: Bool = false
    public var rejectWritable: Bool = false
    public var rejectSetuid: Bool = false
    /// Absolute path → "sha256:<64 hex>".
    public var pin: [String: String] = [:]
    public init() {}
}

public struct AuditPolicy: Sendable, Equatable {
    public var path: PathTemplate? = nil
    /// The HMAC key of the chain (a file the invoker or root owns, mode 0600).
    public var keyFile: PathTemplate? = nil
    public init() {}
}

extension Policy {
    /// The policy's identity as text: SHA-256 of its files' digests in merge order,
    /// one hex digest and a newline each. Nil for a policy built in code.
    public var digest: String? {
        sourceDigests.isEmpty ? nil : Digest.sha256Hex(Array(sourceDigests.map { $0 + "\n" }.joinedText().utf8))
    }
}
