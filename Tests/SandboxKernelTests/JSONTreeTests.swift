import Foundation
import Testing
@testable import SandboxKernel

/// The hand-written JSON reader gives what the `JSONDecoder`-based one it replaced
/// gave (kept here as the reference): the same tree for valid JSON, nil for what is
/// not JSON — on a libnftables listing, generated documents, every truncation of
/// them and byte flips.
@Suite struct JSONTreeTests {
    /// The replaced reader, unchanged.
    enum Reference {
        static func parse(_ bytes: some Sequence<UInt8>) -> Any? {
            (try? JSONDecoder().decode(Node.self, from: Data(bytes)))?.value
        }

        enum Node: Decodable {
            case value(Any)
            var value: Any { switch self { case .value(let v): v } }
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if c.decodeNil() { self = .value(JSONTree.Null()); return }
                if let b = try? c.decode(Bool.self) { self = .value(b); return }
                if let i = try? c.decode(Int.self) { self = .value(i); return }
                if let d = try? c.decode(Double.self) { self = .value(d); return }
                if let s = try? c.decode(String.self) { self = .value(s); return }
                if let a = try? c.decode([Node].self) { self = .value(a.map(\.value)); return }
                self = .value(try c.decode([String: Node].self).mapValues(\.value))
            }
        }
    }

    /// A tree as text that tells every type apart (an Int from an equal Double).
    static func shape(_ v: Any?) -> String {
        switch v {
        case nil: return "nil"
        case is JSONTree.Null: return "null"
        case let b as Bool: return "b:\(b)"
        case let i as Int: return "i:\(i)"
        case let d as Double: return "d:\(d.bitPattern)"
        case let s as String: return "s:\(Array(s.utf8))"
        case let a as [Any]: return "[" + a.map { shape($0) }.joined(separator: ",") + "]"
        case let o as [String: Any]:
            return "{" + o.keys.sorted().map { "\(Array($0.utf8)):\(shape(o[$0]))" }.joined(separator: ",") + "}"
        default: return "?\(type(of: v!))"
        }
    }

    static let listing = #"""
        {"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
         {"table": {"family": "inet", "name": "sandbox", "handle": 3}},
         {"set": {"family": "inet", "name": "denied4", "table": "sandbox", "type": ["ipv4_addr", "inet_proto", "inet_service"],
          "handle": 4, "size": 4096, "flags": ["dynamic"], "elem": [{"elem": {"val": {"concat": ["10.9.9.9", "udp", 9999]},
          "counter": {"packets": 3, "bytes": 180}}}, {"elem": {"val": {"concat": ["10.9.9.8", 6, "443"]}, "counter": {"packets": 0, "bytes": 0}}}]}},
         {"chain": {"family": "inet", "table": "sandbox", "name": "output", "handle": 1, "type": "filter", "hook": "output", "prio": -150, "policy": "drop"}},
         {"rule": {"family": "inet", "table": "sandbox", "chain": "output", "handle": 7, "expr": [{"match": {"op": "==",
          "left": {"meta": {"key": "oifname"}}, "right": "lo"}}, {"accept": null}]}}]}
        """#

    static let samples: [String] = [
        listing, "0", "-0", "12", "-7", "3.5", "1e3", "1E-2", "2.5e+2", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "123456789012345678901234567890", "0.1", "1.0", "0.0", "-0.0", "1.5e1", "9007199254740993.0", "9007199254740993",
        "1e19", "-1e18", "1e-400", "1e400", "2e0", "true", "false", "null", " \t\r\n 1 \n",
        #""""#, #""a\"b\\c\/d\b\f\n\r\t""#, #""\u00e9\u4e2d\ud83d\ude00""#, "\"é中😀\"", "[]", "{}", "[[[]]]",
        #"{"a": 1, "a": 2}"#, #"{"k": [1, "x", null, true, {"y": -0.5}]}"#, #"[1, 2, 3]"#,
        // Not JSON:
        "", " ", "01", "-", "1.", ".5", "1e", "+1", "tru", "nul", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{a:1}",
        "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\u{01}b\"", "1 2",
        "[1]]", "NaN", "Infinity", "'a'", "{\"a\":}", "\"\\", "[", "{",
    ]

    /// What the reference accepted that is not JSON (a trailing comma, a NUL after
    /// the value) or read oddly (1e-400 as the integer 0): refused, and a Double.
    static let referenceLeniencies: [String: String] = ["[1,]": "nil", "{\"a\":1,}": "nil", "1e-400": "d:0"]

    @Test func samplesReadAsBefore() {
        for (s, shape) in Self.referenceLeniencies {
            #expect(Self.shape(JSONTree.parse(s.utf8)) == shape, "\(s)")
        }
        #expect(JSONTree.parse([0x31, 0x00]) == nil)
        for s in Self.samples where Self.referenceLeniencies[s] == nil {
            #expect(Self.shape(JSONTree.parse(s.utf8)) == Self.shape(Reference.parse(s.utf8)), "\(s)")
        }
        // Not valid UTF-8 inside a string, and raw bytes outside one.
        for bytes: [UInt8] in [[0x22, 0xff, 0x22], [0x22, 0xc3, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0xff]] {
            #expect(Self.shape(JSONTree.parse(bytes)) == Self.shape(Reference.parse(bytes)), "\(bytes)")
        }
    }

    /// Every prefix of the listing and 2 000 single-byte changes of it.
    @Test func truncationsAndFlipsReadAsBefore() {
        let bytes = Array(Self.listing.utf8)
        for n in 0..<bytes.count {
            let cut = Array(bytes[..<n])
            #expect(Self.shape(JSONTree.parse(cut)) == Self.shape(Reference.parse(cut)), "prefix \(n)")
        }
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("{}[],:\"\\/0123456789-+.eEtrufalsn \u{7f}".utf8) + [0x00, 0x1f, 0xc3, 0xff]
        for _ in 0..<2000 {
            var b = bytes
            b[Int.random(in: 0..<b.count, using: &rng)] = alphabet.randomElement(using: &rng)!
            let mine = Self.shape(JSONTree.parse(b)), reference = Self.shape(Reference.parse(b))
            // A flip that leaves a trailing comma (`18,}`): the reference accepted it.
            let tight = b.filter { ![0x20, 0x0A, 0x09, 0x0D].contains($0) }
            let trailingComma = zip(tight, tight.dropFirst()).contains { $0 == 0x2C && ($1 == 0x5D || $1 == 0x7D) }
            if mine == "nil" && reference != "nil" && trailingComma { continue }
            #expect(mine == reference, "\(String(decoding: b, as: UTF8.self))")
        }
    }

    /// Generated documents (nesting, escapes, numbers of every form).
    @Test func generatedDocumentsReadAsBefore() {
        var rng = SystemRandomNumberGenerator()
        func gen(_ depth: Int) -> String {
            switch Int.random(in: 0..<(depth > 4 ? 5 : 7), using: &rng) {
            case 0: return ["0", "-1", "42", "3.25", "-1e-3", "6.02E23", "18446744073709551616"].randomElement(using: &rng)!
            case 1: return ["true", "false", "null"].randomElement(using: &rng)!
            case 2, 3, 4:
                let pieces = ["a", "\\n", "\\u0041", "é", "\\\"", "\\ud83d\\ude00", " ", "\\/", "😀"]
                return "\"" + (0..<Int.random(in: 0..<5, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined() + "\""
            case 5: return "[" + (0..<Int.random(in: 0..<4, using: &rng)).map { _ in gen(depth + 1) }.joined(separator: " , ") + "]"
            default:
                return "{" + (0..<Int.random(in: 0..<4, using: &rng)).map { i in "\"k\(i % 2)\":\n\(gen(depth + 1))" }.joined(separator: ",") + "}"
            }
        }
        for _ in 0..<500 {
            let doc = gen(0)
            let mine = JSONTree.parse(doc.utf8)
            #expect(mine != nil, "\(doc)")
            #expect(Self.shape(mine) == Self.shape(Reference.parse(doc.utf8)), "\(doc)")
        }
    }

    /// Numbers of many leading zeros (red team, session 30: `0.000…01` in an edited
    /// audit line made `audit verify` spin for minutes, each leading zero shifting the
    /// rest of the digits). Read in one pass now; the values are exact. Control,
    /// measured when the fix was made (a debug build, the replaced digit loop): this
    /// test took 43 s; with the fix under 1 s. Not asserted here: a benchmark's job.
    @Test func manyLeadingZerosAreReadOnce() {
        let zeros = String(repeating: "0", count: 999_999)
        #expect(Self.shape(JSONTree.parse(("0." + zeros + "1").utf8)) == "d:0") // 1e-1000000 underflows
        #expect(Self.shape(JSONTree.parse(("0." + zeros + "1e1000000").utf8)) == "i:1")
        #expect(Self.shape(JSONTree.parse(("-0." + zeros + "1e1000002").utf8)) == "i:-100")
        #expect(Self.shape(JSONTree.parse(("[0." + zeros + "5e1000000]").utf8)) == "[i:5]")
        #expect(Self.shape(JSONTree.parse(("[0." + zeros + "5e999999]").utf8)) == "[d:\(0.5.bitPattern)]")
        let integerZeros = "1" + String(repeating: "0", count: 1_000_000) + ".0e-999990"
        #expect(Self.shape(JSONTree.parse(integerZeros.utf8)) == "i:10000000000")
    }

    /// Keys Swift would take quadratic time to hash (red team, session 30: a key of
    /// 104 000 combining marks in a 256 kB serve line took 33 s of CPU to read, with
    /// the replaced reader too): more than 30 marks in a row, or more than 4 kB, make
    /// the document unread. Values are kept as sent, marks and all.
    @Test func keysSwiftCannotHashCheaplyAreRefused() {
        let marks = { (n: Int) in String(repeating: "\u{0316}\u{0301}", count: n / 2) }
        #expect(JSONTree.parse("{\"a\(marks(30))\": 1}".utf8) != nil)
        #expect(JSONTree.parse("{\"a\(marks(32))\": 1}".utf8) == nil)
        #expect(JSONTree.parse("{\"a\(marks(30))b\(marks(30))\": 1}".utf8) != nil) // runs, not totals
        #expect(JSONTree.parse("{\"\(String(repeating: "k", count: 4096))\": 1}".utf8) != nil)
        #expect(JSONTree.parse("{\"\(String(repeating: "k", count: 4097))\": 1}".utf8) == nil)
        let value = "x" + marks(100_000)
        let read = JSONTree.parse("{\"name\": \"\(value)\"}".utf8) as? [String: Any]
        #expect((read?["name"] as? String)?.unicodeScalars.count == value.unicodeScalars.count)
        // The shape a red-team line had, at full size: refused at once.
        #expect(JSONTree.parse("{\"a\(marks(104_000))\": 1, \"id\": 1}".utf8) == nil)
    }

    /// Nesting past the limit is refused (not a recursion as deep as the line asks);
    /// at the limit it is read.
    @Test func deepNestingIsBounded() {
        let d = JSONTree.maximumDepth
        #expect(JSONTree.parse((String(repeating: "[", count: d) + String(repeating: "]", count: d)).utf8) != nil)
        #expect(JSONTree.parse((String(repeating: "[", count: d + 1) + String(repeating: "]", count: d + 1)).utf8) == nil)
        #expect(JSONTree.parse(String(repeating: "[", count: 100_000).utf8) == nil)
        #expect(JSONTree.parse(String(repeating: "{\"a\":", count: 100_000).utf8) == nil)
    }
}
