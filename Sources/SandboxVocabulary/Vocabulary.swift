/// The words a policy, a plan and the kernel layer share, each written once.
///
/// A pure leaf: no kernel calls, no Foundation, no dependencies. `SandboxPolicy`
/// parses policy text into these types, `SandboxPlan` carries them in the plan, and
/// `SandboxKernel` maps them to kernel values, so no layer compares a plan value as
/// a string and no table (Landlock rights, socket families, the run-id rule) exists
/// twice. Every raw value is the spelling the policy and the plan JSON use, so a
/// plan's canonical JSON, and with it its digest, does not depend on this module.

/// `network.mode`.
public enum NetworkMode: String, Sendable, Hashable, CaseIterable, Codable {
    /// No network namespace interface at all (loopback stays down).
    case none
    /// A new network namespace with only `lo`, brought up.
    case loopback
    /// A veth into the host's bridge, filtered by the run's own nft ruleset.
    case egress
}

/// `process.host_uid`: the host uid the command runs as.
public enum HostUID: String, Sendable, Hashable, CaseIterable, Codable {
    /// A uid leased for this run alone, inside a user namespace that maps it to the
    /// policy's `user`; writable binds are idmapped so files keep the invoker's owner.
    case own
    /// The invoker's own host uid (root, for a root invoker), capabilities dropped:
    /// it shares owner permissions and per-user kernel limits with the invoker.
    case invoker
}

/// `landlock.mode` (and any fence that may be enforced, tried, or left off).
public enum FenceMode: String, Sendable, Hashable, CaseIterable, Codable {
    case enforce
    case bestEffort = "best-effort"
    case off
}

/// `seccomp.on_violation`: what a denied syscall does.
public enum ViolationAction: String, Sendable, Hashable, CaseIterable, Codable {
    /// The call fails with EPERM.
    case errno
    /// The supervisor records the call and kills the whole sandbox (SIGSYS).
    case kill
    /// The call runs; the supervisor counts it in the result.
    case log
    /// The call fails; the supervisor records it (the seccomp user notification).
    case notify
}
