/// An OCI / Docker seccomp action (`SCMP_ACT_*`, libseccomp's names).
/// `SCMP_ACT_KILL` is KILL_THREAD, as in libseccomp and runc.
public enum SeccompAction: String, Sendable, Hashable, CaseIterable, Codable {
    case kill = "SCMP_ACT_KILL"
    case killProcess = "SCMP_ACT_KILL_PROCESS"
    case killThread = "SCMP_ACT_KILL_THREAD"
    case trap = "SCMP_ACT_TRAP"
    case errno = "SCMP_ACT_ERRNO"
    case trace = "SCMP_ACT_TRACE"
    case allow = "SCMP_ACT_ALLOW"
    case log = "SCMP_ACT_LOG"
    case notify = "SCMP_ACT_NOTIFY"
}

/// An argument comparison (`SCMP_CMP_*`).
public enum SeccompOperator: String, Sendable, Hashable, CaseIterable, Codable {
    case notEqual = "SCMP_CMP_NE"
    case lessThan = "SCMP_CMP_LT"
    case lessOrEqual = "SCMP_CMP_LE"
    case equal = "SCMP_CMP_EQ"
    case greaterOrEqual = "SCMP_CMP_GE"
    case greaterThan = "SCMP_CMP_GT"
    case maskedEqual = "SCMP_CMP_MASKED_EQ"
}

/// A socket address family `seccomp.socket_families` may allow.
public enum SocketFamily: String, Sendable, Hashable, CaseIterable, Comparable, Codable {
    case unix, inet, inet6, netlink, packet, vsock, bluetooth, can, alg, xdp
    public static func < (a: SocketFamily, b: SocketFamily) -> Bool { a.rawValue < b.rawValue }
    /// `AF_*` value (the same on every Linux architecture).
    public var number: UInt32 {
        switch self {
        case .unix: 1; case .inet: 2; case .inet6: 10; case .netlink: 16; case .packet: 17
        case .vsock: 40; case .bluetooth: 31; case .can: 29; case .alg: 38; case .xdp: 44
        }
    }
}
