import SandboxPolicy
import SandboxVocabulary

/// Everything the executor will do for one run, fully resolved: absolute paths, the
/// mount steps in order, the fence rules, limits, network configuration, argv and
/// environment. The executor applies a plan and makes no policy decisions of its own.
///
/// A plan is pure data: compiling it reads files but makes no other syscalls, and the
/// same inputs give byte-identical canonical JSON (`RunPlan.canonicalJSON`) and so the
/// same `digest`.
public struct RunPlan: Codable, Sendable, Equatable {
    public var planVersion: Int = 1
    public var runId: String
    public var policy: PolicyInfo
    public var host: HostInfo
    public var process: ProcessPlan
    /// The private root, built on an empty tmpfs in this order.
    public var mounts: [MountStep]
    /// Names whose creation beneath a writable directory the result reports
    /// (`.git`, when the policy protects it: a planted repository's config runs on
    /// the host's next git command there).
    public var reportCreated: [String] = []
    public var landlock: LandlockPlan
    public var seccomp: SeccompPlan
    public var capabilities: CapabilityPlan
    public var resources: ResourcePlan
    public var network: NetworkPlan
    public var binary: BinaryPlan
    public var audit: AuditPlan
    /// `process.isolation`, when the policy accepts nested isolation: which this run
    /// gets, why, and (nested) every layer applied or not (NestedPlan.swift). nil:
    /// namespaces only.
    public var isolation: IsolationPlan? = nil
    /// Protections a `best-effort` policy asked for that this host cannot give.
    public var notApplied: [String]
    /// sha256 of the canonical JSON of every other field; nil while it is computed.
    public var digest: String?
}

extension RunPlan {
    /// Whether `other` makes the same sandbox as this plan: equal in every field but
    /// the command (`process.argv`, `env`, `searchPath`), the run id and the digest.
    /// A sandbox built ahead from one is what the other would build (a server's warm
    /// path): the same mounts and bind identities, fences, limits, uid and network.
    public func sameSandbox(as other: RunPlan) -> Bool {
        func sandbox(_ plan: RunPlan) -> RunPlan {
            var p = plan
            p.runId = ""
            p.digest = nil
            p.process.argv = []
            p.process.env = []
            p.process.searchPath = ""
            return p
        }
        return sandbox(self) == sandbox(other)
    }
}

public struct PolicyInfo: Codable, Sendable, Equatable {
    public var name: String
    public var sources: [String]
    /// `Policy.digest`: SHA-256 over the digests of the files as loaded (nil for a
    /// policy built in code).
    public var digest: String?
}

/// The host facts the plan depends on (so a plan read later says what it assumed).
public struct HostInfo: Codable, Sendable, Equatable {
    public var arch: String
    public var kernel: String
    public var landlockABI: Int
    public var invokerUID: UInt32
    public var invokerGID: UInt32
    public var rootless: Bool
}

public struct UserNamespacePlan: Codable, Sendable, Equatable {
    /// One `/proc/self/uid_map` line: "inside outside 1".
    public var uidMap: String
    public var gidMap: String
}

public struct RlimitPlan: Codable, Sendable, Equatable {
    public var name: String
    public var resource: Int32
    /// `UInt64.max` is RLIM_INFINITY.
    public var soft: UInt64
    public var hard: UInt64
}

public struct ProcessPlan: Codable, Sendable, Equatable {
    public var argv: [String]
    /// "KEY=value", sorted by key.
    public var env: [String]
    /// PATH used to find argv[0] inside the sandbox.
    public var searchPath: String
    public var workdir: String
    public var uid: UInt32
    public var gid: UInt32
    public var hostname: String
    public var newSession: Bool
    public var timeoutMs: UInt64?
    public var graceMs: UInt64
    /// Present when the invoker is not root: the child maps itself into a new user
    /// namespace before anything else.
    public var userNamespace: UserNamespacePlan?
    /// The host uid the command runs as: `own` (a root invoker's run: a uid leased for
    /// this run alone, mapped to `uid` in a user namespace; writable binds idmapped
    /// so files stay the invoker's) or `invoker` (the invoker's own uid: rootless
    /// runs, and `process.host_uid = "invoker"`).
    public var hostUID: HostUID = .invoker
    public var rlimits: [RlimitPlan]
}

