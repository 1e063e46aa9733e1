import Foundation
import Testing

/// Issue 12 item 7: protecting `.git` is not enough when the repository's config makes
/// git run files from the work tree (core.hooksPath, as husky and lefthook set it;
/// include.path), and a command can plant a new `.git` (with core.fsmonitor) in a
/// subdirectory. Each attack is shown working (control) and then fenced or reported.
@Suite(.serialized) struct GitIndirectionTests {
    static func git(_ args: [String], in dir: String) throws -> Harness.Output {
        try Harness.run("/usr/bin/git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid",
                                         "-c", "init.defaultBranch=main"] + args, cwd: dir)
    }

    static func ready() -> Bool {
        Harness.require(Harness.isRoot, "root") && Harness.require(FileManager.default.isExecutableFile(atPath: "/usr/bin/git"), "git")
    }

    /// A repository whose hooks live in the work tree, with a harmless pre-commit.
    static func huskyRepo() throws -> String {
        let dir = Harness.tempDir()
        _ = try git(["init", "-q", "."], in: dir)
        _ = try git(["config", "core.hooksPath", ".husky"], in: dir)
        try FileManager.default.createDirectory(atPath: "\(dir)/.husky", withIntermediateDirectories: true)
        try "#!/bin/sh\n:\n".write(toFile: "\(dir)/.husky/pre-commit", atomically: true, encoding: .utf8)
        chmod("\(dir)/.husky/pre-commit", 0o755)
        return dir
    }

    @Test func hooksPathInTheWorkTreeIsProtected() throws {
        guard Self.ready() else { return }
        let marker = "/tmp/sbx-git-pwned-\(UUID().uuidString.prefix(8))"
        defer { unlink(marker) }
        let plant = "echo 'touch \(marker)' >> .husky/pre-commit"

        // Control: .git protected but the hook directory not (the policy drops the
        // protection of .git, so no indirection is followed) — the host's next commit
        // runs what the command wrote.
        let open = try Self.huskyRepo()
        defer { try? FileManager.default.removeItem(atPath: open) }
        let unprotected = Harness.policy("version = 1\nextends = [\"agent\"]\n[filesystem]\nprotect = [\"!.git\"]\n", in: open)
        let c = try Harness.exec(policy: unprotected, ["sh", "-c", plant], cwd: open)
        #expect(c.status == 0, "control: \(c.stderr)")
        _ = try Self.git(["commit", "-q", "--allow-empty", "-m", "x"], in: open)
        #expect(FileManager.default.fileExists(atPath: marker), "control: the planted hook did not run on the host's commit")
        unlink(marker)

        // Under agent: the hooks directory is read-only inside.
        let repo = try Self.huskyRepo()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let out = try Harness.exec(policy: "agent", ["sh", "-c", "{ \(plant); } 2>&1; echo rc=$?"], cwd: repo)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(out.stdout.contains("Read-only file system") && out.stdout.contains("rc=2"), "stdout: \(out.stdout)")
        _ = try Self.git(["commit", "-q", "--allow-empty", "-m", "x"], in: repo)
        #expect(!FileManager.default.fileExists(atPath: marker), "the host's commit ran a hook the command wrote")
    }

    @Test func missingHooksPathIsReportedNotSilentlyWritable() throws {
        guard Self.ready() else { return }
        let repo = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        _ = try Self.git(["init", "-q", "."], in: repo)
        _ = try Self.git(["config", "core.hooksPath", ".hooks"], in: repo)
        let out = try Harness.exec(policy: "agent", ["true"], cwd: repo)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let notApplied = out.result?["notApplied"] as? [String] ?? []
        #expect(notApplied.contains { $0.contains("core.hooksPath") && $0.contains("\(repo)/.hooks") }, "\(notApplied)")
    }

    @Test func includedConfigInTheWorkTreeIsProtected() throws {
        guard Self.ready() else { return }
        let repo = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        _ = try Self.git(["init", "-q", "."], in: repo)
        try "[user]\n\tname = t\n".write(toFile: "\(repo)/team.gitconfig", atomically: true, encoding: .utf8)
        _ = try Self.git(["config", "include.path", "../team.gitconfig"], in: repo)
        let out = try Harness.exec(policy: "agent", ["sh", "-c", "{ echo '[core] fsmonitor = ./x' >> team.gitconfig; } 2>&1; echo rc=$?"], cwd: repo)
        #expect(out.stdout.contains("Read-only file system"), "stdout: \(out.stdout) \(out.stderr)")
        let text = try String(contentsOfFile: "\(repo)/team.gitconfig", encoding: .utf8)
        #expect(!text.contains("fsmonitor"), "the included config was changed")
    }

    /// A `.git` planted in a subdirectory cannot be stopped by a mount (it does not
    /// exist yet), so the result names it. Control: the host's `git status` there runs
    /// the planted fsmonitor command.
    @Test func plantedRepositoryIsReported() throws {
        guard Self.ready() else { return }
        let repo = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        _ = try Self.git(["init", "-q", "."], in: repo)
        let marker = "/tmp/sbx-git-fsmon-\(UUID().uuidString.prefix(8))"
        defer { unlink(marker) }
        let plant = """
            mkdir -p src && cd src && git init -q . 2>/dev/null || { mkdir -p .git/objects .git/refs && echo 'ref: refs/heads/main' > .git/HEAD; }
            printf '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = ./mon.sh\\n' > .git/config
            printf '#!/bin/sh\\ntouch \(marker)\\n' > mon.sh && chmod +x mon.sh
            """
        let out = try Harness.exec(policy: "agent", ["sh", "-c", plant], cwd: repo)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let created = out.result?["createdEntries"] as? [String] ?? []
        #expect(created == ["\(repo)/src/.git"], "createdEntries: \(created)")
        // Control: the danger is real — a host git command there runs the command's program.
        _ = try Self.git(["status", "--short"], in: "\(repo)/src")
        #expect(FileManager.default.fileExists(atPath: marker), "control: the planted fsmonitor did not run")
        // A run that creates nothing reports nothing.
        let quiet = try Harness.exec(policy: "agent", ["true"], cwd: repo)
        #expect((quiet.result?["createdEntries"] as? [String] ?? ["?"]).isEmpty, "\(String(describing: quiet.result?["createdEntries"]))")
    }

    /// The scan is not fooled by a `.git` made earlier and renamed into place (a rename
    /// keeps the birth time but changes the change time), and it reports a nested
    /// repository that existed before when the run changed its config or hooks.
    @Test func movedInOrReconfiguredRepositoriesAreReported() throws {
        guard Self.ready() else { return }
        let repo = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        _ = try Self.git(["init", "-q", "."], in: repo)
        try FileManager.default.createDirectory(atPath: "\(repo)/stash/.git", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(repo)/vendor/lib", withIntermediateDirectories: true)
        _ = try Self.git(["init", "-q", "."], in: "\(repo)/vendor/lib")
        usleep(20_000)
        let out = try Harness.exec(policy: "agent", ["sh", "-c",
            "mkdir -p src && mv stash/.git src/.git && printf '[core]\\n\\tfsmonitor = ./x\\n' >> vendor/lib/.git/config"], cwd: repo)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let created = out.result?["createdEntries"] as? [String] ?? []
        #expect(created == ["\(repo)/src/.git", "\(repo)/vendor/lib/.git"], "createdEntries: \(created)")
    }

    /// Second red-team pass: the hooks of the repository that CONTAINS the working
    /// directory (husky in a monorepo package), hooks set in an included config, and a
    /// linked worktree (`.git` is a file) are protected too. Each: the command's write
    /// to the hook fails, and the host's commit runs nothing it wrote.
    @Test func hooksOfEnclosingIncludedAndWorktreeRepositoriesAreProtected() throws {
        guard Self.ready() else { return }
        let marker = "/tmp/sbx-git-g-\(UUID().uuidString.prefix(8))"
        defer { unlink(marker) }
        func attempt(cwd: String, hook: String) throws -> Harness.Output {
            try Harness.exec(policy: "agent", ["sh", "-c", "{ echo 'touch \(marker)' >> \(hook); } 2>&1; echo rc=$?"], cwd: cwd)
        }
        // G1: hooksPath = frontend/.husky, the run works in frontend/.
        let mono = try Self.huskyRepo()
        defer { try? FileManager.default.removeItem(atPath: mono) }
        try FileManager.default.createDirectory(atPath: "\(mono)/frontend", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: "\(mono)/.husky", toPath: "\(mono)/frontend/.husky")
        _ = try Self.git(["config", "core.hooksPath", "frontend/.husky"], in: mono)
        let g1 = try attempt(cwd: "\(mono)/frontend", hook: ".husky/pre-commit")
        #expect(g1.stdout.contains("Read-only file system"), "G1: \(g1.stdout) \(g1.stderr)")

        // G2: the hooks path comes from an included file.
        let inc = try Self.huskyRepo()
        defer { try? FileManager.default.removeItem(atPath: inc) }
        _ = try Self.git(["config", "--unset", "core.hooksPath"], in: inc)
        try "[core]\n\thooksPath = .husky\n".write(toFile: "\(inc)/.gitconfig", atomically: true, encoding: .utf8)
        _ = try Self.git(["config", "include.path", "../.gitconfig"], in: inc)
        let g2 = try attempt(cwd: inc, hook: ".husky/pre-commit")
        #expect(g2.stdout.contains("Read-only file system"), "G2: \(g2.stdout) \(g2.stderr)")

        // G3: a linked worktree of a repository with hooksPath = .husky.
        let main = try Self.huskyRepo()
        let wt = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: main); try? FileManager.default.removeItem(atPath: wt) }
        _ = try Self.git(["add", "."], in: main)
        _ = try Self.git(["commit", "-q", "-m", "init", "--no-verify"], in: main)
        try? FileManager.default.removeItem(atPath: wt)
        let add = try Self.git(["worktree", "add", "-q", wt], in: main)
        #expect(add.status == 0, "worktree add: \(add.stderr)")
        let g3 = try attempt(cwd: wt, hook: ".husky/pre-commit")
        #expect(g3.stdout.contains("Read-only file system"), "G3: \(g3.stdout) \(g3.stderr)")
        _ = try Self.git(["commit", "-q", "--allow-empty", "-m", "x"], in: wt)
        _ = try Self.git(["commit", "-q", "--allow-empty", "-m", "x"], in: mono)
        _ = try Self.git(["commit", "-q", "--allow-empty", "-m", "x"], in: inc)
        #expect(!FileManager.default.fileExists(atPath: marker), "a host commit ran a hook the command wrote")
    }

    /// The report is bounded (red-team review: 24 000 planted `.git` with long paths
    /// made a 356 MB result and a 1.26 GB supervisor): at most 256 paths, the true
    /// total counted.
    @Test func theReportIsBounded() throws {
        guard Self.ready() else { return }
        let repo = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let out = try Harness.exec(policy: "agent", ["sh", "-c", "for i in $(seq 300); do mkdir -p d$i/.git; done"], cwd: repo)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect((out.result?["createdEntries"] as? [String])?.count == 256)
        #expect(out.result?["createdEntriesTotal"] as? Int == 300, "\(String(describing: out.result?["createdEntriesTotal"]))")
        #expect(out.result?["createdEntriesIncomplete"] as? Bool == false)
    }
}
