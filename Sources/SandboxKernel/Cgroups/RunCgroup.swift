import Glibc
import SandboxVocabulary
import Synchronization

/// The cgroup(s) of one run: created with every limit written before the child
/// exists, joined by the child without the supervisor ever naming a PID, read for
/// the run's statistics, and torn down (every process killed, directories removed).
/// The layout's work is done by a backend (`CgroupV2`, `CgroupV1`: see
/// `CgroupBackend`); this type adds what both share: the run id rule, the child's
/// fds, the limits not applied, and one lock around teardown.
///
/// Layout (`sandbox` is `host.parentName`; it is created once, shared by concurrent
/// runs and never removed — it is ours):
/// * v2: `<base>/sandbox/<run-id>`, where base is the mount point for root and the
///   top of the invoker's writable (delegated) subtree otherwise. The child is born
///   inside with `clone3(CLONE_INTO_CGROUP)` on `cloneIntoFD`.
/// * v1: `<controller mount>/sandbox/<run-id>` for freezer and cpuacct always, and
///   memory, pids, cpu, blkio when their limit is applied. The child writes "0" to
///   each of `joinFDs` (freezer first) before it execs.
///
/// Decisions worth knowing:
/// * Host cgroups we did not create are never written. In particular the root's (or
///   the delegation's) `cgroup.subtree_control` is left alone: a controller it does
///   not enable is reported missing (by `CgroupHost.summary`, with the `echo +x`
///   that would enable it) and its limit fails unless best-effort. We only enable
///   controllers in our own parent's `cgroup.subtree_control`.
/// * The parents sit at the top of each hierarchy, so a run leaves the invoker's own
///   cgroup in every hierarchy it joins (and any limit the invoker is under there).
///   v1 therefore joins a limiting controller only when its limit is applied; v2 has
///   a single hierarchy, so a v2 run is always outside the invoker's cgroup.
/// * Swap: nil with a memory limit means swap 0 (v2 `memory.swap.max` 0; v1
///   `memory.memsw.limit_in_bytes` = memory). Without swap accounting that is a
///   missing `swap` limit (error unless best-effort). `memory.swappiness` is not
///   written: it tunes reclaim, it limits nothing.
/// * A run id is `[a-z0-9-]{1,64}` (the plan's hex id), never a PID.
public final class RunCgroup: Sendable {
    public let runId: String
    public let host: CgroupHost
    /// Limit names (`memory`, `swap`, `pids`, `cpu`, `io`) that were asked for, marked
    /// best-effort, and could not be applied on this host.
    public let notApplied: [String]
    /// Each of `notApplied` said for a person: `resources.memory: best-effort limit
    /// not applied: <the host's reason>` — what a run result lists.
    public let notAppliedDescriptions: [String]
    /// The layout's backend; nil for an inert RunCgroup (no usable cgroups, nothing
    /// required).
    let backend: (any CgroupBackend)?

    /// The run's directories, one per hierarchy (v1: freezer first). Empty if the host
    /// has no usable cgroups and nothing was required.
    public var directories: [String] { backend?.directories ?? [] }

    /// v2: `O_RDONLY|O_DIRECTORY|O_CLOEXEC` fd of the run cgroup, for `clone3`'s
    /// `CLONE_INTO_CGROUP`; -1 on v1 or once closed.
    public var cloneIntoFD: Int32 { cloneInto.raw }
    /// v1: `O_WRONLY|O_CLOEXEC` fds of each hierarchy's `<run>/tasks`, freezer first
    /// (`tasks`, not `cgroup.procs`: see ``CgroupV1``). The child, single-threaded,
    /// writes "0" (itself) into each, in this order, before exec —
    /// the kernel checks the permission against the opener's credentials (this root
    /// supervisor), so the child may do it whatever it becomes. Empty on v2.
    public var joinFDs: [Int32] { procs.map(\.raw).filter { $0 >= 0 } }

    /// The child's descriptors, owned here (closed once: `closeChildFDs`, `remove`
    /// or when the last reference goes).
    private let cloneInto: OwnedFD
    private let procs: [OwnedFD]

    /// The one lock of the facility: kill and remove run one at a time, so two
    /// threads tearing the same run down (an undo entry and a harness cancelling)
    /// never interleave a freeze with a thaw or an rmdir with a kill. Held for at
    /// most `killTimeoutUs` plus the rmdir retries. Everything else here is
    /// immutable or an `OwnedFD`.
    private let teardown = Mutex(())

