import Foundation
import Testing

/// Issue 11, "no run can change what a later run trusts": the `sandbox` executable,
/// its data directory, the policy and profile files a plan was built from, the seccomp
/// cache and the run base must not lie in a path the policy makes writable; `--result`
/// must not follow a symlink an earlier run planted; nothing may bind `/proc`, `/sys`,
/// `/dev` or the run base. Each refusal is 125 before anything runs (the command would
/// `touch` a marker: it must not exist), and each has a control: the same thing from a
/// safe place works, and, where it is the point, a normal run really can rewrite what
/// sits in its writable directory.
@Suite struct TrustTests {
    static var agent: String { "\(Harness.repoRoot)/Policies/agent.toml" }
    static func realPath(_ p: String) -> String { URL(fileURLWithPath: p).resolvingSymlinksInPath().path }
    static func exists(_ p: String) -> Bool { FileManager.default.fileExists(atPath: p) }

    /// A copy of the built binary at `proj/.build/release/sandbox`, the README's old layout.
    static func copyBinary(into proj: String) throws -> String {
        let dir = "\(proj)/.build/release"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let copy = "\(dir)/sandbox"
        try Harness.copyExecutable(Harness.binary, to: copy)
        chmod(copy, 0o755)
        return copy
    }

    /// git with an identity and local submodules allowed, expected to succeed.
    static func git(_ args: [String], in dir: String? = nil, env: [String: String] = [:]) throws {
        let r = try Harness.run("/usr/bin/git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid",
                                                 "-c", "protocol.file.allow=always"] + args, cwd: dir, env: env)
        #expect(r.status == 0, "git \(args): \(r.stderr)")
    }

    /// A setup script with `g` as git (an identity, local submodules allowed), run in
    /// `dir` (made first), expected to succeed.
    static func shell(_ script: String, in dir: String, env: [String: String]) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = try Harness.run("/bin/sh", ["-c", "set -e; g() { git -c user.name=t -c user.email=t@example.invalid -c protocol.file.allow=always \"$@\"; }; " + script], cwd: dir, env: env)
        #expect(r.status == 0, "setup: \(script): \(r.stderr)")
    }

    /// `cmd` under `agent` in `dir`, expected to be stopped: a read-only write, or a
    /// plan refused.
    static func blocked(_ cmd: String, in dir: String, env: [String: String], _ what: String) throws {
        let out = try Harness.exec(policy: "agent", ["sh", "-c", cmd], cwd: dir, env: env)
        #expect(out.status != 0 && (out.stderr.contains("Read-only") || out.status == 125), "\(what): \(out.status) \(out.stderr)")
    }

    /// Root and git, which the git tests need (a failure, not a skip, without them).
    static func rootAndGit() -> Bool {
        Harness.require(Harness.isRoot, "root") && Harness.require(FileManager.default.isExecutableFile(atPath: "/usr/bin/git"), "git")
    }

    // MARK: (a) the binary

    /// Every place the data directory is looked for is trusted, made or not: an
    /// installed binary at `bin/sandbox` with no data directory yet looks for
    /// `bin/../share/sandbox`, which is not above the binary, so a run whose writable
    /// directory was `share` made `sandbox/Policies/agent.toml` there and every later
    /// `--policy agent` loaded it (red team, session 46: the next run wrote a
    /// directory the planted policy made writable). Now refused (125), nothing made.
    /// Controls: the same files made by the host are the next run's data directory
    /// (what the planted ones would have been), and the same command from a directory
    /// that is no such place runs.
    @Test func aDataDirectoryARunCouldMakeIsTrustedBeforeItExists() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let top = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: top) }
        for d in ["bin", "share", "ws", "victim"] {
            try FileManager.default.createDirectory(atPath: "\(top)/\(d)", withIntermediateDirectories: true)
            chmod("\(top)/\(d)", 0o755)
        }
        let copy = "\(top)/bin/sandbox"
        try Harness.copyExecutable(Harness.binary, to: copy)
        let env = ["SANDBOX_DATA_DIR": "", "SANDBOX_POLICY_PATH": ""]
        let real = Self.realPath(top)
        let plant = """
            mkdir -p sandbox/Policies sandbox/Profiles && printf 'version = 1\\nname = "agent"\\nextends = ["builtin:Policies/agent.toml"]\\n[filesystem]\\nrw = ["\(real)/victim"]\\n' > sandbox/Policies/agent.toml
            """
        let out = try Harness.run(copy, ["exec", "--policy", "agent", "--", "/bin/sh", "-c", plant], cwd: "\(top)/share", env: env)
        #expect(out.status == 125 && out.stderr.contains("the data directory's Policies \(real)/share/sandbox/Policies"),
                "\(out.status) \(out.stderr)")
        #expect(!Self.exists("\(top)/share/sandbox"), "the run made the data directory")

        // Control: from a directory that is no such place, the same command runs.
        let elsewhere = try Harness.run(copy, ["exec", "--policy", "agent", "--", "/bin/sh", "-c", plant], cwd: "\(top)/ws", env: env)
        #expect(elsewhere.status == 0 && Self.exists("\(top)/ws/sandbox/Policies/agent.toml"), "\(elsewhere.status) \(elsewhere.stderr)")
        // Control: those files at share/sandbox are what every later run loads.
        try FileManager.default.moveItem(atPath: "\(top)/ws/sandbox", toPath: "\(top)/share/sandbox")
        let plan = try Harness.run(copy, ["plan", "--policy", "agent", "--", "true"], cwd: "\(top)/ws", env: env)
        #expect(plan.status == 0 && plan.stdout.contains("\(real)/share/sandbox/Policies/agent.toml")
                && plan.stdout.contains("\(real)/victim"), "the planted policy is loaded: \(plan.status) \(plan.stderr)")
    }

    /// The same place made by a run of a supervisor given `$SANDBOX_DATA_DIR`: it was
    /// trusted only where that variable's search looked, so a run made the default
    /// data directory of every later run without it (red team, session 46). Control:
    /// the same command from a directory that is no such place runs.
    @Test func theDefaultDataDirectoryIsTrustedWhenAnotherIsGiven() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let top = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: top) }
        for d in ["bin", "share", "ws"] {
            try FileManager.default.createDirectory(atPath: "\(top)/\(d)", withIntermediateDirectories: true)
            chmod("\(top)/\(d)", 0o755)
        }
        let copy = "\(top)/bin/sandbox"
        try Harness.copyExecutable(Harness.binary, to: copy)
        let env = ["SANDBOX_DATA_DIR": Harness.repoRoot, "SANDBOX_POLICY_PATH": ""]
        let plant = "mkdir -p sandbox/Policies sandbox/Profiles"
        let out = try Harness.run(copy, ["exec", "--policy", "agent", "--", "/bin/sh", "-c", plant], cwd: "\(top)/share", env: env)
        #expect(out.status == 125 && out.stderr.contains("the data directory's Policies \(Self.realPath(top))/share/sandbox/Policies"),
                "\(out.status) \(out.stderr)")
        #expect(!Self.exists("\(top)/share/sandbox"), "the run made the default data directory")
        let elsewhere = try Harness.run(copy, ["exec", "--policy", "agent", "--", "/bin/sh", "-c", plant], cwd: "\(top)/ws", env: env)
        #expect(elsewhere.status == 0, "control: \(elsewhere.status) \(elsewhere.stderr)")
    }

    /// A copy of the binary at `top/bin/sandbox`, under a sticky, world-writable `top`
    /// (as `/tmp`), and the data directory it looks for at `top/share/sandbox`, with an
    /// `agent.toml` made by `plant` in its `Policies`; `own(uid)` gives the data
    /// directory (not the file) to `uid`; `plan()` asks for `--policy agent` from
    /// `top/ws`.
    struct PlantedDataDirectory {
        let top = Harness.tempDir()
        var copy: String { "\(top)/bin/sandbox" }
        var policies: String { "\(top)/share/sandbox/Policies" }
        var directories: [String] { ["\(top)/share", "\(top)/share/sandbox", policies, "\(top)/share/sandbox/Profiles"] }

        init(plant: (_ agentToml: String, _ top: String) throws -> Void) throws {
            chmod(top, 0o1777)
            for d in ["bin", "ws", "real"] {
                try FileManager.default.createDirectory(atPath: "\(top)/\(d)", withIntermediateDirectories: true)
                chmod("\(top)/\(d)", 0o755)
            }
            try Harness.copyExecutable(Harness.binary, to: copy)
            for d in directories { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
            try plant("\(policies)/agent.toml", top)
        }

        func own(_ uid: UInt32) { for d in directories { chown(d, uid, uid) } }

        func plan() throws -> Harness.Output {
            try Harness.run(copy, ["plan", "--policy", "agent", "--", "true"], cwd: "\(top)/ws",
                            env: ["SANDBOX_DATA_DIR": "", "SANDBOX_POLICY_PATH": ""])
        }

        func remove() { try? FileManager.default.removeItem(atPath: top) }
    }

    static let agentExtension = "version = 1\nname = \"agent\"\nextends = [\"builtin:Policies/agent.toml\"]\n"

    /// A policy file another user could change is not loaded: a binary in a directory
    /// under a sticky, world-writable one (as `/tmp`) looks for `../share/sandbox`,
    /// which any user can make, and uid 64999's `Policies/agent.toml` there was what
    /// root's `--policy agent` meant (red team, session 46: it kept `sys_admin` and
    /// turned seccomp off). Now 125 naming the owner. Control: the same file owned by
    /// root is loaded (what the planted one was).
    @Test func aPolicyFileAnotherUserCouldChangeIsNotLoaded() throws {
        guard Harness.require(Harness.isRoot, "root (files of another uid)") else { return }
        let d = try PlantedDataDirectory { toml, _ in
            try Self.agentExtension.write(toFile: toml, atomically: false, encoding: .utf8)
            chmod(toml, 0o644)
            chown(toml, 64999, 64999)
        }
        defer { d.remove() }
        d.own(64999)
        let out = try d.plan()
        #expect(out.status == 125 && out.stderr.contains("another user could change it") && out.stderr.contains("owned by uid 64999"),
                "\(out.status) \(out.stderr)")
        d.own(0)
        chown("\(d.policies)/agent.toml", 0, 0)
        let owned = try d.plan()
        #expect(owned.status == 0 && owned.stdout.contains("\(Self.realPath(d.policies))/agent.toml"), "control: \(owned.status) \(owned.stderr)")
    }

    /// A symlink in another user's directory chooses which root-owned file is read:
    /// only the resolved file's directories were examined, so uid 64999's
    /// `Profiles/seccomp/default.json -> <a root-owned profile>` was root's `default`
    /// profile (red team, session 46: one that lets `clone(CLONE_NEWUSER)` through).
    /// The directories the path names as written are examined too. Control: the same
    /// link in a directory of root's is followed.
    @Test func aLinkInAnotherUsersDirectoryDoesNotChooseWhatIsRead() throws {
        guard Harness.require(Harness.isRoot, "root (files of another uid)") else { return }
        let d = try PlantedDataDirectory { toml, top in
            try Self.agentExtension.write(toFile: "\(top)/real/agent.toml", atomically: false, encoding: .utf8)
            chmod("\(top)/real/agent.toml", 0o644)
            #expect(symlink("\(top)/real/agent.toml", toml) == 0)
            #expect(lchown(toml, 64999, 64999) == 0)
        }
        defer { d.remove() }
        d.own(64999)
        let out = try d.plan()
        #expect(out.status == 125 && out.stderr.contains("above it is owned by uid 64999"), "\(out.status) \(out.stderr)")
        d.own(0)
        let control = try d.plan()
        #expect(control.status == 0 && control.stdout.contains("\(Self.realPath(d.policies))/agent.toml"), "control: \(control.status) \(control.stderr)")
    }

    /// Two owners besides root and the invoker: under `sudo`, the user who ran it
    /// (root refused `sudo sandbox exec --policy ~/p.toml`: red team, session 46), and
    /// a user-private group may write (umask 002: a rootless user's own 664 policy was
    /// refused). Controls: without SUDO_UID the same file is refused; a group that is
    /// not the user's own may not write.
    @Test func sudosUserAndAPrivateGroupAreTheInvokers() throws {
        guard Harness.require(Harness.isRoot, "root (files of another uid)") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        let mine = "\(dir)/mine"
        try FileManager.default.createDirectory(atPath: mine, withIntermediateDirectories: true)
        let policy = "\(mine)/p.toml"
        try "version = 1\nname = \"p\"\nextends = [\"base\"]\n".write(toFile: policy, atomically: false, encoding: .utf8)
        chown(mine, 64999, 64999); chown(policy, 64999, 64999)
        chmod(mine, 0o775); chmod(policy, 0o664)
        func check(_ env: [String: String], asUser: Bool) throws -> Harness.Output {
            asUser ? try Harness.run("/usr/bin/setpriv", ["--reuid=64999", "--regid=64999", "--clear-groups", Harness.binary, "check", policy], cwd: dir, env: env)
                   : try Harness.run(Harness.binary, ["check", policy], cwd: dir, env: env)
        }
        let own = try check([:], asUser: true)
        #expect(own.status == 0, "uid 64999's own 664 file in its 775 directory: \(own.status) \(own.stderr)")
        chmod(mine, 0o755); chmod(policy, 0o644)
        let sudo = try check(["SUDO_UID": "64999"], asUser: false)
        #expect(sudo.status == 0, "root under sudo from uid 64999: \(sudo.status) \(sudo.stderr)")
        let root = try check([:], asUser: false)
        #expect(root.status != 0 && root.stderr.contains("owned by uid 64999"), "control: root without sudo: \(root.status) \(root.stderr)")
        chown(policy, 64999, 64998); chmod(policy, 0o664)
        let other = try check([:], asUser: true)
        #expect(other.status != 0 && other.stderr.contains("writable by its group"), "control: another group: \(other.status) \(other.stderr)")
    }

    /// The binary inside the writable `{cwd}`: `exec`, `plan` and `explain` refuse with
    /// 125 naming both paths, and the command does not run.
    @Test func binaryInsideTheWritableDirectoryIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let proj = Harness.tempDir(), other = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: proj); try? FileManager.default.removeItem(atPath: other) }
        let copy = try Self.copyBinary(into: proj)
        // The copy finds no Policies/ beside it; the checkout's are its data directory.
        let env = ["SANDBOX_DATA_DIR": Harness.repoRoot]
        let result = "\(other)/result.json"

        let out = try Harness.run(copy, ["exec", "--policy", "agent", "--result", result, "--", "touch", "ran"], cwd: proj, env: env)
        #expect(out.status == 125, "stderr: \(out.stderr)")
        #expect(out.stderr.contains("filesystem.rw[0]: \(Self.realPath(proj)) is writable by the command"), "\(out.stderr)")
        #expect(out.stderr.contains("the sandbox executable \(Self.realPath(copy))"), "\(out.stderr)")
        #expect(!Self.exists("\(proj)/ran"), "the command ran")
        // The refusal is a RunResult like any plan error.
        let json = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: result)))) as? [String: Any]
        #expect(json?["exitCode"] as? Int == 125)
        #expect(((json?["error"] as? [String: Any])?["message"] as? String)?.contains(Self.realPath(copy)) == true, "\(json ?? [:])")

        for args in [["plan", "--policy", "agent", "--", "true"], ["explain", "--policy", "agent"]] {
            let o = try Harness.run(copy, args, cwd: proj, env: env)
            #expect(o.status == 125 && o.stderr.contains("the sandbox executable \(Self.realPath(copy))"), "\(args): \(o.status) \(o.stderr)")
        }

        // Control: the same copy from another directory (not under rw) runs.
        let ok = try Harness.run(copy, ["exec", "--policy", "agent", "--", "touch", "ran"], cwd: other, env: env)
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
        #expect(Self.exists("\(other)/ran"))
    }

    /// The attack the refusal prevents: under agent, a command replaces a "binary" in
    /// its working directory, and the change is on the host (the next call would run it).
    @Test func aRunCanReplaceWhatLiesInItsWritableDirectory() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let proj = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: proj) }
        let copy = try Self.copyBinary(into: proj)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        // Harness.binary lives outside proj, so this run is allowed.
        let out = try Harness.exec(policy: Self.agent, ["sh", "-c", "printf '#!/bin/sh\\necho replaced\\n' > .build/release/sandbox"], cwd: proj)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let after = try Data(contentsOf: URL(fileURLWithPath: copy))
        #expect(after != before && String(decoding: after, as: UTF8.self).hasPrefix("#!/bin/sh"), "the host copy did not change")
    }

    /// The data directory (here by SANDBOX_DATA_DIR) inside the writable `{cwd}`.
    @Test func dataDirectoryInsideTheWritableDirectoryIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let proj = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: proj) }
        let share = "\(proj)/share"
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        for d in ["Policies", "Profiles"] {
            try FileManager.default.copyItem(atPath: "\(Harness.repoRoot)/\(d)", toPath: "\(share)/\(d)")
        }
        let out = try Harness.exec(policy: "agent", ["touch", "ran"], cwd: proj, env: ["SANDBOX_DATA_DIR": share])
        #expect(out.status == 125, "stderr: \(out.stderr)")
        #expect(out.stderr.contains("\(Self.realPath(proj)) is writable by the command")
                && out.stderr.contains("the data directory's Policies \(Self.realPath(share))/Policies"), "\(out.stderr)")
        #expect(!Self.exists("\(proj)/ran"), "the command ran")
    }

    // MARK: (b) policy files

    /// A policy file inside `{cwd}`, given directly, through a symlinked directory, or
    /// only extended by a policy that lives elsewhere: 125 naming both.
    @Test func policyFileInsideTheWritableDirectoryIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let proj = Harness.tempDir()
        let alias = NSTemporaryDirectory() + "sbx-alias-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: proj); try? FileManager.default.removeItem(atPath: alias) }
        let inside = "\(proj)/p.toml"
        try "name = \"in-workspace\"\nextends = [\"\(Self.agent)\"]\n".write(toFile: inside, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: alias, withDestinationPath: proj)
        let outer = Harness.policy("name = \"outer\"\nextends = [\"\(inside)\"]\n", in: proj, name: "outer.toml")

        for policy in [inside, "\(alias)/p.toml", outer] {
            let out = try Harness.exec(policy: policy, ["touch", "ran"], cwd: proj)
            #expect(out.status == 125, "\(policy): \(out.stderr)")
            #expect(out.stderr.contains("\(Self.realPath(proj)) is writable by the command")
                    && out.stderr.contains("the policy file \(Self.realPath(inside))"), "\(policy): \(out.stderr)")
            #expect(((out.result?["error"] as? [String: Any])?["message"] as? String)?.contains(Self.realPath(inside)) == true)
            #expect(!Self.exists("\(proj)/ran"), "\(policy): the command ran")
        }

        // Control, the attack: run with the same policy kept outside, the command
        // rewrites the copy in its directory, and the host file changes.
        let outside = Harness.policy("name = \"in-workspace\"\nextends = [\"\(Self.agent)\"]\n", in: proj, name: "p.toml")
        let out = try Harness.exec(policy: outside, ["sh", "-c", "printf '[filesystem]\\nrw = [\"/root\"]\\n' >> p.toml; touch ran"], cwd: proj)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(Self.exists("\(proj)/ran"))
        #expect((try? String(contentsOfFile: inside, encoding: .utf8))?.contains("/root") == true, "the run could not rewrite p.toml")
    }

    /// A policy in the project's `.sandbox/` (agent's `protect`) is read-only inside:
    /// allowed, and the command indeed cannot change it.
    /// A policy under a protected `.sandbox/` is refused too: protect covers only what
    /// exists when a run is planned, so an earlier run (in a directory without
    /// `.sandbox/`) could have planted it. Control: such a run can create it.
    @Test func policyInProtectedDotSandboxIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let proj = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: proj) }
        let planted = "name = \"planted\"\nextends = [\"\(Self.agent)\"]\n[filesystem]\nrw = [\"{cwd}\", \"/root\"]\n"
        let plant = try Harness.exec(policy: "agent", ["sh", "-c", "mkdir -p .sandbox && printf '\(planted.replacingOccurrences(of: "\n", with: "\\n"))' > .sandbox/p.toml"], cwd: proj)
        #expect(plant.status == 0 && Self.exists("\(proj)/.sandbox/p.toml"), "control: a run could not plant a policy: \(plant.stderr)")
        let out = try Harness.exec(policy: "\(proj)/.sandbox/p.toml", ["touch", "ran"], cwd: proj)
        #expect(out.status == 125, "stderr: \(out.stderr)")
        #expect(out.stderr.contains("holds the policy file"), "\(out.stderr)")
        #expect(!Self.exists("\(proj)/ran"), "the planted policy ran")
    }

    /// Identity, not only paths: a bind-mount alias of a directory holding a policy is
    /// the same directory. (The alias is a bind mount the test makes and removes.)
    @Test func bindMountAliasOfATrustedDirectoryIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let real = Harness.tempDir(), alias = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: real); try? FileManager.default.removeItem(atPath: alias) }
        try "name = \"aliased\"\nextends = [\"\(Self.agent)\"]\n".write(toFile: "\(real)/p.toml", atomically: true, encoding: .utf8)
        let m = try Harness.run("/bin/mount", ["--bind", real, alias])
        guard Harness.require(m.status == 0, "bind mount: \(m.stderr)") else { return }
        defer { _ = try? Harness.run("/bin/umount", [alias]) }
        let out = try Harness.exec(policy: "\(real)/p.toml", ["sh", "-c", "echo '# changed' >> p.toml"], cwd: alias)
        #expect(out.status == 125, "stderr: \(out.stderr)")
        #expect(out.stderr.contains("holds the policy file"), "\(out.stderr)")
        #expect(!((try? String(contentsOfFile: "\(real)/p.toml", encoding: .utf8)) ?? "").contains("changed"), "the policy was changed through the alias")
        // Control: another directory is fine, and a run there could write what it holds.
        let other = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: other) }
        let ok = try Harness.exec(policy: "\(real)/p.toml", ["sh", "-c", "echo hi > f"], cwd: other)
        #expect(ok.status == 0, "control: \(ok.stderr)")
    }

    /// Names are bytes to the kernel and only equivalent to Swift: `K` and the Kelvin
    /// sign `\u{212A}`, NFC and NFD `é`. A policy file reached through `k/K`, a symlink
    /// to a directory the policy makes writable, while the policy also binds `k/\u{212A}`,
    /// a real directory: the plan's memo answered the symlink's lstat with the
    /// directory's, the trust check never followed the link, and (since the place of
    /// a resolved path no longer comes from realpath) the run rewrote its own policy
    /// (red team, session 43). Control: without the twin the same layout is refused
    /// too, and the twin's bytes do differ.
    @Test(arguments: [("K", "\u{212A}"), ("d\u{E9}", "de\u{301}")])
    func aPolicyBehindAUnicodeTwinOfABindIsRefused(_ twin: (link: String, dir: String)) throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let root = Harness.tempDir(), proj = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: proj) }
        #expect(twin.link == twin.dir && Array(twin.link.utf8) != Array(twin.dir.utf8), "not a twin")
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/srv/pol", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(root)/k/\(twin.dir)", withIntermediateDirectories: true)
        #expect(symlink("\(root)/srv/pol", "\(root)/k/\(twin.link)") == 0)
        let policy = "\(root)/k/\(twin.link)/p.toml"
        func write(twinBound: Bool) throws {
            try """
                version = 1
                name = "twin"
                extends = ["\(Self.agent)"]
                [filesystem]
                ro = [\(twinBound ? "\"\(root)/k/\(twin.dir)\"" : "")]
                rw = ["\(root)/srv/pol"]
                """.write(toFile: "\(root)/srv/pol/p.toml", atomically: true, encoding: .utf8)
        }
        for twinBound in [true, false] {
            try write(twinBound: twinBound)
            let out = try Harness.exec(policy: policy, ["sh", "-c", "echo '# changed' >> \(root)/srv/pol/p.toml"], cwd: proj)
            #expect(out.status == 125, "twin bound: \(twinBound): \(out.stderr)")
            #expect(out.stderr.contains("holds the policy file"), "\(out.stderr)")
            #expect(!((try? String(contentsOfFile: "\(root)/srv/pol/p.toml", encoding: .utf8)) ?? "").contains("changed"),
                    "the run rewrote its policy")
        }
    }

    /// A server whose binary was replaced since it started (an upgrade renames a new
    /// file over it) still refuses a writable bind of the installed binary's
    /// directory: `/proc/self/exe` then reads "<path> (deleted)", realpath of it
    /// failed, and no executable was trusted, so a run overwrote the installed binary
    /// (red team, session 43; older than it). Control: the same request before the
    /// upgrade is refused alike. Also when the upgrade moves the old file aside first
    /// (`mv sandbox sandbox.old; cp new sandbox`): `/proc/self/exe` then names
    /// `sandbox.old`, and the path the server was started from is trusted too.
    @Test(arguments: ["rename over", "move aside"])
    func aServerWhoseBinaryWasReplacedStillTrustsItsPath(_ upgrade: String) throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let inst = Harness.tempDir(), ws = Harness.tempDir(), pol = Harness.tempDir()
        defer { for d in [inst, ws, pol] { try? FileManager.default.removeItem(atPath: d) } }
        let copy = try Self.copyBinary(into: inst)
        let bin = String(copy[..<copy.lastIndex(of: "/")!])
        // The installed file's directory; moved aside, the old file stays in it, so the
        // file itself.
        let writable = upgrade == "rename over" ? bin : copy
        let policy = Harness.policy("name = \"upgrade\"\nextends = [\"\(Self.agent)\"]\n[filesystem]\nrw = [\"\(writable)\"]\n",
                                    in: pol, name: "upgrade.toml")
        let served = try ServeTests.Served(environment: ["SANDBOX_DATA_DIR": Harness.repoRoot], binary: copy)
        defer { served.stop() }
        try #require(served.ready, "sandbox serve did not start")
        func overwrite() throws -> Harness.Output {
            try Harness.run(Harness.binary, ["exec", "--server", served.socket, "--policy", policy, "--",
                                             "sh", "-c", "echo '#!/bin/sh' > \(copy)"], cwd: ws)
        }
        let before = try overwrite()
        #expect(before.status == 125 && before.stderr.contains("the sandbox executable"), "control: \(before.stderr)")
        // The upgrade: a new file renamed over the running one, or the running one
        // moved aside and the new one copied in.
        if upgrade == "rename over" {
            try Harness.copyExecutable(Harness.binary, to: copy + ".new")
            #expect(rename(copy + ".new", copy) == 0)
        } else {
            #expect(rename(copy, copy + ".old") == 0)
            try Harness.copyExecutable(Harness.binary, to: copy)
        }
        let after = try overwrite()
        #expect(after.status == 125 && after.stderr.contains("the sandbox executable \(Self.realPath(copy))"), "\(after.stderr)")
        let size = (try? FileManager.default.attributesOfItem(atPath: copy))?[.size] as? Int ?? 0
        #expect(size > 4096, "the run overwrote the installed binary")
    }

    /// A path only canonically equivalent to the working directory (`K` and the
    /// Kelvin sign) is another directory: the plan bound the cwd itself under the
    /// twin's name (its identity and `cwdRelative` ""), while the trust check looked
    /// at the twin, so the run rewrote a policy file in the cwd (red team, session
    /// 43). Now the twin is bound, and the cwd's files are out of reach. Control: the
    /// twin's own file is written.
    @Test func aUnicodeTwinOfTheWorkingDirectoryIsAnotherDirectory() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let root = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cwd = "\(root)/polK", twin = "\(root)/pol\u{212A}"
        for d in [cwd, twin] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try "version = 1\nname = \"twin-cwd\"\nextends = [\"\(Harness.repoRoot)/Policies/base.toml\"]\n[filesystem]\nrw = [\"\(twin)\"]\n"
            .write(toFile: "\(cwd)/p.toml", atomically: true, encoding: .utf8)
        let out = try Harness.exec(policy: "\(cwd)/p.toml", ["sh", "-c", "echo '# changed' >> '\(twin)/p.toml'"], cwd: cwd)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(!((try? String(contentsOfFile: "\(cwd)/p.toml", encoding: .utf8)) ?? "").contains("changed"),
                "the run rewrote the policy in the working directory through its twin")
        #expect(access("\(twin)/p.toml", F_OK) == 0, "control: the twin was not written")
    }

    /// A slash followed by a combining mark is one `Character`: split by characters,
    /// `x/\u{301}p.toml` stayed one component, which the kernel resolved through the
    /// symlink `x` while the trust check never followed it, and the run rewrote the
    /// policy it was started with (red team, session 43). Control: the same file by
    /// its direct path is refused alike.
    @Test func aSymlinkBeforeACombiningMarkIsFollowed() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let root = Harness.tempDir(), proj = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: proj) }
        let name = "\u{301}p.toml"
        try FileManager.default.createDirectory(atPath: "\(root)/victim", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(root)/front", withIntermediateDirectories: true)
        #expect(symlink("\(root)/victim", "\(root)/front/x") == 0)
        try "version = 1\nname = \"mark\"\nextends = [\"\(Harness.repoRoot)/Policies/base.toml\"]\n[filesystem]\nrw = [\"\(root)/victim\"]\n"
            .write(toFile: "\(root)/victim/\(name)", atomically: true, encoding: .utf8)
        for policy in ["\(root)/front/x/\(name)", "\(root)/victim/\(name)"] {
            let out = try Harness.exec(policy: policy, ["sh", "-c", "echo '# changed' >> '\(root)/victim/\(name)'"], cwd: proj)
            #expect(out.status == 125 && out.stderr.contains("holds the policy file"), "\(policy): \(out.stderr)")
        }
        #expect(!((try? String(contentsOfFile: "\(root)/victim/\(name)", encoding: .utf8)) ?? "").contains("changed"),
                "the run rewrote its policy")
    }

    /// Names that are not UTF-8 reach the planner decoded with U+FFFD: another, missing
    /// path. From such a working directory `agent`'s protects of `.git` and
    /// `.sandbox` were left out (the executor bound the real directory by its
    /// descriptor) and the run wrote a git hook; a policy opened through a symlink to
    /// such a directory had its trust checked at the missing twin and was rewritten
    /// (red team, session 43). Both are refused now. Control: the same from a valid
    /// name, whose protect holds and whose policy is accepted.
    @Test func namesThatAreNotUTF8AreRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let root = Harness.tempDir(), pol = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: pol) }
        let bad = #"$(printf 'proj\377')"#
        let script = """
            set -e; cd "$1"; mkdir "\(bad)" projok other
            mkdir "\(bad)/.git" projok/.git
            printf 'version = 1\\nname = "p"\\nextends = ["%s"]\\n[filesystem]\\nrw = ["%s/other"]\\n' "$3" "$1" > "\(bad)/p.toml"
            cp "\(bad)/p.toml" projok/p.toml
            ln -s "\(bad)" L; ln -s projok Lok
            for d in "\(bad)" projok; do
              (cd "$d" && "$2" exec --policy agent -- sh -c 'echo x > .git/hook' > /dev/null 2>err || true; echo "cwd $d: $(cat err | head -c 300)")
            done
            for l in L Lok; do "$2" plan --policy "$1/$l/p.toml" -- true > /dev/null 2>err && echo "plan $l: accepted" || echo "plan $l: $(head -c 300 err)"; done
            """
        let out = try Harness.run("/bin/sh", ["-c", script, "sh", root, Harness.binary, "\(Harness.repoRoot)/Policies/base.toml"], cwd: pol)
        let lines = out.stdout.split(separator: "\n").map(String.init)
        func line(_ prefix: String) -> String { lines.first { $0.hasPrefix(prefix) } ?? "(none)" }
        #expect(line("cwd proj").contains("not valid UTF-8") && !line("cwd proj").hasPrefix("cwd projok"), "\(out.stdout) \(out.stderr)")
        #expect(access("\(root)/projok/.git/hook", F_OK) != 0, "control: the protect of .git did not hold")
        #expect(line("cwd projok").contains("Read-only"), "control: \(line("cwd projok"))")
        #expect(line("plan L:").contains("not valid UTF-8"), "\(out.stdout) \(out.stderr)")
        #expect(line("plan Lok:") == "plan Lok: accepted", "control: \(out.stdout)")
        let hooks = try Harness.run("/bin/sh", ["-c", "ls -b \"$1\"/proj*/.git", "sh", root])
        #expect(!hooks.stdout.contains("hook"), "a run wrote into .git: \(hooks.stdout)")
    }

    /// `core.hooksPath = .git/../\u{301}h`: split by characters, the `..` stayed inside
    /// a part and the target looked as if under the protected .git, so it was not
    /// protected; git on the host runs hooks from `repo/\u{301}h`, which the run wrote
    /// (red team, session 43). Control: `hooksPath = h` is protected alike.
    @Test(arguments: ["\u{301}h", "h"])
    func aHooksPathBehindACombiningMarkIsProtected(_ name: String) throws {
        guard Self.rootAndGit() else { return }
        let repo = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        _ = try Harness.run("/usr/bin/git", ["init", "-q", repo])
        try FileManager.default.createDirectory(atPath: "\(repo)/\(name)", withIntermediateDirectories: true)
        let value = name == "h" ? "h" : ".git/../\(name)"
        _ = try Harness.run("/usr/bin/git", ["-C", repo, "config", "core.hooksPath", value])
        let out = try Harness.exec(policy: "agent", ["sh", "-c", "echo x > '\(name)/pre-commit'"], cwd: repo)
        #expect(out.status != 0 && out.stderr.contains("Read-only"), "\(out.status) \(out.stderr)")
        #expect(access("\(repo)/\(name)/pre-commit", F_OK) != 0, "the run wrote a hook git runs on the host")
    }

    /// Git reads its config as bytes. `hooksPath =\u{301}h` (a combining mark right
    /// after `=`, one Character with it) was skipped by a Character parse, and a
    /// `hooksPath` naming a directory that is not UTF-8 decoded to a missing path:
    /// both left the hooks git runs writable (red team, session 43). The first is
    /// protected now, the second refused. Control: the test's own hook directory
    /// is what git uses.
    @Test func gitConfigIsReadAsGitReadsIt() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let script = #"""
            set -e; cd "$1"
            git init -q mark; mkdir "mark/$(printf '\314\201h')"
            printf '[core]\n\thooksPath =\314\201h\n' >> mark/.git/config
            [ "$(git -C mark config core.hooksPath)" = "$(printf '\314\201h')" ] && echo "control: git reads the mark"
            git init -q bad; mkdir "bad/$(printf 'h\377')"; git -C bad config core.hooksPath "$(printf 'h\377')"
            (cd mark && "$2" exec --policy agent -- sh -c 'echo x > "$(printf "\314\201h")/pre-commit"' >/dev/null 2>err || true; echo "mark: $(head -c 300 err)")
            (cd bad && "$2" exec --policy agent -- sh -c 'echo x > "$(printf "h\377")/pre-commit"' >/dev/null 2>err || true; echo "bad: $(head -c 300 err)")
            ls mark/*h bad/h* 2>/dev/null | grep -c pre-commit || true
            """#
        let out = try Harness.run("/bin/sh", ["-c", script, "sh", root, Harness.binary], cwd: root)
        #expect(out.stdout.contains("control: git reads the mark"), "\(out.stdout) \(out.stderr)")
        #expect(out.stdout.contains("mark: ") && out.stdout.contains("Read-only"), "\(out.stdout)")
        #expect(out.stdout.contains("is not valid UTF-8"), "\(out.stdout)")
        #expect(out.stdout.hasSuffix("0\n"), "a run wrote a hook: \(out.stdout)")
    }

    /// Git config syntax is read as git reads it, and what git would refuse is refused
    /// (red team, session 43, round 6: each of these left a hook or fsmonitor script
    /// writable that the host's git then ran; session 44: quotes, escapes and
    /// continued lines in command values, once refused or misread, are read as git
    /// reads them). Each case
    /// writes a config, makes the file git would run, and runs a command under `agent`
    /// that overwrites it: refused before it starts, or the write fails read-only.
    /// Control (`plain`): an ordinary hooksPath, read-only.
    @Test(arguments: [
        ("plain", "[core]\n\thooksPath = hooks\n", "hooks/pre-commit", "read-only"),
        ("inner quote", "[core]\n\thooksPath = h\"ooks\"\n", "hooks/pre-commit", "read-only"),
        ("continued line", "[core]\n\thooksPath = \"ho\\\nks\"\n", "hoks/pre-commit", "read-only"),
        ("escape", "[core]\n\thooksPath = \"a\\tb\"\n", "a\tb/pre-commit", "read-only"),
        ("unknown escape", "[core]\n\thooksPath = a\\qb\n", "hooks/pre-commit", "refused"),
        ("escaped quotes", "[filter \"fmt\"]\n\tclean = \"\\\"/usr/bin/env\\\" ./tools/fmt.sh\"\n", "tools/fmt.sh", "read-only"),
        ("comment sign quoted", "[alias]\n\tt = \"!echo a;b\" && ./tools/x.sh # x\n", "tools/x.sh", "read-only"),
        ("continued command", "[diff \"y\"]\n\ttextconv = /usr/bin/env \\\n./tools/conv.sh\n", "tools/conv.sh", "read-only"),
        ("quoted blank", "[core]\n\thooksPath = \"hooks \"\n", "hooks /pre-commit", "read-only"),
        ("fsmonitor word", "[core]\n\tfsmonitor = sh fsmon.sh\n", "fsmon.sh", "read-only"),
        ("fsmonitor shell", "[core]\n\tfsmonitor = sh \"$PWD/fsmon.sh\"\n", "fsmon.sh", "refused"),
        ("core.worktree", "[core]\n\tworktree = ../w\n\thooksPath = hooks\n", "hooks/pre-commit", "refused"),
    ])
    func gitConfigSyntaxIsReadAsGitDoesOrRefused(_ c: (name: String, config: String, file: String, expected: String)) throws {
        guard Self.rootAndGit() else { return }
        let repo = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        _ = try Harness.run("/usr/bin/git", ["init", "-q", repo])
        let config = try String(contentsOfFile: "\(repo)/.git/config", encoding: .utf8)
        try (config + c.config).write(toFile: "\(repo)/.git/config", atomically: true, encoding: .utf8)
        let setup = try Harness.run("/bin/sh", ["-c", "mkdir -p \"$(dirname \"$1\")\"; echo '#!/bin/sh' > \"$1\"", "sh", c.file], cwd: repo)
        #expect(setup.status == 0, "\(setup.stderr)")
        let out = try Harness.exec(policy: "agent", ["sh", "-c", "echo 'echo PWNED' >> \"$1\"", "sh", c.file], cwd: repo)
        if c.expected == "refused" {
            #expect(out.status == 125 && (out.stderr.contains("cannot protect") || out.stderr.contains("cannot tell")), "\(c.name): \(out.status) \(out.stderr)")
        } else {
            #expect(out.status != 0 && out.stderr.contains("Read-only"), "\(c.name): \(out.status) \(out.stderr)")
        }
        #expect(!((try? String(contentsOfFile: "\(repo)/\(c.file)", encoding: .utf8)) ?? "").contains("PWNED"), "\(c.name): the run wrote \(c.file)")
    }

    /// A linked worktree whose `.git` file ends in CRLF: git strips it; the planner
    /// read `gitdir:` with the "\r\n" Character kept, found no config, and left the
    /// main repository's hooksPath writable (red team, session 43). Control: LF.
    @Test(arguments: ["\r\n", "\n"])
    func aWorktreeGitFileWithCRLFIsRead(_ end: String) throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let git = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        _ = try Harness.run("/usr/bin/git", ["init", "-q", "\(root)/main"])
        _ = try Harness.run("/usr/bin/git", git + ["-C", "\(root)/main", "commit", "-q", "--allow-empty", "-m", "i"])
        _ = try Harness.run("/usr/bin/git", ["-C", "\(root)/main", "worktree", "add", "-q", "\(root)/wt"])
        _ = try Harness.run("/usr/bin/git", ["-C", "\(root)/main", "config", "core.hooksPath", "hooks"])
        let dotGit = "\(root)/wt/.git"
        let line = try String(contentsOfFile: dotGit, encoding: .utf8).trimmingCharacters(in: .newlines)
        try (line + end).write(toFile: dotGit, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(root)/wt/hooks", withIntermediateDirectories: true)
        try "#!/bin/sh\n".write(toFile: "\(root)/wt/hooks/pre-commit", atomically: true, encoding: .utf8)
        let out = try Harness.exec(policy: "agent", ["sh", "-c", "echo 'echo PWNED' >> hooks/pre-commit"], cwd: "\(root)/wt")
        #expect(out.status != 0 && out.stderr.contains("Read-only"), "\(out.status) \(out.stderr)")
        #expect(!((try? String(contentsOfFile: "\(root)/wt/hooks/pre-commit", encoding: .utf8)) ?? "").contains("PWNED"))
    }

    /// A submodule's own config (`.git/modules/<name>/config`) may name an fsmonitor
    /// command or hooks in the submodule's work tree, which the superproject's
    /// `git status` runs while recursing; the planner did not read it, and a run
    /// rewrote the script (red team, session 43). Such a config refuses the plan now.
    /// Control: the same repository without the setting runs, its .git protected.
    @Test func aSubmoduleConfigNamingAProgramIsRefused() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for args in [["init", "-q", "\(root)/src"], ["-C", "\(root)/src", "commit", "-q", "--allow-empty", "-m", "i"],
                     ["init", "-q", "\(root)/super"],
                     ["-C", "\(root)/super", "submodule", "add", "-q", "\(root)/src", "sub"]] {
            try Self.git(args)
        }
        let moduleConfig = "\(root)/super/.git/modules/sub/config"
        #expect(FileManager.default.fileExists(atPath: moduleConfig), "no submodule gitdir")
        try "#!/bin/sh\n".write(toFile: "\(root)/super/sub/fsmon.sh", atomically: true, encoding: .utf8)
        let control = try Harness.exec(policy: "agent", ["sh", "-c", "echo x > .git/x"], cwd: "\(root)/super")
        #expect(control.status != 0 && control.stderr.contains("Read-only"), "control: \(control.status) \(control.stderr)")
        let r = try Harness.run("/usr/bin/git", ["config", "--file", moduleConfig, "core.fsmonitor", "./fsmon.sh"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try Harness.exec(policy: "agent", ["sh", "-c", "echo 'echo PWNED' >> sub/fsmon.sh"], cwd: "\(root)/super")
        #expect(out.status == 125 && out.stderr.contains("a submodule's config"), "\(out.status) \(out.stderr)")
        #expect(!((try? String(contentsOfFile: "\(root)/super/sub/fsmon.sh", encoding: .utf8)) ?? "").contains("PWNED"), "the run rewrote the submodule's fsmonitor")
    }

    /// Red team round 7 (session 43), each older than this session: a submodule's
    /// `.git` file rewritten to point at a git directory the command made (the host's
    /// `git status` recursed into it and ran its fsmonitor); an include on an
    /// `[includeIf "…[2]…"]` header (the first `]` is inside the quotes); an include
    /// chain deeper than the planner read; `hooksPath = ~/.githooks` with HOME in the
    /// work tree. Each is now protected or refused.
    @Test func gitIndirectionsRoundSeven() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let gitRun = { (args: [String]) throws in try Self.git(args) }
        func write(_ path: String, _ text: String) throws { try text.write(toFile: path, atomically: true, encoding: .utf8) }
        func append(_ path: String, _ text: String) throws { try write(path, (try String(contentsOfFile: path, encoding: .utf8)) + text) }

        // The submodule's .git file: read-only now.
        try gitRun(["init", "-q", "\(root)/src"]); try gitRun(["-C", "\(root)/src", "commit", "-q", "--allow-empty", "-m", "i"])
        try gitRun(["init", "-q", "\(root)/super"]); try gitRun(["-C", "\(root)/super", "submodule", "add", "-q", "\(root)/src", "sub"])
        let sub = try Harness.exec(policy: "agent", ["sh", "-c", "printf 'gitdir: .evilgit\\n' > sub/.git"], cwd: "\(root)/super")
        #expect(sub.status != 0 && sub.stderr.contains("Read-only"), "submodule .git: \(sub.status) \(sub.stderr)")

        // An include behind a `]` inside the header's quotes: protected.
        try gitRun(["init", "-q", "\(root)/brk"])
        try append("\(root)/brk/.git/config", "[includeIf \"gitdir:/nowhere[2]/\"] path = ../cfg.inc\n")
        try write("\(root)/brk/cfg.inc", "[core]\n\thooksPath = .husky\n")
        let brk = try Harness.exec(policy: "agent", ["sh", "-c", "echo '#' >> cfg.inc"], cwd: "\(root)/brk")
        #expect(brk.status != 0 && brk.stderr.contains("Read-only"), "includeIf header: \(brk.status) \(brk.stderr)")

        // Six levels of includes: refused.
        try gitRun(["init", "-q", "\(root)/deep"])
        try append("\(root)/deep/.git/config", "[include]\n\tpath = ../c1\n")
        for i in 1...5 { try write("\(root)/deep/c\(i)", "[include]\n\tpath = c\(i + 1)\n") }
        try write("\(root)/deep/c6", "[core]\n\thooksPath = .husky\n")
        let deep = try Harness.exec(policy: "agent", ["true"], cwd: "\(root)/deep")
        #expect(deep.status == 125 && deep.stderr.contains("included too deep"), "include depth: \(deep.status) \(deep.stderr)")

        // `~/.githooks` with HOME in the work tree: protected.
        try gitRun(["init", "-q", "\(root)/home"])
        try gitRun(["-C", "\(root)/home", "config", "core.hooksPath", "~/.githooks"])
        try FileManager.default.createDirectory(atPath: "\(root)/home/.githooks", withIntermediateDirectories: true)
        let tilde = try Harness.run(Harness.binary, ["exec", "--policy", "agent", "--", "sh", "-c", "echo x > .githooks/pre-commit"],
                                    cwd: "\(root)/home", env: ["HOME": "\(root)/home"])
        #expect(tilde.status != 0 && tilde.stderr.contains("Read-only"), "~ hooksPath: \(tilde.status) \(tilde.stderr)")
    }

    /// Red team round 8 (session 43), older than this session: submodules the planner
    /// found only under `.git/modules` missed a submodule whose `.git` is a directory
    /// in the work tree, one registered but not initialised (the command ran `git
    /// init` in it), and one of a linked worktree (its git directory under
    /// `.git/worktrees/<wt>/modules`). In each the command set an fsmonitor that the
    /// host's `git status` ran. Now each is read-only.
    @Test func submodulesAreFoundAsGitFindsThem() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        func gitRun(_ args: [String], in dir: String? = nil) throws { try Self.git(args, in: dir) }
        // A submodule added in place: its .git is a directory.
        try gitRun(["init", "-q", "\(root)/inplace"])
        try gitRun(["init", "-q", "\(root)/inplace/sub"]); try gitRun(["-C", "\(root)/inplace/sub", "commit", "-q", "--allow-empty", "-m", "s"])
        try gitRun(["submodule", "add", "-q", "./sub", "sub"], in: "\(root)/inplace")
        try gitRun(["commit", "-q", "-m", "sub"], in: "\(root)/inplace")
        let inplace = try Harness.exec(policy: "agent", ["sh", "-c", "echo '[core]' >> sub/.git/config"], cwd: "\(root)/inplace")
        #expect(inplace.status != 0 && inplace.stderr.contains("Read-only"), "in place: \(inplace.status) \(inplace.stderr)")

        // Registered, not initialised: the command may not make a repository there.
        try gitRun(["init", "-q", "\(root)/src"]); try gitRun(["-C", "\(root)/src", "commit", "-q", "--allow-empty", "-m", "i"])
        try gitRun(["clone", "-q", "\(root)/inplace", "\(root)/clone"])
        try FileManager.default.createDirectory(atPath: "\(root)/clone/sub", withIntermediateDirectories: true)
        let uninit = try Harness.exec(policy: "agent", ["sh", "-c", "cd sub && git init -q ."], cwd: "\(root)/clone")
        #expect(uninit.status != 0, "not initialised: \(uninit.status) \(uninit.stderr)")
        #expect(access("\(root)/clone/sub/.git", F_OK) != 0, "the command made a repository in the submodule's place")

        // A linked worktree's submodule.
        try gitRun(["init", "-q", "\(root)/main"]); try gitRun(["-C", "\(root)/main", "commit", "-q", "--allow-empty", "-m", "i"])
        try gitRun(["-C", "\(root)/main", "worktree", "add", "-q", "\(root)/wt"])
        try gitRun(["submodule", "add", "-q", "\(root)/src", "sub"], in: "\(root)/wt")
        let wt = try Harness.exec(policy: "agent", ["sh", "-c", "printf 'gitdir: /nowhere\\n' > sub/.git"], cwd: "\(root)/wt")
        #expect(wt.status != 0 && wt.stderr.contains("Read-only"), "linked worktree: \(wt.status) \(wt.stderr)")

        // A submodule deinitialised (its git directory keeps no core.worktree): the
        // repository still runs, and the emptied directory is protected.
        try gitRun(["init", "-q", "\(root)/deinit"])
        try gitRun(["submodule", "add", "-q", "\(root)/src", "sub"], in: "\(root)/deinit")
        try gitRun(["commit", "-q", "-m", "sub"], in: "\(root)/deinit")
        try gitRun(["submodule", "deinit", "-q", "-f", "sub"], in: "\(root)/deinit")
        let emptied = try Harness.exec(policy: "agent", ["sh", "-c", "echo y > f && ! git init -q sub 2>/dev/null"], cwd: "\(root)/deinit")
        #expect(emptied.status == 0, "deinitialised: \(emptied.status) \(emptied.stderr)")
    }

    /// Git recurses into the gitlinks of its index, whatever `.gitmodules` says (red
    /// team round 9, session 43): a repository `git add`ed in place (no `.gitmodules`
    /// entry), one whose entry a run removed from `.gitmodules`, and one nested in a
    /// submodule added in place each had their `.git` left writable, and the host's
    /// `git status` would run an fsmonitor written into it. Each index form git writes
    /// is read: versions 2, 3 (extended flags), 4 (compressed paths), a split index,
    /// SHA-256 object names. Each case fails without the index read.
    @Test func gitlinksAreReadFromTheIndex() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        func gitRun(_ args: [String], in dir: String? = nil) throws { try Self.git(args, in: dir) }
        /// The attack: an fsmonitor written into the submodule's config.
        func attack(_ repo: String, _ sub: String, _ what: String) throws {
            let out = try Harness.exec(policy: "agent", ["sh", "-c", "printf '[core]\\n\\tfsmonitor = ./x\\n' >> \(sub)/.git/config"], cwd: repo)
            #expect(out.status != 0 && out.stderr.contains("Read-only"), "\(what): \(out.status) \(out.stderr)")
            let config = (try? String(contentsOfFile: "\(repo)/\(sub)/.git/config", encoding: .utf8)) ?? ""
            #expect(!config.contains("fsmonitor"), "\(what): the command wrote the submodule's config")
        }
        func embedded(_ repo: String, format: [String] = []) throws {
            try gitRun(["init", "-q"] + format + [repo])
            try gitRun(["init", "-q"] + format + ["\(repo)/emb"]); try gitRun(["-C", "\(repo)/emb", "commit", "-q", "--allow-empty", "-m", "e"])
            try "t\n".write(toFile: "\(repo)/later", atomically: true, encoding: .utf8)
            for name in ["a", "b", "emc"] { try "\(name)\n".write(toFile: "\(repo)/\(name)", atomically: true, encoding: .utf8) }
            try gitRun(["-C", repo, "add", "a", "b", "emb", "emc"])
            try gitRun(["-C", repo, "add", "-N", "later"])   // intent to add: extended flags
            try gitRun(["-C", repo, "commit", "-q", "-m", "x"])
            #expect(access("\(repo)/.gitmodules", F_OK) != 0)
        }
        for (name, setup) in [("v2", ["--index-version", "2"]), ("v3", ["--index-version", "3"]),
                              ("v4", ["--index-version", "4"]), ("split", ["--split-index"])] {
            let repo = "\(root)/\(name)"
            try embedded(repo)
            if name == "v2" { try FileManager.default.removeItem(atPath: "\(repo)/later") ; try gitRun(["-C", repo, "rm", "-q", "--cached", "later"]) }
            try gitRun(["-C", repo, "update-index"] + setup)
            try attack(repo, "emb", name)
        }
        let sha256 = "\(root)/sha256"
        try embedded(sha256, format: ["--object-format=sha256"])
        try attack(sha256, "emb", "sha256")

        // A submodule added in place, removed from .gitmodules by an earlier run.
        let removed = "\(root)/removed"
        try gitRun(["init", "-q", removed])
        try gitRun(["init", "-q", "\(removed)/sub"]); try gitRun(["-C", "\(removed)/sub", "commit", "-q", "--allow-empty", "-m", "s"])
        try gitRun(["submodule", "add", "-q", "./sub", "sub"], in: removed)
        try gitRun(["commit", "-q", "-m", "sub"], in: removed)
        let edit = try Harness.exec(policy: "agent", ["sh", "-c", ": > .gitmodules"], cwd: removed)
        #expect(edit.status == 0, "the earlier run: \(edit.stderr)")
        try attack(removed, "sub", "removed from .gitmodules")

        // A repository embedded in a submodule added in place.
        let nested = "\(root)/nested"
        try gitRun(["init", "-q", nested])
        try gitRun(["init", "-q", "\(nested)/sub"]); try gitRun(["-C", "\(nested)/sub", "commit", "-q", "--allow-empty", "-m", "s"])
        try gitRun(["init", "-q", "\(nested)/sub/inner"]); try gitRun(["-C", "\(nested)/sub/inner", "commit", "-q", "--allow-empty", "-m", "i"])
        try gitRun(["-C", "\(nested)/sub", "add", "inner"]); try gitRun(["-C", "\(nested)/sub", "commit", "-q", "-m", "inner"])
        try gitRun(["submodule", "add", "-q", "./sub", "sub"], in: nested)
        try gitRun(["commit", "-q", "-m", "sub"], in: nested)
        try attack(nested, "sub/inner", "nested in an in-place submodule")

        // An index sandbox cannot read refuses the plan, not leaves its gitlinks out.
        let garbled = "\(root)/garbled"
        try embedded(garbled)
        try Data("DIRC\0\0\0\u{2}\0\0\0\u{9}".utf8).write(to: URL(fileURLWithPath: "\(garbled)/.git/index"))
        let refused = try Harness.exec(policy: "agent", ["true"], cwd: garbled)
        #expect(refused.status == 125 && refused.stderr.contains("not an index sandbox can read"), "garbled: \(refused.status) \(refused.stderr)")
    }

    /// The per-user config applies in every repository: `core.hooksPath = .githooks`
    /// there (a common way to share hooks) names each work tree's `.githooks`, and a
    /// relative fsmonitor command runs in each submodule's work tree too. Neither was
    /// read, and the command rewrote the hook the host's next commit runs. `~/.gitconfig`
    /// and `$XDG_CONFIG_HOME/git/config` are read now; each case fails without.
    @Test func perUserGitConfigIsRead() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir(), home = Harness.tempDir(), xdg = Harness.tempDir()
        defer { for d in [root, home, xdg] { try? FileManager.default.removeItem(atPath: d) } }
        func gitRun(_ args: [String], in dir: String? = nil) throws { try Self.git(args, in: dir) }
        let repo = "\(root)/repo"
        try gitRun(["init", "-q", repo])
        try gitRun(["init", "-q", "\(repo)/sub"]); try gitRun(["-C", "\(repo)/sub", "commit", "-q", "--allow-empty", "-m", "s"])
        try gitRun(["submodule", "add", "-q", "./sub", "sub"], in: repo)
        try gitRun(["commit", "-q", "-m", "sub"], in: repo)
        try FileManager.default.createDirectory(atPath: "\(repo)/.githooks", withIntermediateDirectories: true)
        try "#!/bin/sh\nexit 0\n".write(toFile: "\(repo)/.githooks/pre-commit", atomically: true, encoding: .utf8)
        try "#!/bin/sh\n".write(toFile: "\(repo)/sub/fsmon.sh", atomically: true, encoding: .utf8)

        try "[core]\n\thooksPath = .githooks\n".write(toFile: "\(home)/.gitconfig", atomically: true, encoding: .utf8)
        let hook = try Harness.exec(policy: "agent", ["sh", "-c", "echo 'touch /tmp/pwned' >> .githooks/pre-commit"], cwd: repo, env: ["HOME": home])
        #expect(hook.status != 0 && hook.stderr.contains("Read-only"), "~/.gitconfig hooksPath: \(hook.status) \(hook.stderr)")

        try FileManager.default.removeItem(atPath: "\(home)/.gitconfig")
        try FileManager.default.createDirectory(atPath: "\(xdg)/git", withIntermediateDirectories: true)
        try "[core]\n\tfsmonitor = sh fsmon.sh\n".write(toFile: "\(xdg)/git/config", atomically: true, encoding: .utf8)
        let fsmon = try Harness.exec(policy: "agent", ["sh", "-c", "echo 'touch /tmp/pwned' >> sub/fsmon.sh"], cwd: repo,
                                     env: ["HOME": home, "XDG_CONFIG_HOME": xdg])
        #expect(fsmon.status != 0 && fsmon.stderr.contains("Read-only"), "XDG fsmonitor in a submodule: \(fsmon.status) \(fsmon.stderr)")
        #expect(!((try? String(contentsOfFile: "\(repo)/sub/fsmon.sh", encoding: .utf8)) ?? "").contains("pwned"))
    }

    /// A command git runs from the repository's config (pager, filters, aliases,
    /// textconv, …) may name a program in the work tree; the command rewrote it and
    /// the host's next `git log` or `git status` ran it. Each file such a command names
    /// is protected now, a missing one written as a path is reported, and a command
    /// that names only programs on PATH leaves the work tree writable.
    @Test func programsOfCommandValuedGitKeysAreProtected() throws {
        guard Self.rootAndGit() else { return }
        let repo = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        #expect(try Harness.run("/usr/bin/git", ["init", "-q", repo]).status == 0)
        for dir in ["tools", "scripts"] { try FileManager.default.createDirectory(atPath: "\(repo)/\(dir)", withIntermediateDirectories: true) }
        for file in ["tools/pager.sh", "scripts/clean.sh", "t.sh", "tools/other"] {
            try "#!/bin/sh\n".write(toFile: "\(repo)/\(file)", atomically: true, encoding: .utf8)
        }
        try """
        [core]
        \tpager = ./tools/pager.sh -R
        [filter "x"]
        \tclean = "sh scripts/clean.sh %f"
        [alias]
        \tt = "!./t.sh && echo done"
        \tst = status
        [diff "y"]
        \ttextconv = tools/conv
        [pager]
        \tlog = less -R
        [difftool "z"]
        \tpath = tools/dt

        """.appending("").write(toFile: "\(repo)/.git/config", atomically: false, encoding: .utf8)
        // A program, not text: not read as a config (a `path` key that is no include).
        try Data([0x7F, 0x45, 0x4C, 0x46, 0xFF, 0xFE]).write(to: URL(fileURLWithPath: "\(repo)/tools/dt"))
        for file in ["tools/pager.sh", "scripts/clean.sh", "t.sh", "tools/dt"] {
            let out = try Harness.exec(policy: "agent", ["sh", "-c", "echo pwned >> \(file)"], cwd: repo)
            #expect(out.status != 0 && out.stderr.contains("Read-only"), "\(file): \(out.status) \(out.stderr)")
            #expect(!((try? String(contentsOfFile: "\(repo)/\(file)", encoding: .utf8)) ?? "").contains("pwned"), "\(file)")
        }
        // What names no file of the work tree stays writable, and the missing path is
        // reported.
        let ok = try Harness.exec(policy: "agent", ["sh", "-c", "echo x >> tools/other && echo x > scripts/new"], cwd: repo)
        #expect(ok.status == 0, "\(ok.stderr)")
        let notApplied = ok.result?["notApplied"] as? [String] ?? []
        #expect(notApplied.contains { $0.contains("diff.y.textconv") && $0.contains("\(repo)/tools/conv") }, "\(notApplied)")
        #expect(!notApplied.contains { $0.contains("less") || $0.contains("status") }, "\(notApplied)")
    }

    /// Red team, session 44: git's world as git finds it. Each case failed before
    /// (control: d0dc79d's parent, 35f1e76, let the write through or hung).
    @Test func gitIsFoundAsGitFindsIt() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir(), home = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: home) }
        let env = ["HOME": home]
        func sh(_ script: String, in dir: String) throws { try Self.shell(script, in: dir, env: env) }
        func blocked(_ cmd: String, in dir: String, _ what: String) throws { try Self.blocked(cmd, in: dir, env: env, what) }
        func hook(_ dir: String) -> String { "mkdir -p \(dir) && printf '#!/bin/sh\\n' > \(dir)/pre-commit && chmod +x \(dir)/pre-commit" }

        // An empty .git made in a subdirectory by one run hid the monorepo above it
        // from the next plan, whose hooks path pointed into that subdirectory.
        try FileManager.default.createDirectory(atPath: "\(root)/mono", withIntermediateDirectories: true)
        try sh("g init -q . && \(hook("frontend/.husky")) && g config core.hooksPath frontend/.husky && g add -A && g commit -qm i", in: "\(root)/mono")
        let plant = try Harness.exec(policy: "agent", ["mkdir", ".git"], cwd: "\(root)/mono/frontend", env: env)
        #expect(plant.status == 0, "\(plant.stderr)")
        try blocked("echo 'echo PWNED' >> .husky/pre-commit", in: "\(root)/mono/frontend", "a .git that is no repository")

        // A per-user config that is a symlink (stow, home-manager), and one that lies
        // in the writable directory itself.
        try sh("mkdir -p dotfiles && printf '[core]\\n\\thooksPath = .githooks\\n' > dotfiles/gitconfig && ln -s dotfiles/gitconfig .gitconfig", in: home)
        try FileManager.default.createDirectory(atPath: "\(root)/linked", withIntermediateDirectories: true)
        try sh("g init -q . && \(hook(".githooks"))", in: "\(root)/linked")
        try blocked("echo 'echo PWNED' >> .githooks/pre-commit", in: "\(root)/linked", "a symlinked ~/.gitconfig")
        try sh("g init -q .", in: "\(home)/dotfiles")
        try blocked("printf '[core]\\n\\tfsmonitor = ./evil.sh\\n' >> gitconfig", in: "\(home)/dotfiles", "a per-user config in the writable directory")
        try FileManager.default.removeItem(atPath: "\(home)/.gitconfig")

        // A linked worktree inside the work tree: the hooks path is resolved in it too.
        try FileManager.default.createDirectory(atPath: "\(root)/wt", withIntermediateDirectories: true)
        try sh("g init -q . && \(hook(".husky")) && g config core.hooksPath .husky && echo .worktrees/ > .gitignore && g add -A && g commit -qm i && g worktree add -q .worktrees/feat", in: "\(root)/wt")
        try blocked("echo 'echo PWNED' >> .worktrees/feat/.husky/pre-commit", in: "\(root)/wt", "a nested linked worktree")
        try blocked("echo 'gitdir: /tmp' > .worktrees/feat/.git", in: "\(root)/wt", "a nested linked worktree's .git")

        // A git directory in the writable directory (--separate-git-dir, a bare
        // repository beside its worktrees).
        try FileManager.default.createDirectory(atPath: "\(root)/sep", withIntermediateDirectories: true)
        try sh("g init -q --separate-git-dir=.realgit .", in: "\(root)/sep")
        try blocked("\(hook(".realgit/hooks"))", in: "\(root)/sep", "a separate git directory")

        // A path only .gitmodules names is protected but not followed: an index of
        // the command's making there neither hangs the plan nor refuses later runs.
        try FileManager.default.createDirectory(atPath: "\(root)/mods", withIntermediateDirectories: true)
        try sh("g init -q . && g commit -q --allow-empty -m i", in: "\(root)/mods")
        let garbage = try Harness.exec(policy: "agent", ["sh", "-c", "mkdir -p x/.git && head -c 100000 /dev/zero > x/.git/index && printf 'DIRC' | dd of=x/.git/index conv=notrunc 2>/dev/null && printf '[submodule \"x\"]\\n\\tpath = x\\n' >> .gitmodules"], cwd: "\(root)/mods", env: env)
        #expect(garbage.status == 0, "\(garbage.stderr)")
        let after = try Harness.exec(policy: "agent", ["true"], cwd: "\(root)/mods", env: env)
        #expect(after.status == 0, "a .gitmodules path's own index was read: \(after.status) \(after.stderr)")

        // A submodule at a deep path is no refusal.
        try FileManager.default.createDirectory(atPath: "\(root)/deep", withIntermediateDirectories: true)
        try sh("g init -q lib && g -C lib commit -q --allow-empty -m i && g init -q r && cd r && g submodule add -q ../lib a/b/c/d/e/f/g/lib && g commit -qm s", in: "\(root)/deep")
        let deep = try Harness.exec(policy: "agent", ["true"], cwd: "\(root)/deep/r", env: env)
        #expect(deep.status == 0, "a deep submodule path: \(deep.status) \(deep.stderr)")

        // A symlinked directory on the way to a program a config names.
        try FileManager.default.createDirectory(atPath: "\(root)/via", withIntermediateDirectories: true)
        try sh("g init -q . && mkdir scripts && echo x > scripts/conv.sh && ln -s scripts tools && g config diff.y.textconv ./tools/conv.sh", in: "\(root)/via")
        let via = try Harness.exec(policy: "agent", ["sh", "-c", "rm tools && mkdir tools && echo PWNED > tools/conv.sh"], cwd: "\(root)/via", env: env)
        #expect(via.status == 125 && via.stderr.contains("symlink in a writable directory"), "a symlinked directory: \(via.status) \(via.stderr)")

        // init.templateDir, a local remote, and ~ in a command.
        try FileManager.default.createDirectory(atPath: "\(root)/keys", withIntermediateDirectories: true)
        try sh("g init -q . && \(hook("template/hooks")) && g init -q --bare remote.git && \(hook("remote.git/hooks")) && mkdir bin && echo x > bin/editor && g config init.templateDir ./template && g config remote.origin.url ./remote.git && g config core.editor 'sh ~/bin/editor'", in: "\(root)/keys")
        try blocked("echo PWNED >> template/hooks/pre-commit", in: "\(root)/keys", "init.templateDir")
        try blocked("echo PWNED >> remote.git/hooks/pre-commit", in: "\(root)/keys", "a local remote")
        // `~` in a command word, with HOME the work tree.
        let ed = try Harness.exec(policy: "agent", ["sh", "-c", "echo PWNED >> bin/editor"], cwd: "\(root)/keys", env: ["HOME": "\(root)/keys"])
        #expect(ed.status != 0 && ed.stderr.contains("Read-only"), "~ in a command word: \(ed.status) \(ed.stderr)")

        // An interpreter git runs from the work tree is reported: what it loads there
        // is not protected.
        try FileManager.default.createDirectory(atPath: "\(root)/nb", withIntermediateDirectories: true)
        try sh("g init -q . && g config filter.nbstripout.clean '\"/usr/bin/python3\" -m nbstripout'", in: "\(root)/nb")
        let nb = try Harness.exec(policy: "agent", ["true"], cwd: "\(root)/nb", env: env)
        let notApplied = nb.result?["notApplied"] as? [String] ?? []
        #expect(nb.status == 0 && notApplied.contains { $0.contains("filter.nbstripout.clean (python3)") }, "\(nb.stderr) \(notApplied)")
    }

    /// Red team, session 44, third review: each case let the host's git run the
    /// command's code, or refused an ordinary repository, on 5937442.
    @Test func gitIsFoundAsGitFindsItRoundThree() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir(), home = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: home) }
        let env = ["HOME": home]
        func sh(_ script: String, in dir: String) throws { try Self.shell(script, in: dir, env: env) }
        func blocked(_ cmd: String, in dir: String, _ what: String) throws { try Self.blocked(cmd, in: dir, env: env, what) }
        func runs(_ cmd: String, in dir: String, _ what: String) throws -> Harness.Output {
            let out = try Harness.exec(policy: "agent", ["sh", "-c", cmd], cwd: dir, env: env)
            #expect(out.status == 0, "\(what): \(out.status) \(out.stderr)")
            return out
        }
        let hook = "printf '#!/bin/sh\\n' > pre-commit && chmod +x pre-commit"

        // A bare repository the command runs in, its worktree inside it.
        try sh("g init -q src && g -C src commit -q --allow-empty -m i && g clone -q --bare src p && g -C p worktree add -q main", in: root)
        try blocked("echo 'echo PWNED' > hooks/pre-commit", in: "\(root)/p", "a bare repository")
        try blocked("printf '[core]\\n\\tfsmonitor = ./x\\n' >> config", in: "\(root)/p", "a bare repository's config")
        // One the command shapes in a subdirectory is reported.
        let shaped = try runs("mkdir -p sub/objects sub/refs && echo 'ref: refs/heads/main' > sub/HEAD && printf '[core]\\n' > sub/config", in: "\(root)/src", "a shaped git directory")
        #expect((shaped.result?["createdEntries"] as? [String] ?? []).contains { $0.hasSuffix("/src/sub") }, "\(String(describing: shaped.result?["createdEntries"]))")

        // Husky's layout: .husky/_ runs .husky/<hook>; and hooks are reported.
        try sh("g init -q . && mkdir -p .husky/_ && (cd .husky/_ && \(hook)) && touch .husky/_/h && echo 'echo lint' > .husky/pre-commit && g config core.hooksPath .husky/_", in: "\(root)/husky")
        try blocked("echo 'echo PWNED' >> .husky/pre-commit", in: "\(root)/husky", "husky's hook")
        let hooked = try runs("true", in: "\(root)/husky", "husky")
        #expect((hooked.result?["notApplied"] as? [String] ?? []).contains { $0.contains("git runs hooks from") && $0.contains("(pre-commit)") },
                "husky's helper h is no hook: \(String(describing: hooked.result?["notApplied"]))")

        // A submodule's own clean filter, relative to its work tree.
        try sh("g init -q libsrc && mkdir libsrc/tools && echo x > libsrc/tools/fmt.sh && g -C libsrc add -A && g -C libsrc commit -qm i && g init -q super && g -C super submodule add -q ../libsrc lib && g -C super commit -qm s && g -C super/lib config filter.fmt.clean ./tools/fmt.sh", in: "\(root)/sm")
        try blocked("echo PWNED >> lib/tools/fmt.sh", in: "\(root)/sm/super", "a submodule's filter")
        // A repository inside a submodule runs (its core.worktree is where it was found).
        _ = try runs("true", in: "\(root)/sm/super/lib", "a submodule's own work tree")

        // Another linked worktree's config.worktree.
        try sh("g init -q . && g commit -q --allow-empty -m i && g worktree add -q wt && g config extensions.worktreeConfig true && g -C wt config --worktree core.hooksPath .githooks && mkdir -p wt/.githooks && (cd wt/.githooks && \(hook))", in: "\(root)/wtc")
        try blocked("echo PWNED >> wt/.githooks/pre-commit", in: "\(root)/wtc", "another worktree's config.worktree")

        // Stow: ~/.config a link, git/config in it a relative link leaving it by `..`.
        try sh("mkdir -p dotfiles/config/git && printf '[core]\\n\\thooksPath = .githooks\\n' > dotfiles/gitconfig && ln -s ../../gitconfig dotfiles/config/git/config && ln -s dotfiles/config .config", in: home)
        try sh("g init -q . && mkdir .githooks && (cd .githooks && \(hook))", in: "\(root)/stow")
        try blocked("echo PWNED >> .githooks/pre-commit", in: "\(root)/stow", "a config reached by .. through a link")
        try sh("rm .config", in: home)

        // A local remote written without ./, and a push remote given as a path.
        try sh("g init -q . && g init -q --bare backup.git && g init -q --bare push.git && g config remote.backup.url backup.git && g config branch.main.pushRemote ./push.git", in: "\(root)/remote")
        try blocked("echo PWNED > backup.git/hooks/pre-receive", in: "\(root)/remote", "remote.backup.url = backup.git")
        try blocked("echo PWNED > push.git/hooks/pre-receive", in: "\(root)/remote", "branch.main.pushRemote")

        // No refusal: an alias that is a git command beside a link of its name, and a
        // per-user config whose name is Latin-1.
        try sh("g init -q . && ln -s /nowhere log && g config alias.lg 'log --oneline'", in: "\(root)/alias")
        _ = try runs("true", in: "\(root)/alias", "an alias beside a link")
        try Data("[user]\n\tname = Jos\u{E9}\n".utf8.map { $0 == 0xC3 ? 0xE9 : $0 }.filter { $0 != 0xA9 }).write(to: URL(fileURLWithPath: "\(home)/.gitconfig"))
        _ = try runs("true", in: "\(root)/alias", "a Latin-1 user.name")
    }

    /// Red team, session 44, fourth review: each case let the host's git run the
    /// command's code unreported, or refused an ordinary repository, on 4c04ed4.
    @Test func gitIsFoundAsGitFindsItRoundFour() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir(), home = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: home) }
        let env = ["HOME": home]
        func sh(_ script: String, in dir: String) throws { try Self.shell(script, in: dir, env: env) }
        func run(_ cmd: String, in dir: String) throws -> Harness.Output {
            try Harness.exec(policy: "agent", ["sh", "-c", cmd], cwd: dir, env: env)
        }
        func reported(_ out: Harness.Output, _ suffix: String, _ what: String) {
            let created = out.result?["createdEntries"] as? [String] ?? []
            #expect(out.status == 0 && created.contains { $0.hasSuffix(suffix) }, "\(what): \(out.status) \(out.stderr) \(created)")
        }
        try sh("g init -q . && g commit -q --allow-empty -m i && mkdir pkg", in: "\(root)/mono")

        // A git directory shaped with a symlinked HEAD and config, with a commondir,
        // or over two runs: each reported.
        reported(try run("mkdir -p a/.c a/objects a/refs && printf '[core]\\n' > a/.c/config && ln -s refs/heads/main a/HEAD && ln -s .c/config a/config", in: "\(root)/mono/pkg"), "/pkg/a", "symlinked HEAD")
        reported(try run("mkdir -p b/.c/objects b/.c/refs && echo 'ref: refs/heads/main' > b/HEAD && echo .c > b/commondir", in: "\(root)/mono/pkg"), "/pkg/b", "a commondir")
        let first = try run("mkdir c && echo 'ref: refs/heads/main' > c/HEAD && printf '[core]\\n' > c/config", in: "\(root)/mono/pkg")
        #expect(first.status == 0)
        reported(try run("mkdir c/objects c/refs", in: "\(root)/mono/pkg"), "/pkg/c", "shaped over two runs")
        // A .git beneath a directory whose name is not UTF-8.
        reported(try run("d=$(printf '\\377'); mkdir -p \"$d/t/.git\"", in: "\(root)/mono/pkg"), "/t/.git", "a name that is not UTF-8")

        // A workspace of checkouts: a nested repository's husky hook, a nested bare
        // repository's hooks.
        try sh("g init -q --bare origin.git && g init -q proj && cd proj && mkdir -p .husky/_ && echo 'echo lint' > .husky/pre-commit && g config core.hooksPath .husky/_", in: "\(root)/ws")
        let husky = try run("echo PWNED >> proj/.husky/pre-commit", in: "\(root)/ws")
        #expect(husky.status != 0 && husky.stderr.contains("Read-only"), "a nested repository's hook: \(husky.status) \(husky.stderr)")
        let bareHook = try run("echo PWNED > origin.git/hooks/post-receive", in: "\(root)/ws")
        #expect(bareHook.status != 0 && bareHook.stderr.contains("Read-only"), "a nested bare repository's hooks: \(bareHook.status) \(bareHook.stderr)")

        // A hook that is a link into the work tree; a filter script with a second link.
        try sh("g init -q . && mkdir tools && printf '#!/bin/sh\\n' > tools/pre-commit && chmod +x tools/pre-commit && ln -s ../../tools/pre-commit .git/hooks/pre-commit", in: "\(root)/hooklink")
        let hookLink = try run("echo PWNED >> tools/pre-commit", in: "\(root)/hooklink")
        #expect(hookLink.status != 0 && hookLink.stderr.contains("Read-only"), "a linked hook: \(hookLink.status) \(hookLink.stderr)")
        try sh("g init -q . && mkdir scripts .cache && echo x > scripts/fmt.sh && ln scripts/fmt.sh .cache/f && g config filter.fmt.clean ./scripts/fmt.sh", in: "\(root)/hardlink")
        let hard = try run("echo PWNED >> .cache/f", in: "\(root)/hardlink")
        #expect(hard.status == 125 && hard.stderr.contains("hard links"), "a second link: \(hard.status) \(hard.stderr)")

        // `..` past a directory that does not exist.
        try sh("g init -q . && mkdir .githooks && g config core.hooksPath build/../.githooks", in: "\(root)/dotdot")
        let dotdot = try run("true", in: "\(root)/dotdot")
        #expect(dotdot.status == 125 && dotdot.stderr.contains("goes up with .."), "\(dotdot.status) \(dotdot.stderr)")

        // No refusal: nbstripout installed in a project virtualenv (a symlinked python).
        try sh("g init -q . && mkdir -p .venv/bin && ln -s /usr/bin/python3 .venv/bin/python && g config filter.nbstripout.clean \"\\\"$PWD/.venv/bin/python\\\" -m nbstripout\"", in: "\(root)/venv")
        let venv = try run("true", in: "\(root)/venv")
        #expect(venv.status == 0 && (venv.result?["notApplied"] as? [String] ?? []).contains { $0.contains(".venv/bin/python") }, "\(venv.status) \(venv.stderr)")
    }

    /// Red team, session 44, fifth review: a submodule's `commondir` redirected and a
    /// config changed behind 5 000 new entries went unreported; a workspace of 16
    /// checkouts was refused. Each fails on 453f09a.
    @Test func gitIsFoundAsGitFindsItRoundFive() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir(), home = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: home) }
        let env = ["HOME": home]
        func sh(_ script: String, in dir: String) throws { try Self.shell(script, in: dir, env: env) }
        func reported(_ cmd: String, in dir: String, _ suffix: String, _ what: String) throws {
            let out = try Harness.exec(policy: "agent", ["sh", "-c", cmd], cwd: dir, env: env)
            let created = out.result?["createdEntries"] as? [String] ?? []
            let incomplete = out.result?["createdEntriesIncomplete"] as? Bool ?? false
            // Reported, or (since round 6 finds checkouts deeper down) protected.
            #expect((out.status == 0 && (created.contains { $0.hasSuffix(suffix) } || incomplete))
                    || (out.status != 0 && out.stderr.contains("Read-only")), "\(what): \(out.status) \(out.stderr) \(created)")
        }
        try sh("g init -q lib && g -C lib commit -q --allow-empty -m i && g init -q w/a/b && g -C w/a/b submodule add -q \(root)/lib sub && g -C w/a/b commit -qm s", in: root)
        try reported("mkdir -p evil && cp -r a/b/.git/modules/sub/objects a/b/.git/modules/sub/refs evil/ && cp a/b/.git/modules/sub/config evil/ && echo ../../../../../evil > a/b/.git/modules/sub/commondir",
                     in: "\(root)/w", "/a/b/.git", "a submodule's commondir")
        try reported("cd a/b/.git/modules && i=0; while [ $i -lt 5000 ]; do mkdir j$i; i=$((i+1)); done; printf '[core]\\n' >> sub/config",
                     in: "\(root)/w", "/a/b/.git", "a config behind 5 000 entries")

        try sh("i=0; while [ $i -lt 16 ]; do g init -q r$i; i=$((i+1)); done", in: "\(root)/ws")
        let ws = try Harness.exec(policy: "agent", ["true"], cwd: "\(root)/ws", env: env)
        #expect(ws.status == 0, "a workspace of 16 checkouts: \(ws.status) \(ws.stderr)")
    }

    /// Red team, session 44, sixth review: a hook hard-linked into a protected hooks
    /// directory, a checkout two levels down, a submodule at a path named `refs`, and
    /// a scan that gave up in any node_modules. Each fails on a2e5c23.
    @Test func gitIsFoundAsGitFindsItRoundSix() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir(), home = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: home) }
        let env = ["HOME": home]
        func sh(_ script: String, in dir: String) throws { try Self.shell(script, in: dir, env: env) }

        try sh("g init -q . && mkdir hooks scripts && printf '#!/bin/sh\\n' > scripts/pre-commit && ln scripts/pre-commit hooks/pre-commit && g config core.hooksPath hooks", in: "\(root)/linked")
        let linked = try Harness.exec(policy: "agent", ["sh", "-c", "echo PWNED >> scripts/pre-commit"], cwd: "\(root)/linked", env: env)
        #expect(linked.status == 125 && linked.stderr.contains("hard links"), "a hook with a second link: \(linked.status) \(linked.stderr)")

        try sh("g init -q github.com/org/app && cd github.com/org/app && mkdir -p .husky/_ && echo 'echo lint' > .husky/pre-commit && g config core.hooksPath .husky/_", in: "\(root)/code")
        try Self.blocked("echo PWNED >> github.com/org/app/.husky/pre-commit", in: "\(root)/code", env: env, "a checkout two levels down")

        try sh("g init -q lib && g -C lib commit -q --allow-empty -m i && g init -q ws/group/app && g -C ws/group/app submodule add -q \(root)/sm/lib tools/refs && g -C ws/group/app commit -qm s", in: "\(root)/sm")
        let refs = try Harness.exec(policy: "agent", ["sh", "-c", "printf '[core]\\n' >> group/app/.git/modules/tools/refs/config"], cwd: "\(root)/sm/ws", env: env)
        // Protected now (found two levels down), or else reported.
        #expect((refs.status != 0 && refs.stderr.contains("Read-only"))
                || (refs.result?["createdEntries"] as? [String] ?? []).contains { $0.hasSuffix("/group/app/.git") },
                "a submodule at tools/refs: \(refs.status) \(String(describing: refs.result?["createdEntries"]))")
        // The scan alone (the repository one level down is searched, not protected
        // whole): a config under modules/tools/refs is reported.
        try sh("g init -q lib && g -C lib commit -q --allow-empty -m i && g init -q app && g -C app submodule add -q \(root)/sm2/lib tools/refs && g -C app commit -qm s", in: "\(root)/sm2")
        let refs2 = try Harness.exec(policy: "agent", ["sh", "-c", "printf '[core]\\n' >> app/.git/modules/tools/refs/config"], cwd: "\(root)/sm2", env: env)
        #expect((refs2.status != 0 && refs2.stderr.contains("Read-only"))
                || (refs2.result?["createdEntries"] as? [String] ?? []).contains { $0.hasSuffix("/app/.git") },
                "a submodule at tools/refs, one level down: \(refs2.status) \(String(describing: refs2.result?["createdEntries"]))")

        // 60 000 files in 200 directories: the scan is complete.
        try sh("g init -q . && mkdir node_modules && cd node_modules && i=0; while [ $i -lt 200 ]; do mkdir p$i; i=$((i+1)); done; for d in p*; do (cd $d && seq 1 300 | xargs touch); done", in: "\(root)/js")
        let js = try Harness.exec(policy: "agent", ["true"], cwd: "\(root)/js", env: env)
        #expect(js.status == 0 && js.result?["createdEntriesIncomplete"] as? Bool == false, "node_modules: \(js.status) \(String(describing: js.result?["createdEntriesIncomplete"]))")
    }

    /// Red team, session 44, seventh review. Each check fails on 498b0f5.
    @Test func gitIsFoundAsGitFindsItRoundSeven() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir(), home = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: home) }
        let env = ["HOME": home]
        func sh(_ script: String, in dir: String) throws { try Self.shell(script, in: dir, env: env) }
        func runs(_ cmd: String, in dir: String, _ what: String) throws -> Harness.Output {
            let out = try Harness.exec(policy: "agent", ["sh", "-c", cmd], cwd: dir, env: env)
            #expect(out.status == 0, "\(what): \(out.status) \(out.stderr)")
            return out
        }
        // A checkout one level down does not stop the search for deeper ones.
        try sh("g init -q dotfiles && g init -q github.com/org/app && mkdir github.com/org/app/.githooks && touch github.com/org/app/.githooks/pre-commit && g -C github.com/org/app config core.hooksPath .githooks", in: "\(root)/code")
        try Self.blocked("echo x >> github.com/org/app/.githooks/pre-commit", in: "\(root)/code", env: env, "a deeper checkout beside one at depth 1")
        // Submodules named config and logs: a change to one is reported.
        try sh("g init -q lib && g -C lib commit -q --allow-empty -m i && g init -q deep/super && g -C deep/super submodule add -q \(root)/mods/lib config && g -C deep/super submodule add -q \(root)/mods/lib logs && g -C deep/super commit -qm s", in: "\(root)/mods")
        let mods = try Harness.exec(policy: "agent", ["sh", "-c", "printf '[core]\\n' >> deep/super/.git/modules/logs/config"], cwd: "\(root)/mods", env: env)
        #expect((mods.status != 0 && mods.stderr.contains("Read-only"))
                || (mods.result?["createdEntries"] as? [String] ?? []).contains { $0.hasSuffix("/deep/super/.git") }, "modules config and logs: \(mods.status) \(mods.stderr)")
        // No refusal: a local remote cloned with hard-linked objects; hook samples
        // linked across repositories; 70 checkouts (64 searched, the rest said).
        try sh("g init -q . && g init -q vendor/upstream && g -C vendor/upstream commit -q --allow-empty -m i && g clone -q vendor/upstream work", in: "\(root)/remote")
        _ = try runs("true", in: "\(root)/remote", "a local remote with hard-linked objects")
        try sh("g init -q a && g init -q b && ln -f a/.git/hooks/pre-commit.sample b/.git/hooks/pre-commit.sample", in: "\(root)/samples")
        _ = try runs("true", in: "\(root)/samples", "linked hook samples")
        try sh("i=0; while [ $i -lt 70 ]; do g init -q r$i; i=$((i+1)); done", in: "\(root)/many")
        let many = try runs("true", in: "\(root)/many", "70 checkouts")
        #expect((many.result?["notApplied"] as? [String] ?? []).contains { $0.contains("more than 64 repositories") })
        // The working directory's own hook, hard-linked from the work tree.
        try sh("g init -q . && mkdir scripts && printf '#!/bin/sh\\n' > scripts/pre-commit && ln scripts/pre-commit .git/hooks/pre-commit", in: "\(root)/own")
        let own = try Harness.exec(policy: "agent", ["sh", "-c", "echo PWNED >> scripts/pre-commit"], cwd: "\(root)/own", env: env)
        #expect(own.status == 125 && own.stderr.contains("hard links"), "the own .git's hook: \(own.status) \(own.stderr)")
    }

    /// Red team, session 44, eighth review: a local remote whose `.git` is a gitfile,
    /// one git reaches by adding `.git`, and a non-repository directory with a
    /// virtualenv said to hold more than the search reads. Each fails on a0abce9.
    @Test func gitIsFoundAsGitFindsItRoundEight() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir(), home = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: home) }
        let env = ["HOME": home]
        func sh(_ script: String, in dir: String) throws { try Self.shell(script, in: dir, env: env) }
        try sh("g init -q . && mkdir vendor && g init -q --separate-git-dir=vendor/gd vendor/mirror && g remote add backup $PWD/vendor/mirror && g init -q --bare sub/bare.git && g remote add pub $PWD/sub/bare", in: "\(root)/r")
        try Self.blocked("echo x > vendor/gd/hooks/pre-receive", in: "\(root)/r", env: env, "a remote's gitfile target")
        try Self.blocked("echo x > sub/bare.git/hooks/pre-receive", in: "\(root)/r", env: env, "a remote reached as X.git")
        try sh("mkdir -p .venv/lib/python3/site-packages/pkg/sub && touch .venv/pyvenv.cfg && mkdir -p src/main/java/com/acme", in: "\(root)/plain")
        let plain = try Harness.exec(policy: "agent", ["true"], cwd: "\(root)/plain", env: env)
        #expect(plain.status == 0 && !(plain.result?["notApplied"] as? [String] ?? []).contains { $0.contains("filesystem.protect") },
                "\(plain.status) \(String(describing: plain.result?["notApplied"]))")
    }

    /// A directory whose name starts with a combining mark: the slash before it and
    /// the mark are one Swift `Character`, so a walk up by `lastIndex(of: "/")` went
    /// from `r/\u{301}w` straight to `r`'s parent, and the repository `r` whose
    /// hooks path lies in that directory was never read (session 44's read-back). The
    /// same repository with a plain name is the control that the hooks are protected.
    @Test func aRepositoryAboveANameStartingWithACombiningMarkIsFound() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir(), home = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: home) }
        let env = ["HOME": home]
        for name in ["\u{301}w", "w"] {
            let repo = "\(root)/r-\(name.utf8.count)"
            try Self.shell("g init -q . && mkdir -p '\(name)/hooks' && g config core.hooksPath '\(name)/hooks'", in: repo, env: env)
            try Self.blocked("echo x > hooks/pre-commit", in: "\(repo)/\(name)", env: env, "hooks in \(name.debugDescription)")
            #expect(!Self.exists("\(repo)/\(name)/hooks/pre-commit"), "\(name.debugDescription): the hook was written")
        }
    }

    /// Two directories whose names are canonically equal but not the same bytes (`é`
    /// as one scalar, and `e` with a combining accent): in a `Set<String>` of pinned
    /// directories they were one member, so only the first named was pinned, and the
    /// command renamed the other away with the hooks path in it, made a new one and
    /// wrote a hook the host's next `git commit` ran (red team, session 45). The
    /// attack runs as a command would: `mv`, `mkdir`, write.
    @Test func canonicallyEqualDirectoriesAreEachPinned() throws {
        guard Self.rootAndGit() else { return }
        let root = Harness.tempDir(), home = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: home) }
        let env = ["HOME": home]
        // The alias names the accented directory decomposed (NFD), the hooks path composed (NFC).
        try Self.shell("""
            nfd=$(printf 'e\\314\\201'); nfc=$(printf '\\303\\251')
            mkdir r && cd r && g init -q . && mkdir -p "$nfd/bin" "$nfc/hooks" && printf '#!/bin/sh\\n' > "$nfd/bin/tool" && chmod +x "$nfd/bin/tool"
            g config alias.t "!$nfd/bin/tool" && g config core.hooksPath "$nfc/hooks"
            """, in: root, env: env)
        // Each directory renamed away, a new one made and the program or hook written
        // where git looks: which of the two was left unpinned depends on the order the
        // plan met them, so both are tried.
        let attack = """
            cd r; nfd=$(printf 'e\\314\\201'); nfc=$(printf '\\303\\251')
            mv "$nfc" a && echo renamed-nfc && mkdir -p "$nfc/hooks" && echo x > "$nfc/hooks/pre-commit"
            mv "$nfd" b && echo renamed-nfd && mkdir -p "$nfd/bin" && echo x > "$nfd/bin/tool"
            true
            """
        let out = try Harness.exec(policy: "agent", ["sh", "-c", attack], cwd: root, env: env)
        #expect(out.status == 0 && !out.stdout.contains("renamed"), "a directory git reads from was renamed: \(out.stdout) \(out.stderr)")
        #expect(!Self.exists("\(root)/r/\u{E9}/hooks/pre-commit") && !Self.exists("\(root)/r/a") && !Self.exists("\(root)/r/b"),
                "a hook or program was written where git looks")
    }

    @Test func hardLinkedPolicyIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir(), ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: ws) }
        try "name = \"linked\"\nextends = [\"\(Self.agent)\"]\n".write(toFile: "\(dir)/p.toml", atomically: true, encoding: .utf8)
        #expect(link("\(dir)/p.toml", "\(ws)/p.toml") == 0)
        let out = try Harness.exec(policy: "\(dir)/p.toml", ["true"], cwd: ws)
        #expect(out.status == 125 && out.stderr.contains("hard links"), "stderr: \(out.stderr)")
        unlink("\(ws)/p.toml")
        let ok = try Harness.exec(policy: "\(dir)/p.toml", ["true"], cwd: ws)
        #expect(ok.status == 0, "control, one link: \(ok.stderr)")
    }

    // MARK: (c) the seccomp profile

    @Test func seccompProfileInsideTheWritableDirectoryIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let proj = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: proj) }
        let profile = "\(Harness.repoRoot)/Profiles/seccomp/default.json"
        try FileManager.default.copyItem(atPath: profile, toPath: "\(proj)/prof.json")
        let policy = Harness.policy("extends = [\"\(Self.agent)\"]\n[seccomp]\nprofile = \"\(proj)/prof.json\"\n", in: proj, name: "inside.toml")
        let out = try Harness.exec(policy: policy, ["touch", "ran"], cwd: proj)
        #expect(out.status == 125, "stderr: \(out.stderr)")
        #expect(out.stderr.contains("\(Self.realPath(proj)) is writable by the command")
                && out.stderr.contains("the seccomp profile \(Self.realPath(proj))/prof.json"), "\(out.stderr)")
        #expect(!Self.exists("\(proj)/ran"), "the command ran")

        // Control: the same profile beside the policy, outside the rw directory.
        try FileManager.default.copyItem(atPath: profile, toPath: "\(Harness.policyDir(for: proj))/prof.json")
        let ok = Harness.policy("extends = [\"\(Self.agent)\"]\n[seccomp]\nprofile = \"{policy_dir}/prof.json\"\n", in: proj, name: "outside.toml")
        let out2 = try Harness.exec(policy: ok, ["touch", "ran"], cwd: proj)
        #expect(out2.status == 0, "stderr: \(out2.stderr)")
        #expect(Self.exists("\(proj)/ran"))
    }

    // MARK: (d) --result

    /// An earlier run plants `out -> elsewhere` in its directory; the next
    /// `--result out/result.json` is refused (125, no result anywhere, nothing runs).
    @Test func resultThroughAPlantedSymlinkIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let proj = Harness.tempDir(), target = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: proj); try? FileManager.default.removeItem(atPath: target) }
        // The earlier run: allowed, it only writes its own directory.
        let plant = try Harness.exec(policy: Self.agent, ["ln", "-s", target, "out"], cwd: proj)
        #expect(plant.status == 0, "stderr: \(plant.stderr)")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(proj)/out")) == target)
        // The last component planted as a link, too.
        let lastLink = try Harness.exec(policy: Self.agent, ["ln", "-s", "\(target)/last.json", "last.json"], cwd: proj)
        #expect(lastLink.status == 0, "stderr: \(lastLink.stderr)")

        let cases = [("out/result.json", "(out -> \(target))"), ("\(proj)/out/result.json", "(\(proj)/out -> \(target))"),
                     ("last.json", "(last.json -> \(target)/last.json)")]
        for (path, link) in cases {
            let out = try Harness.sandbox(["exec", "--policy", Self.agent, "--result", path, "--", "touch", "ran"], cwd: proj)
            #expect(out.status == 125, "\(path): \(out.stderr)")
            #expect(out.stderr.contains("--result \(path): a symlink is on its path \(link); refused: an earlier run could have planted it"),
                    "\(path): \(out.stderr)")
            #expect(!Self.exists("\(proj)/ran"), "\(path): the command ran")
        }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: target)) ?? ["?"]).isEmpty, "something was written through the link")

        // Control: through a real directory (outside the writable cwd) the result is written.
        let real = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: real) }
        let ok = try Harness.sandbox(["exec", "--policy", Self.agent, "--result", "\(real)/result.json", "--", "touch", "ran"], cwd: proj)
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
        let written = (try? String(contentsOfFile: "\(real)/result.json", encoding: .utf8)) ?? ""
        #expect(written.contains("\"exitCode\":0"), "result: \(written)")
        #expect(Self.exists("\(proj)/ran"))
    }

    // MARK: (e) reserved paths

    /// `{cwd}` in /sys, /proc or the run base, and a bind that reaches /sys through a
    /// symlink: 125, nothing runs.
    @Test func reservedPathsAreRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try FileManager.default.createDirectory(atPath: "/run/sandbox/.seccomp-cache", withIntermediateDirectories: true)
        let cases: [(cwd: String, names: String)] = [
            ("/sys/kernel", "is under /sys, which the sandbox reserves"),
            ("/sys", "is /sys, which the sandbox reserves"),
            ("/proc/sys", "provided by the sandbox itself"),
            ("/run/sandbox", "is /run/sandbox, which the sandbox reserves"),
            ("/run/sandbox/.seccomp-cache", "is under /run/sandbox, which the sandbox reserves"),
        ]
        for c in cases {
            let out = try Harness.exec(policy: Self.agent, ["sh", "-c", "echo ran"], cwd: c.cwd)
            #expect(out.status == 125, "cwd \(c.cwd): \(out.status) \(out.stderr)")
            #expect(out.stderr.contains(c.names), "cwd \(c.cwd): \(out.stderr)")
            #expect(!out.stdout.contains("ran"), "cwd \(c.cwd): the command ran")
        }

        // An ro bind whose path reaches /sys through a symlink in the project.
        let proj = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: proj) }
        try FileManager.default.createSymbolicLink(atPath: "\(proj)/sysfs", withDestinationPath: "/sys")
        let policy = Harness.policy("extends = [\"\(Self.agent)\"]\n[filesystem]\nro = [\"{cwd}/sysfs/kernel\"]\n", in: proj)
        let out = try Harness.exec(policy: policy, ["sh", "-c", "echo ran"], cwd: proj)
        #expect(out.status == 125 && out.stderr.contains("\(Self.realPath(proj))/sysfs/kernel (that is /sys/kernel) is under /sys"),
                "\(out.status) \(out.stderr)")
        #expect(!out.stdout.contains("ran"))

        // Control: the same policy without that entry, from the same directory, runs.
        let ok = try Harness.exec(policy: Self.agent, ["sh", "-c", "echo ran"], cwd: proj)
        #expect(ok.status == 0 && ok.stdout == "ran\n", "stderr: \(ok.stderr)")
    }

    // MARK: (d') what an earlier run or the command can leave at the result's name

    /// A FIFO planted where the result goes would block the supervisor in open(2)
    /// before any timeout applies (control: a plain write to it blocks). Refused at
    /// once, nothing runs.
    @Test func resultAtAPlantedFIFOIsRefusedWithoutBlocking() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let proj = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: proj) }
        #expect(mkfifo("\(proj)/out.json", 0o644) == 0)
        // SIGKILL: the test process may run its children with SIGTERM blocked.
        let control = try Harness.run("/usr/bin/timeout", ["-s", "KILL", "1", "sh", "-c", "echo x > out.json"], cwd: proj)
        #expect([124, 137, 9].contains(control.status), "control: writing to the FIFO did not block (status \(control.status))")
        let started = Date()
        let out = try Harness.sandbox(["exec", "--policy", Self.agent, "--result", "\(proj)/out.json", "--", "touch", "ran"], cwd: proj)
        #expect(out.status == 125 && out.stderr.contains("not a regular file"), "status \(out.status): \(out.stderr)")
        #expect(Date().timeIntervalSince(started) < 10, "blocked")
        #expect(!Self.exists("\(proj)/ran"), "the command ran")
    }

    /// The command moves its result's directory aside and leaves a forged result
    /// where the caller looks (second red-team pass): a result inside a path the run
    /// can write is refused, also through a bind-mount alias of that path. Control: a
    /// descriptor opened on a file there (what a harness might do) is swapped away.
    @Test func resultInTheWritableDirectoryIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let proj = Harness.tempDir(), alias = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: proj); try? FileManager.default.removeItem(atPath: alias) }
        try FileManager.default.createDirectory(atPath: "\(proj)/out", withIntermediateDirectories: true)
        let forge = "mv out .old; mkdir out; printf '{\"exitCode\":0}' > out/res.json; exit 3"
        let out = try Harness.sandbox(["exec", "--policy", Self.agent, "--result", "\(proj)/out/res.json", "--", "sh", "-c", forge], cwd: proj)
        #expect(out.status == 125 && out.stderr.contains("which the command can write"), "status \(out.status): \(out.stderr)")
        #expect(Self.exists("\(proj)/out") && !Self.exists("\(proj)/.old"), "the command ran")

        let m = try Harness.run("/bin/mount", ["--bind", "\(proj)/out", alias])
        if Harness.require(m.status == 0, "bind mount: \(m.stderr)") {
            defer { _ = try? Harness.run("/bin/umount", [alias]) }
            let a = try Harness.sandbox(["exec", "--policy", Self.agent, "--result", "\(alias)/res.json", "--", "true"], cwd: proj)
            #expect(a.status == 125 && a.stderr.contains("which the command can write"), "alias: \(a.stderr)")
        }

        // Control: a descriptor opened on the name before the run is left behind when
        // the command moves the file and forges another.
        let c = try Harness.run("/bin/sh", ["-c", "exec 9>fd.json; exec \"$0\" exec --policy \"$1\" --result-fd 9 -- sh -c \"$2\"",
                                            Harness.binary, Self.agent,
                                            "mv fd.json .fd-old; printf '{\"exitCode\":0}' > fd.json; exit 3"], cwd: proj)
        #expect(c.status == 3)
        let forged = (try? String(contentsOfFile: "\(proj)/fd.json", encoding: .utf8)) ?? ""
        #expect(forged == "{\"exitCode\":0}", "control: the forged result is not what a reader finds: \(forged)")
    }

}
