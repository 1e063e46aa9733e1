#if canImport(Glibc)
import Glibc
#endif
import CSandbox

/// Landlock, the unprivileged access-control LSM (landlock(7)): the names of its
/// access rights, the ABI the running kernel offers, and (``LandlockRuleset``) the
/// ruleset fd the supervisor prepares before clone.
///
/// The split follows "compile in the parent, apply in the child": the supervisor
/// creates the ruleset and adds every rule it can reach (host paths, ports), the
/// child adds the few rules for paths that exist only inside (``LandlockRuleset/innerRules``)
/// and calls `landlock_restrict_self` after `PR_SET_NO_NEW_PRIVS`.
public enum Landlock {
    /// The highest ABI this code knows. ABI 7 (Linux 6.15) adds audit-logging flags
    /// for `landlock_restrict_self`, no new rights; rulesets are the same as ABI 6.
    public static let knownABI = 7

    /// `LANDLOCK_ACCESS_FS_*` from include/uapi/linux/landlock.h, with the ABI that
    /// introduced each right.
    static let fsRights: [(name: String, bit: UInt64, abi: Int)] = [
        ("execute", 1 << 0, 1),
        ("write_file", 1 << 1, 1),
        ("read_file", 1 << 2, 1),
        ("read_dir", 1 << 3, 1),
        ("remove_dir", 1 << 4, 1),
        ("remove_file", 1 << 5, 1),
        ("make_char", 1 << 6, 1),
        ("make_dir", 1 << 7, 1),
        ("make_reg", 1 << 8, 1),
        ("make_sock", 1 << 9, 1),
        ("make_fifo", 1 << 10, 1),
        ("make_block", 1 << 11, 1),
        ("make_sym", 1 << 12, 1),
        ("refer", 1 << 13, 2),
        ("truncate", 1 << 14, 3),
        ("ioctl_dev", 1 << 15, 5),
    ]

    /// The rights that make sense on a file that is not a directory (the kernel's
    /// `ACCESS_FILE`): a rule on such a file with any other right fails with EINVAL.
    public static let fileAccessMask: UInt64 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)

    /// `LANDLOCK_ACCESS_NET_BIND_TCP` / `LANDLOCK_ACCESS_NET_CONNECT_TCP` (ABI 4).
    public static let netBindTCP: UInt64 = 1 << 0
    public static let netConnectTCP: UInt64 = 1 << 1

    /// `LANDLOCK_SCOPE_*` (ABI 6), by the names a policy's `scope` uses.
    static let scopeBits: [(name: String, bit: UInt64, abi: Int)] = [
        ("abstract-unix-socket", 1 << 0, 6),
        ("signal", 1 << 1, 6),
    ]

    /// The highest Landlock ABI the running kernel supports, from
    /// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`; 0 when
    /// Landlock is not built in (ENOSYS) or disabled at boot (EOPNOTSUPP).
    public static func probeABI() -> Int {
        let abi = sbx_fence_landlock_abi()
        return abi > 0 ? Int(abi) : 0
    }

    /// The `handled_access_fs` / `allowed_access` mask for right names at `abi`.
    /// An unknown name, or a right newer than `abi`, is an error naming it: the
    /// kernel would refuse the whole ruleset with a bare EINVAL.
    public static func accessBits(_ names: [String], abi: Int) throws -> UInt64 {
        try mask(names, from: fsRights, kind: "access right", abi: abi)
    }

    /// Every filesystem right name the kernel handles at `abi`, in bit order.
    public static func allFSRights(abi: Int) -> [String] {
        fsRights.filter { $0.abi <= abi }.map(\.name)
    }

    /// The names of the rights in `bits` (for messages and `explain`).
    public static func rightNames(_ bits: UInt64) -> [String] {
        fsRights.filter { bits & $0.bit != 0 }.map(\.name)
    }

    /// The `scoped` mask for scope names (ABI 6).
    public static func scopeMask(_ names: [String], abi: Int) throws -> UInt64 {
        try mask(names, from: scopeBits, kind: "scope", abi: abi)
    }

    private static func mask(_ names: [String], from table: [(name: String, bit: UInt64, abi: Int)],
                             kind: String, abi: Int) throws -> UInt64 {
        var bits: UInt64 = 0
        for name in names {
            guard let entry = table.first(where: { $0.name == name }) else {
                throw KernelError(operation: "landlock", subject: "\(kind) '\(name)'",
                                 detail: "unknown; known: \(table.map(\.name).joined(separator: " "))")
            }
            guard entry.abi <= abi else {
                throw KernelError(operation: "landlock", subject: "\(kind) '\(name)'",
                                 detail: "needs Landlock ABI \(entry.abi), the ruleset is for ABI \(abi)")
            }
            bits |= entry.bit
        }
        return bits
    }
}

