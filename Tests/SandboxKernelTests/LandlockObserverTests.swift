import CSandbox
import Foundation
import Glibc
@testable import SandboxKernel
import Testing

/// The Landlock observer (Docs/denials.md): the BPF program, its ring and its decoder.
/// Where the kernel refuses fentry (BPF trampolines), the same instructions run on a
/// raw tracepoint: the kernel's verifier checks them and the ring carries real records.
@Suite struct LandlockObserverTests {
    static var isRoot: Bool { geteuid() == 0 }

    /// Runs `argv` (default /bin/true) as `uid` (no other process has it: a test
    /// range above the leases), in `cwd`.
    static func runAs(_ uid: UInt32, _ argv: [String] = ["/bin/true"], cwd: String? = nil) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups"] + argv
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// The program passes the kernel's verifier (offsets from this kernel's BTF), and
    /// the ring carries the records of watched uids only: the filter is in the kernel,
    /// so a process of another uid adds nothing to the ring (control: the same process
    /// as a watched uid adds one record per system call).
    @Test func watchedUidsOnlyReachTheRing() throws {
        guard require(Self.isRoot, "root (CAP_BPF, CAP_PERFMON)") else { return }
        let o = try LandlockObserver(rawTracepoint: "sys_enter")
        let base = 4_000_000_000 + UInt32(getpid() % 100_000) * 2
        let watched = base, other = base + 1
        guard case .success = o.subscribe(uid: watched) else { Issue.record("subscribe"); return }
        let before = o.recordsDelivered()
        #expect(try Self.runAs(other) == 0)
        let afterOther = o.recordsDelivered()
        #expect(afterOther == before, "a process of an unwatched uid reached the ring: \(afterOther - before) records")
        #expect(try Self.runAs(watched) == 0)
        let t = o.finish(uid: watched)
        let n = t.landlock.values.reduce(0) { $0 + $1.count }
        // setpriv sets the uid, then execs /bin/true: every call after setresuid is a record.
        #expect(n >= 10, "records of the watched uid: \(n)")
        #expect(t.complete && !t.lost)
        #expect(t.landlock.keys.allSatisfy { $0.blocker == "landlock.request_0" }, "\(t.landlock.keys)")
        // Unwatched again: nothing more is recorded for it.
        let settled = o.recordsDelivered()
        #expect(try Self.runAs(watched) == 0)
        #expect(o.recordsDelivered() == settled)
    }

    /// The path walk on real kernel objects: the same program, its request a
    /// stand-in built in the kernel (read_file on the caller's working directory).
    /// The walk crosses mounts up to the root; a name longer than a slot is marked
    /// cut (`…`) and the path partial, never shown as a complete path it is not.
    @Test func thePathWalkMeetsRealObjects() throws {
        guard require(Self.isRoot, "root (CAP_BPF, CAP_PERFMON)") else { return }
        let o = try LandlockObserver(rawTracepoint: "sys_enter", fakeCwdRequest: true)
        let base = 4_000_200_000 + UInt32(getpid() % 100_000) * 2
        let top = FileManager.default.temporaryDirectory.path + "/llwalk-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: top) }
        let short = top + "/a/b"
        let long = top + "/a/" + String(repeating: "L", count: 100) + "/c"
        for d in [short, long] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        for d in [top, top + "/a", short, long, top + "/a/" + String(repeating: "L", count: 100)] { chmod(d, 0o755) }
        let real = { (p: String) in URL(fileURLWithPath: p).resolvingSymlinksInPath().path }

        guard case .success = o.subscribe(uid: base) else { Issue.record("subscribe"); return }
        #expect(try Self.runAs(base, cwd: short) == 0)
        var t = o.finish(uid: base)
        let paths = Set(t.landlock.keys.map(\.object))
        #expect(t.landlock.keys.allSatisfy { $0.blocker == "fs.read_file" }, "\(t.landlock.keys)")
        #expect(paths == [real(short)], "\(paths)")

        guard case .success = o.subscribe(uid: base + 1) else { Issue.record("subscribe"); return }
        #expect(try Self.runAs(base + 1, cwd: long) == 0)
        t = o.finish(uid: base + 1)
        let cut = real(top) + "/a/" + String(repeating: "L", count: 63) + "…/c"
        #expect(Set(t.landlock.keys.map(\.object)) == [cut], "\(t.landlock.keys.map(\.object))")
    }

