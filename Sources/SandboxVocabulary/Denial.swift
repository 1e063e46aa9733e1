/// What fence refused something, in a run's denial account (`RunResult.denials`,
/// the audit log's `denial` records). The raw values are the JSON spelling: stable.
public enum DenialKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// A system call the seccomp filter refused (any mode: errno, notify, kill).
    case syscall
    /// socket(2) for an address family outside `seccomp.socket_families` (EAFNOSUPPORT).
    case socketFamily = "socket-family"
    /// A mode with S_ISUID or S_ISGID (chmod, fchmodat, open with O_CREAT, mknod…).
    case setuidBit = "setuid-bit"
    /// A signal to a process outside the sandbox's Landlock domain (PID 1 included).
    case signal
    /// A connect to an abstract unix socket outside the sandbox (Landlock scope).
    case abstractSocket = "abstract-socket"
    /// A file access the Landlock ruleset refused.
    case filesystem
    /// Network traffic the policy does not allow: a destination the egress firewall
    /// dropped, or an internet socket in network mode `none`.
    case egress
    /// A question the DNS stub refused: a name no host rule allows (NXDOMAIN, never
    /// asked upstream), a record type it does not answer, an answer in
    /// `deny_resolved`.
    case dns
}
