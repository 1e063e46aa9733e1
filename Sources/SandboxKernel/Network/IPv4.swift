/// An IPv4 address as a number (host order), parsed only from dotted quads; what
/// the network facility renders into nft text and netlink messages is built from
/// this, never from a raw string.
public struct IPv4: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let n = UInt8(p), String(n) == p else { return nil }
            v = v << 8 | UInt32(n)
        }
        value = v
    }

    /// Network byte order, as netlink wants it.
    public var bytes: [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }

    public var description: String { bytes.map(String.init).joined(separator: ".") }

    public static func < (a: IPv4, b: IPv4) -> Bool { a.value < b.value }

    /// The network mask of a prefix length (0…32).
    static func mask(_ prefixLength: Int) -> UInt32 {
        prefixLength <= 0 ? 0 : UInt32.max << UInt32(32 - min(32, prefixLength))
    }
}
