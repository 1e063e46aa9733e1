import FoundationEssentials
import SandboxKernel

/// `sandbox audit verify`: reads an audit file back and checks every link.
///
/// Each line must be a record whose `seal` matches its own bytes, whose `seq` is its
/// line number and whose `prev` matches the line before it; the first line must be a
/// genesis of the expected kind. The first line that fails is named, with why:
/// - edited: its seal does not match its content, or the next line's `prev` does
///   not match it (an edit that recomputed the seal);
/// - removed: `seq` jumps (records n…m are missing);
/// - reordered: the line holds another position's record, and that record is
///   further on;
/// - inserted: the line repeats a `seq` seen before;
/// - bad genesis, wrong or missing key, a line cut short.
///
/// What the chain cannot show: lines cut from the end of the file (the rest is a
/// valid chain). A run whose start has no end is reported as a warning, and `head`
/// (the seal of the last line, with `records`) can be kept elsewhere and compared.
public enum AuditVerifier {
    public enum Failure: String, Sendable {
        case edited, removed, reordered, inserted, badGenesis = "bad genesis", truncated
        case keyNeeded = "key needed", wrongKey = "wrong key", malformed
    }

    public struct Problem: Sendable, CustomStringConvertible {
        /// 1-based line number of the first bad line.
        public var line: Int
        public var failure: Failure
        public var message: String
        public var description: String { "line \(line): \(failure.rawValue): \(message)" }
    }

    public struct Report: Sendable {
        public var records = 0
        public var runsStarted = 0
        public var runsEnded = 0
        public var denials = 0
        public var link = ""
        /// The seal of the last line (anchor it elsewhere to detect lines cut from the end).
        public var head: String?
        public var problem: Problem?
        public var warnings: [String] = []
        public var ok: Bool { problem == nil }
    }

    /// What verify reads from each line.
    struct Fields {
        var type: String
        var seq: Int
        var prev: String?
        var runId: String?
        var link: String?
        var keyId: String?
        /// The bytes the seal covers, and the seal.
        var sealed: ArraySlice<UInt8>
        var seal: String
    }

    static let sealSuffix = Array(",\"seal\":\"".utf8)

    static func parse(_ line: ArraySlice<UInt8>) -> Fields? {
        // …,"seal":"<64 hex>"}
        let tail = sealSuffix.count + 64 + 2
        guard line.count > tail, line.last == UInt8(ascii: "}") else { return nil }
        let sealStart = line.endIndex - tail
        guard Array(line[sealStart..<(sealStart + sealSuffix.count)]) == sealSuffix,
              line[line.endIndex - 2] == UInt8(ascii: "\"") else { return nil }
        let seal = String(decoding: line[(sealStart + sealSuffix.count)..<(line.endIndex - 2)], as: UTF8.self)
        guard seal.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        guard let object = JSONTree.parse(line) as? [String: Any],
              let type = object["type"] as? String, let seq = object["seq"] as? Int,
              object.keys.contains("prev") else { return nil }
        let prev = object["prev"] as? String
        if prev == nil && !(object["prev"] is JSONTree.Null) { return nil }
        return Fields(type: type, seq: seq, prev: prev, runId: object["runId"] as? String,
                      link: object["link"] as? String, keyId: object["keyId"] as? String,
                      sealed: line[line.startIndex..<sealStart], seal: seal)
    }

    public static func verify(_ bytes: [UInt8], key: AuditKey?) -> Report {
        var report = Report()
        func fail(_ line: Int, _ f: Failure, _ m: String) -> Report {
            report.problem = Problem(line: line, failure: f, message: m)
            return report
        }
        guard !bytes.isEmpty else { return fail(1, .badGenesis, "the file is empty: no genesis record") }
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let cut = bytes.last != UInt8(ascii: "\n")
        if !cut { lines.removeLast() }   // after the final newline

        // Every line parsed first: the seq of later lines tells a swap from a removal.
        let fields = lines.map { parse($0) }

        // The genesis.
        guard let g = fields[0], g.type == AuditRecordType.genesis.rawValue, g.seq == 1, g.prev == nil,
              let linkName = g.link, ["sha256", "hmac-sha256"].contains(linkName) else {
            return fail(1, .badGenesis, "the first line is not a genesis record (type genesis, seq 1, prev null, link sha256 or hmac-sha256)")
        }
        report.link = linkName
        let link: ChainLink
        if let key {
            guard linkName == "hmac-sha256" else {
                return fail(1, .badGenesis, "the file says its chain is plain SHA-256, but a key was given: it was not written with this key, or it was rewritten without it")
            }
            guard g.keyId == key.id else {
                return fail(1, .wrongKey, "the chain was written with key \(g.keyId ?? "?"); the key given is \(key.id)")
            }
            link = .hmac(key)
        } else {
            guard linkName == "sha256" else {
                return fail(1, .keyNeeded, "the chain is keyed (hmac-sha256, key \(g.keyId ?? "?")); give its key with --key-file")
            }
            link = .sha256
        }

        var started: [String: Int] = [:]   // run id → line of its start
        var ended = Set<String>()
        for (i, f) in fields.enumerated() {
            let n = i + 1
            if cut && i == lines.count - 1 {
                return fail(n, .truncated, "the last line has no newline: it was cut short (or edited)")
            }
            guard let f else { return fail(n, .malformed, "not a sealed audit record (edited, or not an audit file)") }
            guard link.digest(f.sealed) == f.seal else {
                return fail(n, .edited, "its content does not match its seal")
            }
            if f.seq != n {
                if let p = fields[..<i].firstIndex(where: { $0?.seq == f.seq }) {
                    return fail(n, .inserted, "it holds record \(f.seq), as line \(p + 1) does: a line was inserted")
                }
                if let p = fields.indices.dropFirst(i + 1).first(where: { fields[$0]?.seq == n }) {
                    return fail(n, .reordered, "it holds record \(f.seq); record \(n) is at line \(p + 1)")
                }
                if f.seq > n {
                    let missing = f.seq - 1 == n ? "record \(n) is" : "records \(n)…\(f.seq - 1) are"
                    return fail(n, .removed, "\(missing) missing before it (it holds record \(f.seq))")
                }
                return fail(n, .inserted, "it holds record \(f.seq), out of place: a line was inserted")
            }
            if i > 0 {
                guard let prev = f.prev, prev == link.digest(lines[i - 1]) else {
                    return fail(n - 1, .edited, "line \(n)'s prev does not match it (its seal was recomputed after an edit)")
                }
                if f.type == AuditRecordType.genesis.rawValue {
                    return fail(n, .inserted, "a second genesis record")
                }
            }
            report.records += 1
            switch f.type {
            case AuditRecordType.runStart.rawValue:
                report.runsStarted += 1
                if let id = f.runId { started[id] = n }
            case AuditRecordType.runEnd.rawValue:
                report.runsEnded += 1
                if let id = f.runId { ended.insert(id) }
            case AuditRecordType.denial.rawValue:
                report.denials += 1
            default: break
            }
            report.head = f.seal
        }
        for (id, line) in started.sorted(by: { $0.value < $1.value }) where !ended.contains(id) {
            report.warnings.append("run \(id) (started at line \(line)) has no run_end: it is still running, its supervisor died, or lines were cut from the end of the file")
        }
        return report
    }
}
