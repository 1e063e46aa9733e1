import Glibc
import Testing
@testable import SandboxKernel

// The v2 backend's controller files against a FAKED cgroup2 tree: a temp directory
// holding the files the kernel would show, in the kernel's exact formats
// (Documentation/admin-guide/cgroup-v2.rst). This host's cgroup2 hierarchy has no
// controllers (they are bound to v1), so memory.max, memory.swap.max, pids.max,
// cpu.max, io.weight, io.bfq.weight, memory.events, memory.peak, pids.events and
// cpu.stat are never written or read on a real kernel here; these tests pin every
// byte the backend writes and every value it parses. Membership, kill, freeze and
// events run on the real unified hierarchy in CgroupTests. No root needed, nothing
// outside the temp directory is touched.

private let MiB: UInt64 = 1 << 20

/// A temp dir laid out like a cgroup2 mount with all controllers enabled for
/// children: `<root>/sandbox/<run>` is a run directory as mkdir makes it on a kernel
/// with memory, pids, cpu and io enabled (controller files at their defaults).
private final class FakeCgroup2 {
    let root: String
    var parent: String { root + "/sandbox" }
    var run: String { parent + "/fake" }

    init() throws {
        var tmpl = Array("/tmp/sbxtest-cgroup2-XXXXXX".utf8CString)
        guard let p = mkdtemp(&tmpl) else { throw KernelError.cgroup("mkdtemp", "/tmp", errno: errno) }
        root = String(cString: p)
        try put("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
        try put("cgroup.subtree_control", "cpu io memory pids\n")
        mkdir(parent, 0o755)
        try put("sandbox/cgroup.controllers", "cpu io memory pids\n")
        try put("sandbox/cgroup.subtree_control", "\n")
        mkdir(run, 0o755)
        for (file, text) in [
            ("cgroup.procs", ""),
            ("cgroup.events", "populated 0\nfrozen 0\n"),
            ("cgroup.freeze", "0\n"),
            ("cgroup.kill", ""),
            ("memory.max", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.peak", "0\n"),
            ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"),
            ("pids.max", "max\n"),
            ("pids.events", "max 0\n"),
            ("cpu.max", "max 100000\n"),
            ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n"),
            ("io.weight", "default 100\n"),
        ] { try put("sandbox/fake/" + file, text) }
    }

    deinit { _ = system("rm -rf '\(root)'") }

    /// Writes a file under the root (replacing it), as the kernel would show it.
    func put(_ relative: String, _ text: String) throws {
        let path = root + "/" + relative
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw KernelError.cgroup("open", path, errno: errno) }
        defer { close(fd) }
        try CgroupFS.writeFD(fd, text, path: path)
    }

    func remove(_ relative: String) { unlink(root + "/" + relative) }

    /// The exact bytes of a file under the root.
    func bytes(_ relative: String) -> String? { CgroupFS.read(root + "/" + relative) }

    var host: CgroupHost { CgroupHost(mode: .unified(mountPoint: root), euid: 0) }
    var cgroup: CgroupV2 { CgroupV2(dir: run) }
}

@Suite("cgroup v2 controller files on a faked cgroup2 tree")
struct CgroupV2FakeTreeTests {
    @Test func probeReadsControllersAndSubtreeControl() throws {
        let fake = try FakeCgroup2()
        try fake.put("cgroup.subtree_control", "memory pids\n")
        let host = fake.host
        #expect(host.unifiedBase == fake.root)
        #expect(host.controllers == ["memory", "pids"])
        #expect(host.canCreate)
        #expect(host.summary.contains { $0.hasPrefix("cpu: missing") && $0.contains("echo +cpu > \(fake.root)/cgroup.subtree_control") })
    }

