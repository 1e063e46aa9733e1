import Foundation
import SandboxPlan
import SandboxPolicy

/// Feeds generated cases to the policy pipeline in-process — load (parse, `extends`,
/// validate, seccomp profile) and, for a policy that loads, plan compilation — and
/// judges the outcome: a valid `Policy` (and a plan or a `PlanError`), or a clean
/// `PolicyError`. Anything else is a finding.
public final class FuzzDriver {
    /// What one case gave.
    public struct Outcome {
        public enum Result: Equatable {
            case planned
            case planRefused
            case refused
        }
        public var result: Result
        /// Why the outcome is not acceptable (empty: fine).
        public var findings: [String]
        public var seconds: Double
        /// The diagnostics or plan error, for replay output.
        public var detail: String
    }

    /// `<work>/case`: each case is written here (its name is `PolicyGenerator.caseDirName`).
    public let caseDir: String
    private let data: DataDirectory
    private let loader: PolicyLoader
    private let compiler: PlanCompiler

    public init(workDir: String, data: DataDirectory) {
        caseDir = workDir + "/" + PolicyGenerator.caseDirName
        self.data = data
        loader = PolicyLoader(searchPath: [caseDir, data.policies],
                              profileSearchPath: [caseDir + "/profiles", data.seccompProfiles])
        var facts = HostFacts(arch: "x86_64", kernelRelease: "6.18.0", landlockABI: 7, invokerUID: 0, invokerGID: 0,
                              cwd: "/home/user/project", home: "/root", environment: ["PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C"],
                              files: FuzzFiles())
        facts.runBase = "/run/sandbox"
        facts.trusted = [.policies(data.policies), .profiles(data.profiles)]
        facts.hostAddresses = ["10.0.0.5", "10.200.0.0/16"]
        compiler = PlanCompiler(host: facts)
    }

    /// The shipped policies, the corpus mutations start from.
    public static func shippedPolicies(_ data: DataDirectory) -> [(name: String, text: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: data.policies)) ?? []
        return names.filter { $0.hasSuffix(".toml") }.sorted().compactMap { name in
            (try? String(contentsOfFile: data.policies + "/" + name, encoding: .utf8)).map { (name, $0) }
        }
    }

    /// Writes the case's files into `caseDir` (emptied first).
    public func write(_ c: FuzzCase) throws {
        let fm = FileManager.default
        try? fm.removeItem(atPath: caseDir)
        try fm.createDirectory(atPath: caseDir + "/profiles", withIntermediateDirectories: true)
        for f in c.files {
            let path = caseDir + "/" + f.path
            let parent = (path as NSString).deletingLastPathComponent
            if parent != caseDir { try fm.createDirectory(atPath: parent, withIntermediateDirectories: true) }
            switch f.content {
            case .bytes(let b):
                guard fm.createFile(atPath: path, contents: Data(b)) else { throw FuzzError("cannot write \(path)") }
            case .fifo:
                guard mkfifo(path, 0o600) == 0 else { throw FuzzError("mkfifo \(path): errno \(errno)") }
            case .directory:
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
            case .symlink(let target):
                try fm.createSymbolicLink(atPath: path, withDestinationPath: target)
            }
        }
    }

    /// Loads (and compiles) the case already written by `write`.
    public func run(_ c: FuzzCase) -> Outcome {
        let start = DispatchTime.now().uptimeNanoseconds
        var findings: [String] = []
        var result = Outcome.Result.refused
        var detail = ""
        let root = caseDir + "/" + c.root
        do {
            let policy = try loader.load(path: root)
            findings += Invariants.check(policy)
            do {
                let plan = try compiler.compile(policy, argv: ["/bin/true"], runId: "fuzz", digest: true)
                if (plan.digest ?? "").isEmpty { findings.append("a compiled plan has no digest") }
                // The run's hand-written plan JSON (PlanJSON.swift) is the Codable encoding.
                if (try? CanonicalJSON.encode(plan)) != plan.canonicalJSON() {
                    findings.append("the hand-written plan JSON differs from the Codable encoding")
                }
                result = .planned
                detail = "planned: \(plan.digest ?? "")"
            } catch let e as PlanError {
                result = .planRefused
                detail = e.description
                if e.key.isEmpty || e.message.isEmpty { findings.append("plan error without key or message: \(e)") }
                findings += Invariants.unclear(e.message).map { "plan error: \($0): \(e)" }
            } catch {
                result = .planRefused
                detail = "\(error)"
                findings.append("the compiler threw something other than a PlanError: \(type(of: error)): \(error)")
            }
        } catch let e as PolicyError {
            detail = e.description
            findings += Invariants.check(e, caseDir: caseDir)
        } catch {
            detail = "\(error)"
            findings.append("the loader threw something other than a PolicyError: \(type(of: error)): \(error)")
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Outcome(result: result, findings: findings, seconds: seconds, detail: detail)
    }
}

