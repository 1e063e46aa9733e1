import Glibc

/// The cgroup v1 backend: one directory per hierarchy the run uses, freezer and
/// cpuacct always, memory, pids, cpu, blkio only when their limit is applied. The
/// child writes "0" (itself) into each directory's `tasks` fd, freezer first, before
/// it execs.
///
/// `tasks`, not `cgroup.procs`: a write to `cgroup.procs` moves a whole thread group,
/// so the kernel takes the global `cgroup_threadgroup_rwsem` for writing, and its
/// first writer after a quiet spell waits for an RCU grace period — measured here
/// 5-9 ms on an idle host and 12-21 ms under load, most of a run's start-up. "0" in
/// `tasks` moves only the calling thread, which cannot exit or exec under the
/// kernel's hands, so it skips that lock (0.03 ms). The child is single-threaded
/// when it joins (C between clone3 and execve, no threads), so moving its one thread
/// moves the process, and everything it forks is born inside.
///
/// Directories are `<controller mount>/<parentName>/<run-id>`, or, nested in the
/// invoker's own cgroup of that hierarchy, `<invoker>/<parentName>-<run-id>` (see
/// `CgroupHost.nestUnderInvoker`).
struct CgroupV1: CgroupBackend {
    /// controller → the run's directory in that controller's hierarchy (co-mounted
    /// controllers share one).
    let dirs: [String: String]
    /// Each distinct directory once, in the order made and joined: freezer first, so
    /// every process of the run is frozen-and-killable whatever else it joined.
    let directories: [String]

    var controllerDirectories: [String: String] { dirs }
    var procsFiles: [String] { Array(Set(dirs.values)).sorted().map { $0 + "/cgroup.procs" } }

    static func order(_ controller: String) -> Int {
        CgroupHost.v1RunControllers.firstIndex(of: controller) ?? Int.max
    }

    /// Where a run's directory in one hierarchy is: nested in the invoker's own
    /// cgroup when `host.nestUnderInvoker` and the invoker is below the mount, else
    /// at the top of the hierarchy.
    static func directory(controller: String, mount: String, runId: String, host: CgroupHost) -> (dir: String, nested: Bool) {
        let own = host.nestUnderInvoker ? host.v1InvokerDirs[controller] : nil
        if let own, own != mount { return (own + "/" + host.parentName + "-" + runId, true) }
        return (mount + "/" + host.parentName + "/" + runId, false)
    }

    /// Every directory `create` may make, by controller, whatever the limits.
    static func plannedDirectories(runId: String, host: CgroupHost, mounts: [String: String]) -> [String: String] {
        var out: [String: String] = [:]
        for c in CgroupHost.v1RunControllers {
            guard let mount = mounts[c] else { continue }
            out[c] = directory(controller: c, mount: mount, runId: runId, host: host).dir
        }
        return out
    }

    /// v2 io weight (1…10000, default 100) → v1 blkio weight (10…1000, default 500):
    /// the inverse of the conversion crun and runc use for v1 → v2,
    /// `1 + (w - 10) * 9999 / 990`.
    static func blkioWeight(fromV2 w: UInt64) -> UInt64 {
        let clamped = min(max(w, 1), 10_000)
        return 10 + (clamped - 1) * 990 / 9999
    }

    // MARK: create + apply

    /// Every limit this host cannot apply, before anything is made (`create`, and
    /// `RunCgroup.check` for `sandbox doctor`): skipped when best-effort, else refused.
    static func check(host: CgroupHost, mounts v1: [String: String], request: inout LimitRequest) throws {
        let l = request.limits
        if l.memoryBytes != nil && v1["memory"] == nil {
            try request.missing("memory", path: "", detail: "no v1 memory hierarchy is mounted")
        }
        if l.memoryBytes != nil || l.swapBytes != nil {
            if v1["memory"] == nil {
                try request.missing("swap", path: "", detail: "no v1 memory hierarchy is mounted")
            } else if !host.v1SwapLimit {
                try request.missing("swap", path: v1["memory"]! + "/memory.memsw.limit_in_bytes",
                                    detail: "swap accounting is off (boot with swapaccount=1)")
            } else if l.memoryBytes == nil || !request.applies("memory") {
                // v1 limits memory+swap together; swap alone has no file.
                try request.missing("swap", path: v1["memory"]! + "/memory.memsw.limit_in_bytes",
                                    detail: "cgroup v1 can limit swap only together with memory")
            }
        }
        if l.pids != nil && v1["pids"] == nil {
            try request.missing("pids", path: "", detail: "no v1 pids hierarchy is mounted")
        }
        if l.cpuQuotaUs != nil && v1["cpu"] == nil {
            try request.missing("cpu", path: "", detail: "no v1 cpu hierarchy is mounted")
        }
        if l.ioWeight != nil && host.v1BlkioWeightFile == nil {
            try request.missing("io", path: v1["blkio"].map { $0 + "/blkio.weight" } ?? "",
                                detail: v1["blkio"] == nil ? "no v1 blkio hierarchy is mounted"
                                    : "blkio has neither blkio.weight (CFQ, removed in Linux 5.0) nor blkio.bfq.weight (BFQ not in use)")
        }
        guard v1["freezer"] != nil else {
            throw KernelError(operation: "create run cgroup", subject: "",
                              detail: "no v1 freezer hierarchy: the run's processes could not be killed safely")
        }
    }