    /// memory.max, memory.swap.max, pids.max, cpu.max, io.weight: one write each, the
    /// exact bytes the kernel parses.
    @Test func applyWritesEveryLimitInTheKernelsFormat() throws {
        let fake = try FakeCgroup2()
        var request = LimitRequest(limits: CgroupLimits(memoryBytes: 64 * MiB, pids: 32, cpuQuotaUs: 50_000,
                                                        cpuPeriodUs: 100_000, ioWeight: 500), bestEffort: [])
        try fake.cgroup.apply(&request)
        #expect(request.notApplied.isEmpty)
        #expect(fake.bytes("sandbox/fake/memory.max") == "67108864")
        #expect(fake.bytes("sandbox/fake/memory.swap.max") == "0", "swap nil with memory = swap 0")
        #expect(fake.bytes("sandbox/fake/pids.max") == "32")
        #expect(fake.bytes("sandbox/fake/cpu.max") == "50000 100000")
        #expect(fake.bytes("sandbox/fake/io.weight") == "default 500")
    }

    @Test func explicitSwapDefaultPeriodAndWeightClamp() throws {
        let fake = try FakeCgroup2()
        var request = LimitRequest(limits: CgroupLimits(memoryBytes: 64 * MiB, swapBytes: 32 * MiB,
                                                        cpuQuotaUs: 150_000, ioWeight: 20_000), bestEffort: [])
        try fake.cgroup.apply(&request)
        #expect(fake.bytes("sandbox/fake/memory.swap.max") == "33554432", "v2 swap is separate from memory")
        #expect(fake.bytes("sandbox/fake/cpu.max") == "150000 100000", "the kernel's default period")
        #expect(fake.bytes("sandbox/fake/io.weight") == "default 10000", "clamped to io.weight's 1…10000")
        #expect(fake.bytes("sandbox/fake/pids.max") == "max\n", "no pids limit: untouched")
    }

    /// Without blk-iocost there is no io.weight; BFQ's io.bfq.weight (1…1000) takes
    /// the same "default N" form.
    @Test func ioFallsBackToBfqWeight() throws {
        let fake = try FakeCgroup2()
        fake.remove("sandbox/fake/io.weight")
        try fake.put("sandbox/fake/io.bfq.weight", "default 100\n")
        var request = LimitRequest(limits: CgroupLimits(ioWeight: 500), bestEffort: [])
        try fake.cgroup.apply(&request)
        #expect(fake.bytes("sandbox/fake/io.bfq.weight") == "default 500")
        var big = LimitRequest(limits: CgroupLimits(ioWeight: 5000), bestEffort: [])
        try fake.cgroup.apply(&big)
        #expect(fake.bytes("sandbox/fake/io.bfq.weight") == "default 1000", "clamped to BFQ's 1…1000")
    }

    /// A controller enabled but a limit file absent (swap accounting off; no io
    /// weight file) is a missing limit: refused, or skipped and listed if best-effort.
    @Test func absentSwapOrIoFileIsAMissingLimit() throws {
        let fake = try FakeCgroup2()
        fake.remove("sandbox/fake/memory.swap.max")
        var strict = LimitRequest(limits: CgroupLimits(memoryBytes: 64 * MiB), bestEffort: [])
        do {
            try fake.cgroup.apply(&strict)
            Issue.record("a memory limit without swap accounting must be refused")
        } catch let e as KernelError {
            #expect(isMissingLimit(e, "swap"), "\(e)")
            #expect(e.subject == fake.run + "/memory.swap.max")
            #expect(e.description.contains("swap accounting is off"))
        }
        var lenient = LimitRequest(limits: CgroupLimits(memoryBytes: 64 * MiB), bestEffort: ["swap"])
        try fake.cgroup.apply(&lenient)
        #expect(lenient.notApplied == ["swap"])
        #expect(fake.bytes("sandbox/fake/memory.max") == "67108864")

        fake.remove("sandbox/fake/io.weight")
        var io = LimitRequest(limits: CgroupLimits(ioWeight: 100), bestEffort: [])
        #expect(throws: KernelError.self) { try fake.cgroup.apply(&io) }
        var ioBestEffort = LimitRequest(limits: CgroupLimits(ioWeight: 100), bestEffort: ["io"])
        try fake.cgroup.apply(&ioBestEffort)
        #expect(ioBestEffort.notApplied == ["io"])
    }