public enum MountKind: String, Codable, Sendable, Equatable {
    /// Recursive bind of a host path (`source`) at `destination`.
    case bind
    case tmpfs
    /// A fresh procfs for the new pid namespace, with the kernel knobs read-only.
    case proc
    /// A minimal /dev: null zero full random urandom tty, pts, ptmx, shm, fd links.
    case dev
    /// A symlink at `destination` pointing to `source` (mirrors a host symlink).
    case symlink
    /// `destination` made read-only again (inside an rw bind); skipped if absent.
    case protect
    /// `destination` hidden: a file reads as empty and unreadable, a directory as empty.
    case mask
    /// `destination` (a directory inside a writable bind) bound onto itself: a mount
    /// point cannot be renamed or removed, so a nested protect or mask below it stays
    /// where the policy saw it.
    case pin
    /// A read-only file that exists only in memory (resolv.conf, hosts): `source`
    /// names the plan field holding its text (`network.resolvConf`, `network.hosts`).
    case file
}

public struct MountStep: Codable, Sendable, Equatable {
    public var kind: MountKind
    public var source: String?
    public var destination: String
    public var readOnly: Bool
    /// tmpfs data such as "mode=0755".
    public var options: String?
    /// Skip without error when the source (bind) or destination (protect) is absent.
    public var optional: Bool
    /// The policy key this step comes from, for messages and `explain`.
    public var origin: String
    /// A `file` step's in-memory file (its `source` names the plan field).
    public var inMemoryFile: InMemoryFile? { kind == .file ? source.flatMap(InMemoryFile.init(rawValue:)) : nil }
    /// Binds: the source's device and inode when the plan was made. The supervisor
    /// opens every source once (no symlink on its path) and refuses the run if what
    /// it opened is not this object; the child clones the mount from that fd.
    public var sourceIdentity: FileIdentity? = nil
    /// Binds whose source is the invoker's working directory or lies beneath it: the
    /// path relative to it ("" for the directory itself). The supervisor opens these
    /// from its own cwd fd (`RESOLVE_BENEATH`), never by the path, which a
    /// concurrent run could rename.
    public var cwdRelative: String? = nil

    public init(kind: MountKind, source: String? = nil, destination: String, readOnly: Bool,
                options: String? = nil, optional: Bool = false, origin: String) {
        self.kind = kind; self.source = source; self.destination = destination
        self.readOnly = readOnly; self.options = options; self.optional = optional; self.origin = origin
    }

    /// How the step reads in an error message: `bind /opt/tool -> /opt/tool (ro)`.
    public var summary: String {
        switch kind {
        case .bind: return "bind \(source ?? "?") -> \(destination) (\(readOnly ? "ro" : "rw"))"
        case .symlink: return "symlink \(destination) -> \(source ?? "?")"
        default: return "\(kind.rawValue) \(destination)"
        }
    }
}

public struct LandlockRule: Codable, Sendable, Equatable {
    /// Path inside the sandbox.
    public var path: String
    /// The host path with the same inode (bind sources): the supervisor opens it
    /// before clone. nil: the path exists only inside (tmpfs, /dev, /proc) and the
    /// child adds the rule after building the root.
    public var hostPath: String?
    /// The rights granted beneath it.
    public var access: [LandlockAccess]
}

public struct LandlockPlan: Codable, Sendable, Equatable {
    public var mode: FenceMode
    /// The ABI the ruleset is built for: min(kernel's, what we know); 0 when off/unavailable.
    public var abi: Int
    /// The lowest ABI that gives everything the policy asked for.
    public var requiredABI: Int
    /// Filesystem rights handled (denied unless a rule grants them).
    public var handledAccessFS: [LandlockAccess]
    public var rules: [LandlockRule]
    public var connectTCP: [UInt16]?
    public var bindTCP: [UInt16]?
    public var scopes: [LandlockScope]
}

public struct SeccompArgPlan: Codable, Sendable, Equatable {
    public var index: UInt32
    public var op: SeccompOperator
    public var value: UInt64
    public var valueTwo: UInt64
}

public struct SeccompRulePlan: Codable, Sendable, Equatable {
    public var syscalls: [String]
    public var action: SeccompAction
    public var errno: UInt32?
    public var args: [SeccompArgPlan]
    public var origin: String
}

