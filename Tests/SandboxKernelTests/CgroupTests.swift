import CSandbox
import CSandboxTestSupport
import Dispatch
import Glibc
import Synchronization
import Testing
@testable import SandboxKernel

// The cgroup facility against the real kernel, as root. A missing kernel feature
// FAILS a test (it would silently disable a protection in production) unless
// SANDBOX_TESTS_ALLOW_SKIP=1. Every test works under its own parent directory
// (`sbxtest-<random>` instead of `sandbox`), so it never meets real runs or other
// tests, and removes that parent — and everything under it — even when it fails.
// Nothing else on the host is written.

// MARK: - helpers


private func randomHex(_ n: Int = 8) -> String {
    var g = SystemRandomNumberGenerator()
    return String((0..<n).map { _ in "0123456789abcdef".randomElement(using: &g)! })
}

private func readFile(_ path: String) -> String? { CgroupFS.read(path).map(CgroupFS.trimmed) }
private func isDir(_ path: String) -> Bool { CgroupFS.isDirectory(path) }

/// The host as probed, but with a private parent name; removes that parent (after
/// killing and removing any run left in it) in every hierarchy when done.
private func withTestHost(_ host: CgroupHost = .probe(), _ body: (CgroupHost) throws -> Void) rethrows {
    var host = host
    host.parentName = "sbxtest-" + randomHex()
    defer { cleanUp(host) }
    try body(host)
}

private func parents(of host: CgroupHost) -> [String] {
    switch host.mode {
    case .unavailable: return []
    case .unified(let mp): return [(host.unifiedBase ?? mp) + "/" + host.parentName]
    case .hybrid(let v1, _): return Array(Set(v1.values)).sorted().map { $0 + "/" + host.parentName }
    }
}

private func cleanUp(_ host: CgroupHost) {
    precondition(host.parentName.hasPrefix("sbxtest-"), "tests only ever remove their own parents")
    for id in RunCgroup.existingRunIds(host: host) { RunCgroup.removeLeftovers(runId: id, host: host) }
    for p in parents(of: host) where isDir(p) {
        if let e = CgroupFS.rmdirRetrying(p) { Issue.record("cleanup: \(e)") }
    }
}

/// The cgroup2 mount point: /sys/fs/cgroup on pure v2, the `unified` one on hybrid.
private func cgroup2MountPoint() -> String? {
    CgroupHost.parseMountinfo(CgroupFS.read("/proc/self/mountinfo") ?? "").first { $0.fstype == "cgroup2" }?.mountPoint
}

/// A spawned `/bin/sh -c script`, with `fds[i]` available to it as fd 3+i (dup2 drops
/// O_CLOEXEC on the copy, exactly as the executor's child inherits joinFDs).
private struct Spawned {
    let pid: pid_t

    init(pid: pid_t) { self.pid = pid }

    init(_ script: String, fds: [Int32] = []) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (i, fd) in fds.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, Int32(3 + i)) }
        let args = ["/bin/sh", "-c", script]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, nil, &argv, environ)
        guard rc == 0 else { throw KernelError(operation: "posix_spawn", subject: "/bin/sh", errno: rc) }
        self.pid = pid
    }

    /// Reaps the process, polling up to `timeoutMs`; the raw wait status, or nil if
    /// it is still running.
    func reap(timeoutMs: Int = 5000) -> Int32? {
        var status: Int32 = 0
        for _ in 0..<(timeoutMs / 5) {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return status }
            if r < 0 && errno != EINTR { return nil }
            usleep(5000)
        }
        return nil
    }
}

private func killedBySIGKILL(_ status: Int32?) -> Bool {
    guard let status else { return false }
    // WIFSIGNALED / WTERMSIG are macros; decode as <bits/waitstatus.h> does.
    let sig = status & 0x7f
    return sig != 0 && sig != 0x7f && sig == SIGKILL
}

/// Polls `cgroup.procs` until it lists at least `count` processes (bounded).
private func waitForMembers(_ procs: String, count: Int, timeoutMs: Int = 5000) -> Bool {
    for _ in 0..<(timeoutMs / 5) {
        if (CgroupFS.readPids(procs) ?? []).count >= count { return true }
        usleep(5000)
    }
    return false
}

/// The shell that makes a spawned process join `cg` the way the executor's child
/// does: v1, "0" into each inherited procs fd (3, 4, …); v2 (where the executor uses
/// CLONE_INTO_CGROUP, which sh cannot), "0" into the run's cgroup.procs.
private func joinScript(_ cg: RunCgroup) -> String {
    switch layout(cg) {
    case .v1: return (0..<cg.joinFDs.count).map { "echo 0 >&\(3 + $0)" }.joined(separator: " && ")
    case .v2(let dir): return "echo 0 > \(dir)/cgroup.procs"
    case .none: return "false"
    }
}

/// Spawns `script` inside `cg`; exit 99 if joining failed.
private func spawnInside(_ cg: RunCgroup, _ script: String) throws -> Spawned {
    try Spawned("\(joinScript(cg)) || exit 99; \(script)", fds: cg.joinFDs)
}

/// Which backend a RunCgroup got, with its directories.
private enum Layout {
    case v1([String: String])
    case v2(String)
    case none
}

private func layout(_ cg: RunCgroup) -> Layout {
    if let v1 = cg.backend as? CgroupV1 { return .v1(v1.dirs) }
    if let v2 = cg.backend as? CgroupV2 { return .v2(v2.dir) }
    return .none
}

private func v1Dirs(_ cg: RunCgroup) -> [String: String] {
    if case .v1(let dirs) = layout(cg) { return dirs }
    return [:]
}

private let MiB: UInt64 = 1 << 20

