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
    /// File times (`utimensat`, `utimes`, `utime`, `futimesat` with explicit times) on
    /// any file the invoker owns, anywhere on the host: Landlock does not cover them.
    /// Not accepted: explicit times are set by the supervisor, and only on a file
    /// beneath a writable bind (`utimensat`), or refused (the legacy calls).
    case timestamps
    /// An `ro` bind at or beneath an `rw` bind (`ro = ["{cwd}/.git"]` with `rw =
    /// ["{cwd}"]`): Landlock grants the rw bind's rights to everything beneath it and
    /// cannot take them back, so the ro bind stays writable. Not accepted: refused.
    case roWithinRw = "ro_within_rw"

    public static func < (a: NestedGap, b: NestedGap) -> Bool { a.rawValue < b.rawValue }
}

/// An errno a probe met, by number and by the kernel's name for it.
public struct ProbeErrno: Sendable, Hashable {
    public var code: Int32
    public var name: String
    public init(code: Int32, name: String) { self.code = code; self.name = name }
}

/// Why a run's namespaces cannot be made here: what the probe (`HostProbe.namespaceRefusal`)
/// says, and every errno its tries met.
public struct NamespaceRefusal: Sendable, Equatable {
    public var why: String
    public var errnos: [ProbeErrno]
    public init(why: String, errnos: [ProbeErrno]) { self.why = why; self.errnos = errnos }

    /// The errnos that mean "not permitted here", as clone3 and unshare return them
    /// in a container or under user-namespace restrictions: EPERM (no CAP_SYS_ADMIN, a
    /// sysctl, an LSM), EACCES (an LSM), ENOSYS (a seccomp filter answering clone3, as
    /// Docker's default profile does), EINVAL (a filter or an older kernel refusing the
    /// flags). Numbers, not Glibc's names: this module imports no libc.
    public static let notPermitted: [Int32: String] = [1: "EPERM", 13: "EACCES", 38: "ENOSYS", 22: "EINVAL"]

    /// Whether `namespaces-or-nested` may fall back to nested: only when every errno
    /// met means "not permitted here". Any other is a failure of this moment, not of
    /// the environment — and some can be caused from outside the run: ENOSPC is the
    /// per-user namespace counter (user.max_*_namespaces) exhausted, which another
    /// process of the same user (a concurrent run's command among them) can do on
    /// purpose to force the weaker isolation; ENOMEM, EAGAIN (RLIMIT_NPROC), EUSERS
    /// (nesting depth) likewise. Those fail the run (125) instead.
    public var allowsNested: Bool {
        !errnos.isEmpty && errnos.allSatisfy { NamespaceRefusal.notPermitted[$0.code] != nil }
    }

    /// The errnos that forbid the fallback, by name.
    public var blockingErrnos: [String] {
        errnos.filter { NamespaceRefusal.notPermitted[$0.code] == nil }.map(\.name)
    }
}
