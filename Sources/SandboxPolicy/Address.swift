/// An IPv4 or IPv6 address, parsed strictly (no leading zeros, no zone ids), so that
/// everything rendered into nft text or resolv.conf comes from a typed value.
public enum IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    case v4(UInt32)
    case v6([UInt16])   // exactly 8 groups

    public init?(_ text: String) {
        if text.contains(":") {
            guard let groups = IPAddress.parseV6(text) else { return nil }
            self = .v6(groups)
        } else {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var value: UInt32 = 0
            for part in parts {
                guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCIIDigit),
                      !(part.count > 1 && part.first == "0"),
                      let octet = UInt32(part), octet <= 255 else { return nil }
                value = value << 8 | octet
            }
            self = .v4(value)
        }
    }

    /// The parts of `text` between non-overlapping "::", left to right (as Foundation's
    /// `components(separatedBy:)`, without Foundation on a run's path).
    private static func halves(_ text: String) -> [String] {
        let b = Array(text.utf8)
        var parts: [String] = []
        var start = 0, i = 0
        while i + 1 < b.count {
            if b[i] == UInt8(ascii: ":") && b[i + 1] == UInt8(ascii: ":") {
                parts.append(String(decoding: b[start..<i], as: UTF8.self))
                i += 2
                start = i
            } else {
                i += 1
            }
        }
        parts.append(String(decoding: b[start...], as: UTF8.self))
        return parts
    }

    private static func parseV6(_ text: String) -> [UInt16]? {
        let halves = halves(text)
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 8 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
        return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
    }

    public var isV4: Bool { if case .v4 = self { return true } else { return false } }
    public var bitWidth: Int { isV4 ? 32 : 128 }

    public var description: String {
        switch self {
        case .v4(let v):
            return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        case .v6(let g):
            // RFC 5952: compress the longest run (≥2) of zero groups.
            var bestStart = -1, bestLen = 0, i = 0
            while i < 8 {
                if g[i] == 0 {
                    var j = i; while j < 8 && g[j] == 0 { j += 1 }
                    if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                    i = j
                } else { i += 1 }
            }
            let hex = g.map { String($0, radix: 16) }
            if bestStart < 0 { return hex.joinedText(separator: ":") }
            let head = hex[0..<bestStart].joined(separator: ":")
            let tail = hex[(bestStart + bestLen)...].joined(separator: ":")
            return head + "::" + tail
        }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool { a.description < b.description }
}

/// A network prefix such as `140.82.112.0/20`; host bits must be zero.
public struct CIDR: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let address: IPAddress
    public let prefix: Int

    public enum ParseError: Error, Equatable { case malformed, badAddress, badPrefix, hostBitsSet }

    public static func parse(_ text: String) -> Result<CIDR, ParseError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return .failure(.malformed) }
        guard let address = IPAddress(String(parts[0])) else { return .failure(.badAddress) }
        var prefix = address.bitWidth
        if parts.count == 2 {
            guard let p = Int(parts[1]), String(p) == parts[1], p >= 0, p <= address.bitWidth else {
                return .failure(.badPrefix)
            }
            prefix = p
        }
        let cidr = CIDR(address: address, prefix: prefix)
        guard cidr.hostBitsZero else { return .failure(.hostBitsSet) }
        return .success(cidr)
    }

    private init(address: IPAddress, prefix: Int) { self.address = address; self.prefix = prefix }

    private var hostBitsZero: Bool {
        switch address {
        case .v4(let v):
            let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)
            return v & ~mask == 0
        case .v6(let g):
            for (i, group) in g.enumerated() {
                let bitsHere = max(0, min(16, prefix - i * 16))
                let mask: UInt16 = bitsHere == 0 ? 0 : ~UInt16(0) << (16 - bitsHere)
                if group & ~mask != 0 { return false }
            }
            return true
        }
    }

    public var description: String { "\(address)/\(prefix)" }
    public static func < (a: CIDR, b: CIDR) -> Bool { a.description < b.description }
}
