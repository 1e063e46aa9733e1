import FoundationEssentials

/// What the first data of a TCP flow says about the server it is for: the `server_name`
/// of a TLS ClientHello, or the `Host` of an HTTP/1 request (Docs/network.md, "The
/// server name check"). Read from one segment only, strictly: the check and the server
/// must read the same name, so anything a server might read differently (a length
/// that does not add up, a bare LF, a second name) counts as no name, and what is not
/// in the segment counts as absent: a ClientHello split before its end is refused,
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
    /// The largest TLS record a sender may make (RFC 8446 §5.1: 2^14 plaintext bytes).
    static let maxRecord = 1 << 14

    static func claim(_ data: ArraySlice<UInt8>) -> Claim {
        let d = Array(data)
        if d.first == 0x16 { return tls(d) }
        return http(d)
    }

    /// A ClientHello as the server reads it (red-team F2): the handshake message is
    /// reassembled from the TLS records that carry it (each of type handshake, 22,
    /// within its own length), then read within its own length, the extension block
    /// within its length (which must end where the message does), each extension
    /// within its own. A server_name extension (RFC 6066 §3) must hold exactly one
    /// host_name; an extension seen twice, or anything that does not add up, is no
    /// name. A message the segment's end cuts (a ClientHello with a post-quantum key
    /// share is larger than one segment) is read as far as it goes, the same way: the
    /// server reads the same prefix first; the name must be in it.
    static func tls(_ d: [UInt8]) -> Claim {
        guard let message = handshakeMessage(d) else { return .unreadable(.noName) }
        var r = Reader(message)
        guard r.u8() == 1, let high = r.u8(), let low = r.u16(), r.skip(2 + 32),   // ClientHello, length, version, random
              let sid = r.u8(), sid <= 32, r.skip(Int(sid)),
              let suites = r.u16(), r.skip(Int(suites)),
              let comp = r.u8(), r.skip(Int(comp)),
              let total = r.u16(), r.at + Int(total) == 4 + (Int(high) << 16 | Int(low)) else { return .unreadable(.noName) }
        let end = r.at + Int(total)
        var name: String? = nil
        var seen: Set<UInt16> = []
        while r.at < end {
            guard r.at + 4 <= end else { return .unreadable(.noName) }
            guard let type = r.u16(), let length = r.u16() else { break }      // cut by the segment's end
            guard r.at + Int(length) <= end, seen.insert(type).inserted else { return .unreadable(.noName) }
            if type == extensionECH { return .unreadable(.ech) }
            guard let body = r.bytes(Int(length)) else { break }
            if type == extensionServerName {
                var e = Reader(body)
                guard let list = e.u16(), Int(list) == e.remaining, e.u8() == 0, let n = e.u16(),
                      let host = e.bytes(Int(n)), e.remaining == 0, let h = hostname(host) else { return .unreadable(.noName) }
                name = h
            }
        }
        return name.map(Claim.tls) ?? .unreadable(.noName)
    }

    /// The first handshake message of `d`, taken from consecutive handshake records (a
    /// message may span records), up to its end or the segment's, whichever is first
    /// (the bytes after it are not looked at); nil when a record is not a handshake
    /// record, or is empty or oversized.
    static func handshakeMessage(_ d: [UInt8]) -> [UInt8]? {
        var r = Reader(d)
        var message: [UInt8] = []
        while r.remaining > 0 {
            guard r.u8() == 0x16, r.u8() == 3, r.u8() != nil, let length = r.u16(),
                  length > 0, Int(length) <= maxRecord else { return r.remaining == 0 && !message.isEmpty ? message : nil }
            message += r.bytes(min(Int(length), r.remaining)) ?? []
            if message.count >= 4 {
                let need = 4 + (Int(message[1]) << 16 | Int(message[2]) << 8 | Int(message[3]))
                if message.count >= need { return Array(message[..<need]) }
            }
        }
        return message.isEmpty ? nil : message
    }

    /// The request line and header block of an HTTP/1 request, read strictly (red-team
    /// F3): lines end in CRLF only (a bare CR or LF, which lenient servers take as a
    /// line end, is no name), no folded lines, no space before a colon, field names of
    /// token characters, exactly one `Host`. The target is origin-form (`/…`), `*`, or
    /// names the same host as `Host` (absolute-form `scheme://host…`, CONNECT's
    /// `host:port`): RFC 9112 §3.2.2 has a server take the target's authority over
    /// Host. All of it in this segment, and nothing after it but the body its
    /// Content-Length announces: a pipelined request seen here is refused. A later
    /// request on the same connection is not seen (Docs/network.md).
    static func http(_ d: [UInt8]) -> Claim {
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        guard let end = headerEnd(d) else { return .unreadable(.noName) }
        // Every CR is followed by LF and every LF preceded by CR; no other control byte.
        for i in 0..<end {
            let b = d[i]
            if b == cr { guard i + 1 < end + 2, d[i + 1] == lf else { return .unreadable(.noName) }; continue }
            if b == lf { guard i > 0, d[i - 1] == cr else { return .unreadable(.noName) }; continue }
            if b == 0x7f || (b < 0x20 && b != 0x09) { return .unreadable(.noName) }
        }
        let lines = split(Array(d[..<end]))
        guard let first = lines.first else { return .unreadable(.noName) }
        let parts = first.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy({ $0 >= 0x41 && $0 <= 0x5a }),
              parts[2].elementsEqual("HTTP/1.1".utf8) || parts[2].elementsEqual("HTTP/1.0".utf8),
              !parts[1].isEmpty else { return .unreadable(.noName) }
        var hosts: [[UInt8]] = []
        var contentLength: Int? = nil
        var lengths = 0
        var chunked = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0,
                  line[..<colon].allSatisfy(isTokenByte) else { return .unreadable(.noName) }
            let field = String(decoding: line[..<colon], as: UTF8.self).lowercased()
            var value = line[(colon + 1)...]
            while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
            while let l = value.last, l == 0x20 || l == 0x09 { value = value.dropLast() }
            switch field {
            case "host": hosts.append(Array(value))
            case "content-length":
                lengths += 1
                guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return .unreadable(.noName) }
                contentLength = Int(String(decoding: value, as: UTF8.self))
            case "transfer-encoding": chunked = true
            default: break
            }
        }
        guard hosts.count == 1, lengths <= 1, let host = authorityName(hosts[0]) else { return .unreadable(.noName) }
        // What follows the header block: only the body it announces.
        let after = d.count - (end + 4)
        if after > 0 && (chunked || after > (contentLength ?? 0)) { return .unreadable(.noName) }
        let target = Array(parts[1])
        let method = String(decoding: parts[0], as: UTF8.self)
        if target.first == UInt8(ascii: "/") || (method == "OPTIONS" && target == [UInt8(ascii: "*")]) {
            guard method != "CONNECT" else { return .unreadable(.noName) }
            return .http(host)
        }
        let authority: ArraySlice<UInt8>
        if method == "CONNECT" {
            authority = target[...]
        } else if let scheme = target.firstIndex(of: UInt8(ascii: ":")), target[scheme...].starts(with: "://".utf8),
                  target[..<scheme].allSatisfy({ isTokenByte($0) }) {
            let rest = target[(scheme + 3)...]
            authority = rest[..<(rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? rest.endIndex)]
        } else {
            return .unreadable(.noName)
        }
        guard authorityName(Array(authority)) == host else { return .unreadable(.noName) }
        return .http(host)
    }

    /// Where the header block ends (the index of its CRLFCRLF), nil if not in `d`.
    private static func headerEnd(_ d: [UInt8]) -> Int? {
        guard d.count >= 4 else { return nil }
        for i in 0...(d.count - 4) where d[i] == 13 && d[i + 1] == 10 && d[i + 2] == 13 && d[i + 3] == 10 { return i }
        return nil
    }

    /// Lines of a block whose line ends were checked to be CRLF.
    private static func split(_ block: [UInt8]) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        while i < block.count {
            if block[i] == 13 { lines.append(block[start..<i]); i += 2; start = i } else { i += 1 }
        }
        lines.append(block[start..<block.count])
        return lines
    }

    /// RFC 9110 tchar.
    private static func isTokenByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7a) || "!#$%&'*+-.^_`|~".utf8.contains(b)
    }

    /// The name of `host[:port]` (no userinfo, no IP literal), as `hostname` reads it.
    private static func authorityName(_ a: [UInt8]) -> String? {
        var host = a[...]
        if let colon = host.lastIndex(of: UInt8(ascii: ":")) {
            let port = host[(colon + 1)...]
            guard port.count <= 5, port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            host = host[..<colon]
        }
        return hostname(Array(host))
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
        private(set) var at = 0
        init(_ d: [UInt8]) { self.d = d }
        var remaining: Int { d.count - at }
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
    /// The sequence number and the flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10, URG 0x20).
    var sequence: UInt32, flags: UInt8
    var payload: ArraySlice<UInt8>

    static let syn: UInt8 = 0x02, ack: UInt8 = 0x10, urg: UInt8 = 0x20
    /// A connection's first segment (SYN without ACK): its sequence number is the ISN.
    var opens: Bool { flags & (Self.syn | Self.ack) == Self.syn }

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
        sequence = p[(tcpAt + 4)..<(tcpAt + 8)].reduce(0) { $0 << 8 | UInt32($1) }
        flags = p[tcpAt + 13]
        let dataAt = tcpAt + Int(p[tcpAt + 12] >> 4) * 4
        guard dataAt <= end else { return nil }
        payload = p[dataAt..<end]
    }

    static func == (a: TCPSegment, b: TCPSegment) -> Bool { a.flow == b.flow && a.sequence == b.sequence && a.flags == b.flags && a.payload == b.payload }
    func hash(into h: inout Hasher) { h.combine(flow) }
}
