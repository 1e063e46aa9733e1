import Foundation
import Testing

/// Issue 11, acceptance 3: under `agent` run as root, the command runs as a host uid
/// leased for this run alone (`process.host_uid = "own"`, the default), inside a user
/// namespace that shows it the uid the policy asks for. Each test attacks what the
/// command could do as host root with its capabilities dropped; the controls run the
/// same attack with `host_uid = "invoker"` (the command is host uid 0) and must
/// succeed, so the uid change is shown to be the fence.
///
/// `Harness.policy` keeps the policy files out of the workspace: a policy file under
/// the rw `{cwd}` is refused (acceptance 2). Needs root and python3; a missing requirement
/// fails unless SANDBOX_TESTS_ALLOW_SKIP=1. Serialized, so the moment the inotify
/// control exhausts host root's inotify instances overlaps no other test of this suite.
@Suite(.serialized) struct IdentityTests {
    /// Where `host_uid = "own"` leases its uids from.
    static let leaseRange = 1_878_982_656...1_879_048_191

    // MARK: a. The uid inside

    /// `id -u; id -g` inside prints the invoker's ids (0 0), or `user`/`group` when the
    /// policy sets them; on the host the command is a leased uid, so that 0 is the
    /// namespace's, not host root.
    @Test func idInsideIsThePolicysUid() throws {
        guard Self.ready() else { return }
        let w = IdentityWorkspace()
        defer { w.remove() }

        let out = try w.exec("agent", ["sh", "-c", "id -u; id -g"])
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(out.stdout == "0\n0\n", "id -u; id -g under agent as root: \(out.stdout)")
        Self.expectLeased(out, "agent")

        let other = w.policy("user1000", process: "user = 1000\ngroup = 1000")
        let u = try w.exec(other, ["sh", "-c", "id -u; id -g"])
        #expect(u.status == 0, "stderr: \(u.stderr)")
        #expect(u.stdout == "1000\n1000\n", "id -u; id -g with user = group = 1000: \(u.stdout)")
        Self.expectLeased(u, "user = 1000")
    }

    // MARK: b. Its processes on the host

    /// While the command sleeps, every host process whose real or effective uid is the
    /// run's `hostUID` is in the run's own PID namespace (not the test's), and there is
    /// at least one: no process outside the run has that uid.
    @Test func hostUIDBelongsToTheRunsProcessesOnly() throws {
        guard Self.ready() else { return }
        let w = IdentityWorkspace()
        defer { w.remove() }
        guard let ownNS = Self.pidNamespace("self") else {
            Issue.record("cannot read /proc/self/ns/pid")
            return
        }

        let run = try BackgroundCommand.sandbox(policy: "agent", ["sh", "-c", "touch started; sleep 3"], cwd: w.work)
        let started = run.waitFor("\(w.work)/started", timeout: 15)
        let snapshot = started ? Self.hostProcesses() : []
        let out = run.finish(timeout: 20)
        guard started else {
            Issue.record("the command never created its marker: status \(out.status), stderr: \(out.stderr)")
            return
        }
        #expect(out.status == 0, "stderr: \(out.stderr)")
        guard let hostUID = out.result?["hostUID"] as? Int else {
            Issue.record("the result has no hostUID: \(out.result?.keys.sorted() ?? [])")
            return
        }
        #expect(hostUID != 0 && Self.leaseRange.contains(hostUID), "hostUID \(hostUID) is not a leased uid (\(Self.leaseRange))")

        let mine = snapshot.filter { $0.ruid == hostUID || $0.euid == hostUID }
        #expect(!mine.isEmpty, "no host process had uid \(hostUID) while the command ran")
        let outside = mine.filter { $0.pidNS == ownNS }
        #expect(outside.isEmpty, "processes with the run's uid \(hostUID) in the test's own PID namespace: \(outside)")
        #expect(Set(mine.map(\.pidNS)).count <= 1, "processes with uid \(hostUID) in more than one PID namespace: \(mine)")
    }

    // MARK: c. Files it writes

