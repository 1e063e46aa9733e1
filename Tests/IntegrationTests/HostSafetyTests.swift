import Foundation
import Testing

/// What a command could leave on, or pull from, the host through its writable paths.
@Suite struct HostSafetyTests {
    /// A setuid/setgid bit set inside would survive on the host (nosuid only holds
    /// inside the sandbox): every mode-setting call with one fails with EPERM.
    @Test func noSetuidFileIsLeftOnTheHost() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            cp /usr/bin/id ./suid-id
            for m in 4755 2755 6755; do chmod $m ./suid-id 2>/dev/null; echo "chmod $m: $?"; done
            python3 -c 'import os
            for m in (0o4700, 0o2700):
                try:
                    os.chmod("suid-id", m); print("os.chmod ok")
                except PermissionError as e:
                    print("os.chmod", e.errno)'
            python3 -c 'import os
            for name, flags in (("c1", os.O_CREAT | os.O_WRONLY), ("c2", os.O_TMPFILE | os.O_WRONLY)):
                try:
                    os.close(os.open(name if flags & os.O_CREAT else ".", flags, 0o4755)); print("create ok")
                except OSError as e:
                    print("create", e.errno)'
            chmod 750 ./suid-id; echo "chmod 750: $?"
            """
        let out = try Harness.exec(policy: "\(Harness.repoRoot)/Policies/agent.toml", ["sh", "-c", script], cwd: dir)
        #expect(out.stdout == "chmod 4755: 1\nchmod 2755: 1\nchmod 6755: 1\nos.chmod 1\nos.chmod 1\ncreate 1\ncreate 1\nchmod 750: 0\n",
                "\(out.stdout) \(out.stderr)")
        var st = stat()
        #expect(stat("\(dir)/suid-id", &st) == 0)
        #expect(st.st_mode & 0o7777 == 0o750, "mode on the host: \(String(st.st_mode & 0o7777, radix: 8))")
        // Control: the same chmod works outside (the denial is the sandbox's).
        #expect(chmod("\(dir)/suid-id", 0o4755) == 0)
    }

    /// A bind nested in a writable directory is resolved with no symlink on its path:
    /// a run sharing the directory could otherwise swap one in between plan and mount
    /// and have a host file mounted inside.
    @Test func nestedBindRefusesASymlinkOnItsPath() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        let outside = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: outside) }
        try "SECRET".write(toFile: "\(outside)/cfg.json", atomically: true, encoding: .utf8)
        // `sub` is a symlink the planner does not look through (it checks the last
        // component only), standing in for one swapped in after planning.
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/sub", withDestinationPath: outside)
        let policy = Harness.policy("""
            name = "nested"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            [filesystem]
            ro = ["{cwd}/sub/cfg.json"]
            """, in: dir)
        let out = try Harness.exec(policy: policy, ["cat", "sub/cfg.json"], cwd: dir)
        #expect(out.status == 125, "\(out.status) \(out.stdout)")
        #expect(!out.stdout.contains("SECRET"))
        #expect(out.stderr.contains("a symlink is on its path"), "\(out.stderr)")
    }

    /// A nested protect cannot be dodged by renaming a parent away (the parents are
    /// pinned), and one that was present when the run was planned must still be there.
    @Test func nestedProtectHoldsAgainstRenames() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/vendor/lib/.git/hooks", withIntermediateDirectories: true)
        let policy = Harness.policy("""
            name = "nested-protect"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            [filesystem]
            protect = ["vendor/lib/.git"]
            """, in: dir)
        let script = """
            (echo x > vendor/lib/.git/hooks/pre-commit) 2>/dev/null || echo hook-refused
            mv vendor v2 2>/dev/null || echo rename-refused
            mv vendor/lib vendor/l2 2>/dev/null || echo rename2-refused
            echo ok > vendor/other && echo sibling-writable
            """
        let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir)
        #expect(out.stdout == "hook-refused\nrename-refused\nrename2-refused\nsibling-writable\n", "\(out.stdout) \(out.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/vendor/lib/.git"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/vendor/lib/.git/hooks/pre-commit"))
    }
}