/// What a ruleset is built from: the Landlock part of a run plan
/// (`SandboxPlan.LandlockPlan`), in the kernel layer's own terms so this module
/// does not depend on the planner. Field names match the plan's.
public struct LandlockSpec: Sendable, Equatable {
    public struct PathRule: Sendable, Equatable {
        /// The path inside the sandbox.
        public var path: String
        /// The host path with the same inode; nil when it exists only inside.
        public var hostPath: String?
        /// That object already opened (the bind's source fd, owned by the caller):
        /// used instead of opening `hostPath` again.
        public var hostFD: Int32?
        /// Right names granted beneath it.
        public var access: [String]
        public init(path: String, hostPath: String?, hostFD: Int32? = nil, access: [String]) {
            self.path = path; self.hostPath = hostPath; self.hostFD = hostFD; self.access = access
        }
    }

    /// The ABI the ruleset is built for (1…``Landlock/knownABI``, at most the kernel's).
    public var abi: Int
    public var handledAccessFS: [String]
    public var rules: [PathRule]
    /// nil: TCP connect not handled. A list, even empty: only these ports (ABI 4).
    public var connectTCP: [UInt16]?
    public var bindTCP: [UInt16]?
    /// `abstract-unix-socket`, `signal` (ABI 6).
    public var scopes: [String]

    public init(abi: Int, handledAccessFS: [String], rules: [PathRule], connectTCP: [UInt16]? = nil,
                bindTCP: [UInt16]? = nil, scopes: [String] = []) {
        self.abi = abi; self.handledAccessFS = handledAccessFS; self.rules = rules
        self.connectTCP = connectTCP; self.bindTCP = bindTCP; self.scopes = scopes
    }
}

/// A Landlock ruleset fd, prepared in the supervisor before clone: created for the
/// spec's ABI with every rule whose object the supervisor can open (host paths
/// opened `O_PATH`, TCP ports). The child inherits `fd`, adds ``innerRules`` after
/// pivot_root and calls `landlock_restrict_self(fd)`.
public final class LandlockRuleset {
    private let owner: OwnedFD
    /// The ruleset fd (O_CLOEXEC; the child runner keeps it across its own steps
    /// and closes it before execve). -1 after ``close()``.
    public var fd: Int32 { owner.raw }
    /// The ABI the ruleset was built for.
    public let abi: Int
    public let handledAccessFS: UInt64
    public let handledAccessNet: UInt64
    public let scoped: UInt64
    /// Rules the child adds itself after pivot_root (rules with no host path): the
    /// path inside and the access mask. When that path is not a directory the child
    /// must intersect the mask with ``Landlock/fileAccessMask`` first, as ``init(spec:)``
    /// does for host paths. Rules granting nothing are left out.
    public let innerRules: [(path: String, access: UInt64)]

