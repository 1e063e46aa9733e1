/// A host name an egress allow rule names (Docs/network.md, "Names"): exactly one
/// name (`pypi.org`), or a wildcard `*.example.test` that matches one or more labels
/// below `example.test` — `a.example.test`, `a.b.example.test` — and never
/// `example.test` itself (list it too when it is wanted). Stored lower case, without
/// a trailing dot; the planner and the DNS stub compare names the same way.
public struct HostPattern: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// The name, or for a wildcard the part after `*.`.
    public let base: String
    public let wildcard: Bool

    /// Why `text` is not a host pattern; nil when it is one (`init?(_:)` then succeeds).
    public static func problem(_ text: String) -> String? {
        var name = text
        if name.hasSuffix(".") { name.removeLast() }
        if name.hasPrefix("*.") { name.removeFirst(2) }
        if name.contains("*") {
            return "\"*\" may only be the whole first label (\"*.example.com\": the names below example.com)"
        }
        if name.isEmpty { return "it is empty" }
        if name.utf8.count > 253 { return "longer than 253 characters" }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            if label.isEmpty { return "empty label; labels are separated by single dots" }
            if label.utf8.count > 63 { return "label \"\(label)\" is longer than 63 characters" }
            if label.first == "-" || label.last == "-" { return "label \"\(label)\" starts or ends with \"-\"" }
            if !label.unicodeScalars.allSatisfy({ ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-" || $0 == "_" }) {
                return "use letters, digits, \"-\" and \"_\" in dot-separated labels (an internationalised name in its xn-- form)"
            }
        }
        if text.hasPrefix("*."), labels.count < 2 {
            return "a wildcard needs at least two labels after \"*.\" (\"*.\(name)\" would match every name under a top-level domain)"
        }
        // An address is not a name: a CIDR rule says that, and the stub never resolves one.
        if labels.allSatisfy({ $0.allSatisfy(\.isNumber) }) || name.contains(":") {
            return "an address is not a host name; write cidr = \"\(name)/32\" for an address"
        }
        return nil
    }

    public init?(_ text: String) {
        guard Self.problem(text) == nil else { return nil }
        var name = text.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        wildcard = name.hasPrefix("*.")
        base = wildcard ? String(name.dropFirst(2)) : name
    }

    /// A queried name (any case, with or without the trailing dot) this pattern admits.
    public func matches(_ queried: String) -> Bool {
        var name = queried.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        if !wildcard { return name == base }
        // One or more whole labels below `base`: "x.base", never "base" or "xbase".
        return name.count > base.count + 1 && name.hasSuffix("." + base)
    }

    public var description: String { wildcard ? "*." + base : base }

    public static func < (a: HostPattern, b: HostPattern) -> Bool { a.description < b.description }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let p = HostPattern(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a host pattern: \(text)"))
        }
        self = p
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