    /// A failed write names the file, the data and errno (the kernel's EINVAL for a
    /// value it does not parse looks the same; here a directory stands in for it).
    @Test func aFailedLimitWriteNamesFileDataAndErrno() throws {
        let fake = try FakeCgroup2()
        fake.remove("sandbox/fake/pids.max")
        mkdir(fake.run + "/pids.max", 0o755)
        var request = LimitRequest(limits: CgroupLimits(pids: 32), bestEffort: [])
        do {
            try fake.cgroup.apply(&request)
            Issue.record("the write must fail")
        } catch let e as KernelError {
            #expect(e.operation == "write" && e.subject == fake.run + "/pids.max" && e.errno == EISDIR)
            #expect(e.description == "write \(fake.run)/pids.max: Is a directory (writing \"32\")")
        }
    }

    /// cgroup.subtree_control: "+name" for each wanted controller not yet enabled, in
    /// a fixed order; one that is listed is not written again; a required one that
    /// fails throws, an accounting-only one does not.
    @Test func enableControllersInOurParent() throws {
        let fake = try FakeCgroup2()
        try fake.put("sandbox/cgroup.subtree_control", "memory pids\n")
        try CgroupV2.enableControllers(in: fake.parent, required: ["cpu"], accounting: ["memory", "pids"])
        #expect(fake.bytes("sandbox/cgroup.subtree_control") == "+cpu")

        try fake.put("sandbox/cgroup.subtree_control", "cpu io memory pids\n")
        try CgroupV2.enableControllers(in: fake.parent, required: ["cpu", "io"], accounting: ["memory", "pids"])
        #expect(fake.bytes("sandbox/cgroup.subtree_control") == "cpu io memory pids\n", "nothing to enable: not written")

        try fake.put("sandbox/cgroup.subtree_control", "memory\n")
        try CgroupV2.enableControllers(in: fake.parent, required: [], accounting: ["memory", "pids"])
        #expect(fake.bytes("sandbox/cgroup.subtree_control") == "+pids")

        // Unwritable (a directory stands in for a refused write).
        fake.remove("sandbox/cgroup.subtree_control")
        mkdir(fake.parent + "/cgroup.subtree_control", 0o755)
        try CgroupV2.enableControllers(in: fake.parent, required: [], accounting: ["memory", "pids"])
        do {
            try CgroupV2.enableControllers(in: fake.parent, required: ["memory"], accounting: ["memory", "pids"])
            Issue.record("a required controller that cannot be enabled must throw")
        } catch let e as KernelError {
            #expect(e.operation == "write" && e.detail == "writing \"+memory\"" && e.subject == fake.parent + "/cgroup.subtree_control")
        }
    }

    /// The whole create on the fake tree, for a run without limits (limit files would
    /// need the kernel to populate the new directory): accounting controllers enabled
    /// in our parent, the run directory made and opened for CLONE_INTO_CGROUP, then
    /// removed; a limit whose controller the base does not enable is refused first.
    @Test func createAndRemoveWithoutLimits() throws {
        let fake = try FakeCgroup2()
        try fake.put("sandbox/cgroup.subtree_control", "memory\n")
        let cg = try RunCgroup.create(runId: "fresh", limits: CgroupLimits(), bestEffort: [], host: fake.host)
        #expect(cg.directories == [fake.parent + "/fresh"])
        #expect(fake.bytes("sandbox/cgroup.subtree_control") == "+pids")
        #expect(cg.cloneIntoFD >= 0 && cg.joinFDs.isEmpty)
        #expect(RunCgroup.existingRunIds(host: fake.host) == ["fake", "fresh"])
        #expect(cg.remove().isEmpty)
        #expect(!CgroupFS.isDirectory(fake.parent + "/fresh"))
        #expect(cg.cloneIntoFD == -1)

        try fake.put("cgroup.subtree_control", "memory pids\n")
        do {
            _ = try RunCgroup.create(runId: "cpu", limits: CgroupLimits(cpuQuotaUs: 50_000), bestEffort: [], host: fake.host)
            Issue.record("cpu without the cpu controller must be refused")
        } catch let e as KernelError {
            #expect(isMissingLimit(e, "cpu"), "\(e)")
            #expect(e.description == "create run cgroup \(fake.root)/cgroup.subtree_control: cpu limit cannot be applied: the cpu controller is not enabled for children of \(fake.root); mark it best-effort in [resources] to run without it")
        }
        #expect(!CgroupFS.isDirectory(fake.parent + "/cpu"))
    }

