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
}
