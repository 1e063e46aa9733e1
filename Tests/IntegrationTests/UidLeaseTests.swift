import Foundation
import SandboxExecutor
import SandboxKernel
import Testing

/// The host uid a root invoker's run leases (process.host_uid = "own"): given back at
/// teardown and by `gc` after a killed supervisor; a writable bind on a filesystem
/// that cannot be idmapped is refused rather than run with the wrong owner.
@Suite(.serialized) struct UidLeaseTests {
    static let leases = "/run/sandbox/.uids"

    static func agentPolicy(in dir: String, extra: String = "") -> String {
        // Kept outside the writable cwd (a policy there is refused).
        Harness.policy("version = 1\nextends = [\"agent\"]\n\(extra)\n", in: dir, name: "lease.toml")
    }

    @Test func leaseIsRecordedAndReleased() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir(), pol = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws); try? FileManager.default.removeItem(atPath: pol) }
        let out = try Harness.exec(policy: Self.agentPolicy(in: pol), ["sh", "-c", "id -u"], cwd: ws)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        guard let uid = out.result?["hostUID"] as? Int else {
            Issue.record("no hostUID in the result: \(out.stderr)")
            return
        }
        #expect(uid >= 1_878_982_656 && uid <= 1_879_048_191, "uid \(uid) outside the documented range")
        #expect(!FileManager.default.fileExists(atPath: "\(Self.leases)/\(uid)"), "lease \(uid) not released at teardown")
        // Control: with the invoker's uid no lease is taken and none is reported.
        let inv = try Harness.exec(policy: Self.agentPolicy(in: pol, extra: "[process]\nhost_uid = \"invoker\""),
                                   ["sh", "-c", "id -u"], cwd: ws)
        #expect(inv.status == 0 && inv.result?["hostUID"] == nil, "invoker mode: \(inv.stderr) \(String(describing: inv.result?["hostUID"]))")
    }

    @Test func gcReleasesTheLeaseOfAKilledSupervisor() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir(), pol = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws); try? FileManager.default.removeItem(atPath: pol) }
        let token = "lease-\(UUID().uuidString.prefix(8))"
        let sup = Process()
        sup.executableURL = URL(fileURLWithPath: Harness.binary)
        sup.arguments = ["exec", "--policy", Self.agentPolicy(in: pol), "--", "sh", "-c", "touch started; sleep 30 # \(token)"]
        sup.currentDirectoryURL = URL(fileURLWithPath: ws)
        try sup.run()
        var waited = 0
        while !FileManager.default.fileExists(atPath: "\(ws)/started") && waited < 100 { usleep(50_000); waited += 1 }
        let runId = Harness.runDirEntries().first {
            (try? String(contentsOfFile: "/run/sandbox/\($0)/state.json", encoding: .utf8))?.contains(token) == true
        }
        guard let runId, let uid = RunRecord.read(runDirectory: "/run/sandbox/\(runId)")?.hostUID else {
            Issue.record("the run recorded no uid in its run record")
            kill(sup.processIdentifier, SIGKILL); sup.waitUntilExit()
            return
        }
        #expect(FileManager.default.fileExists(atPath: "\(Self.leases)/\(uid)"), "no lease file while the run is live")
        Harness.gcLock.lock()
        defer { Harness.gcLock.unlock() }
        // What the control's failure needs to tell apart (seen twice, cause unknown):
        // whether the run was still going when it was killed.
        let liveBeforeKill = (sup.isRunning, UidLease.inUse(uid))
        kill(sup.processIdentifier, SIGKILL) // our own child, not yet reaped
        sup.waitUntilExit()
        let ended = sup.terminationReason == .uncaughtSignal ? "killed by signal \(sup.terminationStatus)"
            : "exited with \(sup.terminationStatus) on its own"
        // The run's processes end after their supervisor (the init's parent-death
        // signal, then its sweep); gc rightly keeps a lease while any still runs as
        // the uid. A fixed 0.3 s was once too short on a loaded CI host: wait until
        // none is left (bounded: one that outlives 10 s is a defect of its own).
        var gone = 0
        while UidLease.inUse(uid) && gone < 200 { usleep(50_000); gone += 1 }
        #expect(!UidLease.inUse(uid), "a process still runs as \(uid) 10 s after its supervisor was killed")
        #expect(FileManager.default.fileExists(atPath: "\(Self.leases)/\(uid)"),
                "control: a killed supervisor leaves its lease for gc (the supervisor \(ended); before the kill it ran: \(liveBeforeKill.0), a process ran as \(uid): \(liveBeforeKill.1))")
        _ = try Harness.sandbox(["gc"])
        #expect(!FileManager.default.fileExists(atPath: "\(Self.leases)/\(uid)"), "gc did not release lease \(uid)")
    }

    /// A lease whose run has no directory at all belongs to no run (a run makes its
    /// directory before its lease and releases the lease before removing it): gc
    /// releases it. A lease whose run directory exists is left alone.
    @Test func gcReleasesOrphanedLeases() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        Harness.gcLock.lock()
        defer { Harness.gcLock.unlock() }
        try? FileManager.default.createDirectory(atPath: Self.leases, withIntermediateDirectories: true)
        let orphan = "\(Self.leases)/4000000123", kept = "\(Self.leases)/4000000124"
        let liveID = "lease-test-\(UUID().uuidString.prefix(8))"
        try "no-such-run-\(UUID().uuidString.prefix(8))\n".write(toFile: orphan, atomically: true, encoding: .utf8)
        try "\(liveID)\n".write(toFile: kept, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "/run/sandbox/\(liveID)", withIntermediateDirectories: true)
        defer { unlink(orphan); unlink(kept); rmdir("/run/sandbox/\(liveID)") }
        // The run directory of `kept` has no lock file: gc would reclaim it as stale; so
        // hold its lock the way a live run does.
        let lock = open("/run/sandbox/\(liveID)/lock", O_RDWR | O_CREAT, 0o600)
        defer { close(lock); unlink("/run/sandbox/\(liveID)/lock") }
        #expect(flock(lock, LOCK_EX | LOCK_NB) == 0)
        let gc = try Harness.sandbox(["gc"])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(!FileManager.default.fileExists(atPath: orphan), "orphaned lease kept: \(gc.stdout)")
        #expect(FileManager.default.fileExists(atPath: kept), "a lease of an existing run directory was released")
    }

    /// Issue 14: what a supervisor killed while taking its lease can leave — a
    /// staged `.<run-id>` of a run that has no directory, or (older versions) an
    /// empty lease — is released by gc; an empty lease younger than a minute is kept
    /// (an older version may be filling it right now).
    @Test func gcReleasesStagedAndEmptyLeases() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        Harness.gcLock.lock()
        defer { Harness.gcLock.unlock() }
        try? FileManager.default.createDirectory(atPath: Self.leases, withIntermediateDirectories: true)
        let staged = "\(Self.leases)/.no-such-run-\(UUID().uuidString.prefix(8))"
        let empty = "\(Self.leases)/4000000125", young = "\(Self.leases)/4000000126"
        try "\(staged.split(separator: ".").last!)\n".write(toFile: staged, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: empty, contents: nil)
        FileManager.default.createFile(atPath: young, contents: nil)
        defer { unlink(staged); unlink(empty); unlink(young) }
        var old = [timeval(tv_sec: time(nil) - 120, tv_usec: 0), timeval(tv_sec: time(nil) - 120, tv_usec: 0)]
        #expect(utimes(empty, &old) == 0)
        let gc = try Harness.sandbox(["gc"])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(!FileManager.default.fileExists(atPath: staged), "staged lease of a run without a directory kept")
        #expect(!FileManager.default.fileExists(atPath: empty), "empty lease older than a minute kept: \(gc.stdout)")
        #expect(FileManager.default.fileExists(atPath: young), "an empty lease younger than a minute was released")
    }

    /// ramfs cannot be idmapped: a writable bind there would be written as the run's
    /// own uid, so the run is refused (125 naming the path and the opt-out); with
    /// host_uid = "invoker" it runs. The ramfs is mounted by the test and removed.
    @Test func writableBindThatCannotBeIdmappedIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir(), pol = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws); try? FileManager.default.removeItem(atPath: pol) }
        let mnt = try Harness.run("/bin/mount", ["-t", "ramfs", "-o", "mode=0755", "sbx-test-ramfs", ws])
        guard Harness.require(mnt.status == 0, "mount a ramfs: \(mnt.stderr)") else { return }
        defer { _ = try? Harness.run("/bin/umount", [ws]) }
        let out = try Harness.exec(policy: Self.agentPolicy(in: pol), ["sh", "-c", "echo ran > out"], cwd: ws)
        #expect(out.status == 125, "status \(out.status)")
        #expect(out.stderr.contains(ws) && out.stderr.contains("idmapped") && out.stderr.contains("host_uid"), "stderr: \(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(ws)/out"), "the command ran")
        let control = try Harness.exec(policy: Self.agentPolicy(in: pol, extra: "[process]\nhost_uid = \"invoker\""),
                                       ["sh", "-c", "echo ran > out"], cwd: ws)
        #expect(control.status == 0, "control: \(control.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(ws)/out"), "control: the command did not write")
    }
}
