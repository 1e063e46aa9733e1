import Foundation
import Testing
@testable import SandboxAudit

/// The chain and its verifier on real files written by `AuditLog`: every way of
/// tampering with a line is named (which line, and why), and each detection has a
/// control showing the same file untouched passes.
@Suite struct AuditChainTests {
    struct FakeResult: Encodable { var runId: String; var exitCode: Int32 }

    static func tempDir() -> String {
        let path = NSTemporaryDirectory() + "sbx-audit-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func start(_ id: String) -> RunStart {
        RunStart(runId: id, invokerUid: 0, invokerGid: 0, policyName: "p", policyDigest: String(repeating: "a", count: 64),
                 sources: ["/x/p.toml"], planDigest: String(repeating: "b", count: 64), argv: ["/bin/true", id], binary: nil)
    }

    /// A log of `runs` runs, each with one denial; returns its lines.
    static func writeLog(_ path: String, runs: Int, key: AuditKey? = nil, keyFile: String? = nil) throws -> [String] {
        let log = try AuditLog.open(path: path, keyFile: keyFile, invoker: getuid())
        for i in 0..<runs {
            let id = "run\(i)"
            try log.start(start(id))
            try log.end(runId: id, exitCode: 0, result: FakeResult(runId: id, exitCode: 0),
                        denials: [Denial(kind: "syscall", what: "ptrace", detail: "seccomp", count: i + 1)])
        }
        log.close()
        return try lines(path)
    }

    static func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    static func verify(_ lines: [String], key: AuditKey? = nil) -> AuditVerifier.Report {
        AuditVerifier.verify(Array(lines.map { $0 + "\n" }.joined().utf8), key: key)
    }

