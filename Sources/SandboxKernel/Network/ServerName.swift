import Foundation

/// What the first data of a TCP flow says about the server it is for: the `server_name`
/// of a TLS ClientHello, or the `Host` of an HTTP/1 request (Docs/network.md, "The
/// server name check"). Read from one segment only, conservatively: what is not in
/// it counts as absent, so a ClientHello split before its server name is refused,
/// never let through unread.
enum ServerName {
    enum Claim: Equatable {
        /// A TLS ClientHello naming this server (lower case, no trailing dot).
        case tls(String)
        /// An HTTP/1 request whose one `Host` header names this server.
        case http(String)
        /// Neither, or unreadable: the flow is refused.
        case unreadable(Reason)
    }

    enum Reason: String, Equatable {
        /// Not a ClientHello nor an HTTP request, or one without a name in this segment.
        case noName = "no_name"
        /// A ClientHello with encrypted_client_hello: the real name is hidden.
        case ech = "ech"
    }

    static let extensionServerName: UInt16 = 0
    static let extensionECH: UInt16 = 0xfe0d

    static func claim(_ data: ArraySlice<UInt8>) -> Claim {
        let d = Array(data)
        if d.first == 0x16 { return tls(d) }
        return http(d)
    }

    /// A TLS record of type handshake (22) holding a ClientHello (1): walks to the
    /// extensions and reads server_name (RFC 6066 §3), within the bytes at hand.
    static func tls(_ d: [UInt8]) -> Claim {
        var r = Reader(d)
        guard r.u8() == 0x16, let major = r.u8(), major == 3, r.u8() != nil, r.u16() != nil,
              r.u8() == 1, r.skip(3), r.skip(2 + 32),          // type ClientHello, length, version, random
              let sid = r.u8(), r.skip(Int(sid)),
              let suites = r.u16(), r.skip(Int(suites)),
              let comp = r.u8(), r.skip(Int(comp)),
              r.u16() != nil else { return .unreadable(.noName) }
        var name: String? = nil
        while let type = r.u16(), let length = r.u16() {
            if type == extensionECH { return .unreadable(.ech) }
            guard let body = r.bytes(Int(length)) else { break }   // cut by the segment's end
            if type == extensionServerName, name == nil {
                var e = Reader(body)
                guard e.u16() != nil, e.u8() == 0, let n = e.u16(), let host = e.bytes(Int(n)) else { return .unreadable(.noName) }
                name = hostname(host)
                if name == nil { return .unreadable(.noName) }
            }
        }
        return name.map(Claim.tls) ?? .unreadable(.noName)
    }

    /// `METHOD SP target SP HTTP/1.x CRLF` and headers, of which exactly one `Host`
    /// (a request with two is ambiguous: refused), all in this segment.
    static func http(_ d: [UInt8]) -> Claim {
        let text = String(decoding: d, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        guard let first = lines.first, let space = first.firstIndex(of: " "),
              first[..<space].allSatisfy({ $0.isASCII && $0.isUppercase }), !first[..<space].isEmpty,
              first.hasSuffix(" HTTP/1.1") || first.hasSuffix(" HTTP/1.0") else { return .unreadable(.noName) }
        var hosts: [String] = []
        var ended = false
        for line in lines.dropFirst() {
            if line.isEmpty { ended = true; break }
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "host" {
                hosts.append(parts[1].trimmingCharacters(in: .whitespaces))
            }
        }
        // Without the blank line the headers went on past this segment: a second Host
        // could follow, so one seen here is not enough.
        guard ended, hosts.count == 1 else { return .unreadable(.noName) }
        var host = Substring(hosts[0])
        if let colon = host.lastIndex(of: ":"), host[host.index(after: colon)...].allSatisfy(\.isNumber) {
            host = host[..<colon]
        }
        return hostname(Array(host.utf8)).map(Claim.http) ?? .unreadable(.noName)
    }

    /// A host name as the stub compares names: letters, digits, `-`, `_`, dots, lower
    /// case, no trailing dot; nil for anything else (an address is not a name).
    static func hostname(_ bytes: [UInt8]) -> String? {
        var b = bytes
        if b.last == UInt8(ascii: ".") { b.removeLast() }
        guard !b.isEmpty, b.count <= 253, b.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e }),
              !b.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2e }) else { return nil }
        return String(decoding: b, as: UTF8.self).lowercased()
    }

    private struct Reader {
        let d: [UInt8]
        var at = 0
        init(_ d: [UInt8]) { self.d = d }
        mutating func u8() -> UInt8? { guard at < d.count else { return nil }; at += 1; return d[at - 1] }
        mutating func u16() -> UInt16? { guard at + 2 <= d.count else { return nil }; at += 2; return UInt16(d[at - 2]) << 8 | UInt16(d[at - 1]) }
        mutating func skip(_ n: Int) -> Bool { guard at + n <= d.count else { return false }; at += n; return true }
        mutating func bytes(_ n: Int) -> [UInt8]? { guard at + n <= d.count else { return nil }; at += n; return Array(d[at - n..<at]) }
    }
}

/// The addresses, ports and TCP payload of an IP packet as nfnetlink_queue hands it
/// over (IPv4 or IPv6 without extension headers); nil for anything else.
struct TCPSegment: Hashable {
    var source: [UInt8], destination: [UInt8]
    var sourcePort: UInt16, destinationPort: UInt16
    var payload: ArraySlice<UInt8>

    /// The flow, for remembering verdicts.
    var flow: [UInt8] { source + destination + [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff)] }

    init?(_ p: ArraySlice<UInt8>) {
        let p = Array(p)
        guard let v = p.first.map({ $0 >> 4 }) else { return nil }
        var tcpAt = 0, end = p.count
        if v == 4 {
            guard p.count >= 20, p[9] == 6 else { return nil }
            tcpAt = Int(p[0] & 0x0f) * 4
            end = min(p.count, Int(p[2]) << 8 | Int(p[3]))
            source = Array(p[12..<16]); destination = Array(p[16..<20])
        } else if v == 6 {
            guard p.count >= 40, p[6] == 6 else { return nil }
            tcpAt = 40
            end = min(p.count, 40 + (Int(p[4]) << 8 | Int(p[5])))
            source = Array(p[8..<24]); destination = Array(p[24..<40])
        } else { return nil }
        guard tcpAt >= 20, end >= tcpAt + 20 else { return nil }
        sourcePort = UInt16(p[tcpAt]) << 8 | UInt16(p[tcpAt + 1])
        destinationPort = UInt16(p[tcpAt + 2]) << 8 | UInt16(p[tcpAt + 3])
        let dataAt = tcpAt + Int(p[tcpAt + 12] >> 4) * 4
        guard dataAt <= end else { return nil }
        payload = p[dataAt..<end]
    }

    static func == (a: TCPSegment, b: TCPSegment) -> Bool { a.flow == b.flow && a.payload == b.payload }
    func hash(into h: inout Hasher) { h.combine(flow) }
}
