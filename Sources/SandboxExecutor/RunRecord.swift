import FoundationEssentials   // JSONDecoder, for ps and gc (the run itself writes by hand)
import Glibc
import SandboxKernel
import SandboxPlan
import SandboxVocabulary

/// What a run directory says about its run: one file, `state.json`, written by the
/// executor (atomically replaced at every change) and read by `sandbox ps` and
/// `sandbox gc` through this type only.
///
/// Crash safety: what `gc` must find — the leased host uid, every cgroup directory —
/// is recorded BEFORE it is created, so a supervisor killed at any point of set-up
/// leaves nothing that its record does not name.
public struct RunRecord: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        /// Set-up: the command has not started.
        case starting
        /// The child is building its root or the command runs.
        case running
    }

    public var runId: String
    public var policy: String
    /// Empty until the digest is known (computed while the child starts).
    public var planDigest: String
    /// The command, cut to ``RunRecord/argvBytes`` (see ``RunRecord/cut(_:)``);
    /// `plan.json` keeps all of it.
    public var argv: [String]
    /// When the run started, in Unix seconds.
    public var started: Int
    public var state: State
    /// The host uid the run leases (`process.host_uid = "own"`), recorded before the
    /// lease is taken.
    public var hostUID: UInt32?
    /// Every cgroup directory the run may make (hierarchy → path), recorded before
    /// any is made; nil when the run has no cgroup (gc then looks in every place a
    /// run of this invoker can have one).
    public var cgroups: [String: String]?
    /// The sources of the run's writable binds (`rw`, `unix_sockets`), recorded before
    /// the command starts: `[binary] require_root_owned` of every later run refuses a
    /// command or interpreter in one of them (a run writes there as the invoker).
    public var writable: [WritableSource]?

    /// A writable bind's source: its host path and identity when it was opened.
    public struct WritableSource: Codable, Sendable, Equatable {
        public var path: String
        public var device: UInt64
        public var inode: UInt64
        public init(path: String, device: UInt64, inode: UInt64) { self.path = path; self.device = device; self.inode = inode }
    }

    /// The writable bind sources of `plan`, as opened (`sources`, by mount step).
    static func writableSources(_ plan: RunPlan, _ sources: [Int: OpenedSource]) -> [WritableSource] {
        plan.mounts.enumerated().compactMap { i, m in
            guard m.kind == .bind, !m.readOnly, let s = sources[i], let path = m.source else { return nil }
            return WritableSource(path: path, device: s.device, inode: s.inode)
        }
    }

    public static let fileName = "state.json"

    public init(runId: String, policy: String, planDigest: String, argv: [String], started: Int,
                state: State, hostUID: UInt32? = nil, cgroups: [String: String]? = nil,
                writable: [WritableSource]? = nil) {
        self.runId = runId; self.policy = policy; self.planDigest = planDigest; self.argv = RunRecord.cut(argv)
        self.started = started; self.state = state; self.hostUID = hostUID; self.cgroups = cgroups
        self.writable = writable
    }

    /// The record in the run directory at `path`; nil when it has none (a
    /// supervisor killed before writing it) or it cannot be read.
    public static func read(runDirectory path: String) -> RunRecord? {
        if case .record(let r) = load(runDirectory: path) { return r }
        return nil
    }

    /// What a run directory holds: no record yet (a run being created, or whose
    /// supervisor was killed before its first write), a record, or one that exists
    /// and cannot be read or decoded — which a caller that needs every run's
    /// writable places must refuse, not skip (`[binary]` require_root_owned).
    public enum Loaded {
        case none
        case record(RunRecord)
        case unreadable(String)
    }

    public static func load(runDirectory path: String) -> Loaded {
        let file = path + "/" + fileName
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return errno == ENOENT ? .none : .unreadable(KernelError.last("open", file).description) }
        let owner = OwnedFD(fd)
        defer { owner.close() }
        do { return .record(try JSONDecoder().decode(RunRecord.self, from: Data(FD.readAll(owner.raw)))) } catch {
            return .unreadable("\(file): not a run record (\(error))")
        }
    }

    /// Replaces the record in `dir`.
    func write(to dir: RunDirectory) throws(KernelError) {
        try dir.write(RunRecord.fileName, json)
    }

    /// The record as canonical JSON (keys sorted, absent values left out), written by
    /// hand: this is on every run's start-up path, where `JSONEncoder` costs more
    /// than the rest of the write. `read` decodes it with the synthesized `Decodable`.
    var json: String {
        var fields = [
            "\"argv\":[" + argv.map(CanonicalJSON.quote).joinedText(separator: ",") + "]",
            "\"planDigest\":" + CanonicalJSON.quote(planDigest),
            "\"policy\":" + CanonicalJSON.quote(policy),
            "\"runId\":" + CanonicalJSON.quote(runId),
            "\"started\":\(started)",
            "\"state\":" + CanonicalJSON.quote(state.rawValue),
        ]
        if let cgroups {
            let entries = cgroups.keys.sorted().map { CanonicalJSON.quote($0) + ":" + CanonicalJSON.quote(cgroups[$0]!) }
            fields.append("\"cgroups\":{" + entries.joinedText(separator: ",") + "}")
        }
        if let hostUID { fields.append("\"hostUID\":\(hostUID)") }
        if let writable {
            let entries = writable.map {
                "{\"device\":\($0.device),\"inode\":\($0.inode),\"path\":" + CanonicalJSON.quote($0.path) + "}"
            }
            fields.append("\"writable\":[" + entries.joinedText(separator: ",") + "]")
        }
        return "{" + fields.sorted().joinedText(separator: ",") + "}\n"
    }

    /// The command as `sandbox ps` prints it: one line whatever argv holds.
    public var commandLine: String { argv.map(RunRecord.printable).joinedText(separator: " ") }

    /// `s` with what would break a line of a table or mislead a terminal escaped:
    /// control characters (C0, DEL, C1) as `\n`, `\t`, `\r` or `\xNN`, the Unicode
    /// line and paragraph separators and the bidirectional overrides as `\u{NNNN}`,
    /// and the backslash itself as `\\`, so every escape reads one way.
    public static func printable(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u.value {
            case 0x5c: out += "\\\\"
            case 0x0a: out += "\\n"
            case 0x09: out += "\\t"
            case 0x0d: out += "\\r"
            case 0..<0x20, 0x7f...0x9f:
                out += "\\x" + (u.value < 0x10 ? "0" : "") + String(u.value, radix: 16)
            case 0x2028, 0x2029, 0x202a...0x202e, 0x2066...0x2069:
                out += "\\u{" + String(u.value, radix: 16) + "}"
            default:
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// How much of argv the record keeps: it is rewritten at each state change, and
    /// an argv can be megabytes.
    public static let argvBytes = 4096

    /// argv cut to ``argvBytes`` bytes of UTF-8: an argument cut short ends in "…",
    /// and a last element "…+N" stands for N arguments left out.
    static func cut(_ argv: [String]) -> [String] {
        var out: [String] = []
        var budget = argvBytes
        for (i, arg) in argv.enumerated() {
            if budget <= 0 { out.append("…+\(argv.count - i)"); break }
            if arg.utf8.count <= budget { out.append(arg); budget -= arg.utf8.count; continue }
            var n = budget
            while n > 0, String(arg.utf8.prefix(n)) == nil { n -= 1 }
            out.append((String(arg.utf8.prefix(n)) ?? "") + "…")
            budget = 0
            if i + 1 < argv.count { out.append("…+\(argv.count - i - 1)") }
            break
        }
        return out
    }
}
