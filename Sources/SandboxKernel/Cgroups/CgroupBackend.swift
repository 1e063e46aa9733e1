import CSandbox
import Glibc

/// What one cgroup layout does for a run, step by step: v2 (`CgroupV2`, one unified
/// hierarchy) and v1 (`CgroupV1`, one hierarchy per controller) behind one protocol,
/// in the shape of youki's `CgroupManager`. `RunCgroup` picks the backend from the
/// probed `CgroupHost` and adds what both share: the run id, the child's fds, the
/// lock that serializes teardown.
///
/// The steps, in a run's order:
/// 1. create + apply limits — each backend's `static func create`, which makes the
///    directories, writes every limit, and hands back the child's join fds;
/// 2. add the child — v2: `clone3(CLONE_INTO_CGROUP)` on the directory fd; v1: the
///    child writes "0" into each hierarchy's `tasks` fd before exec (see ``CgroupV1``);
/// 3. `stats()` — what the run's own files say (OOM kills, pids.max hits, peak
///    memory, CPU time, throttling);
/// 4. `killAll(deadline:)` — every process, bounded; `freeze`/`thaw` where kill uses them;
/// 5. `removeDirectories()` — idempotent rmdir (`removeIfEmpty()` first: no process
///    left, no kill needed).
///
/// Every path is absolute and derived from the host view, so a backend works under
/// any root it is given: the real hierarchy, or a faked tree in tests.
protocol CgroupBackend: Sendable {
    /// The run's directories, in the order they were made (v1: freezer first).
    var directories: [String] { get }
    /// Each controller's directory of the run (`unified` on v2): what the executor
    /// records for `gc`.
    var controllerDirectories: [String: String] { get }
    /// The `cgroup.procs` files that together list every process of the run.
    var procsFiles: [String] { get }

    /// Stops every process of the run (v2 `cgroup.freeze`, v1 `freezer.state`).
    /// Asynchronous: `isFrozen()` says when it took.
    func freeze() throws
    func thaw() throws
    func isFrozen() -> Bool

    /// Kills every process of the run and waits until none is left or `deadline`
    /// (CLOCK_MONOTONIC µs) passes. Returns what went wrong; never stops half-way.
    func killAll(deadline: UInt64) -> [KernelError]

    /// The run's statistics from its own files; a missing file leaves its field nil.
    func stats() -> CgroupStats
}

extension CgroupBackend {
    /// Whether any of the run's `cgroup.procs` files still lists a process.
    func hasProcesses() -> Bool {
        procsFiles.contains { !(CgroupFS.readPids($0) ?? []).isEmpty }
    }

    /// Removes every directory when no process is left in them, without listing
    /// `cgroup.procs`: the kernel refuses `rmdir` (EBUSY) of a cgroup that still
    /// holds a task, so each success says that directory was empty. The first
    /// directory made (v1: the freezer, which the kill needs) goes last. True when
    /// all are gone; false at the first refusal, which leaves that directory and
    /// those before it in `directories` for `killAll` and `removeDirectories`.
    /// (The common teardown: the run's init was reaped and its processes died with
    /// its PID namespace; listing five `cgroup.procs` files first cost a server
    /// 0.1 ms a request.)
    func removeIfEmpty() -> Bool {
        for dir in directories.reversed() {
            if rmdir(dir) == 0 || errno == ENOENT { continue }
            return false
        }
        return true
    }

    /// Removes each directory (short bounded retry on EBUSY; ENOENT counts as done,
    /// so removing twice is fine).
    func removeDirectories() -> [KernelError] {
        directories.compactMap { CgroupFS.rmdirRetrying($0) }
    }