/// A limit this host cannot apply: no errno, the limit named, and the hint.
/// The refusal of a limit this host cannot apply: alone ("memory limit cannot be
/// applied: …; mark it best-effort …") or named with the others refused at once
/// ("memory, swap limits cannot be applied: …; mark them best-effort …").
func isMissingLimit(_ e: KernelError, _ limit: String) -> Bool {
    guard e.operation == "create run cgroup", e.errno == nil, let d = e.detail else { return false }
    if d.hasPrefix("\(limit) limit cannot be applied: ") {
        return d.hasSuffix("; mark it best-effort in [resources] to run without it")
    }
    guard let r = d.firstRange(of: " limits cannot be applied: ") else { return false }
    return d[..<r.lowerBound].components(separatedBy: ", ").contains(limit)
        && d.contains("; mark them best-effort in [resources] (best_effort = [")
}

// MARK: - parsing (no kernel needed)

@Suite("Cgroup host probe: parsing")
struct CgroupProbeParsingTests {
    // This machine's table: v1 controllers, cpu and cpuacct on separate mounts,
    // an empty cgroup2 at /sys/fs/cgroup/unified.
    static let hybridMountinfo = """
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
    33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
    34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
    37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
    38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
    39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
    """

    @Test func hybridLayout() {
        let mode = CgroupHost.mode(of: CgroupHost.parseMountinfo(Self.hybridMountinfo))
        #expect(mode == .hybrid(v1: ["cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
                                     "memory": "/sys/fs/cgroup/memory", "freezer": "/sys/fs/cgroup/freezer",
                                     "blkio": "/sys/fs/cgroup/blkio", "pids": "/sys/fs/cgroup/pids"],
                                unified: "/sys/fs/cgroup/unified"))
    }

    @Test func pureV2AndCoMountedAndEscaped() {
        let v2 = "25 20 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
        #expect(CgroupHost.mode(of: CgroupHost.parseMountinfo(v2)) == .unified(mountPoint: "/sys/fs/cgroup"))

        // systemd's classic co-mount, optional fields, and an octal-escaped space.
        let comounted = """
        30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct
        31 25 0:27 / /sys/fs/cgroup/my\\040freezer rw - cgroup cgroup rw,freezer
        """
        let mode = CgroupHost.mode(of: CgroupHost.parseMountinfo(comounted))
        #expect(mode == .hybrid(v1: ["cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                                     "freezer": "/sys/fs/cgroup/my freezer"], unified: nil))

        // A stray v1 net_cls mount next to a full cgroup2 is still a v2 host for us.
        let netcls = v2 + "40 25 0:40 / /sys/fs/cgroup/net_cls rw - cgroup cgroup rw,net_cls\n"
        #expect(CgroupHost.mode(of: CgroupHost.parseMountinfo(netcls)) == .unified(mountPoint: "/sys/fs/cgroup"))
        #expect(CgroupHost.mode(of: []) == .unavailable)
    }

    @Test func invokerDirectoryHonoursMountRoot() {
        let m = CgroupHost.Mount(device: "0:30", root: "/", mountPoint: "/sys/fs/cgroup", fstype: "cgroup2")
        #expect(CgroupHost.invokerDirectory(selfCgroup: "0::/user.slice/user-1000.slice/session-2.scope\n", mount: m)
                == "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope")
        #expect(CgroupHost.invokerDirectory(selfCgroup: "0::/\n", mount: m) == "/sys/fs/cgroup")
        // A container that sees a bind of its own subtree.
        let sub = CgroupHost.Mount(device: "0:30", root: "/docker/abc", mountPoint: "/sys/fs/cgroup", fstype: "cgroup2")
        #expect(CgroupHost.invokerDirectory(selfCgroup: "0::/docker/abc/init\n", mount: sub) == "/sys/fs/cgroup/init")
        #expect(CgroupHost.invokerDirectory(selfCgroup: "0::/elsewhere\n", mount: sub) == nil)
        #expect(CgroupHost.invokerDirectory(selfCgroup: "4:memory:/x\n", mount: m) == nil)
        // Our cgroup outside our cgroup namespace's root has no directory under the mount.
        #expect(CgroupHost.invokerDirectory(selfCgroup: "0::/../x\n", mount: m) == nil)
        #expect(CgroupHost.invokerDirectory(selfCgroup: "0::/..\n", mount: m) == nil)
    }

    /// v1: the line naming the controller (co-mounted lists too), the mount's root
    /// removed, and no directory for a deleted path or one that climbs out with `..`.
    @Test func v1InvokerDirectoryFindsItsControllersLine() {
        let text = "12:pids:/ci/job-42\n7:cpu,cpuacct:/ci/job-42\n4:memory:/ci/job-42/../x\n3:freezer:/gone (deleted)\n2:blkio:/ci/..\n0::/ci\n"
        let mount = { (point: String, root: String) in
            CgroupHost.Mount(device: "0:40", root: root, mountPoint: point, fstype: "cgroup")
        }
        #expect(CgroupHost.v1InvokerDirectory(selfCgroup: text, controller: "pids", mount: mount("/sys/fs/cgroup/pids", "/"))
                == "/sys/fs/cgroup/pids/ci/job-42")
        #expect(CgroupHost.v1InvokerDirectory(selfCgroup: text, controller: "cpuacct", mount: mount("/sys/fs/cgroup/cpu,cpuacct", "/ci"))
                == "/sys/fs/cgroup/cpu,cpuacct/job-42")
        #expect(CgroupHost.v1InvokerDirectory(selfCgroup: text, controller: "memory", mount: mount("/sys/fs/cgroup/memory", "/")) == nil)
        #expect(CgroupHost.v1InvokerDirectory(selfCgroup: text, controller: "freezer", mount: mount("/sys/fs/cgroup/freezer", "/")) == nil)
        #expect(CgroupHost.v1InvokerDirectory(selfCgroup: text, controller: "blkio", mount: mount("/sys/fs/cgroup/blkio", "/")) == nil)
        // "cpu" is not "cpuacct", and a controller no line names has no directory.
        #expect(CgroupHost.v1InvokerDirectory(selfCgroup: "7:cpuacct:/a\n", controller: "cpu", mount: mount("/sys/fs/cgroup/cpu", "/")) == nil)
        #expect(CgroupHost.v1InvokerDirectory(selfCgroup: text, controller: "hugetlb", mount: mount("/sys/fs/cgroup/hugetlb", "/")) == nil)
        // A combining mark after `/..` does not hide the climb (as characters, `/../`
        // did not match it).
        #expect(CgroupHost.v1InvokerDirectory(selfCgroup: "4:memory:/../\u{301}x\n", controller: "memory",
                                              mount: mount("/sys/fs/cgroup/memory", "/")) == nil)
        // The cgroup2 line is not a v1 controller's.
        #expect(CgroupHost.v1InvokerDirectory(selfCgroup: "0::/ci\n", controller: "", mount: mount("/sys/fs/cgroup/x", "/")) == nil)
    }

    /// probe(procRoot:) on a fake /proc whose cgroup2 mount is a plain directory, to
    /// check controller and delegation reporting without touching a real hierarchy.
    @Test func probeFakeUnifiedHost() throws {
        var tmpl = Array("/tmp/sbxtest-proc-XXXXXX".utf8CString)
        guard let p = mkdtemp(&tmpl) else { Issue.record("mkdtemp: \(errno)"); return }
        let root = String(cString: p)
        defer { _ = system("rm -rf '\(root)'") }
        mkdir(root + "/self", 0o755)
        mkdir(root + "/cg", 0o755)
        try "0 0 0:1 / \(root)/cg rw - cgroup2 cgroup2 rw\n".write(to: root + "/self/mountinfo")
        try "0::/\n".write(to: root + "/self/cgroup")
        try "cpuset cpu io memory pids\n".write(to: root + "/cg/cgroup.controllers")
        try "memory pids\n".write(to: root + "/cg/cgroup.subtree_control")
        let host = CgroupHost.probe(procRoot: root)
        #expect(host.mode == .unified(mountPoint: root + "/cg"))
        #expect(host.controllers == ["memory", "pids"])
        #expect(host.canCreate)
        #expect(host.summary.contains { $0.hasPrefix("cpu: missing") && $0.contains("echo +cpu > \(root)/cg/cgroup.subtree_control") })
        #expect(host.summary.contains { $0.hasPrefix("io: missing") })

        // A limit whose controller is not enabled: refused before anything is made.
        #expect(throws: KernelError.self) {
            try RunCgroup.create(runId: "fake", limits: CgroupLimits(cpuQuotaUs: 50_000), bestEffort: [], host: host)
        }
        #expect(!isDir(root + "/cg/sandbox/fake"))
    }

    @Test func hybridWithoutSwapAccountingRefusesMemoryUnlessSwapIsBestEffort() throws {
        var tmpl = Array("/tmp/sbxtest-proc-XXXXXX".utf8CString)
        guard let p = mkdtemp(&tmpl) else { Issue.record("mkdtemp: \(errno)"); return }
        let root = String(cString: p)
        defer { _ = system("rm -rf '\(root)'") }
        for d in ["self", "memory", "freezer"] { mkdir(root + "/" + d, 0o755) }
        try """
        1 0 0:1 / \(root)/memory rw - cgroup cgroup rw,memory
        2 0 0:2 / \(root)/freezer rw - cgroup cgroup rw,freezer

        """.write(to: root + "/self/mountinfo")
        let host = CgroupHost.probe(procRoot: root)
        #expect(host.controllers == ["memory", "freezer"])
        #expect(!host.v1SwapLimit)
        #expect(host.summary.contains { $0.hasPrefix("swap: cannot be limited") })
        do {
            _ = try RunCgroup.create(runId: "fake", limits: CgroupLimits(memoryBytes: 64 * MiB), bestEffort: ["memory"], host: host)
            Issue.record("memory without swap accounting must be refused")
        } catch let e as KernelError {
            #expect(isMissingLimit(e, "swap"), "\(e)")
        }
        #expect(!isDir(root + "/memory/sandbox/fake") && !isDir(root + "/freezer/sandbox/fake"))
    }

    @Test func runIdValidation() {
        for bad in ["", "../x", "ABC", "a.b", "a/b", "cgroup.procs", String(repeating: "a", count: 65), "a b"] {
            #expect(throws: KernelError.self) { try RunCgroup.validate(runId: bad) }
        }
        for good in ["ab12", "test-0f", String(repeating: "9", count: 64)] {
            #expect(throws: Never.self) { try RunCgroup.validate(runId: good) }
        }
    }

    @Test func errorMessagesCarryOperationPathDataAndErrno() {
        let e = KernelError.cgroup("write", "/sys/fs/cgroup/memory/sandbox/ab12/memory.limit_in_bytes", data: "67108864", errno: EBUSY)
        #expect(e.operation == "write" && e.subject == "/sys/fs/cgroup/memory/sandbox/ab12/memory.limit_in_bytes" && e.errno == EBUSY)
        #expect(e.description == "write /sys/fs/cgroup/memory/sandbox/ab12/memory.limit_in_bytes: Device or resource busy (writing \"67108864\")")
        #expect(KernelError.cgroup("write", "/x/cgroup.subtree_control", data: "+a\n\"b\\", errno: EINVAL).detail == #"writing "+a\n\"b\\""#,
                "the data is escaped")
        let m = KernelError.missingLimit("io", path: "/sys/fs/cgroup/blkio/blkio.weight", why: "no weight file")
        #expect(m.errno == nil && m.subject == "/sys/fs/cgroup/blkio/blkio.weight")
        #expect(m.description == "create run cgroup /sys/fs/cgroup/blkio/blkio.weight: io limit cannot be applied: no weight file; mark it best-effort in [resources] to run without it")
        let id = #expect(throws: KernelError.self) { try RunCgroup.validate(runId: "ABC") }
        #expect(id?.description == "check run id ABC: must match [a-z0-9-]{1,64}" && id?.errno == nil)
    }

    @Test func blkioWeightScaling() {
        #expect(CgroupV1.blkioWeight(fromV2: 1) == 10)
        #expect(CgroupV1.blkioWeight(fromV2: 10_000) == 1000)
        #expect(CgroupV1.blkioWeight(fromV2: 100) == 19)   // v2 default → near the low end, as crun maps it
        #expect(CgroupV1.blkioWeight(fromV2: 5050) == 509)
    }
}