    init(runId: String, host: CgroupHost, backend: (any CgroupBackend)?, notApplied: [String],
         reasons: [String: String] = [:], cloneInto: OwnedFD = OwnedFD(-1), procs: [OwnedFD] = []) {
        self.runId = runId; self.host = host; self.backend = backend; self.notApplied = notApplied
        self.notAppliedDescriptions = notApplied.map { name in
            "resources.\(name): best-effort limit not applied" + (reasons[name].map { ": \($0)" } ?? "")
        }
        self.cloneInto = cloneInto; self.procs = procs
    }

    // MARK: - create

    /// Creates the run's cgroup(s) and writes every limit BEFORE the child exists.
    ///
    /// A limit whose controller (or control file) is missing throws, unless its name
    /// (`memory`, `swap`, `pids`, `cpu`, `io`) is in `bestEffort`; then it is listed in
    /// `notApplied`. Any failure after the first directory was made removes what was
    /// made (never our shared `sandbox` parents) before throwing.
    ///
    /// On a host without usable cgroups, or for an invoker who may not create them,
    /// a run whose every requested limit is best-effort (or that asks for none) gets an
    /// inert RunCgroup: no directories, no fds, empty stats.
    public static func create(runId: String, limits: CgroupLimits, bestEffort: Set<String>,
                              host: CgroupHost) throws -> RunCgroup {
        try validate(runId: runId)
        do {
            return try createOrThrowFirst(runId: runId, limits: limits, bestEffort: bestEffort, host: host)
        } catch let first as KernelError where first.errno == nil && first.operation == "create run cgroup" {
            // A limit this host cannot apply: name every such limit in one message,
            // not one per attempt (a user would otherwise edit the policy four times).
            throw combined(first, refused: check(limits: limits, bestEffort: bestEffort, host: host).refused)
        }
    }

    /// One error naming every refused limit (`first` when it is the only one or the
    /// check finds nothing more), with the advice said once.
    static func combined(_ first: KernelError, refused: [CgroupRefusal]) -> KernelError {
        let limits = refused.compactMap(\.limit)
        guard limits.count > 1, limits.count == refused.count else { return first }
        var reasons: [String] = []
        for r in refused {
            let text = r.error.detail ?? ""
            let why = text.firstRange(of: "; mark it best-effort").map { String(text[..<$0.lowerBound]) } ?? text
            let reason = why.firstRange(of: " limit cannot be applied: ").map { String(why[$0.upperBound...]) } ?? why
            reasons.append(reason)
        }
        let shared = Set(reasons).count == 1
        let listed = shared ? limits.joinedText(separator: ", ") + " limits cannot be applied: " + reasons[0]
            : zip(limits, reasons).map { "\($0) (\($1))" }.joinedText(separator: ", ") + ": these limits cannot be applied"
        let names = limits.map { "\"\($0)\"" }.joinedText(separator: ", ")
        return KernelError(operation: first.operation, subject: first.subject,
                           detail: "\(listed); mark them best-effort in [resources] (best_effort = [\(names)]) to run without them, or use a policy without them (`sandbox doctor` says which shipped policies run here)")
    }

    private static func createOrThrowFirst(runId: String, limits: CgroupLimits, bestEffort: Set<String>,
                                           host: CgroupHost) throws -> RunCgroup {
        var request = LimitRequest(limits: limits, bestEffort: bestEffort)
        switch host.mode {
        case .unified(let mountPoint) where host.canCreate:
            let (cg, fd) = try CgroupV2.create(runId: runId, host: host, mountPoint: mountPoint, request: &request)
            return RunCgroup(runId: runId, host: host, backend: cg, notApplied: request.notApplied, reasons: request.reasons, cloneInto: fd)
        case .hybrid(let v1, _) where host.canCreate:
            let (cg, fds) = try CgroupV1.create(runId: runId, host: host, mounts: v1, request: &request)
            return RunCgroup(runId: runId, host: host, backend: cg, notApplied: request.notApplied, reasons: request.reasons, procs: fds)
        default:
            try noCgroup(host: host, request: &request)
            return RunCgroup(runId: runId, host: host, backend: nil, notApplied: request.notApplied, reasons: request.reasons)
        }
    }

    /// Without a cgroup this user may create, every limit is missing.
    private static func noCgroup(host: CgroupHost, request: inout LimitRequest) throws {
        let why = host.mode == .unavailable ? "this host has no usable cgroup hierarchy"
            : "this user cannot create cgroups here (see `sandbox doctor`)"
        for name in request.limits.requested { try request.missing(name, path: "", detail: why) }
    }