    /// One freeze → pidfd SIGKILL → thaw round over the pids listed in `procs`: the
    /// kill for v1 and for v2 kernels without `cgroup.kill` (Linux < 5.14).
    ///
    /// Frozen processes can neither fork nor exit, so a listed pid cannot be recycled
    /// before its pidfd is open; each pidfd is still checked against a second read of
    /// `procs` before signalling, which covers a zombie reaped by an outside parent in
    /// between. Never kill(2).
    func freezeKillThaw(procs: String, deadline: UInt64) -> [KernelError] {
        var errors: [KernelError] = []
        do { try freeze() } catch let e as KernelError { errors.append(e) } catch {}
        // Freezing is asynchronous (FREEZING until every task stopped). Bounded: a
        // task in uninterruptible sleep can hold it; we kill anyway, the pidfd check
        // below still guards every signal.
        let freezeDeadline = min(deadline, Clock.monotonicUs() + 1_000_000)
        while !isFrozen() && Clock.monotonicUs() < freezeDeadline { usleep(1000) }

        let pids = CgroupFS.readPids(procs) ?? []
        var opened: [(pid: Int32, fd: OwnedFD)] = []
        for pid in pids {
            let fd = sbx_cg_pidfd_open(pid)
            if fd >= 0 { opened.append((pid, OwnedFD(fd))) }
            else if errno != ESRCH { errors.append(KernelError.cgroup("pidfd_open", procs, errno: errno, detail: "pid \(pid)")) }
        }
        // The pidfd names whatever process held the pid at open time. If the pid is
        // still listed now, that holder is a member: members cannot fork while
        // frozen, so no member could have taken a recycled pid in between.
        let still = Set(CgroupFS.readPids(procs) ?? [])
        for (pid, fd) in opened {
            if still.contains(pid), case let r = sbx_pidfd_send_signal(fd.raw, SIGKILL), r != 0, r != -ESRCH {
                errors.append(KernelError.cgroup("pidfd_send_signal SIGKILL", procs, errno: -r, detail: "pid \(pid)"))
            }
            fd.close()
        }
        do { try thaw() } catch let e as KernelError { errors.append(e) } catch {}
        return errors
    }

    /// Polls until every `cgroup.procs` file is empty or gone, or the deadline passes.
    func waitEmpty(_ procsFiles: [String], deadline: UInt64) -> KernelError? {
        var delay: UInt32 = 200
        while true {
            let busy = procsFiles.first { !(CgroupFS.readPids($0) ?? []).isEmpty }
            guard let busy else { return nil }
            if Clock.monotonicUs() >= deadline {
                return KernelError(operation: "kill", subject: busy,
                                   detail: "processes still present after \(RunCgroup.killTimeoutUs / 1000) ms")
            }
            usleep(delay)
            delay = min(delay * 2, 20_000)
        }
    }
}

/// The limits one `create` was asked for, and which of them turned out not to be
/// applicable (best-effort ones are skipped and listed; any other is an error).
/// Shared by both backends so the rule is written once.
struct LimitRequest {
    let limits: CgroupLimits
    let bestEffort: Set<String>
    /// Keep every refusal in `refused` instead of throwing the first
    /// (`RunCgroup.check`: all of them, in one answer).
    let collect: Bool
    /// Limit names asked for, best-effort, and not applied on this host.
    private(set) var notApplied: [String] = []
    /// Why each of `notApplied` was skipped (the host's reason, no advice).
    private(set) var reasons: [String: String] = [:]
    /// `collect`: the limits that cannot be applied and are not best-effort.
    private(set) var refused: [CgroupRefusal] = []

    init(limits: CgroupLimits, bestEffort: Set<String>, collect: Bool = false) {
        self.limits = limits; self.bestEffort = bestEffort; self.collect = collect
    }

    /// Records that `limit` cannot be applied: fine if best-effort, else the error.
    /// The implicit swap 0 that comes with a memory limit is moot when the memory
    /// limit itself was skipped (best-effort): it is not reported separately.
    mutating func missing(_ limit: String, path: String, detail: String) throws {
        if limit == "swap" && limits.swapBytes == nil && notApplied.contains("memory") { return }
        guard bestEffort.contains(limit) else {
            let error = KernelError.missingLimit(limit, path: path, why: detail)
            guard collect else { throw error }
            refused.append(CgroupRefusal(limit: limit, error: error))
            return
        }
        if !notApplied.contains(limit) { notApplied.append(limit); reasons[limit] = detail }
    }

    /// Whether `limit` is still to be applied (not skipped as best-effort).
    func applies(_ limit: String) -> Bool { !notApplied.contains(limit) }
}
