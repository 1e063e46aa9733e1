/// `process.isolation`: how a run is isolated from the host.
public enum Isolation: String, Sendable, Hashable, CaseIterable, Codable {
    /// New user, mount, PID, IPC, UTS, cgroup and network namespaces and a private
    /// root (the default). Where they cannot be made, the run fails (125).
    case namespaces
    /// No namespaces: the command runs in the invoker's own ones, fenced by what the
    /// kernel still allows an unprivileged process (Landlock on host paths, seccomp,
    /// capabilities, no_new_privs, rlimits, a delegated cgroup). For an unprivileged
    /// container (Docker's default), or where user namespaces are restricted.
    case nested
    /// Namespaces where they can be made, else nested; the plan says which and why.
    case namespacesOrNested = "namespaces-or-nested"
}

/// What a nested run cannot fence the way a namespaced one does, and which a policy
/// may accept losing (`process.nested_without`). Without that acceptance each is
/// either enforced another way or refuses the run (Docs/policy-reference.md).
public enum NestedGap: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    /// `filesystem.protect`: a name made read-only inside an rw path. Landlock grants
    /// rights beneath a path and cannot take them back below it. Not accepted: refused.
    case protect
    /// `filesystem.mask` (and the unix sockets masked under ro binds) beneath a path
    /// the command may read: Landlock cannot hide it. Not accepted: refused.
    case mask
    /// Unix sockets by path anywhere on the host (no private root hides them;
    /// Landlock does not mediate `connect`). Not accepted: `socket(AF_UNIX)` is refused
    /// by the seccomp filter.
    case unixSockets = "unix_sockets"
    /// System V IPC and POSIX message queues of the invoker's IPC namespace. Not
    /// accepted: those calls are refused by the seccomp filter.
    case ipc
    /// Signals to processes outside the sandbox, and abstract unix sockets outside
    /// it: Landlock's scopes (ABI 6) fence them. On an older kernel, not accepted:
    /// refused.
    case scopes

    public static func < (a: NestedGap, b: NestedGap) -> Bool { a.rawValue < b.rawValue }
}
