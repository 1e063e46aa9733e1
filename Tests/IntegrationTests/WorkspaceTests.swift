import Foundation
import Testing

/// Issue 18, acceptance 3: `rw = [{ src = "{cwd}", dst = "/workspace" }]` shows the
/// working directory at /workspace: what the command writes there appears in the
/// cwd on the host, and the cwd's own path does not exist inside. Under `base`,
/// Landlock is enforced, so the write also shows that its rule follows the bind to
/// the destination. Control: the same policy with a plain `rw = ["{cwd}"]` shows the
/// cwd at its own path.
@Suite struct WorkspaceTests {
    static func policy(in dir: String, rw: String) -> String {
        let p = Harness.policy("""
            extends = ["base"]
            [filesystem]
            rw = [\(rw)]
            [process]
            workdir = "\(rw.contains("dst") ? "/workspace" : "{cwd}")"
            """, in: dir)
        chmod(p, 0o644)   // read by the rootless case's user too
        return p
    }

    static func script(_ dir: String) -> String {
        "echo from-inside > /workspace/made && pwd; if [ -e '\(dir)' ]; then echo cwd-path-present; else echo cwd-path-absent; fi"
    }

    @Test func filesWrittenToTheWorkspaceAppearInTheCwd() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = try Harness.exec(policy: Self.policy(in: dir, rw: #"{ src = "{cwd}", dst = "/workspace" }"#),
                                   ["sh", "-c", Self.script(dir)], cwd: dir)
        #expect(out.status == 0 && out.stdout == "/workspace\ncwd-path-absent\n", "\(out.status) \(out.stdout) \(out.stderr)")
        #expect(FileManager.default.contents(atPath: "\(dir)/made") == Data("from-inside\n".utf8))
        // Control: at its own path, /workspace does not exist and the cwd's path does.
        let plain = try Harness.exec(policy: Self.policy(in: dir, rw: #""{cwd}""#),
                                     ["sh", "-c", "if [ -e /workspace ]; then echo ws; fi; " + Self.script(dir)], cwd: dir)
        #expect(plain.stdout.hasSuffix("cwd-path-present\n") && !plain.stdout.contains("ws\n"), "\(plain.stdout) \(plain.stderr)")
    }

    /// Rootless: the child resolves the source again beneath its own cwd and mounts
    /// it at the destination.
    @Test func rootlessWorkspace() throws {
        guard Harness.require(Harness.isRoot, "root (to switch to an unprivileged user with setpriv)") else { return }
        let runtime = Harness.tempDir(owner: 65534)
        let dir = Harness.tempDir(owner: 65534)
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: runtime) }
        let out = try Harness.exec(policy: Self.policy(in: dir, rw: #"{ src = "{cwd}", dst = "/workspace" }"#),
                                   ["sh", "-c", Self.script(dir)], cwd: dir, asUser: (65534, runtime))
        #expect(out.status == 0 && out.stdout == "/workspace\ncwd-path-absent\n", "\(out.status) \(out.stdout) \(out.stderr)")
        #expect(FileManager.default.contents(atPath: "\(dir)/made") == Data("from-inside\n".utf8))
    }