    /// What `create` would do with these limits on this host, decided without making
    /// anything, by the same checks: the limits it would skip (best-effort) and
    /// every one it would refuse (`create` stops at the first). For `sandbox doctor`
    /// and a caller that wants all of them in one message. Swap accounting on v2 is
    /// seen only in a run's own directory, so a missing one is found by `create` alone.
    public static func check(limits: CgroupLimits, bestEffort: Set<String>, host: CgroupHost)
        -> (notApplied: [String], refused: [CgroupRefusal]) {
        var request = LimitRequest(limits: limits, bestEffort: bestEffort, collect: true)
        var fatal: [CgroupRefusal] = []
        do {
            switch host.mode {
            case .unified(let mountPoint) where host.canCreate:
                try CgroupV2.check(host: host, mountPoint: mountPoint, request: &request)
            case .hybrid(let v1, _) where host.canCreate:
                try CgroupV1.check(host: host, mounts: v1, request: &request)
            default:
                try noCgroup(host: host, request: &request)
            }
        } catch let e as KernelError { fatal.append(CgroupRefusal(limit: nil, error: e)) } catch {}
        return (request.notApplied, request.refused + fatal)
    }

    /// A run id becomes a directory name: hex from the plan, never a PID. The rule
    /// is ``RunID`` (shared with the planner): it keeps out `/`, `.`, `..` and every
    /// cgroup control file name (they contain dots).
    public static func validate(runId: String) throws {
        if !isValid(runId: runId) { throw KernelError(operation: "check run id", subject: runId, detail: "must match [a-z0-9-]{1,64}") }
    }

    static func isValid(runId: String) -> Bool { RunID.isValid(runId) }

    /// Every directory `create(runId:…, host:)` may make, by controller (`unified` on
    /// v2), whatever the limits: a superset of `controllerDirectories`, computed
    /// without touching the hierarchy. The executor records it in the run directory
    /// BEFORE `create`, so a supervisor killed at any point of set-up leaves a record
    /// naming every cgroup it may have made (`gc` removes what exists of it).
    public static func plannedDirectories(runId: String, host: CgroupHost) -> [String: String] {
        guard isValid(runId: runId) else { return [:] }
        switch host.mode {
        case .unavailable: return [:]
        case .unified(let mountPoint): return ["unified": CgroupV2.directory(runId: runId, host: host, mountPoint: mountPoint)]
        case .hybrid(let v1, _): return CgroupV1.plannedDirectories(runId: runId, host: host, mounts: v1)
        }
    }

    // MARK: - child fds

    /// After clone: the supervisor closes its copies of the child's fds. Idempotent.
    public func closeChildFDs() {
        cloneInto.close()
        procs.closeAll()
    }

    // MARK: - stats

    /// The run's statistics, read from its own cgroup files; fields whose file is
    /// missing are nil (or false/0). Read before `remove()`.
    public func stats() -> CgroupStats {
        backend?.stats() ?? CgroupStats()
    }

    // MARK: - kill

    /// How long `killAll` waits for the run's processes to be gone.
    public static let killTimeoutUs: UInt64 = 5_000_000

    /// Kills every process of the run and waits (bounded) until none is left.
    ///
    /// v2: writes "1" to `cgroup.kill` (Linux 5.14), which also catches processes
    /// forked while the kill is under way. v1 (and v2 without cgroup.kill): freezes
    /// the run, sends SIGKILL through a pidfd to each listed pid, then thaws (see
    /// `CgroupBackend.freezeKillThaw`). Never kill(2).
    /// Returns what went wrong, if anything; teardown goes on regardless.
    @discardableResult
    public func killAll() -> [KernelError] {
        teardown.withLock { _ in killLocked() }
    }

    private func killLocked() -> [KernelError] {
        backend?.killAll(deadline: Clock.monotonicUs() + Self.killTimeoutUs) ?? []
    }

    // MARK: - remove

    /// Tears the run down: closes the child fds; removes the directories at once if
    /// no process is left in them, else `killAll`, then removes each directory
    /// (short bounded retry on EBUSY; ENOENT counts as done). Idempotent; never
    /// aborts half-way. Returns what could not be done.
    @discardableResult
    public func remove() -> [KernelError] {
        teardown.withLock { _ in
            closeChildFDs()
            guard let backend, !backend.removeIfEmpty() else { return [] }
            var errors = killLocked()
            errors += backend.removeDirectories()
            return errors
        }
    }

    /// Of ``remove()``'s errors (or ``removeLeftovers``'), those that left a directory
    /// in place: a process, or a cgroup, is still in it. The others (a freeze or a
    /// kill that failed) leave nothing behind once these are none.
    public static func directoriesLeft(_ errors: [KernelError]) -> [KernelError] {
        errors.filter { $0.operation == CgroupFS.rmdirOperation }
    }

