import CSandbox
import Glibc

/// The cgroup(s) of one run: created with every limit written before the child
/// exists, joined by the child without the supervisor ever naming a PID, read for
/// the run's statistics, and torn down (every process killed, directories removed).
/// One backend per layout behind one type, in the manner of youki's CgroupManager.
///
/// Layout (`sandbox` is `host.parentName`; it is created once, shared by concurrent
/// runs and never removed — it is ours):
/// * v2: `<base>/sandbox/<run-id>`, where base is the mount point for root and the
///   top of the invoker's writable (delegated) subtree otherwise. The child is born
///   inside with `clone3(CLONE_INTO_CGROUP)` on `cloneIntoFD`.
/// * v1: `<controller mount>/sandbox/<run-id>` for freezer and cpuacct always, and
///   memory, pids, cpu, blkio when their limit is applied. The child writes "0" to
///   each of `procsFDs` (freezer first) before it execs.
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
public final class RunCgroup: @unchecked Sendable {
    public let runId: String
    public let host: CgroupHost
    /// Limit names (`memory`, `swap`, `pids`, `cpu`, `io`) that were asked for, marked
    /// best-effort, and could not be applied on this host.
    public let notApplied: [String]
    /// The run's directories, one per hierarchy (v1: freezer first). Empty if the host
    /// has no usable cgroups and nothing was required.
    public let directories: [String]

    /// v2: `O_RDONLY|O_DIRECTORY|O_CLOEXEC` fd of the run cgroup, for `clone3`'s
    /// `CLONE_INTO_CGROUP`; -1 on v1 or once closed.
    public var cloneIntoFD: Int32 { cloneInto.raw }
    /// v1: `O_WRONLY|O_CLOEXEC` fds of each hierarchy's `<run>/cgroup.procs`, freezer
    /// first. The child writes "0" (itself) into each, in this order, before exec —
    /// the kernel checks the permission against the opener's credentials (this root
    /// supervisor), so the child may do it whatever it becomes. Empty on v2.
    public var procsFDs: [Int32] { procs.map(\.raw).filter { $0 >= 0 } }

    /// The hierarchy a run lives in, with where each controller's files are.
    enum Backend {
        case v2(dir: String)
        /// controller → the run's directory in that controller's hierarchy (co-mounted
        /// controllers share one).
        case v1(dirs: [String: String])
        case none
    }
    let backend: Backend

    /// The child's descriptors, owned here (closed once: `closeChildFDs`, `remove`
    /// or when the last reference goes).
    private let cloneInto: OwnedFD
    private let procs: [OwnedFD]

    /// Takes ownership of `cloneIntoFD` and `procsFDs`.
    init(runId: String, host: CgroupHost, backend: Backend, directories: [String], notApplied: [String],
         cloneIntoFD: Int32, procsFDs: [Int32]) {
        self.runId = runId; self.host = host; self.backend = backend; self.directories = directories
        self.notApplied = notApplied; self.cloneInto = OwnedFD(cloneIntoFD); self.procs = procsFDs.map(OwnedFD.init)
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
        var builder = Builder(runId: runId, limits: limits, bestEffort: bestEffort, host: host)
        do {
            return try builder.build()
        } catch {
            builder.undo()
            throw error
        }
    }