    /// Creates the ruleset for `spec.abi`: `handled_access_fs` from
    /// `spec.handledAccessFS`, `handled_access_net` for the TCP lists that are
    /// non-nil (ABI 4), `scoped` from `spec.scopes` (ABI 6); adds a path-beneath rule
    /// for every rule with a host path (opened `O_PATH|O_CLOEXEC`; a rule on a file
    /// keeps only the rights a file can have) and a net-port rule for every port.
    ///
    /// Throws naming the path for a host path that cannot be opened — whether that is
    /// fatal (an optional mount whose source is absent) is the caller's decision.
    public init(spec: LandlockSpec) throws {
        let kernelABI = Landlock.probeABI()
        guard spec.abi >= 1, spec.abi <= Landlock.knownABI else {
            throw KernelError(operation: "landlock_create_ruleset", subject: "ABI \(spec.abi)",
                             detail: "a ruleset needs an ABI from 1 to \(Landlock.knownABI)")
        }
        guard spec.abi <= kernelABI else {
            throw KernelError(operation: "landlock_create_ruleset", subject: "ABI \(spec.abi)",
                             detail: kernelABI == 0 ? "Landlock is not available on this kernel"
                                                    : "the running kernel supports Landlock ABI \(kernelABI)")
        }
        let abi = spec.abi
        let handledFS = try Landlock.accessBits(spec.handledAccessFS, abi: abi)
        var handledNet: UInt64 = 0
        if spec.connectTCP != nil { handledNet |= Landlock.netConnectTCP }
        if spec.bindTCP != nil { handledNet |= Landlock.netBindTCP }
        if handledNet != 0 && abi < 4 {
            throw KernelError(operation: "landlock_create_ruleset", subject: "connect_tcp/bind_tcp",
                             detail: "TCP port rules need Landlock ABI 4, the ruleset is for ABI \(abi)")
        }
        let scoped = try Landlock.scopeMask(spec.scopes, abi: abi)

        // Resolve every mask before creating anything, so a bad name costs no fd.
        var hostRules: [(rule: LandlockSpec.PathRule, hostPath: String, access: UInt64)] = []
        var inner: [(path: String, access: UInt64)] = []
        for rule in spec.rules {
            let bits = try Landlock.accessBits(rule.access, abi: abi)
            guard bits & ~handledFS == 0 else {
                throw KernelError(operation: "landlock_add_rule", subject: rule.path,
                                 detail: "grants \(Landlock.rightNames(bits & ~handledFS).joined(separator: " ")), "
                                     + "which the ruleset does not handle")
            }
            if bits == 0 { continue }
            if let hostPath = rule.hostPath {
                hostRules.append((rule, hostPath, bits))
            } else {
                inner.append((rule.path, bits))
            }
        }

        let rulesetFD = sbx_fence_landlock_create_ruleset(handledFS, handledNet, scoped, Int32(abi))
        guard rulesetFD >= 0 else {
            let err = errno
            throw KernelError(operation: "landlock_create_ruleset", subject: "ABI \(abi)", errno: err,
                             detail: "handled_access_fs=0x\(String(handledFS, radix: 16)) "
                                 + "handled_access_net=0x\(String(handledNet, radix: 16)) scoped=0x\(String(scoped, radix: 16))")
        }
        do {
            for (rule, hostPath, bits) in hostRules {
                try Self.addPathRule(rulesetFD, hostPath: hostPath, hostFD: rule.hostFD, insidePath: rule.path, access: bits)
            }
            for port in spec.connectTCP ?? [] {
                try Self.addPortRule(rulesetFD, port: port, access: Landlock.netConnectTCP, key: "connect_tcp")
            }
            for port in spec.bindTCP ?? [] {
                try Self.addPortRule(rulesetFD, port: port, access: Landlock.netBindTCP, key: "bind_tcp")
            }
        } catch {
            Glibc.close(rulesetFD)
            throw error
        }

        self.owner = OwnedFD(rulesetFD)
        self.abi = abi
        self.handledAccessFS = handledFS
        self.handledAccessNet = handledNet
        self.scoped = scoped
        self.innerRules = inner
    }

    private static func addPathRule(_ rulesetFD: Int32, hostPath: String, hostFD: Int32?, insidePath: String,
                                    access: UInt64) throws {
        let purpose = hostPath == insidePath ? "Landlock rule" : "Landlock rule for \(insidePath)"
        let pathFD = hostFD ?? sbx_fence_open_path(hostPath)
        guard pathFD >= 0 else {
            throw KernelError(operation: "open", subject: hostPath, errno: errno, detail: purpose)
        }
        defer { if hostFD == nil { Glibc.close(pathFD) } }
        var st = stat()
        guard fstat(pathFD, &st) == 0 else {
            throw KernelError(operation: "fstat", subject: hostPath, errno: errno, detail: purpose)
        }
        // Directory rights on a file are EINVAL (landlock_add_rule(2)); the file keeps
        // the ones that apply to it, as the kernel's own sample sandboxer does.
        var bits = access
        if st.st_mode & S_IFMT != S_IFDIR { bits &= Landlock.fileAccessMask }
        if bits == 0 { return }
        guard sbx_fence_landlock_add_path_rule(rulesetFD, pathFD, bits) == 0 else {
            throw KernelError(operation: "landlock_add_rule", subject: hostPath, errno: errno,
                             detail: "\(purpose) granting \(Landlock.rightNames(bits).joined(separator: " "))")
        }
    }

    private static func addPortRule(_ rulesetFD: Int32, port: UInt16, access: UInt64, key: String) throws {
        guard sbx_fence_landlock_add_net_rule(rulesetFD, UInt64(port), access) == 0 else {
            throw KernelError(operation: "landlock_add_rule", subject: "\(key) port \(port)", errno: errno)
        }
    }

    /// Closes the ruleset fd; idempotent.
    public func close() { owner.close() }
}