    /// Where each controller's directory of this run is: what the executor records in
    /// the run directory so `gc` can remove exactly these (v1 runs may be nested in an
    /// invoker's cgroup that gc, running elsewhere, cannot derive).
    public var controllerDirectories: [String: String] {
        backend?.controllerDirectories ?? [:]
    }

    /// `gc` for a run whose directories were recorded (`controllerDirectories`). Each
    /// must be a cgroup directory named for `runId` (`…/<run-id>` or `…-<run-id>`)
    /// under /sys/fs/cgroup; anything else is refused.
    @discardableResult
    public static func removeLeftovers(runId: String, directories: [String: String], host: CgroupHost) -> [KernelError] {
        do { try validate(runId: runId) } catch let e as KernelError { return [e] } catch { return [] }
        for dir in directories.values {
            let last = dir.split(separator: "/").last.map(String.init) ?? ""
            guard dir.hasPrefix("/sys/fs/cgroup/"), !dir.contains("/../"), last == runId || last.hasSuffix("-" + runId) else {
                return [KernelError(operation: "remove recorded cgroup", subject: dir,
                                    detail: "not a run cgroup of \(runId)")]
            }
        }
        // Empty cgroups made inside the run's (by a command allowed to, or by the host)
        // would keep its directories busy for good; ones holding a process stay, and
        // so does the run.
        for dir in Set(directories.values) { CgroupFS.removeEmptyDescendants(of: dir) }
        let backend: any CgroupBackend
        if let unified = directories["unified"], directories.count == 1 { backend = CgroupV2(dir: unified) }
        else { backend = CgroupV1(dirs: directories, directories: Array(Set(directories.values)).sorted()) }
        return RunCgroup(runId: runId, host: host, backend: backend, notApplied: []).remove()
    }

    /// For `sandbox gc`: the same teardown by name, for a stale run directory without a
    /// `cgroups` record (only call it once the run's lock is known to be free). Looks
    /// in every place a run of this invoker can have a cgroup: nested in the invoker's
    /// own v1 cgroups (`<invoker>/<parentName>-<run-id>`, where the executor puts
    /// them) and at the top of each hierarchy (`<mount>/<parentName>/<run-id>`, v1 or
    /// v2). Only directories named for `runId` are touched.
    @discardableResult
    public static func removeLeftovers(runId: String, host: CgroupHost) -> [KernelError] {
        do { try validate(runId: runId) } catch let e as KernelError { return [e] } catch { return [] }
        var errors: [KernelError] = []
        var nestedHost = host
        nestedHost.nestUnderInvoker = true
        let nested = plannedDirectories(runId: runId, host: nestedHost)
        let top = attach(runId: runId, host: host)
        if nested != top.controllerDirectories, case .hybrid = host.mode {
            errors += removeLeftovers(runId: runId, directories: nested, host: host)
        }
        errors += top.remove()
        return errors
    }

    /// A RunCgroup for the existing top-of-hierarchy directories of `runId` (none
    /// need exist).
    static func attach(runId: String, host: CgroupHost) -> RunCgroup {
        var top = host
        top.nestUnderInvoker = false
        let backend: (any CgroupBackend)?
        switch host.mode {
        case .unavailable:
            backend = nil
        case .unified(let mountPoint):
            backend = CgroupV2(dir: CgroupV2.directory(runId: runId, host: top, mountPoint: mountPoint))
        case .hybrid(let v1, _):
            var dirs: [String: String] = [:]
            for (c, mount) in v1 { dirs[c] = CgroupV1.directory(controller: c, mount: mount, runId: runId, host: top).dir }
            backend = CgroupV1(dirs: dirs, directories: Array(Set(dirs.values)).sorted())
        }
        return RunCgroup(runId: runId, host: host, backend: backend, notApplied: [])
    }

    /// Run ids that have a cgroup directory under our parent in any hierarchy. For
    /// tests and diagnostics: `sandbox gc` never removes a cgroup by this listing (a
    /// run being created right now has one before it could be seen as live).
    public static func existingRunIds(host: CgroupHost) -> [String] {
        var parents: [String] = []
        switch host.mode {
        case .unavailable: return []
        case .unified(let mountPoint): parents = [CgroupV2.parent(host: host, mountPoint: mountPoint)]
        case .hybrid(let v1, _): parents = Array(Set(v1.values)).map { $0 + "/" + host.parentName }
        }
        var ids = Set<String>()
        for p in parents {
            for name in CgroupFS.subdirectories(p) where isValid(runId: name) { ids.insert(name) }
        }
        return ids.sorted()
    }
}
