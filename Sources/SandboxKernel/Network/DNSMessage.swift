/// The little of RFC 1035 the DNS stub needs: a query's header and single question
/// read strictly, an upstream answer's records read (with name compression), and
/// replies built from scratch — never a client's bytes forwarded, never a packet
/// patched in place. Everything is bounds-checked; a malformed message is nil.
enum DNSMessage {
    static let typeA: UInt16 = 1
    static let typeCNAME: UInt16 = 5
    static let typeAAAA: UInt16 = 28
    static let typeOPT: UInt16 = 41
    static let typeSVCB: UInt16 = 64
    static let typeHTTPS: UInt16 = 65
    static let classIN: UInt16 = 1

    enum RCode: UInt8 { case noError = 0, formErr = 1, servFail = 2, nxDomain = 3, notImp = 4, refused = 5 }

    /// The name of a record type as the result shows it.
    static func typeName(_ t: UInt16) -> String {
        switch t {
        case typeA: "A"
        case 2: "NS"
        case typeCNAME: "CNAME"
        case 6: "SOA"
        case 12: "PTR"
        case 15: "MX"
        case 16: "TXT"
        case typeAAAA: "AAAA"
        case 33: "SRV"
        case typeSVCB: "SVCB"
        case typeHTTPS: "HTTPS"
        case 255: "ANY"
        default: "TYPE\(t)"
        }
    }

    struct Query {
        var id: UInt16
        var recursionDesired: Bool
        /// The question's name as sent (for the echo), and lower case for matching,
        /// with bytes no host name holds escaped (`presentation`); the root is ".".
        var rawName: [UInt8]
        var name: String
        var type: UInt16
        var qclass: UInt16
        /// The client's EDNS0 payload size; nil without an OPT record.
        var ednsSize: UInt16?
        /// False when a label holds anything but letters, digits, "-" or "_": such a
        /// name matches no rule (a "." inside a label must not pass for two labels).
        var nameIsHostname: Bool
    }

    struct Record {
        var name: String
        var type: UInt16
        var ttl: UInt32
        /// A: 4 bytes, AAAA: 16; CNAME: the target, decoded.
        var data: [UInt8]
        var target: String?
    }

    struct Response {
        var id: UInt16
        var truncated: Bool
        var rcode: UInt8
        var questionName: String
        var questionType: UInt16
        var answers: [Record]
    }

