import SandboxVocabulary

/// JSON read into the shapes `JSONSerialization.jsonObject` gave, for the readers of
/// JSON we did not write (libnftables' listings) and of loosely shaped lines (a serve
/// reply's id, an audit record's header): `[String: Any]`, `[Any]`, `String`, `Bool`,
/// `Int` (a number written as an integer that fits), `Double` (any other number) and
/// ``Null``.
///
/// Parsed by hand, in one pass over the bytes: it was Foundation's `JSONDecoder`
/// trying each shape in turn for every value, and an egress run's listing of its
/// table (read after every run for the denied destinations) cost about a quarter of
/// the whole run's CPU that way (Docs/benchmarks.md, session 30).
public enum JSONTree {
    /// JSON `null`, where `JSONSerialization` gave `NSNull` (a key with a null value
    /// is present).
    public struct Null: Sendable, Equatable {}

    /// How deep arrays and objects may nest; deeper is not JSON we read (and would
    /// otherwise be a recursion as deep as a hostile line asks).
    public static let maximumDepth = 512

    /// The longest object key read, in bytes: every key of the JSON read here is a
    /// field name or an environment variable's.
    public static let maximumKeyBytes = 4096

    /// The longest run of combining marks (non-starters) a key may hold: Unicode's
    /// stream-safe limit (UAX #15). Swift hashes and compares strings in normalised
    /// form, which sorts each such run, so a key of 100 000 marks cost minutes of CPU
    /// to insert (red team, session 30: a 256 kB serve request line took 33 s; the
    /// replaced JSONDecoder reader too). Values are not hashed here and are kept
    /// as sent: an audit line quoting such a name still reads.
    public static let maximumCombiningRun = 30

    /// A key within both limits.
    static func isReadableKey(_ key: String) -> Bool {
        guard key.utf8.count <= maximumKeyBytes else { return false }
        if key.utf8.allSatisfy({ $0 < 0x80 }) { return true }
        var run = 0
        for scalar in key.unicodeScalars {
            if scalar.properties.canonicalCombiningClass.rawValue != 0 {
                run += 1
                if run > maximumCombiningRun { return false }
            } else {
                run = 0
            }
        }
        return true
    }

    /// The document's value; nil when it is not JSON (RFC 8259: one value, white
    /// space around it, strings of valid UTF-8 without raw control characters, no
    /// lone surrogate escapes), nests deeper than ``maximumDepth``, or has a key
    /// past ``maximumKeyBytes`` or ``maximumCombiningRun``.
    public static func parse(_ bytes: some Sequence<UInt8>) -> Any? {
        let array = Array(bytes)
        return array.withUnsafeBufferPointer { buffer -> Any? in
            var parser = Parser(bytes: buffer)
            guard let value = parser.value(depth: 0) else { return nil }
            parser.skipSpace()
            return parser.at == buffer.count ? value : nil
        }
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var at = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        var next: UInt8? { at < bytes.count ? bytes[at] : nil }

        mutating func skipSpace() {
            while at < bytes.count {
                switch bytes[at] {
                case 0x20, 0x09, 0x0A, 0x0D: at += 1
                default: return
                }
            }
        }

        /// Consumes `word` (after its first byte was seen).
        mutating func literal(_ word: StaticString) -> Bool {
            let n = word.utf8CodeUnitCount
            guard bytes.count - at >= n else { return false }
            for i in 0..<n where bytes[at + i] != word.utf8Start[i] { return false }
            at += n
            return true
        }

        mutating func value(depth: Int) -> Any? {
            skipSpace()
            guard let c = next else { return nil }
            switch c {
            case UInt8(ascii: "{"): return object(depth: depth + 1)
            case UInt8(ascii: "["): return array(depth: depth + 1)
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "t"): return literal("true") ? true : nil
            case UInt8(ascii: "f"): return literal("false") ? false : nil
            case UInt8(ascii: "n"): return literal("null") ? Null() : nil
            default: return number()
            }
        }

        mutating func object(depth: Int) -> Any? {
            guard depth <= JSONTree.maximumDepth else { return nil }
            at += 1 // {
            var out: [String: Any] = [:]
            skipSpace()
            if next == UInt8(ascii: "}") { at += 1; return out }
            while true {
                skipSpace()
                guard next == UInt8(ascii: "\""), let key = string(), JSONTree.isReadableKey(key) else { return nil }
                skipSpace()
                guard next == UInt8(ascii: ":") else { return nil }
                at += 1
                guard let v = value(depth: depth) else { return nil }
                if out[key] == nil { out[key] = v } // a repeated key: the first one counts, as before
                skipSpace()
                switch next {
                case UInt8(ascii: ","): at += 1
                case UInt8(ascii: "}"): at += 1; return out
                default: return nil
                }
            }
        }

