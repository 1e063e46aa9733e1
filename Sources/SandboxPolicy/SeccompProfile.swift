/// A seccomp profile in the OCI runtime-spec `linux.seccomp` JSON format — the format
/// Docker, containerd and Podman ship — so their profiles load unchanged. Loading
/// (`SeccompProfile.load`) validates actions, operators and argument indexes; syscall
/// names are kept as written because a profile legitimately lists names of other
/// architectures. Conditions (`includes`/`excludes`) are evaluated by the planner,
/// which knows the architecture, kernel and kept capabilities.
public struct SeccompProfile: Sendable, Equatable {
    /// Absolute path the profile was read from.
    public var source: String
    public var defaultAction: SeccompAction
    public var defaultErrnoRet: UInt32?
    /// `SCMP_ARCH_*` names from `architectures` and `archMap[].architecture`.
    public var architectures: [String]
    public var syscalls: [SeccompRule]
    /// `SECCOMP_FILTER_FLAG_*` names from `flags` (validated, kept as written).
    public var flags: [String]
    /// SHA-256 (hex) of the exact bytes this profile was parsed from; nil when built
    /// in code. A cache of loaded policies keys on it (never on the file read again).
    public var sha256: String? = nil

    public init(source: String, defaultAction: SeccompAction, defaultErrnoRet: UInt32? = nil,
                architectures: [String] = [], syscalls: [SeccompRule] = [], flags: [String] = []) {
        self.source = source; self.defaultAction = defaultAction
        self.defaultErrnoRet = defaultErrnoRet; self.architectures = architectures
        self.syscalls = syscalls; self.flags = flags
    }
}



public struct SeccompArg: Sendable, Hashable, Codable {
    public var index: UInt32       // 0…5
    public var value: UInt64
    public var valueTwo: UInt64
    public var op: SeccompOperator
    public init(index: UInt32, value: UInt64, valueTwo: UInt64 = 0, op: SeccompOperator) {
        self.index = index; self.value = value; self.valueTwo = valueTwo; self.op = op
    }
}

/// Docker's `includes`/`excludes`: a rule applies when every listed condition holds
/// (includes) and none of the listed ones does (excludes).
public struct SeccompCondition: Sendable, Hashable {
    /// Capability names, normalized by the loader to the `CAP_SYS_ADMIN` form.
    public var caps: [String] = []
    /// Architecture names as written (`amd64`, `arm64`, `x86`, …).
    public var arches: [String] = []
    /// "major.minor" or nil.
    public var minKernel: String? = nil
    public init(caps: [String] = [], arches: [String] = [], minKernel: String? = nil) {
        self.caps = caps; self.arches = arches; self.minKernel = minKernel
    }
    public var isEmpty: Bool { caps.isEmpty && arches.isEmpty && minKernel == nil }
}

public struct SeccompRule: Sendable, Hashable {
    public var names: [String]
    public var action: SeccompAction
    public var errnoRet: UInt32?
    public var args: [SeccompArg]
    public var includes: SeccompCondition
    public var excludes: SeccompCondition
    public init(names: [String], action: SeccompAction, errnoRet: UInt32? = nil,
                args: [SeccompArg] = [], includes: SeccompCondition = .init(),
                excludes: SeccompCondition = .init()) {
        self.names = names; self.action = action; self.errnoRet = errnoRet
        self.args = args; self.includes = includes; self.excludes = excludes
    }
}
