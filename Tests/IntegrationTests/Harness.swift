import Foundation
import Testing

/// Runs the built `sandbox` binary against the real kernel. These tests need root
/// (and run the rootless cases through `setpriv`); when a requirement is missing they
/// FAIL, unless SANDBOX_TESTS_ALLOW_SKIP=1 turns that into a skip. CI never sets it.
enum Harness {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let binary: String = {
        if let b = ProcessInfo.processInfo.environment["SANDBOX_BIN"] { return b }
        for dir in [".build/debug", ".build/release"] {
            let p = "\(repoRoot)/\(dir)/sandbox"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return "\(repoRoot)/.build/debug/sandbox"
    }()

    /// Held by tests that run `sandbox gc` or leave a stale run for it to find: gc is
    /// host-wide, so one test's gc would otherwise reclaim another's stale run first.
    static let gcLock = NSLock()

    static var allowSkip: Bool { ProcessInfo.processInfo.environment["SANDBOX_TESTS_ALLOW_SKIP"] == "1" }

    /// True when the test may go on; records a failure (or allows a skip) otherwise.
    static func require(_ condition: Bool, _ what: String) -> Bool {
        if condition { return true }
        if allowSkip { return false }
        Issue.record("requirement missing: \(what) (set SANDBOX_TESTS_ALLOW_SKIP=1 to skip instead)")
        return false
    }

    static var isRoot: Bool { getuid() == 0 }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
        var result: [String: Any]?
        /// The result file's bytes, as `sandbox exec` wrote them.
        var resultBytes: Data? = nil
    }

    /// Copies an executable by `/bin/cp`, not in this process: a file this process
    /// holds open for writing is inherited by any child another test forks in that
    /// window, and exec of the copy then fails with ETXTBSY for as long as that child
    /// lives (TrustTests once failed so in a full run).
    static func copyExecutable(_ from: String, to: String) throws {
        let r = try run("/bin/cp", [from, to])
        guard r.status == 0 else { throw NSError(domain: "cp", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
        chmod(to, 0o755)
    }

    /// `sandbox exec --policy POLICY -- ARGV`, in `cwd`, optionally as another user.
    static func exec(policy: String, _ argv: [String], cwd: String? = nil, asUser: (uid: UInt32, runtimeDir: String)? = nil,
                     env: [String: String] = [:], stdin: String? = nil, timeout: TimeInterval = 60) throws -> Output {
        let resultFile = NSTemporaryDirectory() + "sbx-result-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: resultFile) }
        var args = ["exec", "--policy", policy, "--result", resultFile, "--"] + argv
        var exe = binary
        if let user = asUser {
            // The result file must be writable by that user.
            _ = FileManager.default.createFile(atPath: resultFile, contents: nil)
            chown(resultFile, user.uid, user.uid)
            args = ["--reuid=\(user.uid)", "--regid=\(user.uid)", "--clear-groups", "env",
                    "XDG_RUNTIME_DIR=\(user.runtimeDir)", "HOME=\(user.runtimeDir)", binary] + args
            exe = "/usr/bin/setpriv"
        }
        var out = try run(exe, args, cwd: cwd, env: env, stdin: stdin, timeout: timeout)
        if let data = FileManager.default.contents(atPath: resultFile), !data.isEmpty {
            out.result = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            out.resultBytes = data
            keepSample(data, kind: .runResult)
        }
        return out
    }

    // MARK: - Schema samples

    enum SampleKind: String { case runResult = "json", auditLog = "jsonl" }

    /// Keeps a copy of a run result or audit log the suite produced in
    /// `$SANDBOX_SCHEMA_SAMPLES` (set by Scripts/test.sh, which validates them all
    /// against Docs/schemas after `swift test`). Without the variable: nothing.
    static func keepSample(_ data: Data, kind: SampleKind) {
        guard let dir = ProcessInfo.processInfo.environment["SANDBOX_SCHEMA_SAMPLES"], !dir.isEmpty else { return }
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(dir)/\(UUID().uuidString).\(kind.rawValue)", contents: data)
    }

    /// Scripts/validate-schemas.py with `args` (options, then files or directories).
    static func validateSchemas(_ args: [String]) throws -> Output {
        try run("/usr/bin/env", ["python3", "\(repoRoot)/Scripts/validate-schemas.py"] + args)
    }

    static func sandbox(_ args: [String], cwd: String? = nil) throws -> Output {
        try run(binary, args, cwd: cwd)
    }

    static func run(_ exe: String, _ args: [String], cwd: String? = nil, env: [String: String] = [:],
                    stdin: String? = nil, timeout: TimeInterval = 60) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let outPipe = Pipe(), errPipe = Pipe(), inPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        p.standardInput = inPipe
        try p.run()
        if let stdin { inPipe.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? inPipe.fileHandleForWriting.close()
        // Drain both pipes concurrently so a chatty child never blocks.
        final class Box: @unchecked Sendable { var data = Data() } // each written by one reader, read after wait()
        let outBox = Box(), errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outBox.data = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errBox.data = errPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) } // our own child, not yet reaped
        p.waitUntilExit()
        group.wait()
        return Output(status: p.terminationStatus, stdout: String(decoding: outBox.data, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self))
    }