    /// A run id becomes a directory name: hex from the plan, never a PID. The rule
    /// keeps out `/`, `.`, `..` and every cgroup control file name (they contain dots).
    public static func validate(runId: String) throws {
        let ok = !runId.isEmpty && runId.utf8.count <= 64 && runId.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-")
        }
        if !ok { throw CgroupError(kind: .invalidRunId, operation: "validate", path: runId) }
    }

    /// Carries the state of one `create` so a failure can undo exactly what was done.
    private struct Builder {
        let runId: String
        let limits: CgroupLimits
        let bestEffort: Set<String>
        let host: CgroupHost
        var notApplied: [String] = []
        var created: [String] = []      // run directories made so far
        var fds: [Int32] = []           // fds opened so far

        init(runId: String, limits: CgroupLimits, bestEffort: Set<String>, host: CgroupHost) {
            self.runId = runId; self.limits = limits; self.bestEffort = bestEffort; self.host = host
        }

        /// Records that `limit` cannot be applied: fine if best-effort, else the error.
        /// The implicit swap 0 that comes with a memory limit is moot when the memory
        /// limit itself was skipped (best-effort): it is not reported separately.
        mutating func missing(_ limit: String, path: String, detail: String) throws {
            if limit == "swap" && limits.swapBytes == nil && notApplied.contains("memory") { return }
            guard bestEffort.contains(limit) else {
                throw CgroupError(kind: .missingController, operation: "create", path: path, limit: limit, detail: detail)
            }
            if !notApplied.contains(limit) { notApplied.append(limit) }
        }

        func applies(_ limit: String) -> Bool { !notApplied.contains(limit) }

        mutating func undo() {
            for fd in fds { close(fd) }
            fds = []
            for dir in created.reversed() { _ = CgroupFS.rmdirRetrying(dir, attempts: 5) }
            created = []
        }

        mutating func build() throws -> RunCgroup {
            let requested = limits.requested
            guard host.canCreate, host.mode != .unavailable else {
                let why = host.mode == .unavailable ? "this host has no usable cgroup hierarchy"
                    : "this user cannot create cgroups here (see `sandbox doctor`)"
                for name in requested { try missing(name, path: "", detail: why) }
                return RunCgroup(runId: runId, host: host, backend: .none, directories: [], notApplied: notApplied,
                                 cloneIntoFD: -1, procsFDs: [])
            }
            switch host.mode {
            case .unified(let mountPoint): return try buildV2(mountPoint: mountPoint)
            case .hybrid(let v1, _): return try buildV1(v1)
            case .unavailable: fatalError("handled above")
            }
        }

        // MARK: v2

        mutating func buildV2(mountPoint: String) throws -> RunCgroup {
            let base = host.unifiedBase ?? mountPoint
            let parent = base + "/" + host.parentName
            let available = Set(host.controllers)
            let limitController = ["memory": "memory", "swap": "memory", "pids": "pids", "cpu": "cpu", "io": "io"]
            for name in limits.requested where !available.contains(limitController[name]!) {
                try missing(name, path: base + "/cgroup.subtree_control",
                            detail: "the \(limitController[name]!) controller is not enabled for children of \(base)")
            }

            try CgroupFS.mkdirShared(parent)
            // Enable in OUR parent's subtree_control the controllers the limits need,
            // plus memory and pids whenever available: they account (peak memory, OOM
            // kills, pids.max hits) even without a limit, at negligible cost. cpu and io
            // change scheduling, so only when limited. Writing "+x" when x is already
            // enabled is a no-op, so concurrent runs may race here harmlessly.
            var required: Set<String> = []
            if limits.memoryBytes != nil && applies("memory") { required.insert("memory") }
            if limits.swapBytes != nil && applies("swap") { required.insert("memory") }
            if limits.pids != nil && applies("pids") { required.insert("pids") }
            if limits.cpuQuotaUs != nil && applies("cpu") { required.insert("cpu") }
            if limits.ioWeight != nil && applies("io") { required.insert("io") }
            let accounting = Set(["memory", "pids"]).intersection(available)
            let enabled = Set(CgroupFS.trimmed(CgroupFS.read(parent + "/cgroup.subtree_control") ?? "").split(separator: " ").map(String.init))
            for c in Self.v2Order(required.union(accounting)) where !enabled.contains(c) {
                do {
                    try CgroupFS.write(parent + "/cgroup.subtree_control", "+" + c)
                } catch where !required.contains(c) {
                    // Accounting only: the run goes on without those statistics.
                }
            }

            let dir = parent + "/" + runId
            try CgroupFS.mkdirNew(dir)
            created.append(dir)

            if let mem = limits.memoryBytes, applies("memory") {
                try CgroupFS.write(dir + "/memory.max", String(mem))
            }
            if (limits.swapBytes != nil || (limits.memoryBytes != nil && applies("memory"))) && applies("swap") {
                // memory.swap.max exists only with swap accounting (not booted with
                // cgroup.memory=noswap / swapaccount=0).
                if CgroupFS.exists(dir + "/memory.swap.max") {
                    try CgroupFS.write(dir + "/memory.swap.max", String(limits.swapBytes ?? 0))
                } else {
                    try missing("swap", path: dir + "/memory.swap.max", detail: "swap accounting is off on this kernel")
                }
            }
            if let pids = limits.pids, applies("pids") {
                try CgroupFS.write(dir + "/pids.max", String(pids))
            }
            if let quota = limits.cpuQuotaUs, applies("cpu") {
                try CgroupFS.write(dir + "/cpu.max", "\(quota) \(limits.cpuPeriodUs ?? CgroupLimits.defaultCPUPeriodUs)")
            }
            if let weight = limits.ioWeight, applies("io") {
                // io.weight comes with blk-iocost; with BFQ only io.bfq.weight (1…1000).
                if CgroupFS.exists(dir + "/io.weight") {
                    try CgroupFS.write(dir + "/io.weight", "default \(min(max(weight, 1), 10_000))")
                } else if CgroupFS.exists(dir + "/io.bfq.weight") {
                    try CgroupFS.write(dir + "/io.bfq.weight", "default \(min(max(weight, 1), 1000))")
                } else {
                    try missing("io", path: dir + "/io.weight", detail: "neither io.weight (iocost) nor io.bfq.weight (BFQ) exists")
                }
            }

            let fd = try CgroupFS.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            fds.append(fd)
            let result = RunCgroup(runId: runId, host: host, backend: .v2(dir: dir), directories: [dir],
                                   notApplied: notApplied, cloneIntoFD: fd, procsFDs: [])
            fds = []; created = []
            return result
        }

        static func v2Order(_ set: Set<String>) -> [String] {
            CgroupHost.v2LimitControllers.filter(set.contains)
        }

        // MARK: v1

        mutating func buildV1(_ v1: [String: String]) throws -> RunCgroup {
            // Check every limit before the first mkdir, so most refusals leave nothing.
            if limits.memoryBytes != nil && v1["memory"] == nil {
                try missing("memory", path: "", detail: "no v1 memory hierarchy is mounted")
            }
            if limits.memoryBytes != nil || limits.swapBytes != nil {
                if v1["memory"] == nil {
                    try missing("swap", path: "", detail: "no v1 memory hierarchy is mounted")
                } else if !host.v1SwapLimit {
                    try missing("swap", path: v1["memory"]! + "/memory.memsw.limit_in_bytes",
                                detail: "swap accounting is off (boot with swapaccount=1)")
                } else if limits.memoryBytes == nil || notApplied.contains("memory") {
                    // v1 limits memory+swap together; swap alone has no file.
                    try missing("swap", path: v1["memory"]! + "/memory.memsw.limit_in_bytes",
                                detail: "cgroup v1 can limit swap only together with memory")
                }
            }
            if limits.pids != nil && v1["pids"] == nil {
                try missing("pids", path: "", detail: "no v1 pids hierarchy is mounted")
            }
            if limits.cpuQuotaUs != nil && v1["cpu"] == nil {
                try missing("cpu", path: "", detail: "no v1 cpu hierarchy is mounted")
            }
            if limits.ioWeight != nil && host.v1BlkioWeightFile == nil {
                try missing("io", path: v1["blkio"].map { $0 + "/blkio.weight" } ?? "",
                            detail: v1["blkio"] == nil ? "no v1 blkio hierarchy is mounted"
                                : "blkio has neither blkio.weight (CFQ, removed in Linux 5.0) nor blkio.bfq.weight (BFQ not in use)")
            }
            guard v1["freezer"] != nil else {
                throw CgroupError(kind: .notPermitted, operation: "create", path: "",
                                  detail: "no v1 freezer hierarchy: the run's processes could not be killed safely")
            }

            // Which hierarchies get a directory. Our parents sit at the top of each
            // hierarchy, so joining one moves the run OUT of the invoker's cgroup in
            // that hierarchy (and out of any limit the invoker is under there). So a
            // limiting controller gets a directory only when its limit is applied:
            // memory, pids, cpu, blkio. freezer (teardown) and cpuacct (CPU time) limit
            // nothing, so they are always used.
            var wanted = ["freezer"]
            if v1["cpuacct"] != nil { wanted.append("cpuacct") }
            if limits.memoryBytes != nil && applies("memory") { wanted.append("memory") }
            if limits.pids != nil && applies("pids") { wanted.append("pids") }
            if limits.cpuQuotaUs != nil && applies("cpu") { wanted.append("cpu") }
            if limits.ioWeight != nil && applies("io") { wanted.append("blkio") }
            wanted.sort { RunCgroup.v1Order($0) < RunCgroup.v1Order($1) }

            var dirs: [String: String] = [:]
            var ordered: [String] = []
            for c in wanted {
                let mount = v1[c]!
                let (dir, nested) = RunCgroup.v1Directory(controller: c, mount: mount, runId: runId, host: host)
                dirs[c] = dir
                if ordered.contains(dir) { continue }       // co-mounted (e.g. cpu,cpuacct)
                if !nested { try CgroupFS.mkdirShared(mount + "/" + host.parentName) }
                try CgroupFS.mkdirNew(dir)
                created.append(dir)
                ordered.append(dir)
            }
            // Co-mounted controllers we did not ask for still have their files here:
            // record them so stats can read them.
            for (c, mount) in v1 where dirs[c] == nil {
                if let (_, dir) = dirs.first(where: { v1[$0.key] == mount }) { dirs[c] = dir }
            }

            if let mem = limits.memoryBytes, applies("memory"), let dir = dirs["memory"] {
                // limit_in_bytes first: memsw must never be below it.
                try CgroupFS.write(dir + "/memory.limit_in_bytes", String(mem))
                if applies("swap") {
                    let (sum, overflow) = mem.addingReportingOverflow(limits.swapBytes ?? 0)
                    try CgroupFS.write(dir + "/memory.memsw.limit_in_bytes", overflow ? "-1" : String(sum))
                }
                // memory.swappiness is left alone: with memsw == limit swap cannot
                // extend the limit, and swappiness is tuning, not a limit.
            }
            if let pids = limits.pids, applies("pids"), let dir = dirs["pids"] {
                try CgroupFS.write(dir + "/pids.max", String(pids))
            }
            if let quota = limits.cpuQuotaUs, applies("cpu"), let dir = dirs["cpu"] {
                // Period first: the kernel validates the quota against the period in force.
                try CgroupFS.write(dir + "/cpu.cfs_period_us", String(limits.cpuPeriodUs ?? CgroupLimits.defaultCPUPeriodUs))
                try CgroupFS.write(dir + "/cpu.cfs_quota_us", String(quota))
            }
            if let weight = limits.ioWeight, applies("io"), let dir = dirs["blkio"], let file = host.v1BlkioWeightFile {
                try CgroupFS.write(dir + "/" + file, String(RunCgroup.v1BlkioWeight(fromV2: weight)))
            }

            for dir in ordered {
                fds.append(try CgroupFS.open(dir + "/cgroup.procs", O_WRONLY | O_CLOEXEC))
            }
            let result = RunCgroup(runId: runId, host: host, backend: .v1(dirs: dirs), directories: ordered,
                                   notApplied: notApplied, cloneIntoFD: -1, procsFDs: fds)
            fds = []; created = []
            return result
        }
    }

    /// Where a run's directory in one v1 hierarchy is: nested in the invoker's own
    /// cgroup (`<invoker>/<parentName>-<run-id>`) when `nestUnderInvoker` and the
    /// invoker is below the mount, else `<mount>/<parentName>/<run-id>`.
    static func v1Directory(controller: String, mount: String, runId: String, host: CgroupHost) -> (dir: String, nested: Bool) {
        let own = host.nestUnderInvoker ? host.v1InvokerDirs[controller] : nil
        if let own, own != mount { return (own + "/" + host.parentName + "-" + runId, true) }
        return (mount + "/" + host.parentName + "/" + runId, false)
    }

    /// Every directory `create(runId:…, host:)` may make, by controller (`unified` on
    /// v2), whatever the limits: a superset of `controllerDirectories`, computed
    /// without touching the hierarchy. The executor records it in the run directory
    /// BEFORE `create`, so a supervisor killed at any point of set-up leaves a record
    /// naming every cgroup it may have made (`gc` removes what exists of it).
    public static func plannedDirectories(runId: String, host: CgroupHost) -> [String: String] {
        guard (try? validate(runId: runId)) != nil else { return [:] }
        switch host.mode {
        case .unavailable:
            return [:]
        case .unified(let mountPoint):
            return ["unified": (host.unifiedBase ?? mountPoint) + "/" + host.parentName + "/" + runId]
        case .hybrid(let v1, _):
            var dirs: [String: String] = [:]
            for c in CgroupHost.v1RunControllers {
                guard let mount = v1[c] else { continue }
                dirs[c] = v1Directory(controller: c, mount: mount, runId: runId, host: host).dir
            }
            return dirs
        }
    }

    static func v1Order(_ controller: String) -> Int {
        CgroupHost.v1RunControllers.firstIndex(of: controller) ?? Int.max
    }

    /// v2 io weight (1…10000, default 100) → v1 blkio weight (10…1000, default 500):
    /// the inverse of the conversion crun and runc use for v1 → v2,
    /// `1 + (w - 10) * 9999 / 990`.
    static func v1BlkioWeight(fromV2 w: UInt64) -> UInt64 {
        let clamped = min(max(w, 1), 10_000)
        return 10 + (clamped - 1) * 990 / 9999
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
        var s = CgroupStats()
        switch backend {
        case .none:
            break
        case .v2(let dir):
            // memory.events and pids.events count for the whole subtree.
            if let ev = CgroupFS.readKeyed(dir + "/memory.events") {
                s.oomKills = ev["oom_kill"] ?? 0
                s.oomKilled = s.oomKills > 0
            }
            s.memoryPeakBytes = CgroupFS.readNumber(dir + "/memory.peak")
            if let ev = CgroupFS.readKeyed(dir + "/pids.events") { s.pidsLimitHit = (ev["max"] ?? 0) > 0 }
            // cpu.stat is a core file: user/system usage exist without the cpu
            // controller; throttled_usec only with it.
            if let st = CgroupFS.readKeyed(dir + "/cpu.stat") {
                s.cpuUserUs = st["user_usec"]
                s.cpuSystemUs = st["system_usec"]
                s.throttledUs = st["throttled_usec"]
            }
        case .v1(let dirs):
            if let dir = dirs["memory"] {
                // "oom_kill N" exists since Linux 4.13.
                if let oc = CgroupFS.readKeyed(dir + "/memory.oom_control") {
                    s.oomKills = oc["oom_kill"] ?? 0
                    s.oomKilled = s.oomKills > 0
                }
                s.memoryPeakBytes = CgroupFS.readNumber(dir + "/memory.max_usage_in_bytes")
            }
            if let dir = dirs["pids"], let ev = CgroupFS.readKeyed(dir + "/pids.events") {
                s.pidsLimitHit = (ev["max"] ?? 0) > 0
            }
            if let dir = dirs["cpuacct"] {
                s.cpuUserUs = CgroupFS.readNumber(dir + "/cpuacct.usage_user").map { $0 / 1000 }
                s.cpuSystemUs = CgroupFS.readNumber(dir + "/cpuacct.usage_sys").map { $0 / 1000 }
            }
            if let dir = dirs["cpu"], let st = CgroupFS.readKeyed(dir + "/cpu.stat") {
                s.throttledUs = st["throttled_usec"] ?? st["throttled_time"].map { $0 / 1000 }
            }
        }
        return s
    }

    // MARK: - kill

    /// How long `killAll` waits for the run's processes to be gone.
    public static let killTimeoutUs: UInt64 = 5_000_000

    /// Kills every process of the run and waits (bounded) until none is left.
    ///
    /// v2: writes "1" to `cgroup.kill` (Linux 5.14), which also catches processes
    /// forked while the kill is under way. v1 (and v2 without cgroup.kill): freezes
    /// the run, sends SIGKILL through a pidfd to each pid listed in `cgroup.procs`,
    /// then thaws. Frozen processes can neither fork nor exit, so a listed pid cannot
    /// be recycled before its pidfd is open; each pidfd is still checked against a
    /// second read of `cgroup.procs` before signalling, which covers a zombie reaped
    /// by an outside parent in between. Never kill(2).
    /// Returns what went wrong, if anything; teardown goes on regardless.
    @discardableResult
    public func killAll() -> [CgroupError] {
        var errors: [CgroupError] = []
        let deadline = Self.now() + Self.killTimeoutUs
        switch backend {
        case .none:
            return []
        case .v2(let dir):
            // Nothing to kill (the common case at teardown: the run's init was
            // reaped and its processes died with its pid namespace).
            guard !(CgroupFS.readPids(dir + "/cgroup.procs") ?? []).isEmpty else { return [] }
            if CgroupFS.exists(dir + "/cgroup.kill") {
                do { try CgroupFS.write(dir + "/cgroup.kill", "1") } catch let e as CgroupError {
                    if e.errno != ENOENT { errors.append(e) }
                } catch {}
            } else {
                errors += freezeKillThaw(procs: dir + "/cgroup.procs", deadline: deadline,
                                         freeze: { try CgroupFS.write(dir + "/cgroup.freeze", "1") },
                                         isFrozen: { (CgroupFS.readKeyed(dir + "/cgroup.events")?["frozen"] ?? 0) == 1 },
                                         thaw: { try CgroupFS.write(dir + "/cgroup.freeze", "0") })
            }
            if let e = Self.waitEmpty([dir + "/cgroup.procs"], deadline: deadline) { errors.append(e) }
        case .v1(let dirs):
            guard let freezer = dirs["freezer"] else { return [] }
            let all = Array(Set(dirs.values)).sorted().map { $0 + "/cgroup.procs" }
            guard all.contains(where: { !(CgroupFS.readPids($0) ?? []).isEmpty }) else { return [] }
            guard CgroupFS.isDirectory(freezer) else {
                // Without our freezer directory, nothing can be killed safely.
                return [CgroupError(kind: .syscall, operation: "kill", path: freezer,
                                    detail: "the freezer cgroup is gone but other hierarchies still hold processes")]
            }
            // Repeat: a process that joined the freezer last (after our listing) is
            // caught in the next round.
            repeat {
                errors += freezeKillThaw(procs: freezer + "/cgroup.procs", deadline: deadline,
                                         freeze: { try CgroupFS.write(freezer + "/freezer.state", "FROZEN") },
                                         isFrozen: { CgroupFS.trimmed(CgroupFS.read(freezer + "/freezer.state") ?? "") == "FROZEN" },
                                         thaw: { try CgroupFS.write(freezer + "/freezer.state", "THAWED") })
                if Self.waitEmpty(all, deadline: min(deadline, Self.now() + 200_000)) == nil { return errors }
            } while Self.now() < deadline
            if let e = Self.waitEmpty(all, deadline: Self.now()) { errors.append(e) }
        }
        return errors
    }

    /// One freeze → pidfd SIGKILL → thaw round over the pids in `procs`.
    private func freezeKillThaw(procs: String, deadline: UInt64, freeze: () throws -> Void,
                                isFrozen: () -> Bool, thaw: () throws -> Void) -> [CgroupError] {
        var errors: [CgroupError] = []
        do { try freeze() } catch let e as CgroupError { errors.append(e) } catch {}
        // Freezing is asynchronous (FREEZING until every task stopped). Bounded: a
        // task in uninterruptible sleep can hold it; we kill anyway, the pidfd check
        // below still guards every signal.
        let freezeDeadline = min(deadline, Self.now() + 1_000_000)
        while !isFrozen() && Self.now() < freezeDeadline { usleep(1000) }

        let pids = CgroupFS.readPids(procs) ?? []
        var opened: [(pid: Int32, fd: Int32)] = []
        for pid in pids {
            let fd = sbx_cg_pidfd_open(pid)
            if fd >= 0 { opened.append((pid, fd)) }
            else if errno != ESRCH { errors.append(CgroupError.sys("pidfd_open", procs, data: String(pid), errno: errno)) }
        }
        // The pidfd names whatever process held the pid at open time. If the pid is
        // still listed now, that holder is a member: members cannot fork while
        // frozen, so no member could have taken a recycled pid in between.
        let still = Set(CgroupFS.readPids(procs) ?? [])
        for (pid, fd) in opened {
            if still.contains(pid), case let r = sbx_pidfd_send_signal(fd, SIGKILL), r != 0, r != -ESRCH {
                errors.append(CgroupError.sys("pidfd_send_signal SIGKILL", procs, data: String(pid), errno: -r))
            }
            close(fd)
        }
        do { try thaw() } catch let e as CgroupError { errors.append(e) } catch {}
        return errors
    }

    /// Polls until every `cgroup.procs` file is empty or gone, or the deadline passes.
    private static func waitEmpty(_ procsFiles: [String], deadline: UInt64) -> CgroupError? {
        var delay: UInt32 = 200
        while true {
            let busy = procsFiles.first { !(CgroupFS.readPids($0) ?? []).isEmpty }
            guard let busy else { return nil }
            if now() >= deadline {
                return CgroupError(kind: .timeout, operation: "kill", path: busy,
                                   detail: "processes still present after \(killTimeoutUs / 1000) ms")
            }
            usleep(delay)
            delay = min(delay * 2, 20_000)
        }
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    // MARK: - remove

    /// Tears the run down: `killAll`, closes the child fds, removes each directory
    /// (short bounded retry on EBUSY; ENOENT counts as done). Idempotent; never
    /// aborts half-way. Returns what could not be done.
    @discardableResult
    public func remove() -> [CgroupError] {
        var errors = killAll()
        closeChildFDs()
        for dir in directories {
            if let e = CgroupFS.rmdirRetrying(dir) { errors.append(e) }
        }
        return errors
    }

    /// Where each controller's directory of this run is: what the executor records in
    /// the run directory so `gc` can remove exactly these (v1 runs may be nested in an
    /// invoker's cgroup that gc, running elsewhere, cannot derive).
    public var controllerDirectories: [String: String] {
        switch backend {
        case .v1(let dirs): return dirs
        case .v2(let dir): return ["unified": dir]
        case .none: return [:]
        }
    }

    /// `gc` for a run whose directories were recorded (`controllerDirectories`). Each
    /// must be a cgroup directory named for `runId` (`…/<run-id>` or `…-<run-id>`)
    /// under /sys/fs/cgroup; anything else is refused.
    @discardableResult
    public static func removeLeftovers(runId: String, directories: [String: String], host: CgroupHost) -> [CgroupError] {
        do { try validate(runId: runId) } catch let e as CgroupError { return [e] } catch { return [] }
        for dir in directories.values {
            let last = dir.split(separator: "/").last.map(String.init) ?? ""
            guard dir.hasPrefix("/sys/fs/cgroup/"), !dir.contains("/../"), last == runId || last.hasSuffix("-" + runId) else {
                return [CgroupError(kind: .invalidRunId, operation: "remove recorded cgroup", path: dir,
                                    detail: "not a run cgroup of \(runId)")]
            }
        }
        let backend: Backend
        if let unified = directories["unified"], directories.count == 1 { backend = .v2(dir: unified) }
        else { backend = .v1(dirs: directories) }
        let ordered = Array(Set(directories.values)).sorted()
        return RunCgroup(runId: runId, host: host, backend: backend, directories: ordered, notApplied: [],
                         cloneIntoFD: -1, procsFDs: []).remove()
    }

    /// For `sandbox gc`: the same teardown by name, for a stale run directory without a
    /// `cgroups` record (only call it once the run's lock is known to be free). Looks
    /// in every place a run of this invoker can have a cgroup: nested in the invoker's
    /// own v1 cgroups (`<invoker>/<parentName>-<run-id>`, where the executor puts
    /// them) and at the top of each hierarchy (`<mount>/<parentName>/<run-id>`, v1 or
    /// v2). Only directories named for `runId` are touched.
    @discardableResult
    public static func removeLeftovers(runId: String, host: CgroupHost) -> [CgroupError] {
        do { try validate(runId: runId) } catch let e as CgroupError { return [e] } catch { return [] }
        var errors: [CgroupError] = []
        var nestedHost = host
        nestedHost.nestUnderInvoker = true
        let nested = plannedDirectories(runId: runId, host: nestedHost)
        let top = attach(runId: runId, host: host).controllerDirectories
        if nested != top, case .hybrid = host.mode {
            errors += removeLeftovers(runId: runId, directories: nested, host: host)
        }
        errors += attach(runId: runId, host: host).remove()
        return errors
    }

    /// A RunCgroup for the existing directories of `runId` (none need exist).
    static func attach(runId: String, host: CgroupHost) -> RunCgroup {
        switch host.mode {
        case .unavailable:
            return RunCgroup(runId: runId, host: host, backend: .none, directories: [], notApplied: [], cloneIntoFD: -1, procsFDs: [])
        case .unified(let mountPoint):
            let dir = (host.unifiedBase ?? mountPoint) + "/" + host.parentName + "/" + runId
            return RunCgroup(runId: runId, host: host, backend: .v2(dir: dir), directories: [dir], notApplied: [], cloneIntoFD: -1, procsFDs: [])
        case .hybrid(let v1, _):
            var dirs: [String: String] = [:]
            for (c, mount) in v1 { dirs[c] = mount + "/" + host.parentName + "/" + runId }
            let ordered = Array(Set(dirs.values)).sorted()
            return RunCgroup(runId: runId, host: host, backend: .v1(dirs: dirs), directories: ordered, notApplied: [], cloneIntoFD: -1, procsFDs: [])
        }
    }

    /// Run ids that have a cgroup directory under our parent in any hierarchy. For
    /// tests and diagnostics: `sandbox gc` never removes a cgroup by this listing (a
    /// run being created right now has one before it could be seen as live).
    public static func existingRunIds(host: CgroupHost) -> [String] {
        var parents: [String] = []
        switch host.mode {
        case .unavailable: return []
        case .unified(let mountPoint): parents = [(host.unifiedBase ?? mountPoint) + "/" + host.parentName]
        case .hybrid(let v1, _): parents = Array(Set(v1.values)).map { $0 + "/" + host.parentName }
        }
        var ids = Set<String>()
        for p in parents {
            for name in CgroupFS.subdirectories(p) where (try? validate(runId: name)) != nil { ids.insert(name) }
        }
        return ids.sorted()
    }
}