    /// Red-team finding: the same directory bound twice — a read-only view at a
    /// destination beside the writable cwd — had its trust check done for the first
    /// bind only, so a run could rewrite the policy it runs under. A host path may
    /// now be bound once. Controls: the writable cwd alone is refused because it
    /// holds the policy (the fence the second bind went around); the view alone runs.
    @Test func aSourceBoundTwiceIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func write(_ name: String, _ text: String) -> String {
            let path = "\(dir)/\(name)"
            FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            return path
        }
        let view = write("view.toml", """
            version = 1
            extends = ["agent"]
            [filesystem]
            ro = [{ src = "{cwd}", dst = "/v" }]
            """)
        let before = FileManager.default.contents(atPath: view)
        let attack = "echo 'mode = \"host\"' >> \(view)"
        let out = try Harness.exec(policy: view, ["sh", "-c", attack], cwd: dir)
        #expect(out.status == 125 && out.stderr.contains("is already bound by") && out.stderr.contains("bound at one place only"),
                "\(out.status) \(out.stderr)")
        #expect(FileManager.default.contents(atPath: view) == before, "the run rewrote its own policy")
        // The literal path beside `{cwd}` is the same source: refused too.
        let literal = write("literal.toml", """
            version = 1
            extends = ["agent"]
            [filesystem]
            ro = [{ src = "\(dir)", dst = "/v" }]
            """)
        let out2 = try Harness.exec(policy: literal, ["true"], cwd: dir)
        #expect(out2.status == 125 && out2.stderr.contains("is already bound by"), "\(out2.status) \(out2.stderr)")
        // Control: the writable cwd alone is refused for holding the policy.
        let alone = write("alone.toml", "version = 1\nextends = [\"agent\"]\n")
        let out3 = try Harness.exec(policy: alone, ["true"], cwd: dir)
        #expect(out3.status == 125 && out3.stderr.contains("holds the policy file"), "\(out3.status) \(out3.stderr)")
        // Control: a read-only view alone runs.
        let viewOnly = write("view-only.toml", """
            version = 1
            extends = ["base"]
            [filesystem]
            ro = [{ src = "{cwd}", dst = "/v" }]
            """)
        let out4 = try Harness.exec(policy: viewOnly, ["sh", "-c", "cat /v/alone.toml"], cwd: dir)
        #expect(out4.status == 0 && out4.stdout.contains("extends"), "\(out4.status) \(out4.stdout) \(out4.stderr)")
    }

    /// A read-only file inside the workspace's source, bound at its own path while the
    /// workspace is bound at /workspace, was writable as /workspace/Makefile (red team,
    /// session 46: the host file changed). Refused (125) before anything runs.
    /// Control: the same file bound read-only at /workspace/Makefile cannot be written
    /// there.
    @Test func aReadOnlyFileInsideTheWorkspaceBoundElsewhereIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "all:\n".write(toFile: "\(dir)/Makefile", atomically: false, encoding: .utf8)
        func policy(_ ro: String) -> String {
            let p = Harness.policy("""
                extends = ["base"]
                [filesystem]
                rw = [{ src = "{cwd}", dst = "/workspace" }]
                ro = [\(ro)]
                [process]
                workdir = "/workspace"
                """, in: dir)
            chmod(p, 0o644)
            return p
        }
        let write = ["sh", "-c", "echo changed > /workspace/Makefile"]
        let out = try Harness.exec(policy: policy(#""{cwd}/Makefile""#), write, cwd: dir)
        #expect(out.status == 125 && out.stderr.contains("bound writable at /workspace"), "\(out.status) \(out.stderr)")
        #expect(FileManager.default.contents(atPath: "\(dir)/Makefile") == Data("all:\n".utf8), "the host file changed")
        let placed = try Harness.exec(policy: policy(#"{ src = "{cwd}/Makefile", dst = "/workspace/Makefile" }"#), write, cwd: dir)
        #expect(placed.status != 0 && placed.stderr.contains("Read-only"), "control: \(placed.status) \(placed.stderr)")
        #expect(FileManager.default.contents(atPath: "\(dir)/Makefile") == Data("all:\n".utf8), "the host file changed")
    }

    /// A read-only directory inside the writable cwd rides on the directory it was
    /// mounted on: renaming a parent away and making a new one wrote a workflow the
    /// policy makes read-only (red team, session 46: the host's file changed). Its
    /// parents are pinned now: the rename fails (EBUSY) and the host file stays.
    /// Control: a direct write into it fails too (the bind itself is read-only).
    @Test func aReadOnlyDirectoryInsideTheCwdCannotBeSwappedByRenamingAParent() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/.github/workflows", withIntermediateDirectories: true)
        try "on: push\n".write(toFile: "\(dir)/.github/workflows/ci.yml", atomically: false, encoding: .utf8)
        let policy = Harness.policy("""
            extends = ["base"]
            [filesystem]
            rw = ["{cwd}"]
            ro = ["{cwd}/.github/workflows"]
            """, in: dir)
        chmod(policy, 0o644)
        let swap = try Harness.exec(policy: policy, ["sh", "-c", "mv .github .github.old && mkdir -p .github/workflows && echo evil > .github/workflows/ci.yml"], cwd: dir)
        #expect(swap.status != 0 && swap.stderr.contains("busy"), "\(swap.status) \(swap.stderr)")
        #expect(FileManager.default.contents(atPath: "\(dir)/.github/workflows/ci.yml") == Data("on: push\n".utf8), "the host's workflow changed")
        let direct = try Harness.exec(policy: policy, ["sh", "-c", "echo evil > .github/workflows/ci.yml"], cwd: dir)
        #expect(direct.status != 0 && direct.stderr.contains("Read-only"), "control: \(direct.status) \(direct.stderr)")
    }
}