public struct FuzzError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// What every loaded policy and every refusal must satisfy.
enum Invariants {
    /// A loaded policy holds only values the reference allows (issue 14 item 3: values
    /// accepted that could never run, or that C would cut short).
    static func check(_ p: Policy) -> [String] {
        var out: [String] = []
        func noNUL(_ s: String, _ key: String) { if s.utf8.contains(0) { out.append("\(key) holds a NUL: \(s.debugDescription)") } }
        if let m = p.resources.memoryBytes, m < 8 << 20 { out.append("resources.memory \(m) accepted, below 8 MiB") }
        if let c = p.resources.cpu, !(c.isFinite && c >= 0.01 && c <= 1024) { out.append("resources.cpu \(c) accepted") }
        if let n = p.resources.pids, !(1...4_194_304).contains(n) { out.append("resources.pids \(n) accepted") }
        if let n = p.resources.ioWeight, !(1...10_000).contains(n) { out.append("resources.io \(n) accepted") }
        if let t = p.process.timeoutMs, t == 0 { out.append("process.timeout 0 accepted") }
        if p.process.graceMs == 0 { out.append("process.grace 0 accepted") }
        if !(0...10_000_000).contains(p.filesystem.socketScanLimit) { out.append("socket_scan_limit \(p.filesystem.socketScanLimit) accepted") }
        if !(1...65_536).contains(p.network.maxConnections) { out.append("max_connections \(p.network.maxConnections) accepted") }
        if p.name.isEmpty || p.name.utf8.count > 64 { out.append("name \(p.name.debugDescription) accepted") }
        noNUL(p.name, "name")
        noNUL(p.process.hostname, "process.hostname")
        for (k, v) in p.process.envSet { noNUL(k, "process.env.set key"); noNUL(v, "process.env.set.\(k)") }
        for v in p.process.envPass { noNUL(v, "process.env.pass") }
        if let w = p.process.workdir { noNUL(w.raw, "process.workdir") }
        let lists = [p.filesystem.ro, p.filesystem.rw, p.filesystem.tmpfs, p.filesystem.mask, p.filesystem.unixSockets,
                     p.filesystem.socketScanSkip]
        for l in lists { for t in l { noNUL(t.raw, "filesystem path") } }
        for s in p.filesystem.protect { noNUL(s, "filesystem.protect") }
        for s in p.seccomp.deny { noNUL(s, "seccomp.deny") }
        if let a = p.audit.path { noNUL(a.raw, "audit.path") }
        for port in (p.landlock.connectTCP ?? []) + (p.landlock.bindTCP ?? []) where port == 0 { out.append("port 0 accepted") }
        return out
    }

    /// A refusal is clean when it names the file (and, where there is one, the key or
    /// line) in words: no Swift type names or Foundation messages, bounded in count and
    /// size.
    static func check(_ e: PolicyError, caseDir: String) -> [String] {
        var out: [String] = []
        if e.diagnostics.isEmpty { out.append("a PolicyError with no diagnostic") }
        if e.diagnostics.count > PolicyLimits.maxDiagnostics + 1 { out.append("\(e.diagnostics.count) diagnostics") }
        for d in e.diagnostics {
            if d.file.isEmpty { out.append("a diagnostic names no file: \(d)") }
            if d.message.isEmpty { out.append("a diagnostic has no message: \(d)") }
            if d.message.utf8.count > PolicyLimits.maxDiagnosticLength + 64 { out.append("a diagnostic of \(d.message.utf8.count) bytes") }
            if d.message == "the policy could not be loaded" { out.append("a diagnostic that says nothing: \(d)") }
            out += unclear(d.message).map { "\($0): \(d)" }
            if d.keyPath == nil && d.line == nil && !wholeFile(d.message) {
                out.append("a diagnostic names neither key nor line: \(d)")
            }
        }
        return out
    }

    /// Problems of a whole file, which have no key or line to name.
    static func wholeFile(_ m: String) -> Bool {
        ["cannot read policy file", "the file is not valid UTF-8", "total size limit exceeded", "… and ",
         "seccomp profile", "profile size limit", "JSON", "the file contains a NUL byte", "malformed TOML"]
            .contains { m.hasPrefix($0) } || m.contains("seccomp profile") || m.contains("JSON")
    }

    /// Signs that an error was passed through without being put in words.
    static func unclear(_ m: String) -> [String] {
        ["Optional(", "Swift.", "TOMLKit.", "Foundation.", "NSCocoaErrorDomain", "Error Domain", "The operation could not be completed",
         "You don’t have permission", "You don't have permission", "(null)", "Fatal error", "\u{FFFD}"]
            .filter { m.contains($0) }.map { "unclear message (\($0))" }
    }
}

/// The host the in-process planner sees: a fixed, made-up tree, so the outcome of a
/// case depends on the case alone. Every absolute path exists (a directory, a file or a
/// symlink — some in loops), chosen by a hash of the path.
struct FuzzFiles: FileInspector {
    func kind(of path: String) -> FileKind? {
        if ["/", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/tmp", "/home/user", "/home/user/project", "/root", "/home", "/run",
            "/dev", "/proc", "/sys"].contains(path) { return .directory }
        let h = path.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        switch h % 11 {
        case 0: return nil
        case 1: return .file
        case 2: return .symlink(target: path)                    // a loop of one
        case 3: return .symlink(target: "../" + String(path.split(separator: "/").last ?? "x"))
        case 4: return .symlink(target: "/proc/self/root")
        case 5: return .other
        default: return .directory
        }
    }

    func identity(of path: String) -> FileIdentity? {
        FileIdentity(device: 1, inode: UInt64(truncatingIfNeeded: path.hashValue & 0xFFFF))
    }

    func contents(of path: String, maxBytes: Int) -> String? {
        path.hasSuffix("/.git/config") ? "[core]\n\tworktree = /etc\n[include]\n\tpath = ../../x\n" : nil
    }

    func unixSockets(under roots: [String], skipping: Set<String>, limit: Int) -> SocketSearch? {
        SocketSearch(sockets: roots.filter { !skipping.contains($0) }.map { $0 + "/agent.sock" }, entries: min(limit, 10))
    }
}