public struct SeccompPlan: Codable, Sendable, Equatable {
    /// The `origin` of the rules the planner adds whatever the profile says; the
    /// denial account tells their denials apart by it.
    public static let noSetuidBitsOrigin = "builtin: no setuid/setgid bits"
    public static let noSignalsToInitOrigin = "builtin: no signals to PID 1"
    public static let connectAccountOrigin = "builtin: connect through the supervisor (egress account)"
    public static let noIoUringOrigin = "builtin: no io_uring (its operations pass the filter)"
    public static let noNamespaceClonesOrigin = "builtin: no namespaces by clone (unshare is denied)"
    /// clone(2)'s namespace flags (CLONE_NEWNS, _NEWCGROUP, _NEWUTS, _NEWIPC,
    /// _NEWUSER, _NEWPID, _NEWNET): the mask Docker's profile allows clone under.
    public static let cloneNamespaceFlags: [UInt64] = [0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000]
    /// All of them at once (0x7E020000): the namespace fence is built from it.
    public static var cloneNamespaceMask: UInt64 { cloneNamespaceFlags.reduce(0, |) }
    public var enabled: Bool
    public var profile: String?
    /// Native architecture only; x32/i386 syscalls hit the kill action.
    public var arch: String
    public var defaultAction: SeccompAction
    public var defaultErrno: UInt32?
    public var rules: [SeccompRulePlan]
    /// Address families allowed for socket(2); others fail with EAFNOSUPPORT. nil: all.
    public var socketFamilies: [SocketFamily]?
    public var onViolation: ViolationAction
    /// Names in the profile that do not exist on this architecture (dropped).
    public var unknownSyscalls: [String]
    /// Number of every syscall named in `rules` on `arch` (from our own table, so a
    /// syscall newer than the installed libseccomp still compiles).
    public var syscallNumbers: [String: Int]
    /// sha256 of the rule set alone: the cache key of the compiled BPF.
    public var rulesDigest: String
    /// Nested: the ioctl commands refused with EPERM whatever the profile says
    /// (`NestedSeccomp.refusedIoctls`), in a second filter stacked after the main one
    /// (`SeccompCompiler.fence`). nil: none.
    public var refusedIoctls: [IoctlCommand]? = nil
    /// The same stacked filter refuses clone with a namespace flag (EPERM) and clone3
    /// (ENOSYS): the deny list has unshare, and the profile's own rules for clone or
    /// clone3 have conditions the planner cannot read as refusing namespaces
    /// (`PlanCompiler.noNamespaceClones`). nil: no such refusal there.
    public var namespaceFence: Bool? = nil
    /// Nested: utimensat with explicit times is handed to the supervisor, which sets
    /// them itself only beneath a writable bind (`NestedSeccomp.explicitTimes`,
    /// `SandboxKernel.TimesFence`). nil: no such rule.
    public var explicitTimesViaSupervisor: Bool? = nil
}

extension SeccompPlan {
    /// Whether every call of `name` passes a filter of `rules` and `defaultAction`,
    /// whatever its arguments: rules without conditions name it and all let it
    /// through, and none with conditions names it; or no rule names it and the
    /// default lets it through.
    public static func passesWhatever(_ name: String, rules: [SeccompRulePlan], defaultAction: SeccompAction, arch: String) -> Bool {
        guard SyscallTable.number(name, arch: arch) != nil else { return false }
        let passing: Set<SeccompAction> = [.allow, .log]
        let naming = rules.filter { $0.syscalls.contains(name) }
        if naming.contains(where: { !$0.args.isEmpty }) { return false }
        return naming.isEmpty ? passing.contains(defaultAction) : naming.allSatisfy { passing.contains($0.action) }
    }

    /// The same, of this plan's filter.
    public func passesWhatever(_ name: String) -> Bool {
        Self.passesWhatever(name, rules: rules, defaultAction: defaultAction, arch: arch)
    }
}

/// One ioctl command by its kernel name and number (the low 32 bits the kernel
/// reads: `unsigned int cmd`).
public struct IoctlCommand: Codable, Sendable, Equatable {
    public var name: String
    public var number: UInt32
    public init(_ name: String, _ number: UInt32) { self.name = name; self.number = number }
}

public struct CapabilityPlan: Codable, Sendable, Equatable {
    /// Names (`cap_net_bind_service`) kept in every set; all others are dropped.
    public var keep: [String]
    public var keepMask: UInt64
}

public struct ResourcePlan: Codable, Sendable, Equatable {
    public var memoryBytes: UInt64?
    public var swapBytes: UInt64?
    public var pids: UInt64?
    public var cpuQuotaUs: UInt64?
    public var cpuPeriodUs: UInt64?
    public var ioWeight: UInt64?
    public var bestEffort: [String]
    public var needsCgroup: Bool {
        memoryBytes != nil || swapBytes != nil || pids != nil || cpuQuotaUs != nil || ioWeight != nil
    }
}