    /// memory.events (oom_kill), memory.peak, pids.events (max), cpu.stat
    /// (user_usec, system_usec, throttled_usec), as a run that hit its limits shows them.
    @Test func statsParseTheKernelsFiles() throws {
        let fake = try FakeCgroup2()
        try fake.put("sandbox/fake/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
        try fake.put("sandbox/fake/memory.peak", "33525760\n")
        try fake.put("sandbox/fake/pids.events", "max 2\n")
        try fake.put("sandbox/fake/cpu.stat", "usage_usec 1520311\nuser_usec 1012000\nsystem_usec 508311\nnr_periods 10\nnr_throttled 4\nthrottled_usec 250012\nnr_bursts 0\nburst_usec 0\n")
        #expect(fake.cgroup.stats() == CgroupStats(oomKilled: true, oomKills: 1, pidsLimitHit: true, memoryPeakBytes: 33_525_760,
                                                     cpuUserUs: 1_012_000, cpuSystemUs: 508_311, throttledUs: 250_012))
    }

    /// A run that hit nothing; and one without the memory, pids and cpu controllers,
    /// whose cpu.stat is the core file (no throttled_usec) and whose controller files
    /// do not exist.
    @Test func statsOfAQuietRunAndOfOneWithoutControllers() throws {
        let fake = try FakeCgroup2()
        #expect(fake.cgroup.stats() == CgroupStats(memoryPeakBytes: 0, cpuUserUs: 0, cpuSystemUs: 0, throttledUs: 0))

        for f in ["memory.events", "memory.peak", "pids.events", "memory.max", "pids.max", "cpu.max"] { fake.remove("sandbox/fake/" + f) }
        try fake.put("sandbox/fake/cpu.stat", "usage_usec 4242\nuser_usec 4000\nsystem_usec 242\n")
        #expect(fake.cgroup.stats() == CgroupStats(cpuUserUs: 4000, cpuSystemUs: 242))
    }

    /// cgroup.freeze "1"/"0"; cgroup.events "populated N\nfrozen N\n".
    @Test func freezeThawAndEvents() throws {
        let fake = try FakeCgroup2()
        let cg = fake.cgroup
        try cg.freeze()
        #expect(fake.bytes("sandbox/fake/cgroup.freeze") == "1")
        #expect(!cg.isFrozen(), "frozen only once cgroup.events says so")
        try fake.put("sandbox/fake/cgroup.events", "populated 1\nfrozen 1\n")
        #expect(cg.isFrozen())
        #expect(cg.events()! == (populated: true, frozen: true))
        try cg.thaw()
        #expect(fake.bytes("sandbox/fake/cgroup.freeze") == "0")
        try fake.put("sandbox/fake/cgroup.events", "populated 0\nfrozen 0\n")
        #expect(cg.events()! == (populated: false, frozen: false))
        fake.remove("sandbox/fake/cgroup.events")
        #expect(cg.events() == nil && !cg.isFrozen())
    }

    /// cgroup.kill "1"; nothing written when cgroup.procs lists no process (pid 0 is a
    /// process outside our pid namespace and does not count).
    @Test func killWritesOneToCgroupKillOnlyWhenThereAreProcesses() throws {
        let fake = try FakeCgroup2()
        try fake.put("sandbox/fake/cgroup.procs", "0\n")
        #expect(fake.cgroup.killAll(deadline: Clock.monotonicUs() + 100_000).isEmpty)
        #expect(fake.bytes("sandbox/fake/cgroup.kill") == "", "no process: cgroup.kill not written")
        try fake.cgroup.requestKill()
        #expect(fake.bytes("sandbox/fake/cgroup.kill") == "1")
        try fake.put("sandbox/fake/cgroup.procs", "4242\n17\n0\n")
        #expect(CgroupFS.readPids(fake.run + "/cgroup.procs") == [4242, 17])
    }
}
