import Glibc
import SandboxPlan

/// The records of the audit log (Docs/audit.md, Docs/schemas/audit-record.schema.json).
///
/// A line is the record's canonical JSON (`CanonicalJSON`: keys sorted, no
/// whitespace) with its `seal` appended as the last member:
///
///     {"prev":"…","runId":"…","seq":7,"time":"…","type":"run_start",…,"seal":"…"}
///
/// Every record has `type`, `seq` (its line number: 1 for the genesis), `time`
/// (UTC, RFC 3339 with milliseconds), `prev` (the link of the previous line's bytes;
/// null for the genesis) and `seal` (the link of the line's bytes before `,"seal"`).
public enum AuditRecordType: String, Sendable {
    case genesis
    case runStart = "run_start"
    case denial
    case runEnd = "run_end"
}

/// The first line of every audit file: what links its chain.
public struct Genesis: Encodable, Sendable {
    public static let format = "sandbox-audit/1"
    public var format = Genesis.format
    /// Random: two files never share a chain.
    public var fileId: String
    /// "sha256" or "hmac-sha256".
    public var link: String
    public var keyId: String?

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: K.self)
        try c.encode(format, forKey: .format)
        try c.encode(fileId, forKey: .fileId)
        try c.encode(link, forKey: .link)
        try c.encodeOrNull(keyId, forKey: .keyId)
    }
    enum K: String, CodingKey { case format, fileId, link, keyId }
}

/// Written before the command starts; a run whose start cannot be written does not
/// start.
public struct RunStart: Encodable, Sendable {
    public struct PolicyIdentity: Encodable, Sendable {
        public var name: String
        /// `Policy.digest`: SHA-256 over the SHA-256 of each file in `sources`, in
        /// order, one hex digest and a newline each (nil: a policy built in code).
        public var digest: String?
        /// The policy files, base first.
        public var sources: [String]
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: K.self)
            try c.encode(name, forKey: .name)
            try c.encodeOrNull(digest, forKey: .digest)
            try c.encode(sources, forKey: .sources)
        }
        enum K: String, CodingKey { case name, digest, sources }
    }
    /// The executable `[binary]` checked (Docs/binary.md); nil without `[binary]`.
    public struct Binary: Encodable, Sendable {
        public var path: String
        public var sha256: String?
        public init(path: String, sha256: String?) { self.path = path; self.sha256 = sha256 }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: K.self)
            try c.encode(path, forKey: .path)
            try c.encodeOrNull(sha256, forKey: .sha256)
        }
        enum K: String, CodingKey { case path, sha256 }
    }

    public var runId: String
    public var invokerUid: UInt32
    public var invokerGid: UInt32
    public var policy: PolicyIdentity
    public var planDigest: String
    public var argv: [String]
    public var binary: Binary?

    public init(runId: String, invokerUid: UInt32, invokerGid: UInt32, policyName: String, policyDigest: String?,
                sources: [String], planDigest: String, argv: [String], binary: Binary?) {
        self.runId = runId; self.invokerUid = invokerUid; self.invokerGid = invokerGid
        self.policy = PolicyIdentity(name: policyName, digest: policyDigest, sources: sources)
        self.planDigest = planDigest; self.argv = argv; self.binary = binary
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: K.self)
        try c.encode(runId, forKey: .runId)
        try c.encode(invokerUid, forKey: .invokerUid)
        try c.encode(invokerGid, forKey: .invokerGid)
        try c.encode(policy, forKey: .policy)
        try c.encode(planDigest, forKey: .planDigest)
        try c.encode(argv, forKey: .argv)
        try c.encodeOrNull(binary, forKey: .binary)
    }
    enum K: String, CodingKey { case runId, invokerUid, invokerGid, policy, planDigest, argv, binary }
}

/// One entry of a run's denial account (`RunResult.denials`, Docs/denials.md):
/// `kind` names the fence (`syscall`, `socket-family`, `setuid-bit`, `signal`,
/// `abstract-socket`, `filesystem`, `egress`), `what` the object (a syscall name, a
/// path, a destination), `detail` anything more, `count` how many times, `first` ms
/// after the run started (nil: unknown), `hint` what a model can do about it.
public struct Denial: Encodable, Sendable, Equatable {
    public var kind: String
    public var what: String
    public var detail: String?
    public var count: Int
    public var first: UInt64?
    public var hint: String?
    public init(kind: String, what: String, detail: String?, count: Int, first: UInt64? = nil, hint: String? = nil) {
        self.kind = kind; self.what = what; self.detail = detail; self.count = count
        self.first = first; self.hint = hint
    }
}

/// A denial record: the denial and the run it belongs to.
struct DenialRecord: Encodable {
    var runId: String
    var denial: Denial
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: K.self)
        try c.encode(runId, forKey: .runId)
        try c.encode(denial.kind, forKey: .kind)
        try c.encode(denial.what, forKey: .what)
        try c.encodeOrNull(denial.detail, forKey: .detail)
        try c.encode(denial.count, forKey: .count)
        try c.encodeOrNull(denial.first, forKey: .first)
        try c.encodeOrNull(denial.hint, forKey: .hint)
    }
    enum K: String, CodingKey { case runId, kind, what, detail, count, first, hint }
}

/// Written after the run, whatever its outcome: the whole result.
struct RunEnd<Result: Encodable>: Encodable {
    var runId: String
    var exitCode: Int32
    var result: Result
}

/// A record body with the fields every line has, as one JSON object.
struct Envelope<Body: Encodable>: Encodable {
    var type: AuditRecordType
    var seq: Int
    var time: String
    var prev: String?
    var body: Body

    func encode(to encoder: any Encoder) throws {
        try body.encode(to: encoder)
        var c = encoder.container(keyedBy: K.self)
        try c.encode(type.rawValue, forKey: .type)
        try c.encode(seq, forKey: .seq)
        try c.encode(time, forKey: .time)
        try c.encodeOrNull(prev, forKey: .prev)
    }
    enum K: String, CodingKey { case type, seq, time, prev }
}

/// One line: canonical JSON of the record, its seal appended as the last member, a
/// newline.
func sealedLine<Body: Encodable>(_ record: Envelope<Body>, link: ChainLink) throws -> [UInt8] {
    var bytes = try CanonicalJSON.encode(record)
    precondition(bytes.last == UInt8(ascii: "}"))
    bytes.removeLast()
    let seal = link.digest(bytes[...])
    bytes += Array(",\"seal\":\"\(seal)\"}\n".utf8)
    return bytes
}

/// Now, as RFC 3339 UTC with milliseconds: 2025-01-31T12:00:00.123Z.
func timestamp() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    var t = ts.tv_sec
    var tm = Glibc.tm()
    gmtime_r(&t, &tm)
    func pad(_ n: Int32, _ w: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, w - s.count)) + s }
    return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
}

extension KeyedEncodingContainer {
    /// An optional written as `null` when absent (the schema has every key on every
    /// record; the synthesized encoders leave absent optionals out).
    mutating func encodeOrNull<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
}
