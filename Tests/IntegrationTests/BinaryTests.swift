import Foundation
import Testing

/// Issue 15, acceptance 1–3: `[binary]`. Every fixture is a real file in a directory
/// this test makes under /run (whose chain is root-owned 0755, unlike /tmp's 1777,
/// which `reject_writable` rightly refuses) and removes after. The policy binds that
/// directory read-only at the same path.
@Suite(.serialized) struct BinaryTests {
    /// A fixture directory: `root/bin/tool` is a copy of /usr/bin/true, `root/alt/tool`
    /// of /usr/bin/false (exit 1): which one ran is its exit status.
    final class Fixture {
        let root: String
        let cwd = Harness.tempDir()
        var bin: String { root + "/bin" }
        var tool: String { bin + "/tool" }

        init() throws {
            root = "/run/sandbox-binary-test-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
            chmod(root, 0o755); chmod(root + "/bin", 0o755)
            try copy("/usr/bin/true", to: tool)
        }

        func copy(_ from: String, to: String, mode: mode_t = 0o755) throws {
            try? FileManager.default.removeItem(atPath: to)
            // The file itself, not a symlink to it (/bin/sh is one).
            try FileManager.default.copyItem(atPath: URL(fileURLWithPath: from).resolvingSymlinksInPath().path, toPath: to)
            chmod(to, mode)
        }

        func remove() {
            try? FileManager.default.removeItem(atPath: root)
            try? FileManager.default.removeItem(atPath: cwd)
        }

        /// `base`, the fixture directory read-only, every rule on, `extra` appended.
        func policy(_ extra: String = "", rules: String = "require_root_owned = true\nreject_writable = true\nreject_setuid = true") -> String {
            Harness.policy("""
                name = "binary-test"
                extends = ["base"]
                [filesystem]
                ro = ["\(root)"]
                [binary]
                \(rules)
                \(extra)
                """, in: cwd)
        }

        func run(_ argv: [String], policy: String, env: [String: String] = [:]) throws -> Harness.Output {
            try Harness.exec(policy: policy, argv, cwd: cwd, env: env)
        }
    }

    static func sha256(_ path: String) throws -> String {
        let out = try Harness.run("/usr/bin/sha256sum", [path])
        return String(out.stdout.prefix(64))
    }

    static func error(_ out: Harness.Output) -> [String: Any] { out.result?["error"] as? [String: Any] ?? [:] }

    /// A refusal: 126, kind exec, step binary, the message naming `rule` and `path`,
    /// and nothing spawned (no fences applied).
    static func expectRefused(_ out: Harness.Output, rule: String, path: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(out.status == 126, "status \(out.status); stderr: \(out.stderr)", sourceLocation: sourceLocation)
        let e = error(out)
        let message = e["message"] as? String ?? ""
        #expect(e["kind"] as? String == "exec" && e["step"] as? String == "binary", "error: \(e)", sourceLocation: sourceLocation)
        #expect(message.contains(rule) && message.contains(path), "message does not name \(rule) and \(path): \(message)", sourceLocation: sourceLocation)
        #expect(out.stderr.contains(rule), "stderr: \(out.stderr)", sourceLocation: sourceLocation)
        let fences = out.result?["fences"] as? [String: Any]
        #expect(fences?["noNewPrivs"] as? Bool == false, "the command's sandbox was started: \(fences ?? [:])", sourceLocation: sourceLocation)
    }

    // MARK: - Acceptance 1: pin

    @Test func wrongPinIsRefusedNamingBothHashesAndTheRightOneRuns() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let actual = try Self.sha256(f.tool)
        let wrong = String(repeating: "ab", count: 32)

        let refused = try f.run([f.tool], policy: f.policy("pin = { \"\(f.tool)\" = \"sha256:\(wrong)\" }"))
        Self.expectRefused(refused, rule: "pin", path: f.tool)
        let message = Self.error(refused)["message"] as? String ?? ""
        #expect(message.contains(actual) && message.contains(wrong), "both hashes must be named: \(message)")
        let binary = refused.result?["binary"] as? [String: Any]
        #expect(binary?["sha256"] as? String == actual, "the result names what was found: \(binary ?? [:])")

