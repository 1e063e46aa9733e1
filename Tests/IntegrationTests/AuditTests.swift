import Foundation
import SandboxAudit
import SandboxPolicy
import Testing

/// Issue 15, audit log: `[audit] path` records each run's start before the command
/// runs and its denials and end after it, hash-chained (HMAC with `key_file`); a run
/// whose start cannot be written does not start (125, the command never ran);
/// `sandbox audit verify` names the first bad line. Real files, real runs.
@Suite struct AuditTests {
    static var agent: String { "\(Harness.repoRoot)/Policies/agent.toml" }
    static func exists(_ p: String) -> Bool { FileManager.default.fileExists(atPath: p) }

    /// A policy auditing to `log` (and keyed with `key`), the run's cwd writable, ptrace
    /// answered by the supervisor (notify) so denials reach the result and the log.
    static func policy(in dir: String, log: String, key: String? = nil, name: String = "audit.toml") -> String {
        Harness.policy("""
            name = "audit-test"
            extends = ["\(agent)"]
            [seccomp]
            on_violation = "notify"
            [audit]
            path = "\(log)"
            \(key.map { "key_file = \"\($0)\"" } ?? "")
            """, in: dir, name: name)
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
            .split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    static func write(_ lines: [String], to path: String) {
        try! (lines.map { $0 + "\n" }.joined()).write(toFile: path, atomically: false, encoding: .utf8)
    }

    static let ptraceThenTouch = """
        import ctypes, sys
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall(101, 16, 1, 0, 0)   # ptrace(PTRACE_ATTACH, 1): denied
        open(sys.argv[1], "w").close()
        """

    /// Acceptance 5: 32 parallel runs append to one file; verify passes and counts 32
    /// starts and 32 ends; every line deleted, edited or swapped is named (by the CLI
    /// for a sample, in-process for every line); the records validate against the
    /// JSON Schema (acceptance 7, audit half).
    @Test func parallelRunsKeepOneChain() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir(), logDir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: logDir) }
        let log = "\(logDir)/audit.jsonl"
        let policy = Self.policy(in: dir, log: log)
        let n = 32
        let lock = NSLock()
        nonisolated(unsafe) var statuses: [Int32] = []
        nonisolated(unsafe) var errors: [String] = []
        DispatchQueue.concurrentPerform(iterations: n) { i in
            do {
                let out = try Harness.exec(policy: policy, ["python3", "-c", Self.ptraceThenTouch, "ran-\(i)"], cwd: dir, timeout: 120)
                lock.lock(); statuses.append(out.status); if out.status != 0 { errors.append(out.stderr) }; lock.unlock()
            } catch { lock.lock(); errors.append("\(error)"); lock.unlock() }
        }
        #expect(statuses.count == n && statuses.allSatisfy { $0 == 0 }, "\(errors)")
        for i in 0..<n { #expect(Self.exists("\(dir)/ran-\(i)")) }

        let lines = Self.lines(log)
        // genesis + per run: start, one ptrace denial, end.
        #expect(lines.count == 1 + 3 * n, "\(lines.count) lines")
        let ok = try Harness.sandbox(["audit", "verify", log])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("\(1 + 3 * n) records, \(n) runs started, \(n) ended, \(n) denials"), "\(ok.stdout)")
        #expect(ok.stderr.isEmpty, "\(ok.stderr)")
        // Each run's records: whole lines, start before end, the denial named.
        let records = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(records.count == lines.count)
        let denials = records.filter { $0["type"] as? String == "denial" }
        #expect(denials.allSatisfy { $0["kind"] as? String == "syscall" && $0["what"] as? String == "ptrace" && $0["count"] as? Int == 1 }, "\(denials.prefix(2))")
        var startLine: [String: Int] = [:]
        for (i, r) in records.enumerated() {
            guard let id = r["runId"] as? String else { continue }
            if r["type"] as? String == "run_start" { startLine[id] = i }
            if r["type"] as? String == "run_end" {
                #expect(startLine[id].map { $0 < i } == true, "run \(id) ends before it starts")
                #expect((r["result"] as? [String: Any])?["exitCode"] as? Int == 0)
            }
        }
        #expect(startLine.count == n)

        try Self.validateAgainstSchema(lines)

        // Tampering, through the CLI: a line deleted, edited, and two swapped.
        let copy = "\(logDir)/copy.jsonl"
        func verify(_ t: [String]) throws -> Harness.Output { Self.write(t, to: copy); return try Harness.sandbox(["audit", "verify", copy]) }
        var t = lines; t.remove(at: 10)
        var o = try verify(t)
        #expect(o.status == 1 && o.stderr.contains("line 11: removed"), "\(o.stderr)")
        t = lines; t[20] = t[20].replacingOccurrences(of: "\"time\":\"", with: "\"time\":\"1")
        o = try verify(t)
        #expect(o.status == 1 && o.stderr.contains("line 21: edited"), "\(o.stderr)")
        t = lines; t.swapAt(30, 31)
        o = try verify(t)
        #expect(o.status == 1 && o.stderr.contains("line 31: reordered"), "\(o.stderr)")
        // Control: the copy untouched verifies.
        o = try verify(lines)
        #expect(o.status == 0, "\(o.stderr)")

        // Every line, in-process, on this real file.
        func check(_ t: [String]) -> AuditVerifier.Report { AuditVerifier.verify(Array(t.map { $0 + "\n" }.joined().utf8), key: nil) }
        for i in 1..<lines.count {
            var d = lines; d.remove(at: i)
            let r = check(d)
            if i == lines.count - 1 {
                #expect(r.ok && r.warnings.count == 1, "the last line removed shows as a run without an end")
            } else {
                #expect(r.problem?.line == i + 1 && r.problem?.failure == .removed, "removed \(i + 1): \(String(describing: r.problem))")
            }
            var e = lines; e[i] = e[i].replacingOccurrences(of: "\"seq\":\(i + 1),", with: "\"seq\":\(i + 1) ,")
            #expect(check(e).problem?.line == i + 1 && check(e).problem?.failure == .edited, "edited \(i + 1)")
            if i + 1 < lines.count {
                var s = lines; s.swapAt(i, i + 1)
                #expect(check(s).problem?.line == i + 1 && check(s).problem?.failure == .reordered, "swapped \(i + 1)")
            }
        }
    }

    /// Acceptance 6: the audit file on a full filesystem (a small tmpfs this test
    /// mounts in a mount namespace of its own): 125, the command did not run (it would
    /// have created a file), nothing half-written. Control: the same with room runs
    /// and is recorded.
    @Test func fullFilesystemRefusesTheRun() throws {
        guard Harness.require(Harness.isRoot, "root (to mount a tmpfs)") else { return }
        guard Harness.require(Self.exists("/usr/bin/unshare"), "unshare (util-linux)") else { return }
        let dir = Harness.tempDir(), mnt = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: mnt) }
        let policy = Self.policy(in: dir, log: "\(mnt)/audit.jsonl")
        let result = "\(Harness.policyDir(for: dir))/result.json"
        // The mount lives only in unshare's private namespace: gone when it exits.
        func run(fill: Bool, marker: String) throws -> (Harness.Output, String) {
            let script = """
                set -e
                mount -t tmpfs -o size=64k,mode=0755 audit-test "\(mnt)"
                \(fill ? "dd if=/dev/zero of=\"\(mnt)/fill\" bs=4k count=64 2>/dev/null || true" : "")
                rc=0
                "\(Harness.binary)" exec --policy "\(policy)" --result "\(result)" -- touch "\(marker)" || rc=$?
                echo "rc=$rc"
                echo "size=$(stat -c %s "\(mnt)/audit.jsonl" 2>/dev/null || echo none)"
                """
            let out = try Harness.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script], cwd: dir)
            let json = (try? String(contentsOfFile: result, encoding: .utf8)) ?? ""
            return (out, json)
        }
        let (full, fullResult) = try run(fill: true, marker: "ran-full")
        #expect(full.stdout.contains("rc=125"), "\(full.stdout) \(full.stderr)")
        #expect(full.stderr.contains("No space left on device") && full.stderr.contains("the command was not started"), "\(full.stderr)")
        #expect(fullResult.contains("\"exitCode\":125"), "\(fullResult)")
        #expect(!Self.exists("\(dir)/ran-full"), "the command ran without its start on record")
        #expect(full.stdout.contains("size=0"), "a partial record was left: \(full.stdout)")
        // The host never saw the mount.
        #expect(!(try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)).contains(mnt))

        let (room, _) = try run(fill: false, marker: "ran-room")
        #expect(room.stdout.contains("rc=0"), "\(room.stdout) \(room.stderr)")
        #expect(Self.exists("\(dir)/ran-room"))
        #expect(!room.stdout.contains("size=0") && !room.stdout.contains("size=none"), "\(room.stdout)")
    }

    /// A run that fills the filesystem its audit log is on (through a writable bind
    /// on the same tmpfs) cannot leave its end off the record quietly: its exit status
    /// becomes 125 and the error says the end is missing; verify then warns of a run
    /// without an end. Control: the same run writing little ends 0, recorded.
    @Test func endNotWrittenIs125() throws {
        guard Harness.require(Harness.isRoot, "root (to mount a tmpfs)") else { return }
        guard Harness.require(Self.exists("/usr/bin/unshare"), "unshare (util-linux)") else { return }
        let mnt = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: mnt) }
        let policy = Self.policy(in: mnt, log: "\(mnt)/log/audit.jsonl")
        // The records hold argv: 8 KiB of it makes the end need pages of its own (tmpfs
        // hands out whole pages, and the start's last page may have room left).
        let pad = String(repeating: "x", count: 8192)
        func run(_ command: String) throws -> Harness.Output {
            let script = """
                set -e
                mount -t tmpfs -o size=256k,mode=0755 audit-test "\(mnt)"
                mkdir "\(mnt)/log" "\(mnt)/work"
                cd "\(mnt)/work"
                rc=0
                "\(Harness.binary)" exec --policy "\(policy)" -- sh -c '\(command)' sh "\(pad)" || rc=$?
                echo "rc=$rc"
                "\(Harness.binary)" audit verify "\(mnt)/log/audit.jsonl" || true
                """
            return try Harness.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script])
        }
        let filled = try run("dd if=/dev/zero of=fill bs=4k count=128 2>/dev/null; exit 0")
        #expect(filled.stdout.contains("rc=125"), "\(filled.stdout) \(filled.stderr)")
        #expect(filled.stderr.contains("the command ran and exited 0, but its end is not on record"), "\(filled.stderr)")
        #expect(filled.stdout.contains("1 runs started, 0 ended"), "\(filled.stdout)")
        #expect(filled.stderr.contains("warning: run ") && filled.stderr.contains("has no run_end"), "\(filled.stderr)")

        let small = try run("echo hi > small; exit 0")
        #expect(small.stdout.contains("rc=0") && small.stdout.contains("1 runs started, 1 ended"), "\(small.stdout) \(small.stderr)")
        #expect(!small.stderr.contains("warning"), "\(small.stderr)")
    }

    /// Not a regular file, a symlink on the path, a directory the invoker cannot
    /// write (EACCES, rootless): 125 and the command did not run. Control: a plain
    /// path runs.
    @Test func unwritableAuditPathRefusesTheRun() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir(), logDir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: logDir) }
        try FileManager.default.createDirectory(atPath: "\(logDir)/real", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(logDir)/link", withDestinationPath: "\(logDir)/real")
        try FileManager.default.createDirectory(atPath: "\(logDir)/adir", withIntermediateDirectories: true)
        #expect(mkfifo("\(logDir)/fifo", 0o600) == 0)
        let cases: [(log: String, says: String)] = [
            ("\(logDir)/link/audit.jsonl", "symlink"),
            ("\(logDir)/adir", "Is a directory"),
            ("\(logDir)/fifo", "not a regular file"),
        ]
        for (i, c) in cases.enumerated() {
            let policy = Self.policy(in: dir, log: c.log, name: "p\(i).toml")
            let out = try Harness.exec(policy: policy, ["touch", "ran-\(i)"], cwd: dir)
            #expect(out.status == 125, "\(c.log): \(out.stderr)")
            #expect(out.stderr.contains(c.says) && out.stderr.contains("the command was not started"), "\(c.log): \(out.stderr)")
            #expect(!Self.exists("\(dir)/ran-\(i)"), "\(c.log): the command ran")
        }
        // EACCES: a rootless invoker and a log directory only root may write.
        let runtime = Harness.tempDir(owner: 65534), userDir = Harness.tempDir(owner: 65534)
        defer { try? FileManager.default.removeItem(atPath: runtime); try? FileManager.default.removeItem(atPath: userDir) }
        let denied = Self.policy(in: userDir, log: "\(logDir)/real/audit.jsonl", name: "denied.toml")
        chmod(denied, 0o644)
        let o = try Harness.exec(policy: denied, ["touch", "ran"], cwd: userDir, asUser: (65534, runtime))
        #expect(o.status == 125 && o.stderr.contains("Permission denied"), "\(o.stderr)")
        #expect(!Self.exists("\(userDir)/ran"))

        // Control: the real directory, by its own path.
        let good = Self.policy(in: dir, log: "\(logDir)/real/audit.jsonl", name: "good.toml")
        let ok = try Harness.exec(policy: good, ["touch", "ran-ok"], cwd: dir)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(Self.exists("\(dir)/ran-ok"))
        #expect(Self.lines("\(logDir)/real/audit.jsonl").count == 3)
    }

    /// The log inside a path the run can write, or the key inside any path the run
    /// can see, is refused by the planner (TrustCheck): 125 before anything runs.
    @Test func auditFilesOutsideTheRunsReach() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir(), logDir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: logDir) }
        let inside = Self.policy(in: dir, log: "{cwd}/audit.jsonl", name: "inside.toml")
        var out = try Harness.exec(policy: inside, ["touch", "ran"], cwd: dir)
        #expect(out.status == 125 && out.stderr.contains("the audit log"), "\(out.stderr)")
        #expect(!Self.exists("\(dir)/ran") && !Self.exists("\(dir)/audit.jsonl"))

        // The key under a read-only bind (agent binds /usr read-only): the run could read it.
        let keyDir = "/usr/local/share/sbx-audit-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: keyDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: keyDir) }
        FileManager.default.createFile(atPath: "\(keyDir)/key", contents: Data(repeating: 7, count: 32))
        chmod("\(keyDir)/key", 0o600)
        let visible = Self.policy(in: dir, log: "\(logDir)/a.jsonl", key: "\(keyDir)/key", name: "visible.toml")
        out = try Harness.exec(policy: visible, ["touch", "ran"], cwd: dir)
        #expect(out.status == 125 && out.stderr.contains("the audit key file") && out.stderr.contains("read-only"), "\(out.stderr)")
        #expect(!Self.exists("\(dir)/ran"))
    }

    /// An audit log or key with a second hard link (which could lie in a path a run
    /// can write or see: a run then rewrites the log, or reads the key and re-seals
    /// the chain), a log another user owns, or one group/others may write: each 125,
    /// nothing ran. Control: the same files with one link, the invoker's, run.
    @Test func auditFilesWithOtherWaysInAreRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir(), logDir = Harness.tempDir(), elsewhere = Harness.tempDir()
        defer { for d in [dir, logDir, elsewhere] { try? FileManager.default.removeItem(atPath: d) } }
        let log = "\(logDir)/audit.jsonl", key = "\(logDir)/key"
        FileManager.default.createFile(atPath: key, contents: Data((0..<32).map { _ in UInt8.random(in: 0...255) }))
        chmod(key, 0o600)
        let policy = Self.policy(in: dir, log: log, key: key)
        var out = try Harness.exec(policy: policy, ["touch", "ran"], cwd: dir)
        #expect(out.status == 0, "control: \(out.stderr)")
        try FileManager.default.removeItem(atPath: "\(dir)/ran")

        for (file, other) in [(log, "\(elsewhere)/log-link"), (key, "\(elsewhere)/key-link")] {
            #expect(link(file, other) == 0)
            out = try Harness.exec(policy: policy, ["touch", "ran"], cwd: dir)
            #expect(out.status == 125 && out.stderr.contains("2 hard links"), "\(file): \(out.stderr)")
            #expect(!Self.exists("\(dir)/ran"))
            unlink(other)
        }
        chown(log, 4242, 4242)
        out = try Harness.exec(policy: policy, ["touch", "ran"], cwd: dir)
        #expect(out.status == 125 && out.stderr.contains("owned by uid 4242"), "\(out.stderr)")
        #expect(!Self.exists("\(dir)/ran"))
        chown(log, 0, 0)
        chmod(log, 0o666)
        out = try Harness.exec(policy: policy, ["touch", "ran"], cwd: dir)
        #expect(out.status == 125 && out.stderr.contains("writable by group or others"), "\(out.stderr)")
        #expect(!Self.exists("\(dir)/ran"))
        chmod(log, 0o600)
        out = try Harness.exec(policy: policy, ["touch", "ran"], cwd: dir)
        #expect(out.status == 0, "control after: \(out.stderr)")
    }

    /// `key_file`: runs chain with HMAC; verify needs the key and catches an edit
    /// whose plain SHA-256 chain was recomputed. A key others can read is refused
    /// (125, nothing ran).
    @Test func keyedChain() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir(), logDir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: logDir) }
        let key = "\(logDir)/key", log = "\(logDir)/audit.jsonl"
        FileManager.default.createFile(atPath: key, contents: Data((0..<32).map { _ in UInt8.random(in: 0...255) }))
        chmod(key, 0o644)
        let policy = Self.policy(in: dir, log: log, key: key)
        var out = try Harness.exec(policy: policy, ["touch", "ran"], cwd: dir)
        #expect(out.status == 125 && out.stderr.contains("chmod 600"), "\(out.stderr)")
        #expect(!Self.exists("\(dir)/ran"))

        chmod(key, 0o600)
        for i in 0..<3 {
            out = try Harness.exec(policy: policy, ["python3", "-c", Self.ptraceThenTouch, "k\(i)"], cwd: dir)
            #expect(out.status == 0, "\(out.stderr)")
        }
        let lines = Self.lines(log)
        #expect(lines.first?.contains("\"link\":\"hmac-sha256\"") == true)
        var v = try Harness.sandbox(["audit", "verify", "--key-file", key, log])
        #expect(v.status == 0 && v.stdout.contains("3 runs started, 3 ended"), "\(v.stdout) \(v.stderr)")
        v = try Harness.sandbox(["audit", "verify", log])
        #expect(v.status == 1 && v.stderr.contains("key needed"), "\(v.stderr)")
        try Self.validateAgainstSchema(lines)

        // An edit to run 2's end, every seal and link after it recomputed with SHA-256.
        var t = lines
        let i = t.count - 1
        t[i] = t[i].replacingOccurrences(of: "\"exitCode\":0", with: "\"exitCode\":1")
        var body = String(t[i][..<t[i].range(of: ",\"seal\":\"")!.lowerBound])
        body = body.replacingOccurrences(of: #""prev":"[0-9a-f]{64}""#, with: "\"prev\":\"\(Digest.sha256Hex(Array(t[i - 1].utf8)))\"", options: .regularExpression)
        t[i] = body + ",\"seal\":\"\(Digest.sha256Hex(Array(body.utf8)))\"}"
        let copy = "\(logDir)/copy.jsonl"
        Self.write(t, to: copy)
        v = try Harness.sandbox(["audit", "verify", "--key-file", key, copy])
        #expect(v.status == 1 && v.stderr.contains("line \(i + 1): edited"), "\(v.stderr)")
        // Control: unedited, the copy verifies with the key.
        Self.write(lines, to: copy)
        v = try Harness.sandbox(["audit", "verify", "--key-file", key, copy])
        #expect(v.status == 0, "\(v.stderr)")
    }

    // MARK: - JSON Schema

    /// Validates each line against Docs/schemas/audit-record.schema.json (a run_end's
    /// result against run-result.schema.json) with Scripts/validate-schemas.py, which
    /// uses the `jsonschema` Python package (.ci/run installs python3-jsonschema).
    /// Missing tools fail the test. The script also checks that a record without
    /// `prev` is rejected, so the validator is known to be checking. The log is kept
    /// for Scripts/test.sh's validation of everything the suite produced.
    static func validateAgainstSchema(_ lines: [String]) throws {
        // The records go in a file, not on stdin: a validator that dies early must not
        // leave the test writing into a closed pipe.
        let records = NSTemporaryDirectory() + "sbx-audit-records-\(UUID().uuidString.prefix(8)).jsonl"
        defer { try? FileManager.default.removeItem(atPath: records) }
        let text = lines.map { $0 + "\n" }.joined()
        try text.write(toFile: records, atomically: true, encoding: .utf8)
        Harness.keepSample(Data(text.utf8), kind: .auditLog)
        let out = try Harness.validateSchemas(["--min-audit", "1", records])
        #expect(out.status == 0, "schema validation: \(out.stdout) \(out.stderr)")
    }
}
