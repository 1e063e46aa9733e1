import CSandboxTestSupport
import Foundation
import Glibc
import Testing

/// A run that cannot be ended — a process of it sleeps uninterruptibly in the kernel
/// — is abandoned 10 s after its kill instead of being waited for for ever: the
/// supervisor reports it (125) and leaves it to `sandbox gc`, as a killed
/// supervisor's run. Its trigger here: the command's stdin is a file of a FUSE
/// filesystem whose daemon never answers FLUSH for the run's uid, so the close at the
/// command's exit waits, SIGKILL or not (red team, session 28: a server held such
/// runs' descriptor budget and slots for good, and stopped starting runs).
@Suite struct UninterruptibleRunTests {
    /// With the policy's limits (a cgroup: gc cannot remove it while the process is in
    /// it) and without (no cgroup: the process still runs as the run's leased uid).
    @Test(arguments: [true, false])
    func aRunThatCannotBeKilledIsLeftToGc(withLimits: Bool) throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir(), mnt = Harness.tempDir(), out = Harness.tempDir()   // out: not writable by the run
        var daemon: Int32 = 0
        let mounted = sbx_test_fuse_that_never_flushes(mnt, 1, &daemon)
        try #require(mounted == 0, "FUSE mount: \(String(cString: strerror(-mounted)))")
        var daemonAlive = true
        defer {
            if daemonAlive { kill(daemon, SIGKILL); waitpid(daemon, nil, 0) }
            umount2(mnt, Int32(MNT_DETACH)); rmdir(mnt)
            try? FileManager.default.removeItem(atPath: ws); try? FileManager.default.removeItem(atPath: out)
        }
        let policy = Harness.policy("""
            name = "abandon"
            extends = ["agent"]
            [process]
            timeout = "1s"
            grace = "1s"
            """ + (withLimits ? "" : """

            [resources]
            memory = "!"
            pids = "!"
            cpu = "!"
            """), in: ws, name: "abandon.toml")
        // The shell opens the file (root: its flush is answered) and becomes the
        // supervisor; the run's own uid is not root, so the command's close waits.
        let script = "exec '\(Harness.binary)' exec --policy '\(policy)' --result '\(out)/result.json' -- true < '\(mnt)/f' > '\(out)/out' 2> '\(out)/err'"
        let started = Date()
        let shell = try Harness.run("/bin/sh", ["-c", script], cwd: ws, timeout: 60)
        let elapsed = Date().timeIntervalSince(started)
        let err = (try? String(contentsOfFile: out + "/err", encoding: .utf8)) ?? ""
        #expect(shell.status == 125, "status \(shell.status) after \(elapsed) s: \(err)")
        #expect(err.contains("did not end 10 s after it was killed"), "\(err)")
        // Left for gc: its run directory stays (its uid lease with it).
        let result = FileManager.default.contents(atPath: out + "/result.json")
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let runId = try #require(result?["runId"] as? String, "no result: \(err)")
        #expect(Harness.runDirEntries().contains(runId), "the run directory of \(runId) is gone")

        // Under the suite's gc lock (another test may keep a stale run on purpose).
        Harness.gcLock.lock()
        defer { Harness.gcLock.unlock() }
        // While its process still sleeps in the kernel, gc keeps the run: its cgroup
        // cannot be removed, and its uid lease stays with it, so no other run gets
        // the uid that process still runs as (red team, session 42: gc released the
        // lease and removed the directory, and the cgroups lost their record). The
        // premise: that process is in the run's cgroup, alive.
        let record = (try? String(contentsOfFile: "\(BuiltAheadTests.runBase)/\(runId)/state.json", encoding: .utf8))
            .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let cgroups = Array(((record?["cgroups"] as? [String: String]) ?? [:]).values)
        let leased = (record?["hostUID"] as? Int).map(String.init) ?? "-"
        let leases = { (try? FileManager.default.contentsOfDirectory(atPath: "\(BuiltAheadTests.runBase)/.uids")) ?? [] }
        try #require(leased != "-", "no host uid recorded: \(record ?? [:])")
        if withLimits {
            try #require(!cgroups.isEmpty, "no cgroups recorded: \(record ?? [:])")
            #expect(cgroups.contains { !((try? String(contentsOfFile: $0 + "/cgroup.procs", encoding: .utf8)) ?? "").isEmpty },
                    "no process left in the run's cgroups")
        } else {
            #expect(cgroups.isEmpty, "a run without limits has no cgroup: \(cgroups)")
        }
        let early = try Harness.sandbox(["gc"])
        #expect(Harness.runDirEntries().contains(runId), "gc removed a run whose process still runs: \(early.stdout) \(early.stderr)")
        #expect(leases().contains { $0.hasPrefix(leased) }, "gc released the uid \(leased) of a process still running as it: \(leases())")
        #expect(early.stderr.contains("kept \(runId)"), "\(early.stderr)")

        // The daemon gone, the close fails and the process ends; gc removes the run.
        kill(daemon, SIGKILL); waitpid(daemon, nil, 0); daemonAlive = false
        usleep(500_000)
        let gc = try Harness.sandbox(["gc"])
        #expect(!Harness.runDirEntries().contains(runId), "after gc: \(gc.stdout) \(gc.stderr)")
        #expect(!cgroups.contains { FileManager.default.fileExists(atPath: $0) }, "cgroups left: \(cgroups)")
        #expect(!leases().contains { $0.hasPrefix(leased + ":") || $0 == leased }, "lease left: \(leases())")
    }
}
