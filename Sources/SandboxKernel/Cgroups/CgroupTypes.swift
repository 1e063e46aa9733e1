import Glibc
import SandboxVocabulary

/// The resource limits of one run, as the plan resolved them. `nil` means "no limit".
public struct CgroupLimits: Sendable, Equatable {
    /// Memory hard limit in bytes (v2 `memory.max`, v1 `memory.limit_in_bytes`).
    public var memoryBytes: UInt64?
    /// Swap the run may use on top of `memoryBytes`. nil with `memoryBytes` set means
    /// swap 0: a memory limit that swap could stretch is not a limit.
    public var swapBytes: UInt64?
    /// Maximum number of tasks (v2/v1 `pids.max`).
    public var pids: UInt64?
    /// CPU bandwidth: `cpuQuotaUs` of CPU time per `cpuPeriodUs` (default 100 ms).
    public var cpuQuotaUs: UInt64?
    public var cpuPeriodUs: UInt64?
    /// Proportional io weight on the v2 scale 1…10000 (default 100).
    public var ioWeight: UInt64?

    public init(memoryBytes: UInt64? = nil, swapBytes: UInt64? = nil, pids: UInt64? = nil,
                cpuQuotaUs: UInt64? = nil, cpuPeriodUs: UInt64? = nil, ioWeight: UInt64? = nil) {
        self.memoryBytes = memoryBytes; self.swapBytes = swapBytes; self.pids = pids
        self.cpuQuotaUs = cpuQuotaUs; self.cpuPeriodUs = cpuPeriodUs; self.ioWeight = ioWeight
    }

    /// No limit at all. A run cgroup is still worth creating then: it is the unit of
    /// teardown and the source of the run's statistics.
    public var isEmpty: Bool {
        memoryBytes == nil && swapBytes == nil && pids == nil && cpuQuotaUs == nil && ioWeight == nil
    }

    /// The CFS period used when the plan gives none: the kernel's own default.
    public static let defaultCPUPeriodUs: UInt64 = 100_000

    /// The limit names (as in `[resources] best_effort`) this set asks for, in a fixed
    /// order. Swap counts as asked whenever memory is limited (swap 0 is a limit).
    var requested: [String] {
        var names: [String] = []
        if memoryBytes != nil { names.append("memory") }
        if memoryBytes != nil || swapBytes != nil { names.append("swap") }
        if pids != nil { names.append("pids") }
        if cpuQuotaUs != nil { names.append("cpu") }
        if ioWeight != nil { names.append("io") }
        return names
    }
}

/// A limit this host cannot apply for this invoker (`RunCgroup.check`): its name
/// (`memory`, `swap`, `pids`, `cpu`, `io`; nil when no cgroup at all can be made)
/// and why.
public struct CgroupRefusal: Sendable, Equatable {
    public var limit: String?
    public var error: KernelError
}

/// Which cgroup layout the host has mounted.
public enum CgroupMode: Sendable, Equatable {
    /// Pure cgroup v2: every controller lives on one hierarchy at `mountPoint`.
    case unified(mountPoint: String)
    /// cgroup v1 controllers, each mounted on its own hierarchy (controller → mount
    /// point; co-mounted controllers share a mount point), possibly next to a cgroup2
    /// hierarchy that holds no controllers we use (`unified`).
    case hybrid(v1: [String: String], unified: String?)
    /// No cgroup filesystem we can use.
    case unavailable
}

/// What the run's own cgroup files say about how it went. Read, never guessed from
/// the exit status.
public struct CgroupStats: Codable, Sendable, Equatable {
    /// The kernel OOM killer killed at least one process of the run.
    public var oomKilled: Bool
    public var oomKills: UInt64
    /// A fork/clone failed because `pids.max` was reached.
    public var pidsLimitHit: Bool
    /// Highest memory use (v2 `memory.peak`, v1 `memory.max_usage_in_bytes`).
    public var memoryPeakBytes: UInt64?
    public var cpuUserUs: UInt64?
    public var cpuSystemUs: UInt64?
    /// Time the run was held back by its CPU quota.
    public var throttledUs: UInt64?

    public init(oomKilled: Bool = false, oomKills: UInt64 = 0, pidsLimitHit: Bool = false,
                memoryPeakBytes: UInt64? = nil, cpuUserUs: UInt64? = nil,
                cpuSystemUs: UInt64? = nil, throttledUs: UInt64? = nil) {
        self.oomKilled = oomKilled; self.oomKills = oomKills; self.pidsLimitHit = pidsLimitHit
        self.memoryPeakBytes = memoryPeakBytes; self.cpuUserUs = cpuUserUs
        self.cpuSystemUs = cpuSystemUs; self.throttledUs = throttledUs
    }
}

/// The cgroup facility fails with the kernel layer's one error, `KernelError`: the
/// operation (`write`, `mkdir`, `rmdir`, `kill`, `create run cgroup`, …), the subject
/// (the cgroup file or directory), the errno when a syscall gave one, and the data
/// written (as youki's `failed to write {data} to {path}: {err}`). Failures without an
/// errno — a limit this host cannot apply, a kill that timed out, an invalid run id —
/// have errno nil and say why, and what to do, in `detail`.
extension KernelError {
    /// A syscall on a cgroup file or directory failed. `data`: the bytes written.
    static func cgroup(_ operation: String, _ path: String, data: String? = nil, errno: Int32,
                       detail: String? = nil) -> KernelError {
        KernelError(operation: operation, subject: path, errno: Errno(errno),
                    detail: [data.map(writing), detail].compactMap { $0 }.joinedText(separator: "; "))
    }

    /// A limit (`memory`, `swap`, `pids`, `cpu`, `io`) was asked for but this host
    /// cannot apply it; `path` is the file or hierarchy at fault ("" when none).
    static func missingLimit(_ limit: String, path: String, why: String) -> KernelError {
        KernelError(operation: "create run cgroup", subject: path,
                    detail: "\(limit) limit cannot be applied: \(why); mark it best-effort in [resources] to run without it")
    }

    /// `writing "…"`, with newlines, quotes and backslashes escaped.
    static func writing(_ data: String) -> String {
        var out = ""
        for c in data.unicodeScalars {
            switch c {
            case "\n": out += "\\n"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out.unicodeScalars.append(c)
            }
        }
        return "writing \"\(out)\""
    }
}