    /// Makes the run's directories with every limit written and opens each one's
    /// `tasks` for the child. Every limit is checked before the first mkdir,
    /// so most refusals leave nothing; any later failure removes what was made (never
    /// the shared parents) before throwing.
    static func create(runId: String, host: CgroupHost, mounts v1: [String: String],
                       request: inout LimitRequest) throws -> (CgroupV1, [OwnedFD]) {
        try check(host: host, mounts: v1, request: &request)
        let l = request.limits

        // Which hierarchies get a directory. Joining one moves the run OUT of the
        // invoker's cgroup in that hierarchy when our parent sits at its top (and out
        // of any limit the invoker is under there). So a limiting controller gets a
        // directory only when its limit is applied: memory, pids, cpu, blkio. freezer
        // (teardown) and cpuacct (CPU time) limit nothing, so they are always used.
        var wanted = ["freezer"]
        if v1["cpuacct"] != nil { wanted.append("cpuacct") }
        if l.memoryBytes != nil && request.applies("memory") { wanted.append("memory") }
        if l.pids != nil && request.applies("pids") { wanted.append("pids") }
        if l.cpuQuotaUs != nil && request.applies("cpu") { wanted.append("cpu") }
        if l.ioWeight != nil && request.applies("io") { wanted.append("blkio") }
        wanted.sort { order($0) < order($1) }

        var dirs: [String: String] = [:]
        var ordered: [String] = []
        var fds: [OwnedFD] = []
        do {
            for c in wanted {
                let mount = v1[c]!
                let (dir, nested) = directory(controller: c, mount: mount, runId: runId, host: host)
                dirs[c] = dir
                if ordered.contains(dir) { continue }       // co-mounted (e.g. cpu,cpuacct)
                if !nested { try CgroupFS.mkdirShared(mount + "/" + host.parentName) }
                try CgroupFS.mkdirNew(dir)
                ordered.append(dir)
            }
            // Co-mounted controllers we did not ask for still have their files here:
            // record them so stats can read them.
            for (c, mount) in v1 where dirs[c] == nil {
                if let (_, dir) = dirs.first(where: { v1[$0.key] == mount }) { dirs[c] = dir }
            }
            let cg = CgroupV1(dirs: dirs, directories: ordered)
            try cg.apply(request, host: host)
            for dir in ordered {
                // A delegation that handed over cgroup.procs but not tasks: the same
                // join, only slower (the global lock) — never a failed run.
                let fd: Int32
                do { fd = try CgroupFS.open(dir + "/tasks", O_WRONLY | O_CLOEXEC) } catch let e as KernelError where e.errno == EACCES || e.errno == EPERM {
                    fd = try CgroupFS.open(dir + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
                }
                fds.append(OwnedFD(fd))
            }
            return (cg, fds)
        } catch {
            fds.closeAll()
            for dir in ordered.reversed() { _ = CgroupFS.rmdirRetrying(dir, attempts: 5) }
            throw error
        }
    }

    /// Writes every applicable limit. Swap: v1 limits memory+swap together
    /// (`memory.memsw.limit_in_bytes`); swap nil means memsw = memory (swap 0).
    func apply(_ request: LimitRequest, host: CgroupHost) throws {
        let l = request.limits
        if let mem = l.memoryBytes, request.applies("memory"), let dir = dirs["memory"] {
            // limit_in_bytes first: memsw must never be below it.
            try CgroupFS.write(dir + "/memory.limit_in_bytes", String(mem))
            if request.applies("swap") {
                let (sum, overflow) = mem.addingReportingOverflow(l.swapBytes ?? 0)
                try CgroupFS.write(dir + "/memory.memsw.limit_in_bytes", overflow ? "-1" : String(sum))
            }
            // memory.swappiness is left alone: with memsw == limit swap cannot extend
            // the limit, and swappiness is tuning, not a limit.
        }
        if let pids = l.pids, request.applies("pids"), let dir = dirs["pids"] {
            try CgroupFS.write(dir + "/pids.max", String(pids))
        }
        if let quota = l.cpuQuotaUs, request.applies("cpu"), let dir = dirs["cpu"] {
            // Period first: the kernel validates the quota against the period in force.
            try CgroupFS.write(dir + "/cpu.cfs_period_us", String(l.cpuPeriodUs ?? CgroupLimits.defaultCPUPeriodUs))
            try CgroupFS.write(dir + "/cpu.cfs_quota_us", String(quota))
        }
        if let weight = l.ioWeight, request.applies("io"), let dir = dirs["blkio"], let file = host.v1BlkioWeightFile {
            try CgroupFS.write(dir + "/" + file, String(Self.blkioWeight(fromV2: weight)))
        }
    }

    // MARK: freeze, kill

    private var freezerState: String? { dirs["freezer"].map { $0 + "/freezer.state" } }

    func freeze() throws {
        guard let f = freezerState else { return }
        try CgroupFS.write(f, "FROZEN")
    }

    func thaw() throws {
        guard let f = freezerState else { return }
        try CgroupFS.write(f, "THAWED")
    }

    func isFrozen() -> Bool {
        freezerState.map { CgroupFS.trimmed(CgroupFS.read($0) ?? "") == "FROZEN" } ?? false
    }

    /// Freeze → pidfd kills → thaw in the freezer hierarchy, repeated: a process that
    /// joined the freezer last (after our listing) is caught in the next round. Then
    /// waits until every hierarchy's `cgroup.procs` is empty.
    func killAll(deadline: UInt64) -> [KernelError] {
        guard let freezer = dirs["freezer"] else { return [] }
        guard hasProcesses() else { return [] }
        guard CgroupFS.isDirectory(freezer) else {
            // Without our freezer directory, nothing can be killed safely.
            return [KernelError(operation: "kill", subject: freezer,
                                detail: "the freezer cgroup is gone but other hierarchies still hold processes")]
        }
        var errors: [KernelError] = []
        repeat {
            errors += freezeKillThaw(procs: freezer + "/cgroup.procs", deadline: deadline)
            if waitEmpty(procsFiles, deadline: min(deadline, Clock.monotonicUs() + 200_000)) == nil { return errors }
        } while Clock.monotonicUs() < deadline
        if let e = waitEmpty(procsFiles, deadline: Clock.monotonicUs()) { errors.append(e) }
        return errors
    }

    // MARK: stats

    /// The run's CPU time from v1's cpuacct: `cpuacct.usage` is the scheduler's exact
    /// runtime, but `usage_user` and `usage_sys` are sampled at the tick (a loaded
    /// host read 0.53–0.73 s of them for an exact 0.50 s; a tick that finds a VM's CPU
    /// stolen counts for nothing). The exact total, split in their proportion, as the
    /// kernel scales a task's own times (`cputime_adjust`): all of it user time when
    /// no system tick was seen, all system when no user tick was.
    static func split(totalNs: UInt64, userNs: UInt64, systemNs: UInt64) -> (userNs: UInt64, systemNs: UInt64) {
        if systemNs == 0 { return (totalNs, 0) }
        if userNs == 0 { return (0, totalNs) }
        var (user, system) = (userNs, systemNs)
        while user > UInt64.max - system { user >>= 1; system >>= 1 }   // their sum fits
        // system ≤ user + system, so the quotient fits: at most the total.
        let (q, _) = (user + system).dividingFullWidth(system.multipliedFullWidth(by: totalNs))
        system = min(q, totalNs)
        return (totalNs - system, system)
    }

    func stats() -> CgroupStats {
        var s = CgroupStats()
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
        if let dir = dirs["cpuacct"], let total = CgroupFS.readNumber(dir + "/cpuacct.usage"),
           let user = CgroupFS.readNumber(dir + "/cpuacct.usage_user"),
           let system = CgroupFS.readNumber(dir + "/cpuacct.usage_sys") {
            let split = Self.split(totalNs: total, userNs: user, systemNs: system)
            s.cpuUserUs = split.userNs / 1000
            s.cpuSystemUs = split.systemNs / 1000
        }
        if let dir = dirs["cpu"], let st = CgroupFS.readKeyed(dir + "/cpu.stat") {
            s.throttledUs = st["throttled_usec"] ?? st["throttled_time"].map { $0 / 1000 }
        }
        return s
    }
}