    @Test func intactLogVerifiesWithCounts() throws {
        let dir = Self.tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = try Self.writeLog("\(dir)/audit.jsonl", runs: 3)
        #expect(lines.count == 1 + 3 * 3)
        let r = Self.verify(lines)
        #expect(r.ok, "\(String(describing: r.problem))")
        #expect(r.records == 10 && r.runsStarted == 3 && r.runsEnded == 3 && r.denials == 3)
        #expect(r.warnings.isEmpty)
        // The file was created 0600.
        let mode = (try FileManager.default.attributesOfItem(atPath: "\(dir)/audit.jsonl")[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600)
    }

    /// Every line removed: named as removed at that line (or bad genesis for the
    /// first). The last line's removal is invisible to the chain: it shows as a run
    /// without an end (a warning), which is what the docs say.
    @Test func everyRemovedLineIsNamed() throws {
        let dir = Self.tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = try Self.writeLog("\(dir)/audit.jsonl", runs: 3)
        for i in lines.indices {
            var t = lines; t.remove(at: i)
            let r = Self.verify(t)
            if i == lines.count - 1 {
                #expect(r.ok && r.warnings.count == 1 && r.warnings[0].contains("run2"), "\(r.warnings)")
            } else if i == 0 {
                #expect(r.problem?.line == 1 && r.problem?.failure == .badGenesis, "\(String(describing: r.problem))")
            } else {
                #expect(r.problem?.line == i + 1 && r.problem?.failure == .removed, "removed line \(i + 1): \(String(describing: r.problem))")
            }
        }
    }

    /// Every line edited (one character of its content changed, the seal left as it
    /// was): named as edited at that line, the last line included.
    @Test func everyEditedLineIsNamed() throws {
        let dir = Self.tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = try Self.writeLog("\(dir)/audit.jsonl", runs: 3)
        for i in lines.indices {
            var t = lines
            // "time":"20…" → "time":"21…": still valid JSON, still a record.
            t[i] = t[i].replacingOccurrences(of: "\"time\":\"20", with: "\"time\":\"21")
            #expect(t[i] != lines[i])
            let r = Self.verify(t)
            #expect(r.problem?.line == i + 1 && r.problem?.failure == .edited, "edited line \(i + 1): \(String(describing: r.problem))")
        }
    }

    /// Every pair of neighbours swapped: named as reordered at the first of them.
    @Test func everySwapIsNamed() throws {
        let dir = Self.tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = try Self.writeLog("\(dir)/audit.jsonl", runs: 3)
        for i in 0..<(lines.count - 1) {
            var t = lines; t.swapAt(i, i + 1)
            let r = Self.verify(t)
            if i == 0 {
                #expect(r.problem?.line == 1 && r.problem?.failure == .badGenesis)
            } else {
                #expect(r.problem?.line == i + 1 && r.problem?.failure == .reordered, "swapped \(i + 1),\(i + 2): \(String(describing: r.problem))")
            }
        }
        // A far swap too.
        var t = lines; t.swapAt(2, 7)
        #expect(Self.verify(t).problem?.failure == .reordered)
    }

    /// A line inserted (a copy of an earlier one) is named as inserted.
    @Test func insertedLineIsNamed() throws {
        let dir = Self.tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = try Self.writeLog("\(dir)/audit.jsonl", runs: 2)
        var t = lines; t.insert(lines[2], at: 4)
        let r = Self.verify(t)
        #expect(r.problem?.line == 5 && r.problem?.failure == .inserted, "\(String(describing: r.problem))")
    }

    /// An editor who recomputes seals and links with plain SHA-256 fools a plain chain
    /// (the control: that is what "plain" can and cannot do) but not a keyed one: with
    /// the key, the first recomputed line is named, and a genesis rewritten to claim a
    /// plain chain is refused.
    @Test func recomputedPlainChainDoesNotFoolTheKey() throws {
        let dir = Self.tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let keyPath = "\(dir)/key"
        FileManager.default.createFile(atPath: keyPath, contents: Data((0..<32).map { UInt8($0) }))
        chmod(keyPath, 0o600)
        let key = try AuditKey.load(path: keyPath, invoker: getuid())
        let keyed = try Self.writeLog("\(dir)/keyed.jsonl", runs: 2, keyFile: keyPath)
        #expect(Self.verify(keyed, key: key).ok)
        // Without the key the keyed file cannot be checked: said, not passed.
        #expect(Self.verify(keyed).problem?.failure == .keyNeeded)

        // Edit run1's exit code in its run_end and recompute the chain with SHA-256.
        func recompute(_ lines: [String], from: Int, genesisToPlain: Bool) -> [String] {
            var out = lines
            if genesisToPlain { out[0] = out[0].replacingOccurrences(of: "\"link\":\"hmac-sha256\"", with: "\"link\":\"sha256\"") }
            for i in from..<out.count {
                var body = String(out[i][..<out[i].range(of: ",\"seal\":\"")!.lowerBound])
                if i > 0, let r = body.range(of: #""prev":"[0-9a-f]{64}""#, options: .regularExpression) {
                    body.replaceSubrange(r, with: "\"prev\":\"\(ChainLink.sha256.digest(Array(out[i - 1].utf8)[...]))\"")
                }
                out[i] = body + ",\"seal\":\"\(ChainLink.sha256.digest(Array(body.utf8)[...]))\"}"
            }
            return out
        }
        let last = keyed.count - 1
        var edited = keyed
        edited[last] = edited[last].replacingOccurrences(of: "\"exitCode\":0", with: "\"exitCode\":7")
        #expect(edited[last] != keyed[last])
        let forged = recompute(edited, from: last, genesisToPlain: false)
        let r = Self.verify(forged, key: key)
        #expect(r.problem?.line == last + 1 && r.problem?.failure == .edited, "\(String(describing: r.problem))")

        // The whole file rewritten as a plain chain: fine without a key (the control:
        // a plain chain is only tamper-evident against editors who do not recompute),
        // refused with it.
        let plain = recompute(edited, from: 0, genesisToPlain: true)
        #expect(Self.verify(plain).ok)
        #expect(Self.verify(plain, key: key).problem?.failure == .badGenesis)

        // Control for the plain chain: a plain log's own edit-and-recompute passes
        // without a key, so the key is what makes the difference above.
        let plainLog = try Self.writeLog("\(dir)/plain.jsonl", runs: 2)
        var e2 = plainLog
        e2[last] = e2[last].replacingOccurrences(of: "\"exitCode\":0", with: "\"exitCode\":7")
        #expect(!Self.verify(e2).ok)
        #expect(Self.verify(recompute(e2, from: last, genesisToPlain: false)).ok)

        // A wrong key is named as such.
        FileManager.default.createFile(atPath: "\(dir)/other", contents: Data(repeating: 9, count: 32))
        chmod("\(dir)/other", 0o600)
        #expect(Self.verify(keyed, key: try AuditKey.load(path: "\(dir)/other", invoker: getuid())).problem?.failure == .wrongKey)
    }

    /// A key others can read, or too short, or a symlink, is refused; 0600 of the
    /// invoker is the control.
    @Test func keyFileRules() throws {
        let dir = Self.tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let k = "\(dir)/key"
        FileManager.default.createFile(atPath: k, contents: Data(repeating: 1, count: 32))
        chmod(k, 0o644)
        #expect(throws: AuditError.self) { try AuditKey.load(path: k, invoker: getuid()) }
        chmod(k, 0o600)
        _ = try AuditKey.load(path: k, invoker: getuid())
        // Owned by someone else (not root, not the invoker).
        if getuid() == 0 {
            chown(k, 4242, 4242)
            #expect(throws: AuditError.self) { try AuditKey.load(path: k, invoker: 0) }
            chown(k, 0, 0)
        }
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/link", withDestinationPath: k)
        #expect(throws: AuditError.self) { try AuditKey.load(path: "\(dir)/link", invoker: getuid()) }
        FileManager.default.createFile(atPath: "\(dir)/short", contents: Data(repeating: 1, count: 8))
        chmod("\(dir)/short", 0o600)
        #expect(throws: AuditError.self) { try AuditKey.load(path: "\(dir)/short", invoker: getuid()) }
    }

    /// One file holds one chain: a writer with another key (or none) is refused
    /// rather than mixing links.
    @Test func writerRefusesAnotherChainKind() throws {
        let dir = Self.tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Self.writeLog("\(dir)/a.jsonl", runs: 1)
        let k = "\(dir)/key"
        FileManager.default.createFile(atPath: k, contents: Data(repeating: 1, count: 32))
        chmod(k, 0o600)
        let log = try AuditLog.open(path: "\(dir)/a.jsonl", keyFile: k, invoker: getuid())
        #expect(throws: AuditError.self) { try log.start(Self.start("x")) }
        // A file that is not an audit log is not appended to.
        try "hello\n".write(toFile: "\(dir)/b", atomically: true, encoding: .utf8)
        let other = try AuditLog.open(path: "\(dir)/b", keyFile: nil, invoker: getuid())
        #expect(throws: AuditError.self) { try other.start(Self.start("x")) }
        #expect(try String(contentsOfFile: "\(dir)/b", encoding: .utf8) == "hello\n")
        // Nor one cut inside a line.
        try "{\"partial\"".write(toFile: "\(dir)/c", atomically: true, encoding: .utf8)
        #expect(throws: AuditError.self) { try AuditLog.open(path: "\(dir)/c", keyFile: nil, invoker: getuid()).start(Self.start("x")) }
    }
}
