import Glibc

/// The cgroup v2 backend: one directory, `<base>/<parentName>/<run-id>`, in the
/// unified hierarchy. The child is born inside with `clone3(CLONE_INTO_CGROUP)` on
/// an `O_DIRECTORY` fd of it. File formats as in the kernel's
/// Documentation/admin-guide/cgroup-v2.rst.
struct CgroupV2: CgroupBackend {
    /// The run's cgroup directory.
    let dir: String

    var directories: [String] { [dir] }
    var controllerDirectories: [String: String] { ["unified": dir] }
    var procsFiles: [String] { [dir + "/cgroup.procs"] }

    /// The run's directory: under the mount point for root, under the top of the
    /// invoker's delegated subtree otherwise (`CgroupHost.unifiedBase`).
    static func directory(runId: String, host: CgroupHost, mountPoint: String) -> String {
        parent(host: host, mountPoint: mountPoint) + "/" + runId
    }

    static func parent(host: CgroupHost, mountPoint: String) -> String {
        (host.unifiedBase ?? mountPoint) + "/" + host.parentName
    }

    /// The controller each limit name needs.
    static func controller(for limit: String) -> String {
        limit == "swap" ? "memory" : limit
    }

    // MARK: create + apply

    /// Makes the run's directory with every limit written, and opens the fd the child
    /// is cloned into. A limit whose controller the base does not enable for children
    /// is refused (or skipped if best-effort) before anything is made; any failure
    /// after the mkdir removes the directory before throwing.
    static func create(runId: String, host: CgroupHost, mountPoint: String,
                       request: inout LimitRequest) throws -> (CgroupV2, OwnedFD) {
        try check(host: host, mountPoint: mountPoint, request: &request)
        let available = Set(host.controllers)
        let parent = parent(host: host, mountPoint: mountPoint)
        try CgroupFS.mkdirShared(parent)
        try enableControllers(in: parent, required: requiredControllers(request),
                              accounting: Set(["memory", "pids"]).intersection(available))

        let cg = CgroupV2(dir: parent + "/" + runId)
        try CgroupFS.mkdirNew(cg.dir)
        do {
            try cg.apply(&request)
            let fd = try CgroupFS.open(cg.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            return (cg, OwnedFD(fd))
        } catch {
            _ = CgroupFS.rmdirRetrying(cg.dir, attempts: 5)
            throw error
        }
    }

    /// Every limit whose controller the base does not enable for children, before
    /// anything is made (`create`, and `RunCgroup.check` for `sandbox doctor`).
    /// Swap accounting shows only in the run's own directory (`memory.swap.max`):
    /// `apply` finds that one.
    static func check(host: CgroupHost, mountPoint: String, request: inout LimitRequest) throws {
        let base = host.unifiedBase ?? mountPoint
        let available = Set(host.controllers)
        for name in request.limits.requested where !available.contains(controller(for: name)) {
            try request.missing(name, path: base + "/cgroup.subtree_control",
                                detail: "the \(controller(for: name)) controller is not enabled for children of \(base)")
        }
    }

    /// The controllers the applicable limits need.
    static func requiredControllers(_ request: LimitRequest) -> Set<String> {
        let l = request.limits
        var required: Set<String> = []
        if l.memoryBytes != nil && request.applies("memory") { required.insert("memory") }
        if l.swapBytes != nil && request.applies("swap") { required.insert("memory") }
        if l.pids != nil && request.applies("pids") { required.insert("pids") }
        if l.cpuQuotaUs != nil && request.applies("cpu") { required.insert("cpu") }
        if l.ioWeight != nil && request.applies("io") { required.insert("io") }
        return required
    }

    /// Enables in OUR parent's `cgroup.subtree_control` the controllers the limits
    /// need (`required`: a failure throws) plus `accounting` ones (memory and pids
    /// whenever available: they account peak memory, OOM kills and pids.max hits even
    /// without a limit, at negligible cost; a failure is ignored). cpu and io change
    /// scheduling, so only when limited. One "+name" per write, in a fixed order, so
    /// an accounting controller that fails cannot take a required one with it.
    /// Writing "+x" when x is already enabled is a no-op, so concurrent runs may race
    /// here harmlessly; what is already listed is not written again.
    static func enableControllers(in parent: String, required: Set<String>, accounting: Set<String>) throws {
        let file = parent + "/cgroup.subtree_control"
        let enabled = Set(CgroupFS.words(CgroupFS.read(file) ?? ""))
        let wanted = required.union(accounting)
        for c in CgroupHost.v2LimitControllers where wanted.contains(c) && !enabled.contains(c) {
            do {
                try CgroupFS.write(file, "+" + c)
            } catch where !required.contains(c) {
                // Accounting only: the run goes on without those statistics.
            }
        }
    }

    /// Writes every applicable limit into the run's directory. A limit file that does
    /// not exist although its controller is enabled (swap accounting off, no io
    /// weight file) is a missing limit: an error unless best-effort.
    func apply(_ request: inout LimitRequest) throws {
        let l = request.limits
        if let mem = l.memoryBytes, request.applies("memory") {
            try CgroupFS.write(dir + "/memory.max", String(mem))
        }
        // Swap nil with a memory limit means swap 0: a memory limit that swap could
        // stretch is not a limit.
        if (l.swapBytes != nil || (l.memoryBytes != nil && request.applies("memory"))) && request.applies("swap") {
            // memory.swap.max exists only with swap accounting (not booted with
            // cgroup.memory=noswap / swapaccount=0).
            if CgroupFS.exists(dir + "/memory.swap.max") {
                try CgroupFS.write(dir + "/memory.swap.max", String(l.swapBytes ?? 0))
            } else {
                try request.missing("swap", path: dir + "/memory.swap.max", detail: "swap accounting is off on this kernel")
            }
        }
        if let pids = l.pids, request.applies("pids") {
            try CgroupFS.write(dir + "/pids.max", String(pids))
        }
        if let quota = l.cpuQuotaUs, request.applies("cpu") {
            // "$MAX $PERIOD"
            try CgroupFS.write(dir + "/cpu.max", "\(quota) \(l.cpuPeriodUs ?? CgroupLimits.defaultCPUPeriodUs)")
        }
        if let weight = l.ioWeight, request.applies("io") {
            // io.weight comes with blk-iocost (1…10000); with BFQ only io.bfq.weight
            // (1…1000). Both take "default $WEIGHT" for every device.
            if CgroupFS.exists(dir + "/io.weight") {
                try CgroupFS.write(dir + "/io.weight", "default \(min(max(weight, 1), 10_000))")
            } else if CgroupFS.exists(dir + "/io.bfq.weight") {
                try CgroupFS.write(dir + "/io.bfq.weight", "default \(min(max(weight, 1), 1000))")
            } else {
                try request.missing("io", path: dir + "/io.weight", detail: "neither io.weight (iocost) nor io.bfq.weight (BFQ) exists")
            }
        }
    }

    // MARK: freeze, events, kill

    func freeze() throws { try CgroupFS.write(dir + "/cgroup.freeze", "1") }
    func thaw() throws { try CgroupFS.write(dir + "/cgroup.freeze", "0") }
    func isFrozen() -> Bool { events()?.frozen == true }

    /// `cgroup.events`: "populated 0|1" (any live process in the subtree) and
    /// "frozen 0|1" (Linux 5.2); nil if the file cannot be read.
    func events() -> (populated: Bool, frozen: Bool)? {
        guard let ev = CgroupFS.readKeyed(dir + "/cgroup.events") else { return nil }
        return ((ev["populated"] ?? 0) != 0, (ev["frozen"] ?? 0) != 0)
    }

    /// Writes "1" to `cgroup.kill` (Linux 5.14): SIGKILL to every process of the
    /// subtree, including those forked while the kill is under way.
    func requestKill() throws { try CgroupFS.write(dir + "/cgroup.kill", "1") }

    /// `cgroup.kill` where the kernel has it, else freeze → pidfd kills → thaw; then
    /// waits until `cgroup.procs` is empty.
    func killAll(deadline: UInt64) -> [KernelError] {
        // Nothing to kill (the common case at teardown: the run's init was reaped and
        // its processes died with its pid namespace).
        guard hasProcesses() else { return [] }
        var errors: [KernelError] = []
        if CgroupFS.exists(dir + "/cgroup.kill") {
            do { try requestKill() } catch let e as KernelError {
                if !(e.errno == ENOENT) { errors.append(e) }   // already gone
            } catch {}
        } else {
            errors += freezeKillThaw(procs: dir + "/cgroup.procs", deadline: deadline)
        }
        if let e = waitEmpty(procsFiles, deadline: deadline) { errors.append(e) }
        return errors
    }

    // MARK: stats

    func stats() -> CgroupStats {
        var s = CgroupStats()
        // memory.events and pids.events count for the whole subtree (unless mounted
        // with memory_localevents / pids_localevents).
        if let ev = CgroupFS.readKeyed(dir + "/memory.events") {
            s.oomKills = ev["oom_kill"] ?? 0
            s.oomKilled = s.oomKills > 0
        }
        // memory.peak: Linux 5.19.
        s.memoryPeakBytes = CgroupFS.readNumber(dir + "/memory.peak")
        if let ev = CgroupFS.readKeyed(dir + "/pids.events") { s.pidsLimitHit = (ev["max"] ?? 0) > 0 }
        // cpu.stat is a core file: usage/user/system exist without the cpu
        // controller; throttled_usec only with it.
        if let st = CgroupFS.readKeyed(dir + "/cpu.stat") {
            s.cpuUserUs = st["user_usec"]
            s.cpuSystemUs = st["system_usec"]
            s.throttledUs = st["throttled_usec"]
        }
        return s
    }
}
