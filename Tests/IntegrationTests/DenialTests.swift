import Foundation
import SandboxKernel
import Testing

/// The denial account (`RunResult.denials`, Docs/denials.md; issue 15, acceptance 4):
/// every fence's refusals in one list, in errno mode too, with exact counts; what
/// cannot be observed is named in `notApplied`.
@Suite struct DenialTests {
    static let agent = "\(Harness.repoRoot)/Policies/agent.toml"

    /// ptrace ×5, an AF_NETLINK socket, chmod u+s in the workspace, `kill -TERM 1`,
    /// a connect to 127.0.0.1:80 in network mode none: each refused, each printed.
    static let probe = """
        import ctypes, os, socket, subprocess
        libc = ctypes.CDLL(None, use_errno=True)
        for _ in range(5):
            print("ptrace", libc.syscall(101, 0, 0, 0, 0), ctypes.get_errno())
        try: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0); print("netlink ok")
        except OSError as e: print("netlink", e.errno)
        open("f", "w").close()
        print("chmod", subprocess.run(["chmod", "u+s", "f"]).returncode, oct(os.stat("f").st_mode & 0o7000))
        print("kill", subprocess.run(["bash", "-c", "kill -TERM 1"]).returncode)
        try:
            s = socket.socket(); s.connect(("127.0.0.1", 80)); print("connect ok")
        except OSError as e: print("connect", e.errno)
        """

    static func denials(_ out: Harness.Output) -> [[String: Any]] {
        (out.result?["denials"] as? [[String: Any]]) ?? []
    }
    static func notApplied(_ out: Harness.Output) -> [String] {
        (out.result?["notApplied"] as? [String]) ?? []
    }
    static func summary(_ d: [[String: Any]]) -> [String] {
        d.map { "\($0["kind"] ?? "?") \($0["what"] ?? "?") ×\($0["count"] ?? "?")" }
    }