extension String {
    fileprivate func write(to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw KernelError.cgroup("open", path, errno: errno) }
        defer { close(fd) }
        try CgroupFS.writeFD(fd, self, path: path)
    }
}

// MARK: - the real kernel

@Suite("Cgroups on this kernel (root)", .serialized)
struct CgroupKernelTests {
    /// What is mounted on /sys/fs/cgroup decides the expected mode: cgroup2 → unified,
    /// a tmpfs of v1 mounts → hybrid. Then the limits we need must be usable.
    @Test func probeMatchesThisHost() {
        // Read the mount table independently of the parser under test.
        let table = CgroupFS.read("/proc/self/mountinfo") ?? ""
        let pureV2 = table.split(separator: "\n").contains { $0.contains(" /sys/fs/cgroup ") && $0.contains(" - cgroup2 ") }
        let host = CgroupHost.probe()
        for line in host.summary { print("doctor: \(line)") }
        if pureV2 {
            #expect(host.mode == .unified(mountPoint: "/sys/fs/cgroup"))
        } else {
            guard case .hybrid(let v1, let unified) = host.mode else { Issue.record("expected hybrid, got \(host.mode)"); return }
            #expect(v1["memory"] == "/sys/fs/cgroup/memory")
            #expect(v1["freezer"] != nil)
            if let u = cgroup2MountPoint() { #expect(unified == u) }
            #expect(host.summary.first?.hasPrefix("cgroup mode: hybrid") == true)
        }
        for c in ["memory", "pids", "cpu"] { _ = require(host.controllers.contains(c), "\(c) controller") }
        let t0 = Clock.monotonicUs()
        for _ in 0..<100 { _ = CgroupHost.probe() }
        print("measured: CgroupHost.probe(): \((Clock.monotonicUs() - t0) / 100) µs")
        _ = require(host.canCreate, "run cgroups can be created (root)")
    }

    @Test func createWritesLimitsBeforeAnyChildAndRemoveLeavesNothing() throws {
        try withTestHost { host in
            guard require(host.canCreate && ["memory", "pids", "cpu"].allSatisfy(host.controllers.contains), "memory, pids, cpu controllers") else { return }
            let id = "test-" + randomHex()
            let limits = CgroupLimits(memoryBytes: 64 * MiB, pids: 32, cpuQuotaUs: 50_000, cpuPeriodUs: 100_000)
            let cg = try RunCgroup.create(runId: id, limits: limits, bestEffort: [], host: host)
            #expect(cg.notApplied.isEmpty)
            #expect(RunCgroup.existingRunIds(host: host) == [id])
            switch layout(cg) {
            case .v1(let dirs):
                #expect(cg.cloneIntoFD == -1)
                #expect(cg.joinFDs.count == cg.directories.count)
                #expect(cg.directories.first == dirs["freezer"], "freezer is joined first")
                for c in ["freezer", "memory", "pids", "cpu", "cpuacct"] { #expect(dirs[c].map(isDir) == true, "\(c) directory") }
                #expect(dirs["blkio"] == nil)
                #expect(readFile(dirs["memory"]! + "/memory.limit_in_bytes") == "67108864")
                if host.v1SwapLimit { #expect(readFile(dirs["memory"]! + "/memory.memsw.limit_in_bytes") == "67108864") }
                #expect(readFile(dirs["pids"]! + "/pids.max") == "32")
                #expect(readFile(dirs["cpu"]! + "/cpu.cfs_quota_us") == "50000")
                #expect(readFile(dirs["cpu"]! + "/cpu.cfs_period_us") == "100000")
            case .v2(let dir):
                #expect(cg.cloneIntoFD >= 0 && cg.joinFDs.isEmpty)
                #expect(readFile(dir + "/memory.max") == "67108864")
                #expect(readFile(dir + "/memory.swap.max") == "0")
                #expect(readFile(dir + "/pids.max") == "32")
                #expect(readFile(dir + "/cpu.max") == "50000 100000")
            case .none:
                Issue.record("no backend")
            }
            let s = cg.stats()
            #expect(!s.oomKilled && s.oomKills == 0 && !s.pidsLimitHit)
            #expect(s.memoryPeakBytes != nil)
            #expect(s.cpuUserUs != nil && s.cpuSystemUs != nil)
            #expect(s.throttledUs == 0)

            #expect(cg.remove().isEmpty)
            for d in cg.directories { #expect(!isDir(d), "\(d) removed") }
            #expect(RunCgroup.existingRunIds(host: host).isEmpty)
            #expect(cg.remove().isEmpty, "remove twice is fine")
            #expect(cg.cloneIntoFD == -1 && cg.joinFDs.isEmpty)
        }
    }

    /// The executor's v1 path: the child inherits joinFDs and writes "0" into each;
    /// it forks a grandchild that outlives it (a daemon), and killAll gets both.
    @Test func v1ChildJoinsThroughInheritedFDsAndKillAllKillsEverything() throws {
        try withTestHost { host in
            guard case .hybrid = host.mode else { return }   // pure v2: the v2 test covers killing
            guard require(host.canCreate, "run cgroups can be created") else { return }
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: CgroupLimits(pids: 16), bestEffort: [], host: host)
            defer { cg.remove() }
            let child = try spawnInside(cg, "sleep 30 & exec sleep 30")
            cg.closeChildFDs()
            let freezer = v1Dirs(cg)["freezer"]!
            #expect(waitForMembers(freezer + "/cgroup.procs", count: 2), "child and grandchild joined")
            for d in cg.directories {
                #expect(CgroupFS.readPids(d + "/cgroup.procs")?.contains(child.pid) == true, "joined \(d)")
            }
            let start = Clock.monotonicUs()
            let errors = cg.killAll()
            print("measured: v1 killAll (freeze, 2 pidfd kills, thaw, wait empty): \(Clock.monotonicUs() - start) µs")
            #expect(errors.isEmpty, "\(errors)")
            for d in cg.directories { #expect(CgroupFS.readPids(d + "/cgroup.procs") == [], "\(d) empty") }
            #expect(readFile(freezer + "/freezer.state") == "THAWED")
            #expect(killedBySIGKILL(child.reap()), "child reaped, killed by SIGKILL")
            #expect(cg.remove().isEmpty)
        }
    }

    /// `remove()` tries `rmdir` first and kills only when the kernel refuses it: with
    /// processes of the run still alive (a daemon and its parent), the first `rmdir`
    /// is refused, nothing is removed before the kill (the freezer, which the v1 kill
    /// needs, is tried last), and `remove()` alone kills both and removes every
    /// directory. Control: `removeIfEmpty` on the live run says no.
    @Test func removeKillsWhatIsStillRunningBeforeItRemoves() throws {
        try withTestHost { host in
            guard require(host.canCreate, "run cgroups can be created") else { return }
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: CgroupLimits(pids: 16), bestEffort: [], host: host)
            defer { cg.remove() }
            let child = try spawnInside(cg, "sleep 30 & exec sleep 30")
            cg.closeChildFDs()
            let first = cg.directories[0] + "/cgroup.procs"
            #expect(waitForMembers(first, count: 2), "child and grandchild joined")
            #expect(cg.backend?.removeIfEmpty() == false, "control: a cgroup holding processes was removed")
            for d in cg.directories { #expect(isDir(d), "\(d) removed while processes were in it") }
            #expect(cg.remove().isEmpty)
            for d in cg.directories { #expect(!isDir(d), "\(d) removed") }
            #expect(killedBySIGKILL(child.reap()), "child reaped, killed by SIGKILL")
        }
    }

    /// swap = 32 MiB on top of 64 MiB memory: v1 limits memory+swap together.
    @Test func explicitSwapIsAddedToTheMemoryLimit() throws {
        try withTestHost { host in
            guard require(host.controllers.contains("memory") && host.canCreate, "memory controller") else { return }
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: CgroupLimits(memoryBytes: 64 * MiB, swapBytes: 32 * MiB),
                                          bestEffort: [], host: host)
            defer { cg.remove() }
            switch layout(cg) {
            case .v1(let dirs):
                guard require(host.v1SwapLimit, "swap accounting (memory.memsw.limit_in_bytes)") else { return }
                #expect(readFile(dirs["memory"]! + "/memory.limit_in_bytes") == String(64 * MiB))
                #expect(readFile(dirs["memory"]! + "/memory.memsw.limit_in_bytes") == String(96 * MiB))
            case .v2(let dir):
                #expect(readFile(dir + "/memory.swap.max") == String(32 * MiB))
            case .none:
                Issue.record("no backend")
            }
        }
    }

    /// A run without limits joins only freezer and cpuacct on v1: the limiting
    /// hierarchies would take it out of the invoker's own memory/pids/cpu cgroup.
    @Test func v1RunWithoutLimitsStaysInInvokersLimitingCgroups() throws {
        try withTestHost { host in
            guard case .hybrid(let v1, _) = host.mode else { return }
            guard require(host.canCreate, "run cgroups can be created") else { return }
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: CgroupLimits(), bestEffort: [], host: host)
            defer { cg.remove() }
            let dirs = v1Dirs(cg)
            #expect(Set(dirs.keys) == Set(["freezer", "cpuacct"].filter { v1[$0] != nil }))
            #expect(cg.joinFDs.count == cg.directories.count)
            let s = cg.stats()
            #expect(s.memoryPeakBytes == nil && s.cpuUserUs != nil)
            #expect(cg.remove().isEmpty)
        }
    }

    @Test func oomIsReportedFromTheCgroup() throws {
        try withTestHost { host in
            guard require(host.controllers.contains("memory") && host.canCreate, "memory controller") else { return }
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: CgroupLimits(memoryBytes: 32 * MiB), bestEffort: [], host: host)
            defer { cg.remove() }
            // tail keeps a newline-free stream in memory: it grows until the limit.
            let child = try spawnInside(cg, "head -c 268435456 /dev/zero | tail > /dev/null")
            cg.closeChildFDs()
            let status = child.reap(timeoutMs: 20_000)
            #expect(status != nil, "the pipeline ended")
            let s = cg.stats()
            print("measured: OOM at 32 MiB: \(s)")
            #expect(s.oomKilled && s.oomKills >= 1)
            if let peak = s.memoryPeakBytes { #expect(peak <= 32 * MiB && peak >= 28 * MiB, "peak \(peak)") }
            else { Issue.record("no peak") }
        }
    }

    @Test func pidsLimitHitAndManyProcessesKilled() throws {
        try withTestHost { host in
            guard require(host.controllers.contains("pids") && host.canCreate, "pids controller") else { return }
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: CgroupLimits(pids: 8), bestEffort: [], host: host)
            defer { cg.remove() }
            // The forking happens in a subshell, because sh exits when fork fails:
            // sh + subshell + 6 sleeps fill the 8 slots, the 7th fork fails, the
            // subshell exits, and sh (exec'd into sleep) + 6 sleeps remain.
            let child = try spawnInside(cg, "(for i in $(seq 20); do sleep 30 & done) 2>/dev/null; exec sleep 30")
            let procs = (v1Dirs(cg)["pids"] ?? cg.directories[0]) + "/cgroup.procs"
            cg.closeChildFDs()
            #expect(waitForMembers(procs, count: 7), "sh and 6 sleeps")
            usleep(100_000)
            #expect((CgroupFS.readPids(procs) ?? []).count == 7)
            #expect(cg.stats().pidsLimitHit)
            #expect(cg.killAll().isEmpty)
            #expect(CgroupFS.readPids(procs) == [])
            #expect(killedBySIGKILL(child.reap()))
        }
    }

    /// A process tree that keeps forking while it is being killed (a fork bomb held
    /// at pids.max): killAll still empties it — v1 freezes it first, v2's cgroup.kill
    /// catches forks in flight.
    @Test func killAllStopsAForkingTree() throws {
        try withTestHost { host in
            guard require(host.controllers.contains("pids") && host.canCreate, "pids controller") else { return }
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: CgroupLimits(pids: 32), bestEffort: [], host: host)
            defer { cg.remove() }
            let child = try spawnInside(cg, "while :; do (sleep 30 &) 2>/dev/null; sh -c 'sleep 30 &' 2>/dev/null; done")
            cg.closeChildFDs()
            let procs = (v1Dirs(cg)["pids"] ?? cg.directories[0]) + "/cgroup.procs"
            #expect(waitForMembers(procs, count: 25), "the tree grew")
            usleep(200_000)
            let start = Clock.monotonicUs()
            let errors = cg.killAll()
            print("measured: killAll of a forking tree at pids.max 32: \(Clock.monotonicUs() - start) µs")
            #expect(errors.isEmpty, "\(errors)")
            for d in cg.directories { #expect(CgroupFS.readPids(d + "/cgroup.procs") == [], "\(d) empty") }
            #expect(cg.stats().pidsLimitHit)
            #expect(killedBySIGKILL(child.reap()))
        }
    }

    @Test func cpuQuotaHolds() throws {
        try withTestHost { host in
            guard require(host.controllers.contains("cpu") && host.canCreate, "cpu controller") else { return }
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: CgroupLimits(cpuQuotaUs: 50_000), bestEffort: [], host: host)
            defer { cg.remove() }
            // A busy loop that measures its own CPU time (the kernel's exact runtime,
            // on v1 and v2 alike: v1's cpuacct.usage_user/usage_sys are sampled at the
            // tick and a loaded CI host read 0.71 s of them in a 1 s window at a 0.5 s
            // quota) over its own wall-clock window, which starts 0.2 s in, once it
            // runs in its cgroups (a CI run saw 0.73 s of CPU in a 1.0 s window counted
            // from the spawn, the start of a run not yet throttled counted in). The
            // window is measured, not assumed: on a loaded host it can stretch.
            let out = "/tmp/sandbox-cpu-quota-\(randomHex())"
            defer { unlink(out) }
            let loop = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 0.2: pass\nc, w = time.process_time(), time.monotonic()\nwhile time.monotonic() - w < 1.0: pass\nprint(int((time.process_time() - c) * 1e6), int((time.monotonic() - w) * 1e6))"
            let child = try spawnInside(cg, "exec python3 -c '\(loop)' > \(out)")
            cg.closeChildFDs()
            let status = child.reap(timeoutMs: 20_000)
            if status == nil { cg.killAll(); _ = child.reap() }
            let s = cg.stats()
            let fields = (readFile(out) ?? "").split(separator: " ").compactMap { UInt64($0) }
            #expect(status == 0 && fields.count == 2, "the loop reported: \(readFile(out) ?? "nothing"), status \(status)")
            guard fields.count == 2 else { return }
            let (cpu, window) = (fields[0], fields[1])
            print("measured: cpu 0.5 for \(window) µs wall → \(cpu) µs CPU, throttled \(s.throttledUs ?? 0) µs")
            // Half the window, plus the 0.15 s the bound has always allowed (650 ms
            // for the nominal 1 s).
            #expect(cpu <= window / 2 + 150_000, "at most ~0.5 s of CPU per second of the window")
            #expect(cpu >= 100_000, "it did run")
            // Linux 6.18's v1 throttled_time under-reports (≈0.15 s/s here for a
            // 0.5 s/s throttle, sometimes 0 over 1 s), so only require it readable.
            #expect(s.throttledUs != nil)
        }
    }

    /// v1's exact total (cpuacct.usage) split in the tick-sampled proportion, as the
    /// kernel scales a task's times: never more than the total, all of it to one side
    /// when the other saw no tick.
    @Test func v1CPUTimeIsTheExactTotalSplitByTheTicks() {
        #expect(CgroupV1.split(totalNs: 500_000_000, userNs: 600_000_000, systemNs: 130_000_000)
                == (userNs: 410_958_905, systemNs: 89_041_095))
        #expect(CgroupV1.split(totalNs: 3_000_000, userNs: 0, systemNs: 0) == (userNs: 3_000_000, systemNs: 0))
        #expect(CgroupV1.split(totalNs: 3_000_000, userNs: 0, systemNs: 4_000_000) == (userNs: 0, systemNs: 3_000_000))
        #expect(CgroupV1.split(totalNs: 7, userNs: .max - 1, systemNs: .max - 1) == (userNs: 4, systemNs: 3))
    }