public struct NetworkAllowPlan: Codable, Sendable, Equatable {
    public var cidr: String
    public var ports: [UInt16]
    public var proto: String
}

/// The DNS stub the supervisor serves inside an egress run's namespace: the run's only
/// resolver. It answers the names of `names` (asking `upstream` from the host side and
/// putting each answer not in `denyResolved` into the rule's sets first) and nothing else.
public struct DNSStubPlan: Codable, Sendable, Equatable {
    public struct TTLRange: Codable, Sendable, Equatable {
        public var min: UInt32
        public var max: UInt32
    }
    public struct Name: Codable, Sendable, Equatable {
        public var host: HostPattern
        public var ports: [UInt16]
        public var proto: String
        /// The rule's nft sets in `table inet sandbox` (IPv4, IPv6).
        public var set4: String
        public var set6: String
    }
    /// Inside the run's namespace, UDP and TCP port 53.
    public var address: String
    public var upstream: [String]
    /// Where `upstream` came from: the policy or the host's resolv.conf.
    public var upstreamSource: String
    public var denyResolved: [String]
    /// Seconds a set entry lives: the answer's TTL clamped to this range.
    public var ttl: TTLRange
    public var names: [Name]
    /// The server name check of the TCP ports these names open; nil when no host rule
    /// opens a TCP port.
    public var serverNameCheck: ServerNameCheckPlan? = nil
}

/// The server name check (Docs/network.md, "The server name check"): the supervisor
/// reads the first data of every TCP flow a host rule admits (NFQUEUE) and resets the
/// flow unless the name it claims resolved to that destination in this run and a host
/// rule allows that name on that port.
public struct ServerNameCheckPlan: Codable, Sendable, Equatable {
    /// Where a flow's claimed name is read from.
    public enum Claim: String, Codable, Sendable {
        /// A TLS ClientHello's server_name.
        case tlsServerName = "tls_server_name"
        /// A plain HTTP/1 request's Host header.
        case httpHost = "http_host"
    }
    public struct Rule: Codable, Sendable, Equatable {
        public var host: HostPattern
        public var ports: [UInt16]
    }
    /// The TCP host rules, each with the ports whose flows are checked.
    public var rules: [Rule]
    public var claims: [Claim]
    /// Why a flow is reset (the result's `sniDenied` reasons): a name not allowed on the
    /// port or not resolved there, no readable name, an encrypted ClientHello (ECH).
    public var resetWhen: [ServerNameRefusal.Reason]
}

public struct NetworkPlan: Codable, Sendable, Equatable {
    public var mode: NetworkMode
    public var dns: [String]
    /// The exact /etc/resolv.conf the sandbox sees (egress), never a host file.
    public var resolvConf: String?
    public var hosts: String?
    public var allow: [NetworkAllowPlan]
    /// The nft ruleset loaded inside the sandbox's network namespace (egress).
    public var nftRuleset: String?
    /// The DNS stub, when allow rules name hosts (Docs/network.md, "Names").
    public var stub: DNSStubPlan? = nil
    /// The connection cap and new-connection rate the ruleset enforces (egress): the
    /// result's hints for `connection_limit` and `connection_rate` name them.
    public var connections: ConnectionLimits? = nil

    /// The text of an in-memory file; nil when this plan has none.
    public func text(of file: InMemoryFile) -> String? {
        switch file {
        case .resolvConf: resolvConf
        case .hosts: hosts
        }
    }
}

/// `network.max_connections` and the new-connection rate it sets (Docs/network.md,
/// "Connection cap").
public struct ConnectionLimits: Codable, Sendable, Equatable {
    public var max: Int
    public var perSecond: Int
    public var burst: Int

    public init(max: Int, perSecond: Int, burst: Int) {
        self.max = max; self.perSecond = perSecond; self.burst = burst
    }
}

public struct BinaryPlan: Codable, Sendable, Equatable {
    public var requireRootOwned: Bool
    public var rejectWritable: Bool
    public var rejectSetuid: Bool
    public var pin: [String: String]
    public var isActive: Bool { requireRootOwned || rejectWritable || rejectSetuid || !pin.isEmpty }
}

public struct AuditPlan: Codable, Sendable, Equatable {
    /// The audit log (JSON lines, hash-chained); nil: no audit.
    public var path: String?
    /// The chain's HMAC key; nil: a plain SHA-256 chain.
    public var keyFile: String?
}
