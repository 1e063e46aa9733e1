import Foundation
import Testing
import SandboxKernel
import SandboxPlan
@testable import SandboxServe

/// The serve request's fields read by hand (`ServeRequest.Wire`, from `JSONTree`)
/// are what the `JSONDecoder`-based reader it replaced read (kept here as the
/// reference): for well-formed requests, every field of the wrong type, repeated
/// keys, every truncation of a request and byte flips. The intended difference: a
/// line that is not JSON is refused as such, where the reference (which reads a value
/// only when a field asks for it) accepted a trailing comma and refused a malformed
/// value by naming its field.
@Suite struct ServeRequestParseTests {
    /// The replaced reader, unchanged.
    struct ReferenceWire: Decodable {
        var present: Set<String>
        var id: String?
        var policy: String?, argv: [String]?, cwd: String?, env: [String: String]?
        var resultDir: String?, resultPath: String?

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ s: String) { stringValue = s }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            present = Set(c.allKeys.map(\.stringValue))
            func get<T: Decodable>(_ key: String) -> T? { try? c.decode(T.self, forKey: Key(key)) }
            if let s: String = get("id") { id = CanonicalJSON.quote(s) } else if let n: Int = get("id") { id = String(n) }
            policy = get("policy"); argv = get("argv"); cwd = get("cwd"); env = get("env")
            resultDir = get("resultDir"); resultPath = get("resultPath")
        }

        static func read(_ bytes: [UInt8]) -> ReferenceWire? { try? JSONDecoder().decode(ReferenceWire.self, from: Data(bytes)) }
    }

    static func describe(_ w: ServeRequest.Wire?) -> String {
        guard let w else { return "nil" }
        return "\(w.present.sorted()) id=\(w.id ?? "-") policy=\(w.policy ?? "-") argv=\(w.argv.map { "\($0)" } ?? "-") cwd=\(w.cwd ?? "-") env=\(w.env.map { "\($0.sorted { $0.key < $1.key })" } ?? "-") rd=\(w.resultDir ?? "-") rp=\(w.resultPath ?? "-")"
    }

    static func describe(_ w: ReferenceWire?) -> String {
        guard let w else { return "nil" }
        return "\(w.present.sorted()) id=\(w.id ?? "-") policy=\(w.policy ?? "-") argv=\(w.argv.map { "\($0)" } ?? "-") cwd=\(w.cwd ?? "-") env=\(w.env.map { "\($0.sorted { $0.key < $1.key })" } ?? "-") rd=\(w.resultDir ?? "-") rp=\(w.resultPath ?? "-")"
    }

    static func same(_ line: [UInt8]) -> (mine: String, reference: String) {
        (describe(ServeRequest.Wire(line[...])), describe(ReferenceWire.read(line)))
    }

    /// Where the reference read fields the new reader does not: the line is not JSON
    /// (the reference reads a value only when a field asks for it, so a malformed
    /// value, e.g. a lone surrogate escape or `01`, made that field nil), and the
    /// reference's fields were refused all the same (only the message differs: "not
    /// a JSON object" instead of naming the field).
    static func refusedBothWays(_ line: [UInt8]) -> Bool {
        guard JSONTree.parse(line) == nil, let r = ReferenceWire.read(line) else { return false }
        let w = ServeRequest.Wire(present: r.present, id: r.id, policy: r.policy, argv: r.argv, cwd: r.cwd, env: r.env,
                                  resultDir: r.resultDir, resultPath: r.resultPath)
        if case .failure = ServeRequest.validate(w) { return true }
        return false
    }

    static let request = #"{"id": 7, "policy": "agent", "argv": ["sh", "-c", "echo \"hi\" \u00e9"], "cwd": "/work", "env": {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, "resultDir": "/tmp/r", "resultPath": "/tmp/r/x.json"}"#

    static let lines: [String] = [
        request,
        #"{"id": "a\"b", "policy": "strict", "argv": ["true"]}"#,
        #"{"id": 1.0, "policy": "p", "argv": ["x"]}"#, #"{"id": 1e3, "policy": "p", "argv": ["x"]}"#,
        #"{"id": 1.5, "policy": "p", "argv": ["x"]}"#, #"{"id": -3, "policy": "p", "argv": ["x"]}"#,
        #"{"id": true, "policy": "p", "argv": ["x"]}"#, #"{"id": false, "policy": "p", "argv": ["x"]}"#,
        #"{"id": null, "policy": "p", "argv": ["x"]}"#, #"{"id": 1e30, "policy": "p", "argv": ["x"]}"#,
        #"{"id": [1], "policy": "p", "argv": ["x"]}"#, #"{"id": {"a": 1}, "policy": "p", "argv": ["x"]}"#,
        #"{"id": 9223372036854775807, "policy": "p", "argv": ["x"]}"#, #"{"id": 9223372036854775808, "policy": "p", "argv": ["x"]}"#,
        #"{"id": 1, "policy": 5, "argv": ["x"]}"#, #"{"id": 1, "policy": null, "argv": ["x"]}"#,
        #"{"id": 1, "policy": "p", "argv": ["x", 1]}"#, #"{"id": 1, "policy": "p", "argv": "x"}"#,
        #"{"id": 1, "policy": "p", "argv": [null]}"#, #"{"id": 1, "policy": "p", "argv": []}"#,
        #"{"id": 1, "policy": "p", "argv": [true]}"#, #"{"id": 1, "policy": "p", "argv": [["x"]]}"#,
        #"{"id": 1, "policy": "p", "argv": ["x"], "env": {"A": 1}}"#, #"{"id": 1, "policy": "p", "argv": ["x"], "env": ["A"]}"#,
        #"{"id": 1, "policy": "p", "argv": ["x"], "env": {"A": null}}"#, #"{"id": 1, "policy": "p", "argv": ["x"], "env": {}}"#,
        #"{"id": 1, "policy": "p", "argv": ["x"], "cwd": 3}"#, #"{"id": 1, "policy": "p", "argv": ["x"], "cwd": null}"#,
        #"{"id": 1, "policy": "p", "argv": ["x"], "resultDir": false, "resultPath": 2}"#,
        #"{"id": 1, "policy": "p", "argv": ["x"], "extra": {"deep": [1, 2, {"x": null}]}}"#,
        #"{"id": 1, "id": 2, "policy": "p", "policy": "q", "argv": ["x"], "argv": ["y"]}"#,
        #"{"id": "one", "id": 2, "policy": "p", "argv": ["x"]}"#,
        #"{"id": 1, "policy": "p\u0000q", "argv": ["x"]}"#, #"{"id": 1, "policy": "\ud83d\ude00", "argv": ["\u00e9"]}"#,
        #"{}"#, #"[]"#, #""x""#, "1", "null", "", " ", "{", #"{"id": 1,"#, #"{"id" 1}"#, "{id: 1}",
        #"{"id": "\ud800", "policy": "p", "argv": ["x"]}"#, #"{"id": 01, "policy": "p", "argv": ["x"]}"#,
        "  \t{\"id\": 1, \"policy\": \"p\", \"argv\": [\"x\"]}  ",
    ]

    /// What the reference accepted that is not JSON: a trailing comma.
    static let referenceLeniencies = [#"{"id": 1, "policy": "p", "argv": ["x"],}"#, #"{"id": 1, "policy": "p", "argv": ["x",]}"#]

    @Test func requestsReadAsBefore() {
        var refusedEitherWay = 0
        for line in Self.lines {
            let (mine, reference) = Self.same(Array(line.utf8))
            if mine == "nil" && reference != "nil" && Self.refusedBothWays(Array(line.utf8)) { refusedEitherWay += 1; continue }
            #expect(mine == reference, "\(line)")
        }
        #expect(refusedEitherWay == 2, "the lone surrogate and 01 lines") // not more than those two
        for line in Self.referenceLeniencies {
            #expect(ServeRequest.Wire(Array(line.utf8)[...]) == nil, "\(line)")
            #expect(ReferenceWire.read(Array(line.utf8)) != nil, "the reference now refuses \(line)")
        }
        // Bytes that are not UTF-8 in a string.
        let bad: [UInt8] = Array(#"{"id": 1, "policy": ""#.utf8) + [0xff] + Array(#"", "argv": ["x"]}"#.utf8)
        #expect(Self.same(bad).mine == "nil" && Self.refusedBothWays(bad))
    }

    @Test func truncationsAndFlipsReadAsBefore() {
        let bytes = Array(Self.request.utf8)
        for n in 0...bytes.count {
            let (mine, reference) = Self.same(Array(bytes[..<n]))
            #expect(mine == reference, "prefix \(n)")
        }
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("{}[],:\"\\/0123456789-+.eEtrufalsn x".utf8) + [0x00, 0x1f, 0xff]
        for _ in 0..<3000 {
            var b = bytes
            b[Int.random(in: 0..<b.count, using: &rng)] = alphabet.randomElement(using: &rng)!
            let (mine, reference) = Self.same(b)
            let tight = b.filter { ![0x20, 0x0A, 0x09, 0x0D].contains($0) }
            let trailingComma = zip(tight, tight.dropFirst()).contains { $0 == 0x2C && ($1 == 0x5D || $1 == 0x7D) }
            if mine == "nil" && reference != "nil" && (trailingComma || Self.refusedBothWays(b)) { continue }
            #expect(mine == reference, "\(String(decoding: b, as: UTF8.self))")
        }
    }

    /// The whole parse: refusals keep their subjects.
    @Test func refusalsNameTheField() {
        func subject(_ line: String) -> String? {
            if case .failure(let r) = ServeRequest.parse(Array(line.utf8)[...]) { return r.error.subject ?? "none" }
            return nil
        }
        #expect(subject(#"{"id": true, "policy": "p", "argv": ["x"]}"#) == "id")
        #expect(subject(#"{"id": 1, "policy": "p", "argv": ["x", 2]}"#) == "argv")
        #expect(subject(#"{"id": 1, "policy": "p", "argv": ["x"], "env": {"A": 1}}"#) == "env")
        #expect(subject(#"{"id": 1, "policy": "p", "argv": ["x"], "nope": 1}"#) == "nope")
        #expect(subject(#"{"id": 1, "policy": "p", "argv": ["x"], "cwd": "rel"}"#) == "cwd")
        #expect(subject(#"{"id": 1, "policy": "p", "argv": ["x"]}"#) == nil)
        // The server keeps policies by name: a name it could not hash cheaply (red
        // team, session 30) is refused; a path-sized one is not.
        let marks = String(repeating: "\u{0316}\u{0301}", count: 10_000)
        #expect(subject(#"{"id": 1, "policy": "p\#(marks)", "argv": ["x"]}"#) == "policy")
        #expect(subject(#"{"id": 1, "policy": "/\#(String(repeating: "p", count: 4095))", "argv": ["x"]}"#) == nil)
        #expect(subject(#"{"id": 1, "policy": "p", "argv": ["x"], "env": {"A\#(marks)": "v"}}"#) == "none") // not JSON we read
    }
}