    /// A unix socket of `type` bound at `path`, or -1 with errno set (the caller
    /// closes it; the file stays).
    static func bindUnixSocket(_ path: String, type: Int32 = Int32(SOCK_STREAM.rawValue)) -> Int32 {
        let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { let e = errno; close(fd); errno = e; return -1 }
        return fd
    }

    /// A fresh directory (removed by the caller), optionally owned by `uid`.
    static func tempDir(owner uid: UInt32? = nil) -> String {
        let path = NSTemporaryDirectory() + "sbx-test-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        if let uid { chown(path, uid, uid) }
        chmod(path, 0o755)
        return path
    }

    /// Removes a test's directory tree, however deep: FileManager's removal fails on
    /// a path longer than PATH_MAX (a 1 900-level tree a test builds stayed behind in
    /// /tmp), rm's walk goes by descriptor. It does not cross into another file
    /// system (a bind of the same one inside would be walked: no test makes one).
    static func removeTree(_ path: String) {
        _ = try? run("/bin/rm", ["-rf", "--one-file-system", "--", path])
    }

    /// Writes a policy file for the test that works in `dir`, returns its path. The
    /// file goes to `policyDir(for: dir)`, not into `dir`: `dir` is usually the run's
    /// writable `{cwd}`, and the planner refuses a policy file a run could rewrite
    /// (TrustTests). Files the policy names with `{policy_dir}` go there too.
    static func policy(_ body: String, in dir: String, name: String = "test.toml") -> String {
        let path = "\(policyDir(for: dir))/\(name)"
        try! body.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// base with `path` as PATH, the working directory writable and `rw` beside it,
    /// then `tables` (more TOML) as given.
    static func basePolicy(in dir: String, name: String, rw: [String] = [], path: String = "/usr/bin:/bin",
                           tables: String = "") -> String {
        policy("""
            name = "\(name)"
            extends = ["base"]
            [process]
            env.set = { PATH = "\(path)" }
            [filesystem]
            rw = [\((["{cwd}"] + rw).map { "\"\($0)\"" }.joined(separator: ", "))]
            \(tables)
            """, in: dir, name: "\(name).toml")
    }

    /// An egress policy: base, the working directory writable, `network` the rest of
    /// its `[network]` table (dns, allow, …).
    static func egressPolicy(in dir: String, name: String, network: String) -> String {
        basePolicy(in: dir, name: name, path: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                   tables: "[network]\nmode = \"egress\"\n\(network)")
    }

    /// Where `policy(_:in:)` writes the policies of the test working in `dir`: a
    /// directory of its own under this process's policy root (outside every test's
    /// working directory; removed when the test process exits).
    static func policyDir(for dir: String) -> String {
        let path = "\(policyRoot)/" + dir.split(separator: "/").joined(separator: "_")
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o755)   // rootless runs read their policy as another user
        return path
    }

    static let policyRoot: String = {
        let path = NSTemporaryDirectory() + "sbx-policies-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o755)
        atexit { try? FileManager.default.removeItem(atPath: Harness.policyRoot) }
        return path
    }()

    static func runDirEntries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/run/sandbox")) ?? []).filter { !$0.hasPrefix(".") }
    }
}