        mutating func array(depth: Int) -> Any? {
            guard depth <= JSONTree.maximumDepth else { return nil }
            at += 1 // [
            var out: [Any] = []
            skipSpace()
            if next == UInt8(ascii: "]") { at += 1; return out }
            while true {
                guard let v = value(depth: depth) else { return nil }
                out.append(v)
                skipSpace()
                switch next {
                case UInt8(ascii: ","): at += 1
                case UInt8(ascii: "]"): at += 1; return out
                default: return nil
                }
            }
        }

        /// A string at `"`; its UTF-8 is checked once, at the end.
        mutating func string() -> String? {
            at += 1 // "
            let start = at
            // The common case: no escape, so the bytes are the string.
            while at < bytes.count {
                let c = bytes[at]
                if c == UInt8(ascii: "\"") {
                    let s = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
                    at += 1
                    return s
                }
                if c == UInt8(ascii: "\\") { break }
                if c < 0x20 { return nil }
                at += 1
            }
            var out = Array(bytes[start..<at])
            while at < bytes.count {
                let c = bytes[at]
                at += 1
                switch c {
                case UInt8(ascii: "\""):
                    return String(validating: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let e = next else { return nil }
                    at += 1
                    if let b = JSONEscape.byte(for: e) { out.append(b); continue }
                    guard e == UInt8(ascii: "u"), var scalar = hex4() else { return nil }
                    if (0xD800...0xDBFF).contains(scalar) {
                        // A high surrogate must be followed by a low one.
                        guard literal("\\u"), let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        return nil
                    }
                    guard let u = Unicode.Scalar(scalar) else { return nil }
                    out.append(contentsOf: UTF8.encode(u)!)
                default:
                    if c < 0x20 { return nil }
                    out.append(c)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard bytes.count - at >= 4 else { return nil }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[at]
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                default: return nil
                }
                v = v << 4 | UInt32(d)
                at += 1
            }
            return v
        }

        /// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`: an `Int` when its exact
        /// value is an integer that fits (`2.0`, `1e3`, as `JSONDecoder` read them),
        /// else a finite `Double` (one that overflows is not a number here).
        mutating func number() -> Any? {
            let start = at
            let negative = next == UInt8(ascii: "-")
            if negative { at += 1 }
            guard let first = next, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return nil }
            let intStart = at
            skipDigits()
            let intEnd = at
            if first == UInt8(ascii: "0") && intEnd - intStart > 1 { return nil } // no leading zeros
            var fracStart = at, fracEnd = at
            if next == UInt8(ascii: ".") {
                at += 1
                fracStart = at
                skipDigits()
                fracEnd = at
                guard fracEnd > fracStart else { return nil }
            }
            var exponent = 0
            if next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
                at += 1
                var sign = 1
                if next == UInt8(ascii: "+") { at += 1 } else if next == UInt8(ascii: "-") { sign = -1; at += 1 }
                let expStart = at
                while let c = next, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                    exponent = min(exponent * 10 + Int(c - UInt8(ascii: "0")), 1 << 40) // past any digit count a line can hold
                    at += 1
                }
                guard at > expStart else { return nil }
                exponent *= sign
            }
            if let i = exactInteger(negative: negative, int: intStart..<intEnd, frac: fracStart..<fracEnd, exponent: exponent) {
                return i
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
            guard let d = Double(text), d.isFinite else { return nil }
            return d
        }

        mutating func skipDigits() {
            while let c = next, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { at += 1 }
        }

        /// The number's value as an `Int` when it is exactly an integer that fits:
        /// its digits times 10^(exponent − fraction digits), computed without rounding.
        /// Walks the digits by index, each at most once: a number of a million
        /// leading zeros (`0.000…01`, which an edited audit line may hold) costs a
        /// million steps, not a million shifts of a million bytes (red team, session 30).
        func exactInteger(negative: Bool, int: Range<Int>, frac: Range<Int>, exponent: Int) -> Int? {
            let total = int.count + frac.count
            func digit(_ i: Int) -> UInt8 { i < int.count ? bytes[int.lowerBound + i] : bytes[frac.lowerBound + i - int.count] }
            var first = 0
            while first < total, digit(first) == UInt8(ascii: "0") { first += 1 }
            if first == total { return 0 } // 0, -0.0, 0e9
            var end = total
            var scale = exponent - frac.count
            while scale < 0, digit(end - 1) == UInt8(ascii: "0") { end -= 1; scale += 1 }
            guard scale >= 0, end - first + scale <= 19 else { return nil }
            var v = 0
            for i in first..<end {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.subtractingReportingOverflow(Int(digit(i) - UInt8(ascii: "0"))) // negative: reaches Int.min
                guard !o1, !o2 else { return nil }
                v = a
            }
            for _ in 0..<scale {
                let (m, o) = v.multipliedReportingOverflow(by: 10)
                guard !o else { return nil }
                v = m
            }
            if negative { return v }
            let (p, o) = (0).subtractingReportingOverflow(v)
            return o ? nil : p
        }
    }
}
