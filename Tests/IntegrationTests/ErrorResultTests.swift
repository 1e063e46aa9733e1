import Foundation
import Testing

/// Issue 13, acceptance 2: a run that fails names where and why in its `--result` as
/// fields a program can act on — `error: {kind, step, subject, errno, errnoName,
/// message}` — and stderr still carries the same message.
///
/// Needs root (bind trees, cgroups); fails unless SANDBOX_TESTS_ALLOW_SKIP=1 otherwise.
@Suite(.serialized) struct ErrorResultTests {
    static func error(_ out: Harness.Output) -> [String: Any] {
        out.result?["error"] as? [String: Any] ?? [:]
    }

    /// The message in the result is what stderr says.
    static func expectSameMessage(_ out: Harness.Output, sourceLocation: SourceLocation = #_sourceLocation) {
        let message = error(out)["message"] as? String ?? "<none>"
        #expect(out.stderr.contains("sandbox: " + message), "stderr \(out.stderr) lacks \(message)", sourceLocation: sourceLocation)
    }

    @Test func missingBindSourceIsASetupErrorWithENOENT() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = dir + "/not-there"
        let policy = Harness.policy("""
            name = "missing-source"
            extends = ["\(Harness.repoRoot)/Policies/base.toml"]
            [filesystem]
            ro = ["\(missing)"]
            """, in: dir)
        let out = try Harness.exec(policy: policy, ["true"], cwd: dir)
        #expect(out.status == 125, "\(out.stderr)")
        let e = Self.error(out)
        #expect(e["kind"] as? String == "setup", "\(e)")
        #expect(e["step"] as? String == "bind sources", "\(e)")
        #expect(e["subject"] as? String == missing, "\(e)")
        #expect(e["errno"] as? Int == Int(ENOENT) && e["errnoName"] as? String == "ENOENT", "\(e)")
        #expect(out.stderr.contains("No such file or directory"), "\(out.stderr)")
        Self.expectSameMessage(out)
    }

    /// The kernel refuses the run's `cpu.cfs_quota_us`: on cgroup v1 a child's quota
    /// may not exceed its parent's (`tg_cfs_schedulable_down`, EINVAL), and a run's
    /// cgroups nest inside the invoker's. The invoker here sits in a cpu cgroup of
    /// ours limited to 0.1 CPU; the policy asks for 0.5.
    @Test func refusedCgroupWriteNamesTheFileAndErrno() throws {
        let cpuMount = "/sys/fs/cgroup/cpu"
        guard Harness.require(Harness.isRoot, "root"),
              Harness.require(FileManager.default.fileExists(atPath: "\(cpuMount)/cpu.cfs_quota_us"),
                              "a cgroup v1 cpu hierarchy (this host's layout)") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outer = "\(cpuMount)/sbxtest-errors-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: outer, withIntermediateDirectories: false)
        defer { rmdir(outer) }
        try "10000".write(toFile: "\(outer)/cpu.cfs_quota_us", atomically: false, encoding: .utf8)
        let policy = Harness.policy("""
            name = "cpu-over-parent"
            extends = ["\(Harness.repoRoot)/Policies/base.toml"]
            [resources]
            cpu = 0.5
            """, in: dir)
        let result = NSTemporaryDirectory() + "sbx-result-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: result) }
        // The shell puts itself ("0") into our cgroup, then becomes sandbox.
        var out = try Harness.run("/bin/sh", ["-c", "echo 0 > \(outer)/cgroup.procs && exec \"$0\" \"$@\"",
                                              Harness.binary, "exec", "--policy", policy, "--result", result, "--", "true"],
                                  cwd: dir)
        out.result = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: result)))) as? [String: Any]
        if let data = FileManager.default.contents(atPath: result) { Harness.keepSample(data, kind: .runResult) }
        #expect(out.status == 125, "\(out.stderr)")
        let e = Self.error(out)
        #expect(e["kind"] as? String == "setup", "\(e)")
        #expect(e["step"] as? String == "resources", "\(e)")
        let subject = e["subject"] as? String ?? ""
        #expect(subject.hasPrefix(outer + "/sandbox-") && subject.hasSuffix("/cpu.cfs_quota_us"), "\(e)")
        #expect(e["errno"] as? Int == Int(EINVAL) && e["errnoName"] as? String == "EINVAL", "\(e)")
        #expect(out.stderr.contains("cpu.cfs_quota_us: Invalid argument"), "\(out.stderr)")
        Self.expectSameMessage(out)
        // The failed run left nothing in our cgroup.
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: outer)) ?? []).filter { $0.hasPrefix("sandbox-") }
        #expect(left.isEmpty, "\(left)")
    }

    /// The planner refuses a bind of `/proc` (the sandbox makes its own): kind plan,
    /// the policy key as subject, no errno.
    @Test func planRefusalNamesTheKey() throws {
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "bind-proc"
            extends = ["\(Harness.repoRoot)/Policies/base.toml"]
            [filesystem]
            ro = ["/proc"]
            """, in: dir)
        let out = try Harness.exec(policy: policy, ["true"], cwd: dir)
        #expect(out.status == 125, "\(out.stderr)")
        let e = Self.error(out)
        #expect(e["kind"] as? String == "plan", "\(e)")
        #expect(e["step"] as? String == "compile", "\(e)")
        #expect((e["subject"] as? String)?.hasPrefix("filesystem.ro[") == true, "\(e)")
        #expect(e["errno"] == nil && e["errnoName"] == nil, "\(e)")
        #expect(out.stderr.contains("/proc is provided by the sandbox itself"), "\(out.stderr)")
        Self.expectSameMessage(out)
    }

    /// An invalid policy: kind policy, the file at fault as subject.
    @Test func invalidPolicyNamesTheFile() throws {
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "bad"
            [resources]
            pids = 0
            """, in: dir)
        let out = try Harness.exec(policy: policy, ["true"], cwd: dir)
        #expect(out.status == 125, "\(out.stderr)")
        let e = Self.error(out)
        #expect(e["kind"] as? String == "policy" && e["step"] as? String == "load", "\(e)")
        #expect(e["subject"] as? String == policy, "\(e)")
        #expect((e["message"] as? String)?.hasPrefix("invalid policy:") == true, "\(e)")
    }

    /// A step of the sandbox init that fails (the working directory is not in the
    /// sandbox's root): kind child, the child's own step name, the path, ENOENT. The
    /// directory is under a bind (`/usr` of base) but absent on the host: a workdir
    /// outside every mount is refused when the policy is loaded.
    @Test func failedChildStepIsAChildError() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "no-workdir"
            extends = ["\(Harness.repoRoot)/Policies/base.toml"]
            [process]
            workdir = "/usr/no-such-workdir"
            """, in: dir)
        let out = try Harness.exec(policy: policy, ["true"], cwd: dir)
        #expect(out.status == 125, "\(out.stderr)")
        let e = Self.error(out)
        #expect(e["kind"] as? String == "child" && e["step"] as? String == "chdir", "\(e)")
        #expect(e["subject"] as? String == "/usr/no-such-workdir" && e["errnoName"] as? String == "ENOENT", "\(e)")
        Self.expectSameMessage(out)
    }

    /// A command that does not exist: kind exec, errno ENOENT, exit 127.
    @Test func missingCommandIsAnExecError() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "no-command"
            extends = ["\(Harness.repoRoot)/Policies/base.toml"]
            """, in: dir)
        let out = try Harness.exec(policy: policy, ["/no/such/command"], cwd: dir)
        #expect(out.status == 127, "\(out.stderr)")
        let e = Self.error(out)
        #expect(e["kind"] as? String == "exec" && e["step"] as? String == "execve", "\(e)")
        #expect(e["subject"] as? String == "/no/such/command" && e["errnoName"] as? String == "ENOENT", "\(e)")
        Self.expectSameMessage(out)
    }
}