    @Test func ioIsBestEffortOrRefusedClearly() throws {
        try withTestHost { host in
            guard require(host.canCreate, "run cgroups can be created") else { return }
            let hasIO = host.controllers.contains("io") || host.controllers.contains("blkio")
            let id = "test-" + randomHex()
            if hasIO {
                // This host can weight io: it is applied, not skipped.
                let cg = try RunCgroup.create(runId: id, limits: CgroupLimits(ioWeight: 500), bestEffort: ["io"], host: host)
                #expect(cg.notApplied.isEmpty)
                #expect(cg.remove().isEmpty)
                return
            }
            let cg = try RunCgroup.create(runId: id, limits: CgroupLimits(pids: 10, ioWeight: 500), bestEffort: ["io"], host: host)
            #expect(cg.notApplied == ["io"])
            if case .v1(let dirs) = layout(cg) { #expect(dirs["blkio"] == nil, "no blkio directory for a skipped limit") }
            #expect(cg.remove().isEmpty)

            do {
                _ = try RunCgroup.create(runId: id, limits: CgroupLimits(pids: 10, ioWeight: 500), bestEffort: [], host: host)
                Issue.record("io without best-effort must throw")
            } catch let e as KernelError {
                print("measured: io refusal message: \(e)")
                #expect(isMissingLimit(e, "io"), "\(e)")
            }
            #expect(RunCgroup.existingRunIds(host: host).isEmpty, "a refused create leaves nothing")
        }
    }

    /// The v2 backend on a real cgroup2 hierarchy (the empty `unified` one on hybrid
    /// hosts, where v1 holds every controller, so limits are refused there).
    @Test func v2CreateKillStatsRemoveAndMissingController() throws {
        guard let mp = cgroup2MountPoint() else { _ = require(false, "a cgroup2 mount"); return }
        try withTestHost(CgroupHost(mode: .unified(mountPoint: mp))) { host in
            guard require(host.canCreate, "cgroup2 writable") else { return }
            let id = "test-" + randomHex()
            let cg = try RunCgroup.create(runId: id, limits: CgroupLimits(), bestEffort: [], host: host)
            defer { cg.remove() }
            let dir = mp + "/" + host.parentName + "/" + id
            #expect(cg.directories == [dir] && isDir(dir))
            #expect(cg.cloneIntoFD >= 0 && cg.joinFDs.isEmpty)
            var st = stat()
            #expect(fstat(cg.cloneIntoFD, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR)
            #expect(fcntl(cg.cloneIntoFD, F_GETFD) & FD_CLOEXEC != 0)

            // The executor's way: born inside with clone3(CLONE_INTO_CGROUP), so it is
            // a member the moment clone3 returns.
            let born = sbx_cg_clone_into_paused(cg.cloneIntoFD)
            guard born > 0 else { Issue.record("clone3(CLONE_INTO_CGROUP): \(String(cString: strerror(errno)))"); return }
            #expect(CgroupFS.readPids(dir + "/cgroup.procs") == [born], "born inside, no PID written")
            let child = try spawnInside(cg, "sleep 30 & exec sleep 30")
            #expect(waitForMembers(dir + "/cgroup.procs", count: 3))
            let s = cg.stats()
            #expect(s.cpuUserUs != nil, "cpu.stat is a core file")
            let start = Clock.monotonicUs()
            let errors = cg.killAll()
            print("measured: v2 cgroup.kill + wait empty: \(Clock.monotonicUs() - start) µs")
            #expect(errors.isEmpty, "\(errors)")
            #expect(CgroupFS.readPids(dir + "/cgroup.procs") == [])
            #expect(killedBySIGKILL(child.reap()))
            #expect(killedBySIGKILL(Spawned(pid: born).reap()))
            #expect(cg.remove().isEmpty)
            #expect(!isDir(dir))
            #expect(cg.remove().isEmpty)

            // Limits: applied where the controller is enabled, refused where not.
            for (name, limits) in [("memory", CgroupLimits(memoryBytes: 64 * MiB)), ("pids", CgroupLimits(pids: 32)),
                                   ("cpu", CgroupLimits(cpuQuotaUs: 50_000))] {
                let rid = "test-" + randomHex()
                if host.controllers.contains(name) {
                    let c = try RunCgroup.create(runId: rid, limits: limits, bestEffort: [], host: host)
                    #expect(c.notApplied.isEmpty)
                    #expect(c.remove().isEmpty)
                } else {
                    do {
                        _ = try RunCgroup.create(runId: rid, limits: limits, bestEffort: [], host: host)
                        Issue.record("\(name) without its controller must throw")
                    } catch let e as KernelError {
                        #expect(isMissingLimit(e, name), "\(e)")
                        #expect(e.description.contains("\(name) controller is not enabled"))
                    }
                    let c = try RunCgroup.create(runId: rid, limits: limits, bestEffort: [name], host: host)
                    #expect(c.notApplied == [name], "implicit swap 0 is not reported separately")
                    #expect(c.remove().isEmpty)
                }
                #expect(!isDir(mp + "/" + host.parentName + "/" + rid))
            }
        }
    }

    /// The v2 backend's freeze and events on the real unified hierarchy, and the kill
    /// it falls back to without cgroup.kill (Linux < 5.14): freeze, pidfd SIGKILL to
    /// each listed pid, thaw.
    @Test func v2FreezeEventsAndPidfdKillOnTheUnifiedHierarchy() throws {
        guard let mp = cgroup2MountPoint() else { _ = require(false, "a cgroup2 mount"); return }
        try withTestHost(CgroupHost(mode: .unified(mountPoint: mp))) { host in
            guard require(host.canCreate, "cgroup2 writable") else { return }
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: CgroupLimits(), bestEffort: [], host: host)
            defer { cg.remove() }
            guard let v2 = cg.backend as? CgroupV2 else { Issue.record("expected the v2 backend"); return }
            #expect(v2.events()! == (populated: false, frozen: false))
            let child = try spawnInside(cg, "sleep 30 & exec sleep 30")
            #expect(waitForMembers(v2.dir + "/cgroup.procs", count: 2))
            #expect(v2.events()?.populated == true)

            guard require(CgroupFS.exists(v2.dir + "/cgroup.freeze"), "cgroup.freeze (Linux 5.2)") else { return }
            try v2.freeze()
            let deadline = Clock.monotonicUs() + 2_000_000
            while !v2.isFrozen() && Clock.monotonicUs() < deadline { usleep(1000) }
            #expect(v2.isFrozen(), "cgroup.events says frozen 1")
            #expect(readFile(v2.dir + "/cgroup.freeze") == "1")
            try v2.thaw()
            while v2.isFrozen() && Clock.monotonicUs() < deadline + 2_000_000 { usleep(1000) }
            #expect(!v2.isFrozen())

            let start = Clock.monotonicUs()
            let errors = v2.freezeKillThaw(procs: v2.dir + "/cgroup.procs", deadline: Clock.monotonicUs() + RunCgroup.killTimeoutUs)
            #expect(errors.isEmpty, "\(errors)")
            #expect(v2.waitEmpty(v2.procsFiles, deadline: Clock.monotonicUs() + RunCgroup.killTimeoutUs) == nil)
            print("measured: v2 freeze + pidfd kills + thaw + wait empty: \(Clock.monotonicUs() - start) µs")
            #expect(killedBySIGKILL(child.reap()))
            #expect(v2.events()! == (populated: false, frozen: false))
            #expect(cg.remove().isEmpty)
        }
    }