    /// A file (and a directory with a file in it) the command writes in the workspace
    /// is owned by the invoker (0:0) on the host: the rw bind is idmapped, the leased
    /// uid leaves no trace outside the run.
    @Test func filesWrittenInTheWorkspaceBelongToTheInvoker() throws {
        guard Self.ready() else { return }
        let w = IdentityWorkspace()
        defer { w.remove() }

        let out = try w.exec("agent", ["sh", "-c", "echo hello > out.txt && mkdir d && echo x > d/f && stat -c '%u:%g' out.txt"])
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(out.stdout == "0:0\n", "owner of out.txt seen inside: \(out.stdout)")
        Self.expectLeased(out, "agent")
        for path in ["out.txt", "d", "d/f"] {
            var st = stat()
            guard lstat("\(w.work)/\(path)", &st) == 0 else {
                Issue.record("\(path) was not written: \(out.stderr)")
                continue
            }
            #expect(st.st_uid == 0 && st.st_gid == 0, "\(path) is owned by \(st.st_uid):\(st.st_gid) on the host, not the invoker's 0:0")
        }
        #expect((try? String(contentsOfFile: "\(w.work)/out.txt", encoding: .utf8)) == "hello\n")
    }

    // MARK: d. Root's 0600 files under an ro bind

    /// A root-owned 0600 file in a directory bound `ro` cannot be read: the ro bind is
    /// not idmapped, so the file's owner is not the command. Control: with
    /// `host_uid = "invoker"` the command is host root and reads it.
    @Test func rootOnlyFileUnderRoBindIsUnreadable() throws {
        guard Self.ready() else { return }
        let w = IdentityWorkspace()
        defer { w.remove() }
        let secret = "\(w.top)/secret"
        let content = "s3cret-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: secret, withIntermediateDirectories: false)
        chmod(secret, 0o755)
        try content.write(toFile: "\(secret)/key", atomically: false, encoding: .utf8)
        #expect(chown("\(secret)/key", 0, 0) == 0 && chmod("\(secret)/key", 0o600) == 0)
        let ro = "[filesystem]\nro = [\"\(secret)\"]\n"

        let out = try w.exec(w.policy("secret", body: ro), ["cat", "\(secret)/key"])
        #expect(out.status != 0, "cat of a 0600 root file under ro exited 0")
        #expect(!out.stdout.contains(content), "the command read root's 0600 file: \(out.stdout)")
        #expect(out.stderr.contains("Permission denied"), "cat did not fail with EACCES: status \(out.status), stderr: \(out.stderr)")

        let control = try w.exec(w.invokerPolicy("secret-invoker", body: ro), ["cat", "\(secret)/key"])
        #expect(control.status == 0 && control.stdout == content,
                "control, host_uid = \"invoker\": the file is not readable as host root either, so the test shows nothing: status \(control.status), stdout: \(control.stdout) stderr: \(control.stderr)")
    }

    // MARK: e. Per-user kernel limits

    /// The command takes inotify instances until it cannot (all of its uid's
    /// `fs.inotify.max_user_instances`) and holds them; meanwhile host root still gets
    /// one. Control: with `host_uid = "invoker"` the command's instances are root's,
    /// and host root's `inotify_init1` fails with EMFILE while they are held.
    @Test func inotifyInstancesInsideLeaveRootsOwn() throws {
        guard Self.ready() else { return }
        let limit = Self.readInt("/proc/sys/fs/inotify/max_user_instances") ?? Int.max
        guard Harness.require(limit <= 1024, "fs.inotify.max_user_instances readable and <= 1024 (it is \(limit)), so the control can exhaust it")
        else { return }
        let w = IdentityWorkspace()
        defer { w.remove() }
        let own = try Self.holdInotify(w, policy: "agent")
        #expect(own.run.status == 0, "stderr: \(own.run.stderr)")
        #expect(own.taken == limit && own.stopErrno == "EMFILE",
                "inside: took \(own.taken.map(String.init) ?? "?") instances, stopped with \(own.stopErrno ?? "?"); expected the whole per-user limit \(limit), then EMFILE: \(own.run.stdout)")
        #expect(own.host == "OK", "host root's inotify_init1 while the command held its instances: \(own.host)")
        Self.expectLeased(own.run, "inotify")

        let control = try Self.holdInotify(w, policy: w.invokerPolicy("inotify-invoker"))
        #expect(control.run.status == 0, "control stderr: \(control.run.stderr)")
        #expect((control.taken ?? 0) >= 1, "control: the command took no instance: \(control.run.stdout) \(control.run.stderr)")
        #expect(control.host == "EMFILE",
                "control, host_uid = \"invoker\": host root's inotify_init1 gave \(control.host) while the command held \(control.taken.map(String.init) ?? "?") instances, so the attack does not reproduce")
    }

    // MARK: f. The reaper (PID 1)

    /// `prlimit` on PID 1 fails with PermissionError, and so does `kill -TERM 1` with
    /// Landlock's signal scope removed (so the scope is not what refuses it). Control:
    /// with `host_uid = "invoker"` (and no scope) both succeed.
    @Test func reaperIsUnreachable() throws {
        guard Self.ready() else { return }
        let w = IdentityWorkspace()
        defer { w.remove() }
        let prlimit = ["python3", "-c", "import resource; resource.prlimit(1, resource.RLIMIT_NOFILE, (64, 64))"]
        let kill1 = ["sh", "-c", "kill -TERM 1"]
        let noScope = "[landlock]\nscope = [\"!abstract-unix-socket\", \"!signal\"]\n"

        let p = try w.exec("agent", prlimit)
        #expect(p.status != 0 && p.stderr.contains("PermissionError"), "prlimit on PID 1 under agent: status \(p.status), stderr: \(p.stderr)")

        let unscoped = w.policy("no-scope", body: noScope)
        let k = try w.exec(unscoped, kill1)
        #expect(k.status != 0, "kill -TERM 1 without the signal scope exited 0: \(k.stderr)")
        #expect(k.stderr.contains("not permitted"), "kill -TERM 1 did not fail with EPERM: status \(k.status), stderr: \(k.stderr)")
        let p2 = try w.exec(unscoped, prlimit)
        #expect(p2.status != 0 && p2.stderr.contains("PermissionError"), "prlimit on PID 1 without the scope: status \(p2.status), stderr: \(p2.stderr)")

        let invoker = w.invokerPolicy("no-scope-invoker", body: noScope)
        let cp = try w.exec(invoker, prlimit)
        #expect(cp.status == 0, "control, host_uid = \"invoker\": prlimit on PID 1 failed, so the attack does not reproduce: status \(cp.status), stderr: \(cp.stderr)")
        let ck = try w.exec(invoker, kill1)
        #expect(ck.status == 0, "control, host_uid = \"invoker\", no scope: kill -TERM 1 failed: status \(ck.status), stderr: \(ck.stderr)")
    }

    // MARK: - Helpers

    static func ready() -> Bool {
        Harness.require(Harness.isRoot, "root")
            && Harness.require(FenceAttackTests.python3 != nil, "python3 on the host")
    }

    /// The run's result names a leased host uid.
    static func expectLeased(_ out: Harness.Output, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let hostUID = out.result?["hostUID"] as? Int
        #expect(hostUID.map { leaseRange.contains($0) } == true,
                "\(what): result hostUID \(hostUID.map(String.init) ?? "missing") is not a leased uid (\(leaseRange))",
                sourceLocation: sourceLocation)
    }

    static func readInt(_ path: String) -> Int? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    static func pidNamespace(_ pid: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid")
    }

    struct HostProcess: CustomStringConvertible {
        var pid: Int
        var ruid: Int
        var euid: Int
        var pidNS: String
        var name: String
        var description: String { "\(pid) \(name) uid=\(ruid)/\(euid) \(pidNS)" }
    }

    /// Every process in /proc with its real and effective uid (as the host sees them)
    /// and its PID namespace; processes that vanish while read are left out.
    static func hostProcesses() -> [HostProcess] {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int.init)
        return pids.compactMap { pid in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                  let ns = pidNamespace("\(pid)") else { return nil }
            let fields = FenceAttackTests.statusFields(status)
            let uids = (fields["Uid"] ?? "").split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { Int($0) }
            guard uids.count >= 2 else { return nil }
            return HostProcess(pid: pid, ruid: uids[0], euid: uids[1], pidNS: ns, name: fields["Name"] ?? "?")
        }
    }

    /// Inside: takes inotify instances until inotify_init1 fails, prints
    /// `taken N ERRNO`, creates `held`, and holds them until `release` appears (at most 5 s).
    static let inotifyHolder = """
        import ctypes, errno, os, time
        libc = ctypes.CDLL(None, use_errno=True)
        fds, err = [], 0
        while len(fds) < 100000:
            fd = libc.inotify_init1(0)
            if fd < 0:
                err = ctypes.get_errno()
                break
            fds.append(fd)
        print("taken", len(fds), errno.errorcode.get(err, err), flush=True)
        open("held", "w").close()
        end = time.monotonic() + 5
        while not os.path.exists("release") and time.monotonic() < end:
            time.sleep(0.02)
        """

    /// One inotify_init1 by host root: `OK` or the errno's name.
    static let inotifyOnce = """
        import ctypes, errno
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(0)
        print("OK" if fd >= 0 else errno.errorcode.get(ctypes.get_errno(), "errno %d" % ctypes.get_errno()))
        """

    struct InotifyRound {
        var run: Harness.Output
        var taken: Int?
        var stopErrno: String?
        var host: String
    }

    /// Runs the holder under `policy`; once it holds its instances, host root tries one.
    static func holdInotify(_ w: IdentityWorkspace, policy: String) throws -> InotifyRound {
        for f in ["held", "release"] { try? FileManager.default.removeItem(atPath: "\(w.work)/\(f)") }
        let run = try BackgroundCommand.sandbox(policy: policy, ["python3", "-c", inotifyHolder], cwd: w.work)
        var host = "not tried: the command never held its instances"
        if run.waitFor("\(w.work)/held", timeout: 15), let python = FenceAttackTests.python3 {
            do {
                let h = try Harness.run(python, ["-c", inotifyOnce], timeout: 10)
                host = h.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + (h.stderr.isEmpty ? "" : " (\(h.stderr))")
            } catch {
                host = "not tried: \(error)"
            }
        }
        _ = FileManager.default.createFile(atPath: "\(w.work)/release", contents: nil)
        let out = run.finish(timeout: 15)
        let words = out.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        let at = words.firstIndex(of: "taken")
        return InotifyRound(run: out,
                            taken: at.flatMap { $0 + 1 < words.count ? Int(words[$0 + 1]) : nil },
                            stopErrno: at.flatMap { $0 + 2 < words.count ? words[$0 + 2] : nil },
                            host: host)
    }
}

/// A root-owned temp directory holding `work`, the command's cwd (0755); test
/// files that must lie outside the rw `{cwd}` go beside it. Removed by `remove()`.
struct IdentityWorkspace {
    let top: String
    var work: String { "\(top)/work" }

    init() {
        top = Harness.tempDir(owner: 0)
        try! FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: false)
        chmod(work, 0o755)
    }

    func remove() { try? FileManager.default.removeItem(atPath: top) }

    /// A policy extending agent: `process` goes in its `[process]` table, `body` after
    /// it. Harness.policy puts the file outside `work`.
    func policy(_ name: String, process: String = "", body: String = "") -> String {
        Harness.policy("extends = [\"agent\"]\n\n[process]\n\(process)\n\n\(body)", in: work, name: "\(name).toml")
    }

    /// The same with `host_uid = "invoker"`: the command runs as host uid 0, capabilities dropped.
    func invokerPolicy(_ name: String, process: String = "", body: String = "") -> String {
        policy(name, process: "host_uid = \"invoker\"\n" + process, body: body)
    }

    func exec(_ policy: String, _ argv: [String]) throws -> Harness.Output {
        try Harness.exec(policy: policy, argv, cwd: work)
    }
}
