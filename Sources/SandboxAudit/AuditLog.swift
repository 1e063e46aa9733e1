import FoundationEssentials
import SandboxKernel
import SandboxPolicy

/// The writer: one open audit file for one run (or a harness's runs).
///
/// Each append takes the file's lock, reads the genesis (the chain must be of this
/// writer's kind and key) and the last line (what the next record links to and its
/// `seq`), and writes its records with one `write`: a run's start (after the
/// genesis, when the file is new) and a run's denials with its end. One write per
/// append keeps each group whole — a full filesystem leaves none of it, never half —
/// and keeps a run's end records together.
public final class AuditLog {
    public let path: String
    public let link: ChainLink
    private let file: AppendOnlyFile

    private init(path: String, link: ChainLink, file: AppendOnlyFile) {
        self.path = path; self.link = link; self.file = file
    }

    /// Opens (creating it 0600 if absent) the log at `path`, with no symlink on the
    /// path, and reads the key when there is one. Nothing is written yet.
    public static func open(path: String, keyFile: String?, invoker: UInt32) throws(AuditError) -> AuditLog {
        let link: ChainLink = try keyFile.map { k throws(AuditError) in .hmac(try AuditKey.load(path: k, invoker: invoker)) } ?? .sha256
        let file: AppendOnlyFile
        do { file = try AppendOnlyFile.open(path) } catch {
            throw AuditError(step: "audit log", subject: path, message: "\(error)")
        }
        return AuditLog(path: path, link: link, file: file)
    }

    public func close() { file.close() }

    /// Appends `run_start`.
    public func start(_ record: RunStart) throws(AuditError) {
        try append { next in [try next(.runStart, record)] }
    }

    /// Appends one `denial` per entry of `denials`, then `run_end` with `result`.
    public func end<Result: Encodable>(runId: String, exitCode: Int32, result: Result, denials: [Denial]) throws(AuditError) {
        try append { next in
            try denials.map { try next(.denial, DenialRecord(runId: runId, denial: $0)) }
                + [try next(.runEnd, RunEnd(runId: runId, exitCode: exitCode, result: result))]
        }
    }

    /// What a line needs from the one before it.
    struct Tail: Decodable { var seq: Int }
    struct Head: Decodable { var type: String; var link: String; var keyId: String? }

    /// Under the lock: `records` gets a function that seals one record as the next
    /// line of the chain.
    private func append(_ records: (_ next: (AuditRecordType, any Encodable) throws -> [UInt8]) throws -> [[UInt8]]) throws(AuditError) {
        do {
            try file.append { first, last in
                var out: [UInt8] = []
                var seq: Int
                var prev: [UInt8]
                if let first, let last {
                    let head: Head
                    do { head = try JSONDecoder().decode(Head.self, from: Data(first)) } catch {
                        throw AuditError(step: "audit log", subject: path, message: "the first line is not a genesis record; not an audit log, or damaged (check it with `sandbox audit verify`)")
                    }
                    guard head.type == AuditRecordType.genesis.rawValue else {
                        throw AuditError(step: "audit log", subject: path, message: "the first line is a \(head.type) record, not the genesis; damaged (check it with `sandbox audit verify`)")
                    }
                    guard head.link == link.name, head.keyId == link.keyId else {
                        let theirs = head.keyId.map { "\(head.link) with key \($0)" } ?? head.link
                        let ours = link.keyId.map { "\(link.name) with key \($0)" } ?? "\(link.name) (no key)"
                        throw AuditError(step: "audit log", subject: path, message: "its chain is \(theirs) and this policy's is \(ours); one file holds one chain: use another path or the same key")
                    }
                    do { seq = try JSONDecoder().decode(Tail.self, from: Data(last)).seq + 1 } catch {
                        throw AuditError(step: "audit log", subject: path, message: "the last line has no seq; damaged (check it with `sandbox audit verify`)")
                    }
                    prev = last
                } else {
                    var rng = SystemRandomNumberGenerator()
                    let id = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    let genesis = try sealedLine(Envelope(type: .genesis, seq: 1, time: timestamp(), prev: nil,
                                                          body: Genesis(fileId: Digest.hex(id), link: link.name, keyId: link.keyId)), link: link)
                    out = genesis
                    seq = 2
                    prev = Array(genesis.dropLast())
                }
                let lines = try records { type, body in
                    let line = try sealedLine(Envelope(type: type, seq: seq, time: timestamp(),
                                                       prev: link.digest(prev[...]), body: AnyEncodable(body)), link: link)
                    seq += 1
                    prev = Array(line.dropLast())
                    return line
                }
                for l in lines { out += l }
                return out
            }
        } catch let e as AuditError {
            throw e
        } catch {
            throw AuditError(step: "audit log", subject: path, message: "\(error)")
        }
    }
}

struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}