    /// Two threads tearing one run down at once (an undo entry and a cancelling
    /// harness): the lock makes them take turns; both see the run gone, neither an error.
    @Test func concurrentRemoveTakesTurns() throws {
        try withTestHost { host in
            guard require(host.canCreate, "run cgroups can be created") else { return }
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: CgroupLimits(pids: 16), bestEffort: [], host: host)
            let child = try spawnInside(cg, "sleep 30 & exec sleep 30")
            cg.closeChildFDs()
            #expect(waitForMembers(cg.directories[0] + "/cgroup.procs", count: 2))
            let results = Mutex<[[KernelError]]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                let r = cg.remove()
                results.withLock { $0.append(r) }
            }
            let all = results.withLock { $0 }
            #expect(all.count == 2)
            #expect(all.allSatisfy { $0.isEmpty }, "\(all)")
            for d in cg.directories { #expect(!isDir(d)) }
            #expect(killedBySIGKILL(child.reap()))
        }
    }

    /// `sandbox gc`: the supervisor died with the run alive; removal by name kills it
    /// and removes every directory.
    @Test func removeLeftoversByName() throws {
        try withTestHost { host in
            guard require(host.canCreate, "run cgroups can be created") else { return }
            let id = "test-" + randomHex()
            let child: Spawned
            do {
                let cg = try RunCgroup.create(runId: id, limits: CgroupLimits(memoryBytes: 64 * MiB), bestEffort: [], host: host)
                child = try spawnInside(cg, "exec sleep 30")
                #expect(waitForMembers(cg.directories[0] + "/cgroup.procs", count: 1))
                cg.closeChildFDs()
            }   // the RunCgroup is gone; only the name is left
            #expect(RunCgroup.existingRunIds(host: host) == [id])
            #expect(RunCgroup.removeLeftovers(runId: id, host: host).isEmpty)
            #expect(killedBySIGKILL(child.reap()))
            #expect(RunCgroup.existingRunIds(host: host).isEmpty)
            for p in parents(of: host) { #expect(!isDir(p + "/" + id)) }
            #expect(RunCgroup.removeLeftovers(runId: id, host: host).isEmpty, "again: nothing to do")
            #expect(!RunCgroup.removeLeftovers(runId: "../etc", host: host).isEmpty, "invalid id refused")
        }
    }

    /// 50 runs with limits created and removed in parallel: none is left, and what
    /// one costs.
    @Test func fiftyParallelRunsLeaveNothing() async throws {
        var host = CgroupHost.probe()
        host.parentName = "sbxtest-" + randomHex()
        defer { cleanUp(host) }
        guard require(host.canCreate, "run cgroups can be created") else { return }
        let limits = CgroupLimits(memoryBytes: 64 * MiB, pids: 32, cpuQuotaUs: 50_000)
        let h = host
        let start = Clock.monotonicUs()
        let results: [(UInt64, UInt64, String?)] = await withTaskGroup(of: (UInt64, UInt64, String?).self) { group in
            for _ in 0..<50 {
                group.addTask {
                    let t0 = Clock.monotonicUs()
                    do {
                        let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: limits, bestEffort: [], host: h)
                        let t1 = Clock.monotonicUs()
                        _ = cg.stats()
                        let errs = cg.remove()
                        return (t1 - t0, Clock.monotonicUs() - t1, errs.isEmpty ? nil : "\(errs)")
                    } catch {
                        return (0, 0, "\(error)")
                    }
                }
            }
            var out: [(UInt64, UInt64, String?)] = []
            for await r in group { out.append(r) }
            return out
        }
        let wall = Clock.monotonicUs() - start
        for r in results { if let e = r.2 { Issue.record("\(e)") } }
        let creates = results.map(\.0).sorted(), removes = results.map(\.1).sorted()
        print("measured: 50 parallel create+stats+remove: wall \(wall / 1000) ms; create median \(creates[25]) µs, max \(creates[49]) µs; remove median \(removes[25]) µs, max \(removes[49]) µs")
        #expect(RunCgroup.existingRunIds(host: host).isEmpty)

        // Sequential cost of one run, for the record.
        let t0 = Clock.monotonicUs()
        for _ in 0..<20 {
            let cg = try RunCgroup.create(runId: "test-" + randomHex(), limits: limits, bestEffort: [], host: host)
            cg.remove()
        }
        print("measured: sequential create+remove with memory/pids/cpu: \((Clock.monotonicUs() - t0) / 20) µs per run")
        #expect(RunCgroup.existingRunIds(host: host).isEmpty)
    }
}

/// `trimmed` (kernel files' text) reads ASCII whitespace by its byte: the same as
/// `isWhitespace` on every ASCII character, and `isWhitespace` beyond ASCII.
@Suite struct KernelTextTrimmingTests {
    func reference(_ s: String) -> String {
        var t = Substring(s)
        while let c = t.first, c.isWhitespace { t.removeFirst() }
        while let c = t.last, c.isWhitespace { t.removeLast() }
        return String(t)
    }

    @Test func agreesWithIsWhitespace() {
        var scalars = (0...0x7F).compactMap(Unicode.Scalar.init)
        scalars += ["\u{85}", "\u{A0}", "\u{2028}", "\u{3000}", "\u{200B}", "\u{301}", "é"]
        for u in scalars {
            for s in [String(u), "\(u)x\(u)", "\(u)\(u)1 2\(u)", "\r\n\(u)\r\n"] {
                #expect(s.trimmed == reference(s), "U+\(String(u.value, radix: 16)) in \(s.debugDescription)")
            }
        }
    }
}
