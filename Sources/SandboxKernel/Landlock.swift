#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import SandboxVocabulary

/// Landlock, the unprivileged access-control LSM (landlock(7)): the names of its
/// access rights, the ABI the running kernel offers, and (``LandlockRuleset``) the
/// ruleset fd the supervisor prepares before clone.
///
/// The split follows "compile in the parent, apply in the child": the supervisor
/// creates the ruleset and adds every rule it can reach (host paths, ports), the
/// child adds the few rules for paths that exist only inside (``LandlockRuleset/innerRules``)
/// and calls `landlock_restrict_self` after `PR_SET_NO_NEW_PRIVS`.
public enum Landlock {
    /// The highest ABI this code knows (the rights and their ABIs are
    /// ``LandlockAccess``, shared with the planner).
    public static let knownABI = LandlockAccess.knownABI

    /// The rights that make sense on a file that is not a directory (the kernel's
    /// `ACCESS_FILE`): a rule on such a file with any other right fails with EINVAL.
    public static let fileAccessMask = LandlockAccess.mask(LandlockAccess.allCases.filter(\.appliesToFiles))

    /// `LANDLOCK_ACCESS_NET_BIND_TCP` / `LANDLOCK_ACCESS_NET_CONNECT_TCP` (ABI 4).
    public static let netBindTCP: UInt64 = 1 << 0
    public static let netConnectTCP: UInt64 = 1 << 1

    /// The highest Landlock ABI the running kernel supports, from
    /// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`; 0 when
    /// Landlock is not built in (ENOSYS) or disabled at boot (EOPNOTSUPP).
    public static func probeABI() -> Int {
        let abi = sbx_fence_landlock_abi()
        return abi > 0 ? Int(abi) : 0
    }

    /// The `handled_access_fs` / `allowed_access` mask for `rights` at `abi`. A
    /// right newer than `abi` is an error naming it: the kernel would refuse the
    /// whole ruleset with a bare EINVAL.
    public static func accessBits(_ rights: [LandlockAccess], abi: Int) throws -> UInt64 {
        if let newer = rights.first(where: { $0.abi > abi }) {
            throw KernelError(operation: "landlock", subject: "access right '\(newer.rawValue)'",
                             detail: "needs Landlock ABI \(newer.abi), the ruleset is for ABI \(abi)")
        }
        return LandlockAccess.mask(rights)
    }

    /// The names of the rights in `bits` (for messages).
    static func rightNames(_ bits: UInt64) -> [String] { LandlockAccess.rights(in: bits).map(\.rawValue) }

    /// The `scoped` mask for `scopes` (ABI 6).
    public static func scopeMask(_ scopes: [LandlockScope], abi: Int) throws -> UInt64 {
        if let newer = scopes.first(where: { $0.abi > abi }) {
            throw KernelError(operation: "landlock", subject: "scope '\(newer.rawValue)'",
                             detail: "needs Landlock ABI \(newer.abi), the ruleset is for ABI \(abi)")
        }
        return scopes.reduce(0) { $0 | $1.bit }
    }
}

/// What a ruleset is built from: the Landlock part of a run plan
/// (`SandboxPlan.LandlockPlan`) in the shared vocabulary's types, so this module
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
        /// Rights granted beneath it.
        public var access: [LandlockAccess]
        public init(path: String, hostPath: String?, hostFD: Int32? = nil, access: [LandlockAccess]) {
            self.path = path; self.hostPath = hostPath; self.hostFD = hostFD; self.access = access
        }
    }

    /// The ABI the ruleset is built for (1…``Landlock/knownABI``, at most the kernel's).
    public var abi: Int
    public var handledAccessFS: [LandlockAccess]
    public var rules: [PathRule]
    /// nil: TCP connect not handled. A list, even empty: only these ports (ABI 4).
    public var connectTCP: [UInt16]?
    public var bindTCP: [UInt16]?
    /// `abstract-unix-socket`, `signal` (ABI 6).
    public var scopes: [LandlockScope]

    public init(abi: Int, handledAccessFS: [LandlockAccess], rules: [PathRule], connectTCP: [UInt16]? = nil,
                bindTCP: [UInt16]? = nil, scopes: [LandlockScope] = []) {
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
                                 detail: "grants \(Landlock.rightNames(bits & ~handledFS).joinedText(separator: " ")), "
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
                             detail: "\(purpose) granting \(Landlock.rightNames(bits).joinedText(separator: " "))")
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