    private static func u16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) << 8 | UInt16(b[i + 1]) }
    private static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    /// A query: QR 0, opcode QUERY, exactly one question, no answer or authority
    /// records, at most one additional record (EDNS0's OPT) — what a stub resolver sends.
    static func parseQuery(_ b: [UInt8]) -> Query? {
        guard b.count >= 17, b.count <= 4096 else { return nil }
        let flags = u16(b, 2)
        guard flags & 0x8000 == 0, (flags >> 11) & 0xf == 0 else { return nil }
        guard u16(b, 4) == 1, u16(b, 6) == 0, u16(b, 8) == 0, u16(b, 10) <= 1 else { return nil }
        // The question's name: labels only, no compression (nothing earlier to point at).
        var i = 12
        var labels: [String] = []
        var hostname = true
        while true {
            guard i < b.count else { return nil }
            let len = Int(b[i])
            if len == 0 { i += 1; break }
            guard len <= 63, i + 1 + len <= b.count else { return nil }
            let label = b[(i + 1)..<(i + 1 + len)]
            if !label.allSatisfy(isHostNameByte) { hostname = false }
            labels.append(presentation(label))
            i += 1 + len
            guard i - 12 <= 255 else { return nil }
        }
        let rawName = Array(b[12..<i])
        guard i + 4 <= b.count else { return nil }
        let type = u16(b, i), qclass = u16(b, i + 2)
        i += 4
        var edns: UInt16? = nil
        if u16(b, 10) == 1 {
            // OPT: root name, type 41, class = payload size, ttl, rdlength, rdata.
            guard i + 11 <= b.count, b[i] == 0, u16(b, i + 1) == typeOPT else { return nil }
            edns = u16(b, i + 3)
            let rdlen = Int(u16(b, i + 9))
            guard i + 11 + rdlen == b.count else { return nil }
        } else if i != b.count {
            return nil
        }
        return Query(id: u16(b, 0), recursionDesired: flags & 0x0100 != 0, rawName: rawName,
                     name: labels.isEmpty ? "." : labels.joined(separator: "."), type: type, qclass: qclass, ednsSize: edns,
                     nameIsHostname: hostname && !labels.isEmpty)
    }

    /// A letter, digit, "-" or "_": what a label of a host name holds.
    static func isHostNameByte(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f
    }

    /// A label as the result shows it: lower case, and every byte that is not a host
    /// name's as RFC 1035's `\DDD` (decimal). The query name reaches the run result,
    /// its hints and the audit log: a client's quote, newline, dot inside a label or
    /// escape byte must not be read as part of anything around it (red-team F3).
    static func presentation(_ label: ArraySlice<UInt8>) -> String {
        var out = ""
        for c in label {
            if isHostNameByte(c) {
                out.unicodeScalars.append(Unicode.Scalar(c >= 0x41 && c <= 0x5a ? c + 0x20 : c))
            } else {
                let d = String(c)
                out += "\\" + String(repeating: "0", count: 3 - d.count) + d
            }
        }
        return out
    }

    /// A name at `start` (compression pointers followed, at most 64 of them, each to
    /// an earlier offset), lower case; the offset after it in the message.
    static func readName(_ b: [UInt8], _ start: Int) -> (String, Int)? {
        var labels: [String] = []
        var i = start, end: Int? = nil, jumps = 0, total = 0
        while true {
            guard i < b.count else { return nil }
            let len = Int(b[i])
            if len & 0xc0 == 0xc0 {
                guard i + 1 < b.count else { return nil }
                let target = (len & 0x3f) << 8 | Int(b[i + 1])
                jumps += 1
                guard jumps <= 64, target < i else { return nil }
                if end == nil { end = i + 2 }
                i = target
                continue
            }
            guard len & 0xc0 == 0 else { return nil }
            if len == 0 { i += 1; break }
            guard i + 1 + len <= b.count else { return nil }
            labels.append(String(decoding: b[(i + 1)..<(i + 1 + len)], as: UTF8.self).lowercased())
            total += len + 1
            guard total <= 255 else { return nil }
            i += 1 + len
        }
        return (labels.joined(separator: "."), end ?? i)
    }

    /// An answer from upstream: its header, question and answer records (authority
    /// and additional records are not read: the reply is rebuilt from the answers).
    static func parseResponse(_ b: [UInt8]) -> Response? {
        guard b.count >= 12 else { return nil }
        let flags = u16(b, 2)
        guard flags & 0x8000 != 0, u16(b, 4) == 1 else { return nil }
        var i = 12
        guard let (qname, afterName) = readName(b, i), afterName + 4 <= b.count else { return nil }
        let qtype = u16(b, afterName)
        i = afterName + 4
        var answers: [Record] = []
        for _ in 0..<Int(u16(b, 6)) {
            guard let (name, after) = readName(b, i), after + 10 <= b.count else { return nil }
            let type = u16(b, after), rclass = u16(b, after + 2), ttl = u32(b, after + 4)
            let rdlen = Int(u16(b, after + 8))
            let rdStart = after + 10
            guard rdStart + rdlen <= b.count else { return nil }
            i = rdStart + rdlen
            guard rclass == classIN else { continue }
            switch type {
            case typeA where rdlen == 4, typeAAAA where rdlen == 16:
                answers.append(Record(name: name, type: type, ttl: ttl, data: Array(b[rdStart..<i])))
            case typeCNAME:
                guard let (target, _) = readName(b, rdStart) else { return nil }
                answers.append(Record(name: name, type: type, ttl: ttl, data: [], target: target))
            default:
                continue
            }
        }
        return Response(id: u16(b, 0), truncated: flags & 0x0200 != 0, rcode: UInt8(flags & 0xf),
                        questionName: qname, questionType: qtype, answers: answers)
    }

    static func encodeName(_ name: String) -> [UInt8] {
        var out: [UInt8] = []
        for label in name.split(separator: ".") where !label.isEmpty {
            let bytes = Array(label.utf8.prefix(63))
            out.append(UInt8(bytes.count)); out += bytes
        }
        out.append(0)
        return out
    }

    private static func put16(_ out: inout [UInt8], _ v: UInt16) { out += [UInt8(v >> 8), UInt8(v & 0xff)] }
    private static func put32(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
    }

    /// The stub's own question to upstream: a fresh id, recursion desired, the name in
    /// lower case, EDNS0 with a 1232-byte payload.
    static func upstreamQuery(id: UInt16, name: String, type: UInt16) -> [UInt8] {
        var out: [UInt8] = []
        put16(&out, id); put16(&out, 0x0100)
        put16(&out, 1); put16(&out, 0); put16(&out, 0); put16(&out, 1)
        out += encodeName(name)
        put16(&out, type); put16(&out, classIN)
        out += [0]; put16(&out, typeOPT); put16(&out, 1232); put32(&out, 0); put16(&out, 0)
        return out
    }

    /// A reply to `query`, built from scratch: its id and question as sent, `rcode`,
    /// the answers (names uncompressed, TTLs as given), an OPT record when the query
    /// had one. Answers that do not fit the client's payload size (512 without EDNS0,
    /// over UDP) are left out and TC is set, so the client asks again over TCP.
    static func reply(to query: Query, rcode: RCode, answers: [Record] = [], limit: Int? = nil) -> [UInt8] {
        func header(count: Int, truncated: Bool) -> [UInt8] {
            var out: [UInt8] = []
            put16(&out, query.id)
            var flags: UInt16 = 0x8000 | 0x0080 | UInt16(rcode.rawValue)
            if query.recursionDesired { flags |= 0x0100 }
            if truncated { flags |= 0x0200 }
            put16(&out, flags)
            put16(&out, 1); put16(&out, UInt16(count)); put16(&out, 0); put16(&out, query.ednsSize == nil ? 0 : 1)
            out += query.rawName
            put16(&out, query.type); put16(&out, query.qclass)
            return out
        }
        var records: [[UInt8]] = []
        for r in answers {
            var out = encodeName(r.name)
            put16(&out, r.type); put16(&out, classIN); put32(&out, r.ttl)
            let data = r.type == typeCNAME ? encodeName(r.target ?? "") : r.data
            put16(&out, UInt16(data.count)); out += data
            records.append(out)
        }
        var opt: [UInt8] = []
        if query.ednsSize != nil { opt = [0]; put16(&opt, typeOPT); put16(&opt, 1232); put32(&opt, 0); put16(&opt, 0) }
        var kept = records.count
        let fixed = header(count: 0, truncated: false).count + opt.count
        if let limit {
            while kept > 0 && fixed + records[0..<kept].reduce(0, { $0 + $1.count }) > limit { kept -= 1 }
        }
        var out = header(count: kept, truncated: kept < records.count)
        for r in records[0..<kept] { out += r }
        return out + opt
    }
}