        let ran = try f.run([f.tool], policy: f.policy("pin = { \"\(f.tool)\" = \"sha256:\(actual)\" }"))
        #expect(ran.status == 0, "status \(ran.status); stderr: \(ran.stderr)")
        let checked = ran.result?["binary"] as? [String: Any]
        #expect(checked?["path"] as? String == f.tool && checked?["sha256"] as? String == actual, "binary: \(checked ?? [:])")
    }

    /// A directory whose name starts with a combining mark: the slash before it and
    /// the mark are one Swift `Character`, which a split at `"/"` does not cut. The
    /// lookup and the anchored walk count components by bytes, as the kernel does,
    /// so the file is found, checked and run; and a symlink `../\u{301}d/../alt/tool`
    /// leads where the kernel's `..` leads (`alt/tool`, which exits 1).
    @Test func namesStartingWithACombiningMarkAreSplitAsTheKernelSplitsThem() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let marked = f.root + "/\u{301}d"
        try FileManager.default.createDirectory(atPath: marked, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: f.root + "/alt", withIntermediateDirectories: true)
        chmod(marked, 0o755); chmod(f.root + "/alt", 0o755)
        try f.copy("/usr/bin/true", to: marked + "/tool")
        try f.copy("/usr/bin/false", to: f.root + "/alt/tool")
        let ran = try f.run([marked + "/tool"], policy: f.policy())
        #expect(ran.status == 0, "status \(ran.status); stderr: \(ran.stderr)")
        let checked = ran.result?["binary"] as? [String: Any]
        #expect((checked?["path"] as? String).map { Array($0.utf8) == Array((marked + "/tool").utf8) } == true, "binary: \(checked ?? [:])")
        #expect(symlink("../\u{301}d/../alt/tool", f.bin + "/link") == 0)
        let linked = try f.run([f.bin + "/link"], policy: f.policy())
        #expect(linked.status == 1, "the kernel's \u{301}d/.. is the fixture root: alt/tool exits 1; status \(linked.status); stderr: \(linked.stderr)")
        let viaLink = linked.result?["binary"] as? [String: Any]
        #expect(viaLink?["path"] as? String == f.root + "/alt/tool", "binary: \(viaLink ?? [:])")
    }

    /// `sandbox exec` of `root/alias/tool` under `base` with `root/w` writable,
    /// `root/alias` read-only and `require_root_owned`, after `setup` (shell, `$1` the
    /// fixture's root, `$2` `extra`): in a private mount namespace, so the host's mount
    /// table is not touched.
    static func runAliasedTool(_ f: Fixture, after setup: String, extra: String = "") throws -> Harness.Output {
        for d in ["/w", "/alias"] { try FileManager.default.createDirectory(atPath: f.root + d, withIntermediateDirectories: true) }
        for d in ["/w", "/alias"] { chmod(f.root + d, 0o755) }
        let policy = Harness.policy("""
            name = "alias-test"
            extends = ["base"]
            [filesystem]
            rw = ["\(f.root)/w"]
            ro = ["\(f.root)/alias"]
            [binary]
            require_root_owned = true
            """, in: f.cwd)
        let script = setup + " && exec \"$3\" exec --policy \"$4\" -- \"$1/alias/tool\""
        return try Harness.run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script,
                                                   "sh", f.root, extra, Harness.binary, policy], cwd: f.cwd)
    }

    /// A refusal because a run can write where the file lies.
    static func refusedAsWritable(_ out: Harness.Output) -> Bool {
        out.status == 126 && out.stderr.contains("require_root_owned") && out.stderr.contains("which this run can write")
    }

    /// A file in a directory this run can write, reached through a bind alias of a
    /// subdirectory (no inode on the walked path is the writable root's, so the check
    /// falls back to filesystem locations): refused by `require_root_owned` also when
    /// the subdirectory's name starts with a combining mark, which a `Character`
    /// prefix test did not see beneath the writable root (red team, session 45: the
    /// tool ran). The plain name is the control that the rule refuses there at all.
    @Test func aWritablePlaceSeenThroughABindAliasIsFoundByBytes() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        for name in ["d", "\u{301}d"] {
            let f = try Fixture()
            defer { f.remove() }
            let dir = f.root + "/w/" + name
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            chmod(dir, 0o755)
            try f.copy("/usr/bin/true", to: dir + "/tool")
            let out = try Self.runAliasedTool(f, after: "mount --bind \"$1/w/$2\" \"$1/alias\"", extra: name)
            #expect(Self.refusedAsWritable(out), "\(name.debugDescription): \(out.status) \(out.stderr)")
        }
    }

    /// A filesystem mounted beneath a writable place is writable through it (a bind
    /// clones the whole tree): a tool on a tmpfs mounted at `w/sub`, reached through
    /// another mount of that tmpfs at `alias/`, is refused by `require_root_owned`
    /// (red team, session 45: its device is not `w`'s, so it passed). The control:
    /// the same tmpfs mounted read-only beneath `w` (a run cannot write it) is not
    /// refused.
    @Test func aFilesystemMountedBeneathAWritablePlaceIsWritable() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        for (mode, refused) in [("rw", true), ("ro", false)] {
            let f = try Fixture()
            defer { f.remove() }
            try FileManager.default.createDirectory(atPath: f.root + "/w/sub", withIntermediateDirectories: true)
            chmod(f.root + "/w/sub", 0o755)
            let out = try Self.runAliasedTool(f, after: """
                mount -t tmpfs -o mode=0755 sbx-submount "$1/w/sub" && cp /usr/bin/true "$1/w/sub/tool" && chmod 755 "$1/w/sub/tool" \
                && mount --bind "$1/w/sub" "$1/alias" && mount -o remount,bind,$2 "$1/w/sub"
                """, extra: mode)
            if refused {
                #expect(Self.refusedAsWritable(out), "\(mode): \(out.status) \(out.stderr)")
            } else {
                #expect(out.status == 0, "\(mode) (control): \(out.status) \(out.stderr)")
            }
        }
    }

    /// A pin on the name the command is found by (a symlink) holds the bytes of the
    /// file it leads to; the result names both.
    @Test func pinThroughASymlinkChecksTheFileItLeadsTo() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let link = f.bin + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "tool")
        let actual = try Self.sha256(f.tool)
        let policy = f.policy("pin = { \"\(link)\" = \"sha256:\(String(repeating: "0", count: 64))\" }")
        Self.expectRefused(try f.run([link], policy: policy), rule: "pin", path: link)

        let ok = try f.run(["link"], policy: f.policy("pin = { \"\(link)\" = \"sha256:\(actual)\" }"),
                           env: ["PATH": f.bin + ":/usr/bin:/bin"])
        #expect(ok.status == 0, "status \(ok.status); stderr: \(ok.stderr)")
        let b = ok.result?["binary"] as? [String: Any]
        #expect(b?["path"] as? String == f.tool && b?["foundAs"] as? String == link, "binary: \(b ?? [:])")
    }

    /// Red-team finding: a pin matched only the exact string, so the same file named
    /// another way ran unpinned. Each spelling of the pinned file (`//`, `/./`, a
    /// symlinked directory on the way, a hard link) and a `#!` line spelling its
    /// interpreter with `//` or ending in a NUL (the kernel stops there) is now
    /// refused by the pin; control: with the right hash each spelling runs, so each
    /// names a file that really runs.
    @Test func pinHoldsForEverySpellingOfThePinnedFile() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        try FileManager.default.createSymbolicLink(atPath: f.root + "/via", withDestinationPath: "bin")
        #expect(link(f.tool, f.root + "/hard") == 0)
        let actual = try Self.sha256(f.tool)
        // One policy file per fixture: written again before each run.
        let wrong = { f.policy("pin = { \"\(f.tool)\" = \"sha256:\(String(repeating: "0", count: 64))\" }") }
        let right = { f.policy("pin = { \"\(f.tool)\" = \"sha256:\(actual)\" }") }
        for spelling in [f.bin + "//tool", f.bin + "/./tool", f.root + "/via/tool", f.root + "/hard"] {
            let out = try f.run([spelling], policy: wrong())
            #expect(out.status == 126 && (Self.error(out)["message"] as? String ?? "").contains("pin: "),
                    "\(spelling) ran unpinned: status \(out.status), \(Self.error(out))")
            let ok = try f.run([spelling], policy: right())
            #expect(ok.status == 0, "control: \(spelling) with the right hash: status \(ok.status), stderr \(ok.stderr)")
        }

        let interp = f.bin + "/sh"
        try f.copy("/bin/sh", to: interp)
        let shHash = try Self.sha256(interp)
        let script = f.bin + "/script"
        for line in ["#!\(f.bin)//sh", "#!\(interp)\u{0}junk"] {
            try (line + "\necho ran\n").write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o755)
            let out = try f.run([script], policy: f.policy("pin = { \"\(interp)\" = \"sha256:\(String(repeating: "0", count: 64))\" }"))
            #expect(out.status == 126 && (Self.error(out)["message"] as? String ?? "").contains("pin: interpreter of"),
                    "\(line.debugDescription): the interpreter ran unpinned: status \(out.status), \(Self.error(out))")
            let ok = try f.run([script], policy: f.policy("pin = { \"\(interp)\" = \"sha256:\(shHash)\" }"))
            #expect(ok.status == 0 && ok.stdout == "ran\n", "control: \(line.debugDescription): status \(ok.status), stderr \(ok.stderr)")
        }
    }

    /// run_start in the audit log names the checked binary and its hash.
    @Test func auditRunStartNamesTheBinary() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let logDir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: logDir) }
        let out = try f.run([f.tool], policy: f.policy("[audit]\npath = \"\(logDir)/audit.jsonl\""))
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let text = (try? String(contentsOfFile: logDir + "/audit.jsonl", encoding: .utf8)) ?? ""
        let start = text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.first { $0["type"] as? String == "run_start" }
        let binary = start?["binary"] as? [String: Any]
        let actual = try Self.sha256(f.tool)
        #expect(binary?["path"] as? String == f.tool && binary?["sha256"] as? String == actual,
                "run_start: \(start ?? [:])")
    }

    // MARK: - Acceptance 2: the rules

    @Test func binaryInAWorldWritableDirectoryIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let dir = f.root + "/open"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o1777)   // sticky, as /tmp: still writable by anyone
        try f.copy("/usr/bin/true", to: dir + "/tool")
        let out = try f.run([dir + "/tool"], policy: f.policy())
        Self.expectRefused(out, rule: "reject_writable", path: dir)
        #expect((Self.error(out)["message"] as? String ?? "").contains("world-writable"), "\(Self.error(out))")
    }

    @Test func groupWritableBinaryIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        chmod(f.tool, 0o775)
        let out = try f.run([f.tool], policy: f.policy())
        Self.expectRefused(out, rule: "reject_writable", path: f.tool)
        #expect((Self.error(out)["message"] as? String ?? "").contains("group-writable"), "\(Self.error(out))")
        // Control: the same file without the group bit runs.
        chmod(f.tool, 0o755)
        #expect(try f.run([f.tool], policy: f.policy()).status == 0)
    }

    @Test func setuidBinaryIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        chmod(f.tool, 0o4755)
        Self.expectRefused(try f.run([f.tool], policy: f.policy()), rule: "reject_setuid", path: f.tool)
        chmod(f.tool, 0o2755)
        Self.expectRefused(try f.run([f.tool], policy: f.policy()), rule: "reject_setuid", path: f.tool)
    }

    @Test func binaryOwnedByAnotherUserIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        chown(f.tool, 4242, 4242)
        chmod(f.tool, 0o755)
        let out = try f.run([f.tool], policy: f.policy())
        Self.expectRefused(out, rule: "require_root_owned", path: f.tool)
        #expect((Self.error(out)["message"] as? String ?? "").contains("uid 4242"), "\(Self.error(out))")
        // Without the rule it runs: the refusal is the rule's.
        #expect(try f.run([f.tool], policy: f.policy(rules: "reject_setuid = true")).status == 0)
    }

    /// A `#!` script runs through its checked interpreter; an interpreter that fails a
    /// rule refuses the script.
    @Test func scriptWhoseInterpreterFailsARuleIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let interp = f.bin + "/sh"
        try f.copy("/bin/sh", to: interp)
        let script = f.bin + "/script"
        try "#!\(interp) -e\necho \"ran $0 $1\"\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)

        let ok = try f.run([script, "arg"], policy: f.policy())
        #expect(ok.status == 0 && ok.stdout.contains("ran /dev/fd/") && ok.stdout.contains(" arg"),
                "status \(ok.status) stdout \(ok.stdout) stderr \(ok.stderr)")
        let b = ok.result?["binary"] as? [String: Any]
        let i = b?["interpreter"] as? [String: Any]
        #expect(b?["path"] as? String == script && i?["path"] as? String == interp, "binary: \(b ?? [:])")

        chmod(interp, 0o777)
        let out = try f.run([script], policy: f.policy())
        Self.expectRefused(out, rule: "reject_writable", path: interp)
        #expect((Self.error(out)["message"] as? String ?? "").contains("interpreter of \(script)"), "\(Self.error(out))")
    }

    /// A script is read by its interpreter while it runs, long after every check, and
    /// is never exec'd itself (so no ETXTBSY): a writer rewriting a later line in place
    /// changed what ran while the result showed the pinned hash (red-team finding).
    /// The interpreter now reads a sealed copy. Control: the same rewrite against the
    /// interpreter reading the file itself (outside the sandbox) wins.
    @Test func scriptRewrittenWhileItRunsRunsTheCheckedBytes() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        // bash, not dash: bash reads a script a command at a time (dash reads it whole).
        let interp = f.bin + "/bash"
        try f.copy("/bin/bash", to: interp)
        let script = f.bin + "/script"
        // The script says when it has started, then waits for the rewrite: no timing.
        let signal = f.root + "/signal"
        try FileManager.default.createDirectory(atPath: signal, withIntermediateDirectories: false)
        chmod(signal, 0o777)
        let text = """
            #!\(interp)
            echo step1
            : > \(signal)/started
            while [ ! -e \(signal)/rewritten ]; do sleep 0.01; done
            echo step2

            """
        func plant() throws {
            try text.write(toFile: script, atomically: true, encoding: .utf8); chmod(script, 0o755)
            for name in ["started", "rewritten"] { unlink(signal + "/" + name) }
        }
        /// Once the script has started, overwrites "step2" with "PWND2" in place (same
        /// length, same inode), then lets it go on.
        func rewriteOnceStarted() -> Thread {
            let t = Thread {
                for _ in 0..<3000 where access(signal + "/started", F_OK) != 0 { usleep(10_000) }
                let fd = open(script, O_WRONLY)
                let offset = text.utf8.count - "step2\n".utf8.count
                _ = "PWND2".withCString { pwrite(fd, $0, 5, off_t(offset)) }
                close(fd)
                close(open(signal + "/rewritten", O_WRONLY | O_CREAT, 0o644))
            }
            t.start()
            return t
        }
        // Control: an interpreter reading the file itself runs the rewritten line.
        try plant()
        _ = rewriteOnceStarted()
        let control = try Harness.run(interp, [script])
        #expect(control.stdout.contains("PWND2"), "control: the rewrite should win against a plain read: \(control.stdout)")

        try plant()
        let pin = try Self.sha256(script)
        _ = rewriteOnceStarted()
        let policy = Harness.policy("""
            name = "binary-script-rewrite"
            extends = ["base"]
            [filesystem]
            ro = ["\(f.root)"]
            rw = ["\(signal)"]
            [binary]
            require_root_owned = true
            reject_setuid = true
            pin = { "\(script)" = "sha256:\(pin)" }
            """, in: f.cwd, name: "rewrite.toml")
        let out = try f.run([script], policy: policy)
        #expect(out.status == 0 && out.stdout.contains("step2") && !out.stdout.contains("PWND2"),
                "status \(out.status) stdout \(out.stdout) stderr \(out.stderr)")
        #expect((out.result?["binary"] as? [String: Any])?["sha256"] as? String == pin)
    }

    // MARK: - Acceptance 3: the file that was checked is the file that runs

    /// Runs `f.tool` with the supervisor paused between the check and the clone;
    /// `during` changes the file system meanwhile.
    static func runPaused(_ f: Fixture, policy: String, env: [String: String] = [:],
                          at hookVariable: String = "SANDBOX_TEST_PAUSE_AFTER_BINARY_CHECK",
                          during: () throws -> Void) throws -> Harness.Output {
        let hook = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: hook) }
        var env = env
        env[hookVariable] = hook
        final class Box: @unchecked Sendable { var out: Harness.Output?; var error: (any Error)? } // written before done.signal()
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let argv = [f.tool]
        DispatchQueue.global().async {
            do { box.out = try f.run(argv, policy: policy, env: env) } catch { box.error = error }
            done.signal()
        }
        var paused = false
        for _ in 0..<1000 where !paused {
            paused = FileManager.default.fileExists(atPath: hook + "/checked")
            if !paused { usleep(10_000) }
        }
        #expect(paused, "the supervisor never reached the test hook (a debug build honours SANDBOX_TEST_PAUSE_AFTER_BINARY_CHECK)")
        try during()
        FileManager.default.createFile(atPath: hook + "/go", contents: nil)
        done.wait()
        if let e = box.error { throw e }
        return box.out!
    }

    /// The path is replaced (rename over it) while the supervisor waits: the new
    /// bytes (false, 1) never run. A leased file is run by reopening its sandbox path
    /// inside (so it runs through the sandbox's mount), which now holds another
    /// inode: refused (126, ESTALE); a sealed copy runs the checked bytes (true, 0).
    /// Control: the same swap with the child executing by path (debug-only
    /// SANDBOX_TEST_EXEC_BY_PATH) runs the new bytes, so the race is real.
    @Test func swappedPathNeverRunsTheNewBytes() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let swap = {
            try f.copy("/usr/bin/false", to: f.bin + "/.new")
            #expect(rename(f.bin + "/.new", f.tool) == 0)
        }
        let out = try Self.runPaused(f, policy: f.policy(), during: swap)
        Self.expectCheckedInodeGone(out)

        try f.copy("/usr/bin/true", to: f.tool)
        let copy = try Self.runPaused(f, policy: f.policy(), env: ["SANDBOX_TEST_EXEC_FENCE": "copy"], during: swap)
        #expect(copy.status == 0, "the sealed copy should run the checked bytes: status \(copy.status), stderr \(copy.stderr)")

        try f.copy("/usr/bin/true", to: f.tool)
        let control = try Self.runPaused(f, policy: f.policy(), env: ["SANDBOX_TEST_EXEC_BY_PATH": "1"], during: swap)
        #expect(control.status == 1, "control: executing by path should run the swapped-in file (false → 1): status \(control.status), stderr \(control.stderr)")
    }

    /// The attacker's other moves on a path: rename the parent directory away and put
    /// another in its place (the walk held each directory by fd), or hard-link a
    /// different file to the name (the checks are on the inode opened, not on a name):
    /// the child finds another inode at the path and refuses.
    @Test func swappedParentDirectoryNeverRunsTheNewBytes() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let swap = {
            #expect(rename(f.bin, f.root + "/old") == 0)
            try FileManager.default.createDirectory(atPath: f.bin, withIntermediateDirectories: false)
            chmod(f.bin, 0o755)
            try f.copy("/usr/bin/false", to: f.root + "/false")
            #expect(link(f.root + "/false", f.tool) == 0)
        }
        Self.expectCheckedInodeGone(try Self.runPaused(f, policy: f.policy(), during: swap))

        // Control: executing by path runs the swapped-in directory's file (false: 1).
        try FileManager.default.removeItem(atPath: f.bin)
        try FileManager.default.removeItem(atPath: f.root + "/false")
        #expect(rename(f.root + "/old", f.bin) == 0)
        let control = try Self.runPaused(f, policy: f.policy(), env: ["SANDBOX_TEST_EXEC_BY_PATH": "1"], during: swap)
        #expect(control.status == 1, "control: executing by path should run the swapped-in file (false → 1): status \(control.status), stderr \(control.stderr)")
    }

    /// The checked inode is no longer at its sandbox path when the child reopens it
    /// there (to run it through the sandbox's own mount): refused, nothing ran.
    static func expectCheckedInodeGone(_ out: Harness.Output, sourceLocation: SourceLocation = #_sourceLocation) {
        let e = error(out)
        #expect(out.status == 126 && e["step"] as? String == "check the executable is unchanged" && e["errnoName"] as? String == "ESTALE",
                "the swapped-in file ran, or another refusal: status \(out.status), \(e), stderr \(out.stderr)", sourceLocation: sourceLocation)
    }

    /// The checked inode itself rewritten after the hash (a writer with write
    /// permission on it, such as another run writing as the invoker through an rw
    /// bind). The fence (lease or copy) stops that first (the lease tests below); this
    /// tests the line behind it with the fence off (debug-only
    /// SANDBOX_TEST_EXEC_FENCE=none): the re-check of ctime and size refuses, 126.
    @Test func checkedFileWrittenInPlaceIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let out = try Self.runPaused(f, policy: f.policy(), env: ["SANDBOX_TEST_EXEC_FENCE": "none"]) {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: "/usr/bin/false"))
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: f.tool))
            try h.truncate(atOffset: 0)
            try h.write(contentsOf: bytes)
            try h.close()
        }
        #expect(out.status == 126, "status \(out.status); stderr \(out.stderr)")
        #expect(out.stderr.contains("written to after its check"), "stderr: \(out.stderr)")
        #expect((Self.error(out)["kind"] as? String) == "exec", "\(Self.error(out))")
    }

    /// The same write after the supervisor's last look (right before clone3), fence
    /// off as above: only the child's own check before execveat is left, and it refuses.
    @Test func writeAfterTheSupervisorsLastLookIsRefusedByTheChild() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let out = try Self.runPaused(f, policy: f.policy(), env: ["SANDBOX_TEST_EXEC_FENCE": "none"],
                                     at: "SANDBOX_TEST_PAUSE_BEFORE_CLONE") {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: f.tool))
            try h.seekToEnd()
            try h.write(contentsOf: Data([0]))
            try h.close()
        }
        #expect(out.status == 126, "status \(out.status); stderr \(out.stderr)")
        let e = Self.error(out)
        #expect(e["step"] as? String == "check the executable is unchanged" && e["errnoName"] as? String == "ESTALE", "\(e)")
        #expect(out.stderr.contains("written to after its check"), "stderr: \(out.stderr)")
    }

    // MARK: - The fence: the bytes that run are the bytes hashed

    /// Red-team finding: a shared writable mapping made before the check. Pages
    /// dirtied through it before the check are written again after it without any
    /// fault, so ctime never moves; the mapping is gone before execveat, so ETXTBSY
    /// never fires. The lease is refused while the mapping exists (the file is open
    /// for writing through it), so the checked bytes run from a sealed copy: true (0),
    /// with the pinned hash. Control: the fence off (debug-only
    /// SANDBOX_TEST_EXEC_FENCE=none), false (1) runs while the result shows true's hash.
    @Test func elfRewrittenThroughASharedMappingRunsTheCheckedBytes() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let good = try Data(contentsOf: URL(fileURLWithPath: f.tool))
        let bad = try Data(contentsOf: URL(fileURLWithPath: URL(fileURLWithPath: "/usr/bin/false").resolvingSymlinksInPath().path))
        try #require(good.count == bad.count && good != bad, "the test needs true and false of one size")
        let pin = try Self.sha256(f.tool)
        let policy = f.policy("pin = { \"\(f.tool)\" = \"sha256:\(pin)\" }")

        func attack(env: [String: String]) throws -> Harness.Output {
            let fd = open(f.tool, O_RDWR)
            try #require(fd >= 0)
            let mapped = mmap(nil, good.count, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            close(fd)   // the mapping keeps the file open for writing
            guard let map = mapped, map != MAP_FAILED else { Issue.record("mmap: errno \(errno)"); throw POSIXError(.EIO) }
            // Dirty every page now, before the check (the same bytes): writes to a
            // dirty, writable page take no fault, so the rewrite below moves no ctime.
            good.withUnsafeBytes { _ = memcpy(map, $0.baseAddress!, good.count) }
            return try Self.runPaused(f, policy: policy, env: env) {
                var before = stat(), after = stat()
                stat(f.tool, &before)
                bad.withUnsafeBytes { _ = memcpy(map, $0.baseAddress!, bad.count) }
                munmap(map, bad.count)
                stat(f.tool, &after)
                #expect(before.st_ctim.tv_sec == after.st_ctim.tv_sec && before.st_ctim.tv_nsec == after.st_ctim.tv_nsec,
                        "the rewrite through the mapping moved ctime: the attack is not the one under test")
            }
        }

        let out = try attack(env: [:])
        #expect(out.status == 0, "the rewritten bytes ran: status \(out.status), stderr \(out.stderr)")
        let b = out.result?["binary"] as? [String: Any]
        #expect(b?["sha256"] as? String == pin && b?["fence"] as? String == "copy", "binary: \(b ?? [:])")

        try f.copy("/usr/bin/true", to: f.tool)
        let control = try attack(env: ["SANDBOX_TEST_EXEC_FENCE": "none"])
        #expect(control.status == 1, "control: without the fence the rewrite should run false (1): status \(control.status), stderr \(control.stderr)")
        #expect((control.result?["binary"] as? [String: Any])?["sha256"] as? String == pin)
    }

    /// Without a writer at the check the file runs itself, under a read lease. A
    /// later open for writing (here O_NONBLOCK: it fails at once, yet breaks the
    /// lease; a blocking one would wait for the lease holder) is seen at the
    /// supervisor's last look: 126. Without the lease that open would succeed.
    @Test func openForWritingAfterTheCheckBreaksTheLeaseAndIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let ok = try f.run([f.tool], policy: f.policy())
        #expect(ok.status == 0 && (ok.result?["binary"] as? [String: Any])?["fence"] as? String == "lease",
                "status \(ok.status), binary \(ok.result?["binary"] ?? "nil"), stderr \(ok.stderr)")

        let out = try Self.runPaused(f, policy: f.policy()) {
            let fd = open(f.tool, O_WRONLY | O_NONBLOCK)
            let e = errno
            if fd >= 0 { close(fd) }
            #expect(fd < 0 && e == EWOULDBLOCK, "the open for writing was not held off by a lease: fd \(fd), errno \(e)")
        }
        #expect(out.status == 126, "status \(out.status); stderr \(out.stderr)")
        #expect(out.stderr.contains("read lease was broken"), "stderr: \(out.stderr)")
    }

    /// The same open after the supervisor's last look: the child's check of the lease
    /// right before execveat refuses (ESTALE, 126).
    @Test func leaseBrokenAfterTheSupervisorsLastLookIsRefusedByTheChild() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let out = try Self.runPaused(f, policy: f.policy(), at: "SANDBOX_TEST_PAUSE_BEFORE_CLONE") {
            let fd = open(f.tool, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
            #expect(fd < 0 && errno == EWOULDBLOCK, "the open for writing was not held off by a lease")
        }
        #expect(out.status == 126, "status \(out.status); stderr \(out.stderr)")
        let e = Self.error(out)
        #expect(e["step"] as? String == "check the executable is unchanged" && e["errnoName"] as? String == "ESTALE", "\(e)")
    }

    /// A writer that blocks in open (the kernel holds it until the lease holder lets
    /// go) while the supervisor is past its last look: the child sees the broken
    /// lease and refuses (126); the writer's open completes only after. Waits for
    /// /proc/locks to show the break, not for a time.
    @Test func writerBlockedInOpenIsRefusedByTheChild() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        var st = stat()
        stat(f.tool, &st)
        let writer = DispatchSemaphore(value: 0)
        let out = try Self.runPaused(f, policy: f.policy(), at: "SANDBOX_TEST_PAUSE_BEFORE_CLONE") {
            let path = f.tool
            Thread {
                let fd = open(path, O_WRONLY)  // blocks until the lease is released
                if fd >= 0 { close(fd) }
                writer.signal()
            }.start()
            var breaking = false
            for _ in 0..<500 where !breaking {
                let locks = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? ""
                breaking = locks.split(separator: "\n").contains { $0.contains("BREAK") && $0.contains(":\(st.st_ino) ") }
                if !breaking { usleep(10_000) }
            }
            #expect(breaking, "the writer's open never broke the lease (/proc/locks)")
        }
        #expect(out.status == 126, "status \(out.status); stderr \(out.stderr)")
        #expect(Self.error(out)["errnoName"] as? String == "ESTALE", "\(Self.error(out))")
        #expect(writer.wait(timeout: .now() + 60) == .success, "the writer never got its open")
    }

    /// Red-team finding: the lease's break signal (SIGIO, deadly by default) reached
    /// the supervisor when a writer opened between F_SETLEASE and F_SETOWN 0 (1 run
    /// in 150). The supervisor now ignores SIGIO before it takes a lease; the debug
    /// pause holds it in that window while the test breaks the lease: it lives and
    /// refuses (126), where before it died of SIGIO.
    @Test func leaseBreakBeforeTheOwnerIsClearedDoesNotKillTheSupervisor() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let out = try Self.runPaused(f, policy: f.policy(), at: "SANDBOX_TEST_PAUSE_IN_LEASE") {
            let fd = open(f.tool, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
            #expect(fd < 0 && errno == EWOULDBLOCK, "the open for writing was not held off by a lease")
        }
        #expect(out.status == 126 && out.stderr.contains("read lease was broken"),
                "the supervisor did not refuse (SIGIO?): status \(out.status); stderr \(out.stderr)")
    }

    /// The copy a run gets where the kernel grants no lease (forced here with the
    /// debug-only SANDBOX_TEST_EXEC_FENCE=copy) runs, pinned, and also for a script's
    /// interpreter; and a rootless run of a root-owned binary (no CAP_LEASE, not the
    /// owner) gets it for real.
    @Test func sealedCopyRunsWhereThereIsNoLease() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let pin = try Self.sha256(f.tool)
        let out = try f.run([f.tool], policy: f.policy("pin = { \"\(f.tool)\" = \"sha256:\(pin)\" }"),
                            env: ["SANDBOX_TEST_EXEC_FENCE": "copy"])
        #expect(out.status == 0 && (out.result?["binary"] as? [String: Any])?["fence"] as? String == "copy",
                "status \(out.status), binary \(out.result?["binary"] ?? "nil"), stderr \(out.stderr)")

        let interp = f.bin + "/sh"
        try f.copy("/bin/sh", to: interp)
        let script = f.bin + "/script"
        try "#!\(interp)\necho ran\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let s = try f.run([script], policy: f.policy(), env: ["SANDBOX_TEST_EXEC_FENCE": "copy"])
        let i = (s.result?["binary"] as? [String: Any])?["interpreter"] as? [String: Any]
        #expect(s.status == 0 && s.stdout == "ran\n" && i?["fence"] as? String == "copy",
                "status \(s.status) stdout \(s.stdout) interpreter \(i ?? [:]) stderr \(s.stderr)")

        let nobody = Nobody("binary-rootless", filesystem: "ro = [\"\(f.root)\"]", binary: "pin = { \"\(f.tool)\" = \"sha256:\(pin)\" }")
        defer { nobody.remove() }
        let r = try nobody.exec([f.tool])
        #expect(r.status == 0 && (r.result?["binary"] as? [String: Any])?["fence"] as? String == "copy",
                "rootless: status \(r.status), binary \(r.result?["binary"] ?? "nil"), stderr \(r.stderr)")

        // The invoker's own file: a rootless supervisor may lease it (fsuid = owner).
        let own = f.bin + "/own"
        try f.copy("/usr/bin/true", to: own)
        chown(own, 65534, 65534)
        let o = try nobody.exec([own])
        #expect(o.status == 0 && (o.result?["binary"] as? [String: Any])?["fence"] as? String == "lease",
                "rootless, own file: status \(o.status), binary \(o.result?["binary"] ?? "nil"), stderr \(o.stderr)")
    }

    /// Red-team finding: the leased file ran from the supervisor's descriptor, opened
    /// through the host's mount, so the command's /proc/self/exe was the host file,
    /// not its read-only bind: a rootless run could chmod (and, without Landlock,
    /// rewrite) its own binary on the host. The child now execs the same inode
    /// reopened through the sandbox's mount: EROFS, the host file unchanged. Control:
    /// executing the host descriptor (debug-only SANDBOX_TEST_EXEC_HOST_FD=1) lets the
    /// chmod through.
    @Test func procSelfExeIsTheReadOnlyBindNotTheHostFile() throws {
        guard Harness.require(Harness.isRoot, "root (to switch to an unprivileged user with setpriv)") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let own = f.bin + "/bash"
        try f.copy("/bin/bash", to: own)
        chown(own, 65534, 65534)
        let nobody = Nobody("binary-proc-exe", filesystem: "ro = [\"\(f.root)\"]")
        defer { nobody.remove() }
        let argv = [own, "-c", "/usr/bin/chmod 777 /proc/$$/exe && echo CHANGED"]
        func mode() -> mode_t { var st = stat(); stat(own, &st); return st.st_mode & 0o7777 }

        let out = try nobody.exec(argv)
        #expect((out.result?["binary"] as? [String: Any])?["fence"] as? String == "lease",
                "the own file should run under a lease: \(out.result?["binary"] ?? "nil"), stderr \(out.stderr)")
        #expect(!out.stdout.contains("CHANGED") && out.stderr.contains("Read-only file system"),
                "chmod of /proc/$$/exe: stdout \(out.stdout) stderr \(out.stderr)")
        #expect(mode() == 0o755, "the host file's mode changed: \(String(mode(), radix: 8))")

        let control = try nobody.exec(argv, env: ["SANDBOX_TEST_EXEC_HOST_FD": "1"])
        #expect(control.stdout.contains("CHANGED") && mode() == 0o777,
                "control: the host descriptor should let the chmod through: stdout \(control.stdout) stderr \(control.stderr)")
    }

    /// Red-team finding: the whole file was copied and hashed before any rule ran, so
    /// a 2 GiB sparse `#!` script in a refused place cost 20 s and 2 GiB of shmem.
    /// Every rule but the pin now runs on the opened file first: the refusal comes
    /// with no hash (no `binary` in the result: nothing was read). And a file over
    /// the 512 MiB cap is refused unread even where every rule passes and a pin
    /// names it (before: hashed whole, then refused by the pin).
    @Test func hugeFileIsRefusedBeforeItIsCopiedOrHashed() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        func sparse(_ path: String, size: off_t) throws {
            try "#!/bin/sh\necho ran\n".write(toFile: path, atomically: false, encoding: .utf8)
            #expect(truncate(path, size) == 0)
            chmod(path, 0o755)
        }
        let open = f.root + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: false)
        chmod(open, 0o777)
        try sparse(open + "/big", size: 1 << 30)
        let refused = try f.run([open + "/big"], policy: f.policy())
        Self.expectRefused(refused, rule: "reject_writable", path: open)
        #expect(refused.result?["binary"] == nil, "the refused file was hashed: \(refused.result?["binary"] ?? "nil")")

        let big = f.bin + "/big"
        try sparse(big, size: (512 << 20) + 1)
        let capped = try f.run([big], policy: f.policy("pin = { \"\(big)\" = \"sha256:\(String(repeating: "0", count: 64))\" }"))
        Self.expectRefused(capped, rule: "max size", path: big)
        #expect(capped.result?["binary"] == nil, "the oversized file was hashed: \(capped.result?["binary"] ?? "nil")")
    }

    // MARK: - What other runs can write

    /// Red-team finding: run A writes through its rw bind as the invoker, so a file it
    /// plants is "owned by the invoker" and passed require_root_owned for run B,
    /// which finds it on its PATH. B is now refused while A's record names that bind;
    /// control: without require_root_owned B runs A's file (false: 1). And a command
    /// under a writable bind of B's own plan is refused the same way.
    @Test func fileAnotherRunCanWriteIsRefusedByRequireRootOwned() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let shared = f.root + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
        chmod(shared, 0o755)
        let planter = Harness.policy("""
            name = "binary-planter"
            extends = ["base"]
            [filesystem]
            rw = ["\(shared)"]
            """, in: f.cwd, name: "planter.toml")
        let signal = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: signal) }
        final class Box: @unchecked Sendable { var out: Harness.Output? } // written before done.signal()
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            box.out = try? f.run(["/bin/sh", "-c", """
                cp /usr/bin/false \(shared)/tool && chmod 755 \(shared)/tool && touch \(shared)/planted
                i=0; while [ ! -e \(shared)/done ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
                """], policy: planter)
            done.signal()
        }
        var planted = false
        for _ in 0..<1000 where !planted {
            planted = FileManager.default.fileExists(atPath: shared + "/planted")
            if !planted { usleep(10_000) }
        }
        try #require(planted, "run A never planted its file: \(box.out?.stderr ?? "still running")")
        let path = ["PATH": shared + ":/usr/bin:/bin"]
        let refused = try f.run(["tool"], policy: f.policy(), env: path)
        Self.expectRefused(refused, rule: "require_root_owned", path: shared + "/tool")
        #expect((Self.error(refused)["message"] as? String ?? "").contains("which run "), "\(Self.error(refused))")
        let control = try f.run(["tool"], policy: f.policy(rules: "reject_setuid = true"), env: path)
        #expect(control.status == 1, "control: B should run A's file (false → 1): status \(control.status), stderr \(control.stderr)")
        FileManager.default.createFile(atPath: shared + "/done", contents: nil)
        done.wait()
        #expect(box.out?.status == 0, "run A: \(box.out?.stderr ?? "nil")")

        // A has ended: its record is gone. B's own rw bind of the directory.
        let ownPolicy = Harness.policy("""
            name = "binary-own-rw"
            extends = ["base"]
            [filesystem]
            ro = ["\(f.root)"]
            rw = ["\(shared)"]
            [binary]
            require_root_owned = true
            """, in: f.cwd, name: "own.toml")
        Self.expectRefused(try f.run([shared + "/tool"], policy: ownPolicy), rule: "require_root_owned", path: shared + "/tool")
        #expect(try f.run([shared + "/tool"], policy: f.policy()).status == 1, "with no run able to write it, it runs")
    }

    /// Red-team finding: symlinks the lookup followed were never checked, so whoever
    /// could write the directory holding one chose which trusted program ran under
    /// the name (`WS/bin/tool -> /usr/bin/bash`). A symlink in a place a run can
    /// write is refused by require_root_owned, one in a 1777 directory by
    /// reject_writable, though the file it leads to passes both. Controls: without
    /// the rule each runs the file the link chose.
    @Test func symlinksOnTheWayAreCheckedLikeTheFile() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let shared = f.root + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
        chmod(shared, 0o755)
        try FileManager.default.createSymbolicLink(atPath: shared + "/tool", withDestinationPath: f.tool)
        func rwPolicy(_ rules: String) -> String {
            Harness.policy("""
                name = "binary-link"
                extends = ["base"]
                [filesystem]
                ro = ["\(f.root)"]
                rw = ["\(shared)"]
                [binary]
                \(rules)
                """, in: f.cwd, name: "link.toml")
        }
        let path = ["PATH": shared + ":/usr/bin:/bin"]
        let refused = try f.run(["tool"], policy: rwPolicy("require_root_owned = true"), env: path)
        Self.expectRefused(refused, rule: "require_root_owned", path: shared + "/tool")
        #expect((Self.error(refused)["message"] as? String ?? "").contains("symlink"), "\(Self.error(refused))")
        #expect(try f.run(["tool"], policy: rwPolicy("reject_setuid = true"), env: path).status == 0,
                "control: without require_root_owned the link's choice runs")

        let open = f.root + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: false)
        chmod(open, 0o1777)
        try FileManager.default.createSymbolicLink(atPath: open + "/ls", withDestinationPath: f.tool)
        let sticky = try f.run([open + "/ls"], policy: f.policy())
        Self.expectRefused(sticky, rule: "reject_writable", path: open)
        #expect((Self.error(sticky)["message"] as? String ?? "").contains("symlink \(open)/ls"), "\(Self.error(sticky))")
        #expect(try f.run([open + "/ls"], policy: f.policy(rules: "require_root_owned = true")).status == 0,
                "control: without reject_writable the link's choice runs")
    }

    /// The other runs' records are trusted because no one but the supervisor can
    /// write the run base (else a record could be removed, hiding a run's writable
    /// binds): a run base others can write is refused under require_root_owned.
    /// Control: the same run base at 0711 runs.
    @Test func requireRootOwnedRefusesARunBaseOthersCanWrite() throws {
        guard Harness.require(Harness.isRoot, "root (to switch to an unprivileged user with setpriv)") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let nobody = Nobody("binary-run-base", filesystem: "ro = [\"\(f.root)\"]")
        defer { nobody.remove() }
        let base = nobody.runtime + "/sandbox"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: false)
        chown(base, 65534, 65534)
        chmod(base, 0o777)
        let out = try nobody.exec([f.tool])
        Self.expectRefused(out, rule: "require_root_owned", path: base)
        chmod(base, 0o711)
        let ok = try nobody.exec([f.tool])
        #expect(ok.status == 0, "status \(ok.status); stderr \(ok.stderr)")
    }

    /// A run record that exists and cannot be decoded used to be skipped, silently
    /// dropping that run's writable places; require_root_owned now refuses (126,
    /// naming the run). Control: the same run directory with no record yet (a run
    /// being created) is skipped and the command runs.
    @Test func unreadableRunRecordIsRefusedByRequireRootOwned() throws {
        guard Harness.require(Harness.isRoot, "root (to switch to an unprivileged user with setpriv)") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let nobody = Nobody("binary-corrupt-record", filesystem: "ro = [\"\(f.root)\"]")
        defer { nobody.remove() }
        let base = nobody.runtime + "/sandbox"
        let run = base + "/r-corrupt"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        for d in [base, run] { chown(d, 65534, 65534); chmod(d, 0o711) }
        try "{\"runId\": \"r-corrupt\", \"writable\": [".write(toFile: run + "/state.json", atomically: false, encoding: .utf8)
        chown(run + "/state.json", 65534, 65534)
        let out = try nobody.exec([f.tool])
        Self.expectRefused(out, rule: "require_root_owned", path: "r-corrupt")
        try FileManager.default.removeItem(atPath: run + "/state.json")
        let ok = try nobody.exec([f.tool])
        #expect(ok.status == 0, "control: a run directory with no record yet is skipped: status \(ok.status), stderr \(ok.stderr)")
    }

    /// A run as nobody (uid 65534): its runtime directory, and a working directory
    /// holding its policy, `base` with the `filesystem` lines and `[binary]`
    /// `require_root_owned` plus the `binary` lines; `remove()` removes both.
    struct Nobody {
        let runtime = Harness.tempDir(owner: 65534)
        let dir = Harness.tempDir(owner: 65534)
        let policy: String

        init(_ name: String, filesystem: String, binary: String = "") {
            policy = Harness.policy("name = \"\(name)\"\nextends = [\"base\"]\n[filesystem]\n\(filesystem)\n[binary]\nrequire_root_owned = true\n\(binary)\n", in: dir)
            chmod(policy, 0o644)
        }

        func exec(_ argv: [String], env: [String: String] = [:]) throws -> Harness.Output {
            try Harness.exec(policy: policy, argv, cwd: dir, asUser: (65534, runtime), env: env)
        }

        func remove() {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: runtime)
        }
    }

    /// A hard link is another name of the same inode, which require_root_owned's
    /// place check does not see: a file of the invoker's linked into a place a run
    /// can write (here the run's own rw bind) and run by its other name ran. A
    /// file not root's with more than one link is now refused when a writable place
    /// is on its filesystem. Control: the same file with one link runs.
    @Test func hardLinkIntoAWritablePlaceIsRefusedByRequireRootOwned() throws {
        guard Harness.require(Harness.isRoot, "root (to switch to an unprivileged user with setpriv)") else { return }
        let f = try Fixture()
        defer { f.remove() }
        let shared = f.root + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
        chown(shared, 65534, 65534)
        chmod(shared, 0o755)
        let own = f.bin + "/own"
        try f.copy("/usr/bin/true", to: own)
        chown(own, 65534, 65534)
        #expect(link(own, shared + "/tool") == 0)
        let nobody = Nobody("binary-hard-link", filesystem: "ro = [\"\(f.root)\"]\nrw = [\"\(shared)\"]")
        defer { nobody.remove() }
        let out = try nobody.exec([own])
        Self.expectRefused(out, rule: "require_root_owned", path: own)
        #expect((Self.error(out)["message"] as? String ?? "").contains("hard links"), "\(Self.error(out))")
        unlink(shared + "/tool")
        let ok = try nobody.exec([own])
        #expect(ok.status == 0, "control: with one link it runs: status \(ok.status), stderr \(ok.stderr)")
    }

    /// A hard link's other name may lie in any part of the file's filesystem, and a
    /// run can write a part of another filesystem bound read-write beneath its
    /// writable place: here `t/d` of a tmpfs `t`, bound at `w/sub`, holds a second
    /// name of `t/e/tool`, which the command names through `alias` (all of `t`). The
    /// hard-link rule looked only at writable places on the file's own device, and
    /// `w` is not on the tmpfs, so the tool ran (red team, session 45, left then).
    /// Control: the same without the second name runs (it lies in no part a run can
    /// write).
    @Test func aHardLinkInAFilesystemBoundBeneathAWritablePlaceIsSeen() throws {
        guard Harness.require(Harness.isRoot, "root (a private mount namespace, then setpriv)") else { return }
        for linked in [true, false] {
            let f = try Fixture()
            defer { f.remove() }
            for d in ["/w/sub", "/alias", "/t"] {
                try FileManager.default.createDirectory(atPath: f.root + d, withIntermediateDirectories: true)
                chmod(f.root + d, 0o755)
            }
            chown(f.root + "/w", 65534, 65534)
            let nobody = Nobody("binary-partial-bind-link", filesystem: "rw = [\"\(f.root)/w\"]\nro = [\"\(f.root)/alias\"]")
            defer { nobody.remove() }
            let script = """
                mount -t tmpfs -o mode=0755 sbx-partial "$1/t" && mkdir "$1/t/d" "$1/t/e" \
                && cp /usr/bin/true "$1/t/e/tool" && chmod 755 "$1/t/e/tool" \
                && { [ "$2" = no ] || ln "$1/t/e/tool" "$1/t/d/tool2"; } && chown -R 65534:65534 "$1/t" \
                && mount --bind "$1/t/d" "$1/w/sub" && mount --bind "$1/t" "$1/alias" \
                && exec setpriv --reuid=65534 --regid=65534 --clear-groups env XDG_RUNTIME_DIR="$5" HOME="$5" \
                   "$3" exec --policy "$4" -- "$1/alias/e/tool"
                """
            let out = try Harness.run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script,
                                                           "sh", f.root, linked ? "yes" : "no", Harness.binary, nobody.policy, nobody.runtime], cwd: nobody.dir)
            if linked {
                #expect(out.status == 126 && out.stderr.contains("require_root_owned") && out.stderr.contains("2 hard links"),
                        "a second name in the part bound beneath w: \(out.status) \(out.stderr)")
            } else {
                #expect(out.status == 0, "control: one name, in no part a run can write: \(out.status) \(out.stderr)")
            }
        }
    }

    // MARK: - File capabilities

    /// reject_setuid also refuses file capabilities (security.capability, written
    /// here directly: a v2 entry with CAP_NET_RAW permitted and effective). They grant
    /// nothing under no_new_privs, but the rule promises no privileged file runs.
    /// Control: without reject_setuid the same file runs.
    @Test func fileWithCapabilitiesIsRefusedByRejectSetuid() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let f = try Fixture()
        defer { f.remove() }
        // struct vfs_cap_data, little-endian: magic_etc = VFS_CAP_REVISION_2 |
        // VFS_CAP_FLAGS_EFFECTIVE, then {permitted, inheritable} × 2; CAP_NET_RAW = 13.
        let set = try Harness.run("/usr/bin/python3", ["-c", """
            import os, struct, sys
            os.setxattr(sys.argv[1], "security.capability", struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0))
            """, f.tool])
        try #require(set.status == 0, "setxattr security.capability: \(set.stderr)")
        let out = try f.run([f.tool], policy: f.policy())
        Self.expectRefused(out, rule: "reject_setuid", path: f.tool)
        #expect((Self.error(out)["message"] as? String ?? "").contains("file capabilities"), "\(Self.error(out))")
        #expect(try f.run([f.tool], policy: f.policy(rules: "require_root_owned = true")).status == 0)
    }
}