    /// Acceptance 4 under the shipped `agent` (on_violation = "errno"): one entry per
    /// attempt, counts exact, each with a hint; nothing else listed.
    @Test func agentAccountsForEveryDenial() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = try Harness.exec(policy: Self.agent, ["python3", "-c", Self.probe], cwd: dir)
        #expect(out.status == 0, "\(out.stderr)")
        // What the command saw: each attempt failed as the fence answers it.
        #expect(out.stdout == String(repeating: "ptrace -1 1\n", count: 5)
                + "netlink 97\nchmod 1 0o0\nkill 1\nconnect 101\n", "\(out.stdout) \(out.stderr)")
        let d = Self.denials(out)
        func entry(_ kind: String) -> [String: Any]? { d.first { $0["kind"] as? String == kind } }
        #expect(d.count == 5, "\(Self.summary(d))")
        #expect(entry("syscall")?["what"] as? String == "ptrace" && entry("syscall")?["count"] as? Int == 5, "\(Self.summary(d))")
        #expect(entry("socket-family")?["what"] as? String == "socket" && entry("socket-family")?["count"] as? Int == 1, "\(Self.summary(d))")
        #expect(entry("setuid-bit")?["count"] as? Int == 1, "\(Self.summary(d))")
        #expect(entry("signal")?["what"] as? String == "kill" && entry("signal")?["count"] as? Int == 1, "\(Self.summary(d))")
        #expect(entry("egress")?["what"] as? String == "127.0.0.1:80" && entry("egress")?["count"] as? Int == 1, "\(Self.summary(d))")
        #expect((entry("egress")?["hint"] as? String)?.contains("network is off for this policy") == true)
        #expect((entry("syscall")?["hint"] as? String)?.contains("ptrace is not allowed by this policy") == true)
        for e in d {
            #expect((e["hint"] as? String)?.isEmpty == false, "\(e)")
            #expect(e["first"] as? Int != nil, "\(e)")
        }
        // The notifier is not involved in errno mode, so `violations` stays empty.
        #expect((out.result?["violations"] as? [Any])?.isEmpty == true)
        // Landlock's own denials (filesystem, scopes) are logged only with kernel
        // audit on; this host has it off, and the result must say so.
        let na = Self.notApplied(out)
        #expect(na.contains { $0.contains("filesystem") && $0.contains("not observed: kernel audit is off") }, "\(na)")
    }

    /// Acceptance 4, Landlock: an access the mounts allow but a Landlock ruleset
    /// forbids — the command's own nested ruleset, which handles read_file and grants
    /// it nowhere — tried twice. Where the observer runs (BPF fentry on
    /// landlock_log_denial): one `filesystem` entry with the path, `fs.read_file` and
    /// count 2. Where the kernel refuses it and audit is off (this development host):
    /// no entry, and `notApplied` names the kind with both reasons.
    @Test func aLandlockDenialIsNamedWithItsPathAndRight() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            open("secret", "w").write("x")
            class Attr(ctypes.Structure):
                _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]
            attr = Attr(1 << 2, 0, 0)
            fd = libc.syscall(444, ctypes.byref(attr), ctypes.sizeof(attr), 0)
            print("restrict", libc.syscall(446, fd, 0))
            for _ in range(2):
                try: open("secret").read(); print("read ok")
                except OSError as e: print("read", e.errno)
            """.write(toFile: "\(dir)/nest.py", atomically: true, encoding: .utf8)
        let out = try Harness.exec(policy: Self.agent, ["python3", "nest.py"], cwd: dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "restrict 0\nread 13\nread 13\n", "\(out.stdout) \(out.stderr)")
        let fs = Self.denials(out).filter { $0["kind"] as? String == "filesystem" }
        switch LandlockObserver.shared() {
        case .success:
            #expect(fs.count == 1, "\(Self.summary(fs))")
            #expect(fs.first?["what"] as? String == "\(dir)/secret", "\(fs)")
            #expect(fs.first?["detail"] as? String == "fs.read_file", "\(fs)")
            #expect(fs.first?["count"] as? Int == 2, "\(fs)")
            #expect((fs.first?["hint"] as? String)?.contains("read file is not allowed") == true, "\(fs)")
        case .failure(let why):
            #expect(fs.isEmpty, "\(Self.summary(fs))")
            let na = Self.notApplied(out)
            // The kernel's refusal, without the "(remembered for this boot …)" this
            // process or the run may add: a test beside this one (DoctorTests, with
            // other capabilities) can make the run ask the kernel again.
            let refusal = why.reason.components(separatedBy: " (remembered for this boot").first ?? why.reason
            #expect(na.contains { $0.contains("filesystem") && $0.contains("kernel audit is off") && $0.contains(refusal) }, "\(na)")
        }
    }

    /// Counts are exact under a flood (20 000 denied ptrace calls, errno mode). Calls
    /// of numbers no table names get ENOSYS from an unlogged filter of their own, as
    /// from a kernel without them: not listed (and not paid for in audit records).
    @Test func floodCountIsExact() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = try Harness.exec(policy: Self.agent, ["python3", "-c", """
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            f = libc.syscall
            for _ in range(20000): f(101, 0, 0, 0, 0)
            for i in range(1000): f(1000 + i, 0, 0, 0, 0)
            """], cwd: dir, timeout: 120)
        #expect(out.status == 0, "\(out.stderr)")
        let d = Self.denials(out)
        #expect(d.count == 1 && d.first?["what"] as? String == "ptrace" && d.first?["count"] as? Int == 20000, "\(Self.summary(d))")
        #expect(!Self.notApplied(out).contains { $0.contains("incomplete") || $0.contains("overflowed") }, "\(Self.notApplied(out))")
    }

    /// Parallel runs in errno mode: each run's account holds its own calls only (the
    /// reader routes records by the run's leased uid).
    @Test func parallelRunsAreAttributedApart() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let n = 8
        let lock = NSLock()
        nonisolated(unsafe) var outcomes: [Int: [String]] = [:]
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let dir = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // Run i: ptrace i+1 times; even runs also keyctl twice, odd runs bpf thrice.
            let other = i % 2 == 0 ? "for _ in range(2): f(250, 0, 0, 0, 0)" : "for _ in range(3): f(321, 0, 0, 0, 0)"
            let probe = """
                import ctypes
                f = ctypes.CDLL(None, use_errno=True).syscall
                for _ in range(\(i + 1)): f(101, 0, 0, 0, 0)
                \(other)
                """
            let summary: [String]
            do {
                let out = try Harness.exec(policy: Self.agent, ["python3", "-c", probe], cwd: dir, timeout: 120)
                summary = Self.summary(Self.denials(out)).sorted()
            } catch { summary = ["\(error)"] }
            lock.lock(); outcomes[i] = summary; lock.unlock()
        }
        for i in 0..<n {
            let expected = (i % 2 == 0 ? ["syscall keyctl ×2"] : ["syscall bpf ×3"]) + ["syscall ptrace ×\(i + 1)"]
            #expect(outcomes[i] == expected.sorted(), "run \(i)")
        }
    }

    /// Notify mode: the notifier's calls are counted once (`violations` and one
    /// `syscall` entry); the built-in refusals (a socket family, a setuid bit, a
    /// signal to PID 1) reach the supervisor too, which answers them as the errno
    /// rules would and lists them under their kinds, the socket family by name.
    @Test func notifyModeListsEveryKind() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "notify-denials"
            extends = ["\(Self.agent)"]
            [seccomp]
            on_violation = "notify"
            """, in: dir)
        let out = try Harness.exec(policy: policy, ["python3", "-c", Self.builtinProbe], cwd: dir)
        #expect(out.stdout == "ptrace -1 1\nptrace -1 1\nptrace -1 1\nchmod 1\nnetlink 97\nkill 1\n", "\(out.stdout) \(out.stderr)")
        let d = Self.denials(out)
        #expect(Self.summary(d).sorted() == ["setuid-bit chmod ×1", "signal kill ×1", "socket-family socket ×1", "syscall ptrace ×3"],
                "\(Self.summary(d))")
        #expect((d.first { $0["kind"] as? String == "socket-family" }?["hint"] as? String)?.contains("AF_NETLINK") == true, "\(d)")
        let v = (out.result?["violations"] as? [[String: Any]]) ?? []
        #expect(v.count == 1 && v.first?["syscall"] as? String == "ptrace" && v.first?["count"] as? Int == 3, "\(v)")
        #expect(!Self.notApplied(out).contains { $0.contains("setuid-bit") }, "\(Self.notApplied(out))")
    }

    /// A run that would read only Landlock's records from the audit log starts no
    /// reader where Landlock writes none (kernel audit off): no socket joins the audit
    /// multicast group, and the result still says why those denials are not observed
    /// (unless the BPF observer took them). Controls: the same policy in errno mode
    /// (the seccomp log is read whatever the audit state) joins it, and so does the
    /// notify policy with a profile rule that kills (the kernel logs a kill whatever
    /// the filter's flags).
    @Test func noAuditReaderWhereItCouldReadNothing() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        guard Harness.require(FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "strace (apt-get install strace)") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var joined: [String: Bool] = [:]
        var notApplied: [String: [String]] = [:]
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_KILL"}]}"#
            .write(toFile: "\(Harness.policyDir(for: dir))/kill.json", atomically: true, encoding: .utf8)
        for mode in ["notify", "errno", "kill-rule"] {
            let policy = Harness.policy("""
                name = "reader-\(mode)"
                extends = ["\(Self.agent)"]
                [seccomp]
                on_violation = "\(mode == "errno" ? "errno" : "notify")"
                \(mode == "kill-rule" ? "profile = \"\(Harness.policyDir(for: dir))/kill.json\"" : "")
                """, in: dir, name: "\(mode).toml")
            let trace = "\(dir)/../\(UUID().uuidString).strace"
            let result = "\(dir)/../\(UUID().uuidString).json"
            defer { try? FileManager.default.removeItem(atPath: trace); try? FileManager.default.removeItem(atPath: result) }
            let out = try Harness.run("/usr/bin/strace", ["-f", "-e", "trace=bind", "-o", trace, Harness.binary,
                                                          "exec", "--policy", policy, "--result", result, "--", "true"], cwd: dir)
            #expect(out.status == 0, "\(mode): \(out.stderr)")
            let text = (try? String(contentsOfFile: trace, encoding: .utf8)) ?? ""
            // AUDIT_NLGRP_READLOG (1): the group the reader's socket joins.
            joined[mode] = text.contains("nl_groups=0x000001")
            let r = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: result)))) as? [String: Any]
            notApplied[mode] = (r?["notApplied"] as? [String]) ?? []
        }
        #expect(joined["errno"] == true, "control: the errno-mode run did not start the reader")
        #expect(joined["kill-rule"] == true, "control: a notify-mode run with a killing rule did not start the reader")
        // With kernel audit on (or its state unreadable) a notify run may need the
        // reader for Landlock's records; what it must not do is start one for nothing.
        if AuditReader.kernelAuditState() == false {
            #expect(joined["notify"] == false, "a notify-mode run started the audit reader with kernel audit off")
            let landlock = notApplied["notify"]?.filter { $0.contains("filesystem") } ?? []
            #expect(landlock.allSatisfy { $0.contains("kernel audit is off") }, "\(landlock)")
            #expect(landlock.isEmpty == !(notApplied["errno"]?.contains { $0.contains("filesystem") } ?? false),
                    "notify \(landlock) / errno \(notApplied["errno"] ?? [])")
        }
    }

    /// on_violation = "kill": a built-in refusal is answered (EPERM) and listed; it
    /// does not end the run (the errno rules it stands for never did).
    @Test func killModeAnswersBuiltinRefusals() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "kill-denials"
            extends = ["\(Self.agent)"]
            [seccomp]
            on_violation = "kill"
            """, in: dir)
        let out = try Harness.exec(policy: policy, ["python3", "-c", """
            import os
            open("g", "w").close()
            try: os.chmod("g", 0o2755)
            except OSError as e: print("chmod", e.errno)
            print("still here")
            """], cwd: dir)
        #expect(out.status == 0 && out.stdout == "chmod 1\nstill here\n", "\(out.status) \(out.stdout) \(out.stderr)")
        #expect(Self.summary(Self.denials(out)) == ["setuid-bit chmod ×1"], "\(Self.summary(Self.denials(out)))")
    }

    static let builtinProbe = """
        import ctypes, os, socket, subprocess
        f = ctypes.CDLL(None, use_errno=True)
        for _ in range(3): print("ptrace", f.syscall(101, 0, 0, 0, 0), ctypes.get_errno())
        open("g", "w").close()
        try: os.chmod("g", 0o2755); print("chmod ok")
        except OSError as e: print("chmod", e.errno)
        try: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0); print("netlink ok")
        except OSError as e: print("netlink", e.errno)
        print("kill", subprocess.run(["bash", "-c", "kill -TERM 1"]).returncode)
        """

    /// Without CAP_AUDIT_READ (a capability-dropped root here; rootless alike) the
    /// audit log cannot be read: the kinds it would report are named in
    /// `notApplied`, and the notifier's egress answer still counts.
    @Test func withoutAuditReadTheKindsAreNamed() throws {
        guard Harness.require(Harness.isRoot, "root"),
              Harness.require(FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "setpriv") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let resultDir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: resultDir) }
        let result = "\(resultDir)/r.json"
        let out = try Harness.run("/usr/bin/setpriv", ["--bounding-set", "-audit_read", "--inh-caps", "-audit_read",
                                                       Harness.binary, "exec", "--policy", Self.agent, "--result", result, "--",
                                                       "python3", "-c", Self.probe], cwd: dir)
        #expect(out.status == 0, "\(out.stderr)")
        let r = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: result)))) as? [String: Any]
        let d = (r?["denials"] as? [[String: Any]]) ?? []
        #expect(Self.summary(d) == ["egress 127.0.0.1:80 ×1"], "\(Self.summary(d))")
        let na = (r?["notApplied"] as? [String]) ?? []
        #expect(na.contains { $0.contains("syscall") && $0.contains("socket-family") && $0.contains("setuid-bit")
                    && $0.contains("signal") && $0.contains("no CAP_AUDIT_READ") }, "\(na)")
    }

    /// `process.host_uid = "invoker"`: the command's uid is shared with other
    /// processes, so its records cannot be attributed; said, not guessed.
    @Test func invokerUidIsNotAttributed() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "invoker-denials"
            extends = ["\(Self.agent)"]
            [process]
            host_uid = "invoker"
            """, in: dir)
        let out = try Harness.exec(policy: policy, ["python3", "-c", "import ctypes; ctypes.CDLL(None).syscall(101, 0, 0, 0, 0)"], cwd: dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(Self.denials(out).isEmpty, "\(Self.summary(Self.denials(out)))")
        #expect(Self.notApplied(out).contains { $0.contains("syscall") && $0.contains("invoker") }, "\(Self.notApplied(out))")
    }

    /// Network mode loopback: a connect off the loopback (ENETUNREACH: the run's
    /// namespace has only lo, so no packet is made, let alone sent) is an egress
    /// entry; one to the loopback is not. The address is a test host this test makes
    /// in a namespace of its own (`EgressTests.RemoteHost`), with a listener on 443.
    /// Control: from outside the sandbox the same address and port answer.
    @Test func loopbackModeCountsConnectsOffTheLoopback() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let remote = try EgressTests.RemoteHost()
        defer { remote.cleanUp() }
        try remote.listen([443])
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "loopback-denials"
            extends = ["\(Self.agent)"]
            [network]
            mode = "loopback"
            """, in: dir)
        let connects = """
            import socket, sys
            for addr in [(sys.argv[1], 443), (sys.argv[1], 443), ("127.0.0.1", 9)]:
                try: s = socket.create_connection(addr, timeout=2); print("connected", s.recv(16).decode().strip())
                except OSError as e: print(e.errno)
            """
        let out = try Harness.exec(policy: policy, ["python3", "-c", connects, remote.address], cwd: dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "101\n101\n111\n", "\(out.stdout)")
        #expect(Self.summary(Self.denials(out)) == ["egress \(remote.address):443 ×2"], "\(Self.summary(Self.denials(out)))")
        #expect((Self.denials(out).first?["hint"] as? String)?.contains("loopback only") == true)
        // Control: the test host's listener answers a connect from outside the sandbox.
        let outside = try Harness.run("/usr/bin/python3", ["-c", connects, remote.address])
        #expect(outside.stdout.hasPrefix("connected hello-443\nconnected hello-443\n"), "\(outside.stdout) \(outside.stderr)")
    }
}
