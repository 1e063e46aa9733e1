import FoundationEssentials
import SandboxKit

/// One request of the serve protocol (Docs/serve.md): a JSON object on one line, sent
/// with the client's stdin, stdout, stderr and working directory as four descriptors
/// (SCM_RIGHTS).
public struct ServeRequest: Sendable {
    /// Echoed in the reply: a string or an integer, as the client sent it (JSON text).
    public var id: String
    public var policy: String
    public var argv: [String]
    /// The path of the directory the client sent (the fourth descriptor), as the
    /// client saw it: only for messages. The run starts in the descriptor's directory,
    /// never in one looked up again by this path (a run that can write a parent could
    /// have swapped a component for a symlink meanwhile).
    public var cwd: String?
    /// The invoker's environment (`process.env_pass` reads it); absent: empty.
    public var env: [String: String]
    /// `exec --server --result FILE`: the result file's directory, refused like
    /// `exec`'s when it lies in a writable bind of the run.
    public var resultDirectory: String?
    public var resultPath: String?

    static let keys: Set<String> = ["id", "policy", "argv", "cwd", "env", "resultDir", "resultPath"]

    /// The request in `line`, or the error reply's id (when one could be read) and why.
    static func parse(_ line: ArraySlice<UInt8>) -> Result<ServeRequest, Refusal> {
        guard let o = Wire(line) else {
            return .failure(Refusal(id: "null", "the request is not a JSON object on one line"))
        }
        return validate(o)
    }

    /// The request from its fields, or why not.
    static func validate(_ o: Wire) -> Result<ServeRequest, Refusal> {
        guard let id = o.id else { return .failure(Refusal(id: "null", subject: "id", "id: a string or an integer is required")) }
        if let unknown = o.present.subtracting(keys).sorted().first {
            return .failure(Refusal(id: id, subject: unknown, "\(unknown): not a request field (\(keys.sorted().joinedText(separator: ", ")))"))
        }
        guard let policy = o.policy, !policy.isEmpty else {
            return .failure(Refusal(id: id, subject: "policy", "policy: a policy name or file is required"))
        }
        // A name or a path (PATH_MAX): the server keeps loaded policies by it, and a
        // longer string of combining marks would cost quadratic time to hash.
        guard policy.utf8.count <= 4096 else {
            return .failure(Refusal(id: id, subject: "policy", "policy: at most 4096 bytes (a policy name or a file's path)"))
        }
        guard let argv = o.argv, !argv.isEmpty else {
            return .failure(Refusal(id: id, subject: "argv", "argv: a non-empty array of strings is required"))
        }
        if o.present.contains("cwd") && o.cwd?.hasPrefix("/") != true {
            return .failure(Refusal(id: id, subject: "cwd", "cwd: an absolute path is required"))
        }
        let cwd = o.cwd
        if o.present.contains("env") && o.env == nil {
            return .failure(Refusal(id: id, subject: "env", "env: an object of strings is required"))
        }
        if (o.present.contains("resultDir") && o.resultDir?.hasPrefix("/") != true)
            || (o.present.contains("resultPath") && o.resultPath == nil) {
            return .failure(Refusal(id: id, subject: "resultDir", "resultDir, resultPath: absolute paths are required"))
        }
        let env = o.env ?? [:]
        for s in [policy, cwd ?? ""] + argv + Array(env.keys) + Array(env.values) where s.utf8.contains(0) {
            return .failure(Refusal(id: id, subject: "argv", "a string holds a NUL byte"))
        }
        return .success(ServeRequest(id: id, policy: policy, argv: argv, cwd: cwd, env: env,
                                     resultDirectory: o.resultDir, resultPath: o.resultPath ?? o.resultDir))
    }

    /// The line as sent: each field nil when absent or of the wrong type, and which
    /// keys were there. Read with `JSONTree` (one pass, by hand), not `JSONDecoder`,
    /// whose keyed decoding was most of the server's per-request parsing; `JSONTree`
    /// still tells `true` from 1 and 1.5 from 1, and a repeated key counts once (the
    /// first), as before.
    struct Wire {
        var present: Set<String>
        var id: String?
        var policy: String?, argv: [String]?, cwd: String?, env: [String: String]?
        var resultDir: String?, resultPath: String?
    }
}

extension ServeRequest.Wire {
    init?(_ line: ArraySlice<UInt8>) {
        guard let o = JSONTree.parse(line) as? [String: Any] else { return nil }
        present = Set(o.keys)
        if let s = o["id"] as? String { id = CanonicalJSON.quote(s) } else if let n = Self.integer(o["id"]) { id = String(n) }
        policy = o["policy"] as? String
        argv = Self.strings(o["argv"])
        cwd = o["cwd"] as? String
        env = Self.stringObject(o["env"])
        resultDir = o["resultDir"] as? String
        resultPath = o["resultPath"] as? String
    }

    /// An integer, never a Bool (JSON `true` is not 1).
    static func integer(_ v: Any?) -> Int? {
        guard let v, !(v is Bool) else { return nil }
        return v as? Int
    }

    static func strings(_ v: Any?) -> [String]? {
        guard let a = v as? [Any] else { return nil }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for e in a { guard let s = e as? String else { return nil }; out.append(s) }
        return out
    }

    static func stringObject(_ v: Any?) -> [String: String]? {
        guard let o = v as? [String: Any] else { return nil }
        var out: [String: String] = [:]
        out.reserveCapacity(o.count)
        for (k, e) in o { guard let s = e as? String else { return nil }; out[k] = s }
        return out
    }
}

extension ServeRequest {
    /// A request refused before it ran: the error reply's id and the error.
    struct Refusal: Error {
        var id: String
        var error: ExecError
        init(id: String, subject: String? = nil, kind: ExecError.Kind = .plan, step: String = "request", _ message: String) {
            self.id = id
            error = ExecError(kind: kind, step: step, subject: subject, message: message)
        }
    }
}

/// Who is on the other end of a connection, as the kernel recorded it at `connect`.
public struct Peer: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
}

enum ServeReply {
    /// One line: the RunResult's canonical JSON with the request's `id` and the
    /// connection's `peer` first.
    static func line(id: String, peer: Peer?, result: RunResult) -> [UInt8] {
        let body = result.canonicalJSON()
        var out = Array("{\"id\":\(id),".utf8)
        if let peer { out += Array("\"peer\":{\"gid\":\(peer.gid),\"pid\":\(peer.pid),\"uid\":\(peer.uid)},".utf8) }
        out += body.dropFirst()
        out.append(UInt8(ascii: "\n"))
        return out
    }

    static func refused(_ r: ServeRequest.Refusal, peer: Peer?, argv: [String] = []) -> [UInt8] {
        line(id: r.id, peer: peer, result: .refused(runId: "", policy: "", argv: argv, error: r.error))
    }
}