    /// A run flooding the ring cannot crowd another out: past its cap (serve's 1 024)
    /// a run's denials are only counted, as lost, for that run alone.
    @Test func aFloodLosesOnlyItsOwnRecords() throws {
        guard require(Self.isRoot, "root (CAP_BPF, CAP_PERFMON)") else { return }
        let o = try LandlockObserver(rawTracepoint: "sys_enter", ringBytes: 8 << 20, perRunCap: 1024)
        let base = 4_000_400_000 + UInt32(getpid() % 100_000) * 2
        let flooder = base, quiet = base + 1
        guard case .success = o.subscribe(uid: flooder), case .success = o.subscribe(uid: quiet) else { Issue.record("subscribe"); return }
        let flood = Thread {
            _ = try? Self.runAs(flooder, ["/usr/bin/python3", "-c", "import os\nfor _ in range(30000): os.getppid()"])
        }
        flood.start()
        for _ in 0..<20 { #expect(try Self.runAs(quiet) == 0) }
        while flood.isExecuting || !flood.isFinished { usleep(20_000) }
        let f = o.finish(uid: flooder), q = o.finish(uid: quiet)
        let fn = f.landlock.values.reduce(0) { $0 + $1.count }, qn = q.landlock.values.reduce(0) { $0 + $1.count }
        #expect(f.lost && fn == 1024, "flooder: \(fn) records, lost \(f.lost)")
        #expect(!q.lost && q.complete && qn >= 200, "quiet: \(qn) records, lost \(q.lost)")
    }

    /// On landlock_log_denial itself: it opens, or it says why not in a sentence a
    /// result can carry (this development host's kernel refuses BPF trampolines).
    @Test func theFentryObserverOpensOrSaysWhy() throws {
        guard require(Self.isRoot, "root (CAP_BPF, CAP_PERFMON)") else { return }
        switch LandlockObserver.shared() {
        case .success: break
        case .failure(let why):
            #expect(why.reason.hasPrefix("the kernel refused the observer (BPF fentry on landlock_log_denial): "), "\(why.reason)")
        }
    }

    /// A lasting refusal is remembered for the boot, so each `exec` does not load the
    /// program again to hear it — but only under the key it was heard under (boot,
    /// kernel, effective capabilities) and only from a root-owned 0600 regular file:
    /// a file someone else could write, a symlink, or another key is ignored (the
    /// next run then asks the kernel).
    @Test func aRememberedRefusalSpeaksOnlyUnderItsKey() throws {
        guard require(Self.isRoot, "root (the file is root's)") else { return }
        var template = Array("/tmp/observer-refused-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer { unlink(dir + "/link"); unlink(dir + "/refused"); rmdir(dir) }
        let file = dir + "/refused"
        LandlockObserver.RememberedRefusal.write("the kernel refused it: EPERM", at: file)
        #expect(LandlockObserver.RememberedRefusal.read(at: file) == "the kernel refused it: EPERM")
        var st = stat()
        #expect(stat(file, &st) == 0 && st.st_mode & 0o777 == 0o600 && st.st_uid == 0)

        // Another key (a reboot, another kernel, other capabilities): not read.
        let key = try #require(LandlockObserver.RememberedRefusal.key())
        try ("\(key)x\nstale\n").write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, 0o600)
        #expect(LandlockObserver.RememberedRefusal.read(at: file) == nil)
        // The right key, but writable by others, or owned by another uid: not read.
        try ("\(key)\nplanted\n").write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, 0o606)
        #expect(LandlockObserver.RememberedRefusal.read(at: file) == nil)
        chmod(file, 0o600)
        #expect(LandlockObserver.RememberedRefusal.read(at: file) == "planted")   // control
        chown(file, 65534, 65534)
        #expect(LandlockObserver.RememberedRefusal.read(at: file) == nil)
        // A symlink to a root-owned file with the right contents: not followed.
        chown(file, 0, 0)
        symlink(file, dir + "/link")
        #expect(LandlockObserver.RememberedRefusal.read(at: dir + "/link") == nil)
        LandlockObserver.RememberedRefusal.forget(at: file)
        #expect(LandlockObserver.RememberedRefusal.read(at: file) == nil)
    }

    /// Landlock's names for the missing rights, as its audit records spell them.
    @Test func blockersAreLandlocksNames() {
        #expect(LandlockObserver.blockers(request: 3, access: 1 << 2) == ["fs.read_file"])
        #expect(LandlockObserver.blockers(request: 3, access: 1 << 1 | 1 << 14) == ["fs.write_file", "fs.truncate"])
        #expect(LandlockObserver.blockers(request: 3, access: 1 << 15) == ["fs.ioctl_dev"])
        #expect(LandlockObserver.blockers(request: 4, access: 2) == ["net.connect_tcp"])
        #expect(LandlockObserver.blockers(request: 5, access: 0) == ["scope.abstract_unix_socket"])
        #expect(LandlockObserver.blockers(request: 6, access: 0) == ["scope.signal"])
        #expect(LandlockObserver.blockers(request: 2, access: 0) == ["fs.change_topology"])
    }

    /// A decoded event becomes the record the account already understands.
    @Test func eventsBecomeAccessRecords() {
        var e = sbx_ll_event()
        e.request = 3
        e.access = 1 << 2
        e.target_pid = -1
        withUnsafeMutableBytes(of: &e.object) { raw in
            let path = Array("/work/secret".utf8)
            for (i, b) in path.enumerated() { raw[i] = b }
        }
        var r = LandlockObserver.record(e, timeMs: 7)
        #expect(r.path == "/work/secret" && r.blockers == ["fs.read_file"] && r.timeMs == 7)

        var s = sbx_ll_event()
        s.request = 6
        s.target_pid = 4321
        withUnsafeMutableBytes(of: &s.target_comm) { raw in for (i, b) in Array("sshd".utf8).enumerated() { raw[i] = b } }
        r = LandlockObserver.record(s, timeMs: 0)
        #expect(r.opid == 4321 && r.ocomm == "sshd" && r.path == nil && r.blockers == ["scope.signal"])
    }
}
