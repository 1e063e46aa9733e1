import Testing
@testable import SandboxKernel

/// What the server name check reads from a flow's first segment (issue 17,
/// fronting): conservative — what is not in the segment counts as absent.
@Suite struct ServerNameParsingTests {
    /// A TLS 1.2-framed ClientHello with these extensions (type, body).
    static func clientHello(_ extensions: [(UInt16, [UInt8])]) -> [UInt8] {
        var ext: [UInt8] = []
        for (t, body) in extensions { ext += be16(t) + be16(UInt16(body.count)) + body }
        let hello: [UInt8] = [3, 3] + [UInt8](repeating: 7, count: 32) + [0] + be16(2) + [0x13, 0x01] + [1, 0] + be16(UInt16(ext.count)) + ext
        let hs: [UInt8] = [1, 0] + be16(UInt16(hello.count)) + hello
        return [0x16, 3, 1] + be16(UInt16(hs.count)) + hs
    }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    static func sni(_ name: String) -> (UInt16, [UInt8]) {
        let n = Array(name.utf8)
        return (0, be16(UInt16(n.count + 3)) + [0] + be16(UInt16(n.count)) + n)
    }

    @Test func aClientHelloNamesItsServer() {
        let hello = Self.clientHello([(10, [0, 2, 0, 29]), Self.sni("Pypi.ORG."), (43, [2, 3, 4])])
        #expect(ServerName.claim(hello[...]) == .tls("pypi.org"))
    }

    /// Split before the server name (or inside it): refused, never guessed.
    @Test func aClientHelloCutBeforeItsNameIsRefused() {
        let hello = Self.clientHello([(21, [UInt8](repeating: 0, count: 200)), Self.sni("a.test")])
        #expect(ServerName.claim(hello[...]) == .tls("a.test"))
        for cut in [5, 60, 120, 250, hello.count - 3] {
            #expect(ServerName.claim(hello[0..<cut]) == .unreadable(.noName), "cut at \(cut)")
        }
    }

    @Test func noNameEchAndAddressesAreRefused() {
        #expect(ServerName.claim(Self.clientHello([(10, [0, 2, 0, 29])])[...]) == .unreadable(.noName))
        #expect(ServerName.claim(Self.clientHello([Self.sni("a.test"), (0xfe0d, [1, 2, 3])])[...]) == .unreadable(.ech))
        #expect(ServerName.claim(Self.clientHello([Self.sni("10.0.0.1")])[...]) == .unreadable(.noName))
        #expect(ServerName.claim(Array("SSH-2.0-OpenSSH_9.6\r\n".utf8)[...]) == .unreadable(.noName))
    }

    @Test func anHTTPRequestNamesItsHostOnce() {
        func claim(_ s: String) -> ServerName.Claim { ServerName.claim(Array(s.utf8)[...]) }
        #expect(claim("GET / HTTP/1.1\r\nHost: a.test:8080\r\nAccept: */*\r\n\r\n") == .http("a.test"))
        #expect(claim("GET / HTTP/1.1\r\nhost: a.test\r\nHost: b.test\r\n\r\n") == .unreadable(.noName))
        // Headers that go on past the segment: another Host could follow.
        #expect(claim("GET / HTTP/1.1\r\nHost: a.test\r\nX: y") == .unreadable(.noName))
        #expect(claim("GET / HTTP/2.0\r\nHost: a.test\r\n\r\n") == .unreadable(.noName))
    }

    @Test func aSegmentIsReadFromItsPacket() {
        // IPv4, 20-byte header, TCP with a 32-byte header, 3 bytes of data.
        var p: [UInt8] = [0x45, 0, 0, 55, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        p += [0x30, 0x39, 0x20, 0xfb] + [UInt8](repeating: 0, count: 8) + [0x80, 0x18] + [UInt8](repeating: 0, count: 18) + [1, 2, 3]
        let s = TCPSegment(p[...])
        #expect(s?.destination == [10, 0, 0, 2] && s?.sourcePort == 12345 && s?.destinationPort == 8443 && s.map { Array($0.payload) } == [1, 2, 3])
    }

    // MARK: - Red-team review (issue 17): the check must read what the server reads.

    /// The handshake message of `clientHello` in TLS records cut at these offsets of it.
    static func records(_ record: [UInt8], cuts: [Int], type: UInt8 = 0x16) -> [UInt8] {
        let hs = Array(record[5...])
        var out: [UInt8] = []
        var at = 0
        for (i, end) in (cuts + [hs.count]).enumerated() {
            out += [i == 0 ? 0x16 : type, 3, 1] + be16(UInt16(end - at)) + hs[at..<end]
            at = end
        }
        return out
    }

    /// F2: a ClientHello in two records is read across them — wherever the cut, the
    /// name is the one a server reads; a second record of another type is no name.
    @Test func aClientHelloIsReassembledFromItsRecords() {
        let hello = Self.clientHello([(21, [UInt8](repeating: 0, count: 40)), Self.sni("a.test"), (43, [2, 3, 4])])
        let length = hello.count - 5
        for cut in [1, 4, 10, 45, length - 20, length - 1] {
            #expect(ServerName.claim(Self.records(hello, cuts: [cut])[...]) == .tls("a.test"), "cut at \(cut)")
            #expect(ServerName.claim(Self.records(hello, cuts: [cut], type: 0x17)[...]) == .unreadable(.noName), "cut at \(cut)")
        }
        #expect(ServerName.claim(Self.records(hello, cuts: [3, 50, 51])[...]) == .tls("a.test"))
        // The second record cut short by the segment's end, after the name: read so far.
        let two = Self.records(hello, cuts: [60])
        #expect(ServerName.claim(two[0..<(two.count - 1)]) == .tls("a.test"))
        // Records after the ClientHello (TLS 1.3 early data, change_cipher_spec) are not read.
        #expect(ServerName.claim((hello + [0x17, 3, 3, 0, 2, 9, 9])[...]) == .tls("a.test"))
    }

    /// A ClientHello larger than a segment (a post-quantum key share) is read as far as
    /// the segment goes, by the same rules: the name must be in it, the lengths seen
    /// must add up, no extension twice.
    @Test func aClientHelloLongerThanItsSegmentIsReadAsFarAsItGoes() {
        let share: (UInt16, [UInt8]) = (51, [UInt8](repeating: 9, count: 1800))
        let first = Self.clientHello([Self.sni("a.test"), share])
        #expect(ServerName.claim(first[0..<1400]) == .tls("a.test"))
        #expect(ServerName.claim(Self.records(first, cuts: [30])[0..<1400]) == .tls("a.test"))
        let last = Self.clientHello([share, Self.sni("a.test")])
        #expect(ServerName.claim(last[0..<1400]) == .unreadable(.noName))
        let twice = Self.clientHello([Self.sni("a.test"), (51, [1]), share, Self.sni("c.test")])
        #expect(ServerName.claim(twice[0..<1400]) == .unreadable(.noName))
        #expect(ServerName.claim(twice[...]) == .unreadable(.noName))
        // An extension block longer than the message it is in, or an extension longer
        // than the block: no name, even cut.
        var long = first
        long[50] += 1
        #expect(ServerName.claim(long[0..<1400]) == .unreadable(.noName))
        var over = Self.clientHello([Self.sni("a.test"), (51, [UInt8](repeating: 9, count: 100))])
        over[52 + 4 + Self.sni("a.test").1.count + 2] = 0xff
        #expect(ServerName.claim(over[...]) == .unreadable(.noName))
        #expect(ServerName.claim(over[0..<80]) == .unreadable(.noName))
    }

    /// F2, the red team's desync: G1 (a GREASE extension) + server_name(c.test) + G2
    /// whose body is server_name(a.test), the second record's header inside G1. A
    /// reader ignoring the records landed on a.test; the server reads c.test.
    @Test func theRecordDesyncReadsTheServersName() {
        let real = Self.sni("c.test"), decoy = Self.sni("a.test")
        let g1: (UInt16, [UInt8]) = (0x0a0a, [UInt8](repeating: 0, count: 11) + Self.be16(0xbaba) + Self.be16(UInt16(1 + real.1.count + 4 + 4)) + [0])
        let hello = Self.clientHello([g1, real, (0x1a1a, Self.be16(0) + Self.be16(UInt16(decoy.1.count)) + decoy.1)])
        let cut = 4 + 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + 4 + 3
        #expect(ServerName.claim(Self.records(hello, cuts: [cut])[...]) == .tls("c.test"))
    }

    /// F2: lengths that do not add up, a duplicate extension, a server_name list with
    /// more than one entry: no name, never a guess.
    @Test func lengthsThatDoNotAddUpAreNoName() {
        let hello = Self.clientHello([Self.sni("a.test")])
        // The extension block's length one short / one long of the message.
        for delta in [-1, 1] {
            var h = hello
            let at = 5 + 4 + 2 + 32 + 1 + 2 + 2 + 1 + 1
            let v = Int(h[at]) << 8 | Int(h[at + 1]) + delta
            h[at] = UInt8(v >> 8); h[at + 1] = UInt8(v & 0xff)
            #expect(ServerName.claim(h[...]) == .unreadable(.noName), "delta \(delta)")
        }
        // Bytes in the handshake message after the extensions.
        var padded = Self.clientHello([Self.sni("a.test")])
        padded[8] += 1; padded[4] += 1; padded.append(0)
        #expect(ServerName.claim(padded[...]) == .unreadable(.noName))
        #expect(ServerName.claim(Self.clientHello([Self.sni("a.test"), Self.sni("c.test")])[...]) == .unreadable(.noName))
        #expect(ServerName.claim(Self.clientHello([(5, []), (5, [])] + [Self.sni("a.test")])[...]) == .unreadable(.noName))
        let n = Array("a.test".utf8), m = Array("c.test".utf8)
        let twoNames: [UInt8] = Self.be16(UInt16(n.count + m.count + 6)) + [0] + Self.be16(UInt16(n.count)) + n + [0] + Self.be16(UInt16(m.count)) + m
        #expect(ServerName.claim(Self.clientHello([(0, twoNames)])[...]) == .unreadable(.noName))
        let trailing: [UInt8] = Self.sni("a.test").1 + [0]
        #expect(ServerName.claim(Self.clientHello([(0, trailing)])[...]) == .unreadable(.noName))
        // An empty record.
        #expect(ServerName.claim(([0x16, 3, 1, 0, 0] + hello)[...]) == .unreadable(.noName))
    }

    /// F3: what lenient servers read differently is no name: bare LF or CR, folded
    /// lines, a space before the colon; an absolute-form or CONNECT target must name
    /// the Host; a pipelined request in the segment is refused; a body is not.
    @Test func anHTTPRequestIsReadStrictly() {
        func claim(_ s: String) -> ServerName.Claim { ServerName.claim(Array(s.utf8)[...]) }
        #expect(claim("GET / HTTP/1.1\r\nX: 1\nHost: c.test\n\r\nHost: a.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("GET / HTTP/1.1\r\nConnection: close\nHost: c.test\n\r\nHost: a.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("GET / HTTP/1.1\r\nX: 1\rHost: a.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("GET / HTTP/1.1\nHost: a.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("GET / HTTP/1.1\r\nHost: a.test\r\n c.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("GET / HTTP/1.1\r\nX: 1\r\n\tHost: c.test\r\nHost: a.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("GET / HTTP/1.1\r\nHost : c.test\r\nHost: a.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("GET / HTTP/1.1\r\nHost: a.test\r\nX\u{0}: 1\r\n\r\n") == .unreadable(.noName))
        #expect(claim("GET  / HTTP/1.1\r\nHost: a.test\r\n\r\n") == .unreadable(.noName))
        // The target's authority.
        #expect(claim("GET http://c.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("GET http://a.test:8080/x?y HTTP/1.1\r\nHost: a.test\r\n\r\n") == .http("a.test"))
        #expect(claim("GET http://user@c.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("CONNECT c.test:443 HTTP/1.1\r\nHost: a.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n") == .http("a.test"))
        #expect(claim("GET c.test HTTP/1.1\r\nHost: a.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n") == .http("a.test"))
        // Pipelining seen in the segment; a body as announced.
        #expect(claim("GET / HTTP/1.1\r\nHost: a.test\r\n\r\nGET / HTTP/1.1\r\nHost: c.test\r\n\r\n") == .unreadable(.noName))
        #expect(claim("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc") == .http("a.test"))
        #expect(claim("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabcGET") == .unreadable(.noName))
        #expect(claim("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc") == .unreadable(.noName))
        #expect(claim("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc") == .unreadable(.noName))
        #expect(claim("GET / HTTP/1.1\r\nHost:\ta.test \r\nUser-Agent: x/1\r\n\r\n") == .http("a.test"))
    }

    /// A TCP/IPv4 packet from 10.0.0.1:`sport` to 10.0.0.2:8443.
    static func packet(seq: UInt32, flags: UInt8, sport: UInt16 = 40000, _ payload: [UInt8] = []) -> TCPSegment {
        var p: [UInt8] = [0x45, 0] + be16(UInt16(40 + payload.count)) + [0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        p += be16(sport) + be16(8443) + be16(UInt16(seq >> 16)) + be16(UInt16(seq & 0xffff)) + [0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]
        return TCPSegment((p + payload)[...])!
    }

    static func expectStep(_ book: inout FlowBook, _ s: TCPSegment, _ want: FlowBook.Step, sourceLocation: SourceLocation = #_sourceLocation) {
        let got = book.step(s)
        #expect(got == want, sourceLocation: sourceLocation)
    }
    static func room(_ names: inout ResolvedNames, for name: String, at a: [[UInt8]], now: Double) -> Bool {
        names.room(for: name, at: a, now: now)
    }

    /// F4: only the data right after the SYN decides; a later segment of an undecided
    /// flow (the first was lost, e.g. the queue overflowed) is dropped with no verdict,
    /// and the first, sent again, decides.
    @Test func onlyTheFirstSegmentDecides() {
        var book = FlowBook()
        let syn = Self.packet(seq: 1000, flags: TCPSegment.syn)
        #expect(syn.opens && syn.sequence == 1000)
        Self.expectStep(&book, syn, .accept)
        Self.expectStep(&book, Self.packet(seq: 1001, flags: TCPSegment.ack), .accept)
        // The second segment first: dropped, undecided, as often as it comes.
        let second = Self.packet(seq: 1101, flags: TCPSegment.ack, [UInt8](repeating: 1, count: 50))
        Self.expectStep(&book, second, .drop)
        Self.expectStep(&book, second, .drop)
        let first = Self.packet(seq: 1001, flags: TCPSegment.ack, [UInt8](repeating: 2, count: 100))
        Self.expectStep(&book, first, .decide)
        book.record(first, passed: false)
        Self.expectStep(&book, second, .known(passed: false))
        Self.expectStep(&book, first, .known(passed: false))
        // Sequence numbers wrap.
        Self.expectStep(&book, Self.packet(seq: .max, flags: TCPSegment.syn, sport: 2), .accept)
        Self.expectStep(&book, Self.packet(seq: 0, flags: TCPSegment.ack, sport: 2, [1]), .decide)
        // Data in the SYN (TCP Fast Open) decides.
        Self.expectStep(&book, Self.packet(seq: 5, flags: TCPSegment.syn, sport: 3, [1]), .decide)
        // A flow not seen opening.
        Self.expectStep(&book, Self.packet(seq: 5, flags: TCPSegment.ack, sport: 4, [1]), .unknown)
    }

    /// F1: a new connection on the same four-tuple (its SYN) forgets the old verdict.
    @Test func aNewConnectionOnTheSameFourTupleIsDecidedAgain() {
        var book = FlowBook()
        Self.expectStep(&book, Self.packet(seq: 1000, flags: TCPSegment.syn), .accept)
        let hello = Self.packet(seq: 1001, flags: TCPSegment.ack, [1, 2, 3])
        Self.expectStep(&book, hello, .decide)
        book.record(hello, passed: true)
        Self.expectStep(&book, Self.packet(seq: 1004, flags: TCPSegment.ack | 0x04), .accept)
        Self.expectStep(&book, Self.packet(seq: 777, flags: TCPSegment.syn), .accept)
        Self.expectStep(&book, Self.packet(seq: 1001, flags: TCPSegment.ack, [1, 2, 3]), .drop)
        Self.expectStep(&book, Self.packet(seq: 778, flags: TCPSegment.ack, [4, 5, 6]), .decide)
    }

    /// The book is bounded: decided flows are forgotten first, then new SYNs dropped.
    @Test func theFlowBookIsBounded() {
        var book = FlowBook()
        for port in 0..<FlowBook.maxFlows {
            let syn = Self.packet(seq: 1, flags: TCPSegment.syn, sport: UInt16(port))
            Self.expectStep(&book, syn, .accept)
            if port % 2 == 0 { book.record(Self.packet(seq: 2, flags: TCPSegment.ack, sport: UInt16(port), [1]), passed: true) }
        }
        Self.expectStep(&book, Self.packet(seq: 1, flags: TCPSegment.syn, sport: 60000), .accept)
        #expect(book.count == FlowBook.maxFlows / 2 + 1)
        // Undecided flows keep their place.
        Self.expectStep(&book, Self.packet(seq: 2, flags: TCPSegment.ack, sport: 1, [1]), .decide)
        var full = FlowBook()
        for port in 0..<FlowBook.maxFlows { _ = full.step(Self.packet(seq: 1, flags: TCPSegment.syn, sport: UInt16(port))) }
        Self.expectStep(&full, Self.packet(seq: 1, flags: TCPSegment.syn, sport: 60000), .drop)
        Self.expectStep(&full, Self.packet(seq: 1, flags: TCPSegment.syn, sport: 7), .accept)
    }

    /// F5: the stub's (address, name) memory is capped, and expired entries make room.
    @Test func resolvedNamesAreBounded() {
        var names = ResolvedNames(capacity: 3000)
        let address: [UInt8] = [10, 0, 0, 2]
        for i in 0..<3000 {
            let ok1 = Self.room(&names, for: "n\(i).a.test", at: [address], now: 0)
            #expect(ok1)
            names.remember("n\(i).a.test", [address: 10], now: 0)
        }
        #expect(names.count == 3000)
        let ok2 = Self.room(&names, for: "more.a.test", at: [address], now: 1)
        #expect(!ok2)
        let ok3 = Self.room(&names, for: "n5.a.test", at: [address], now: 1)
        #expect(ok3, "a name already there needs no room")
        #expect(names.resolved("n5.a.test", to: address, now: 5))
        #expect(!names.resolved("n5.a.test", to: [10, 0, 0, 3], now: 5))
        // Expired: purged when room is needed.
        #expect(!names.resolved("n5.a.test", to: address, now: 11))
        let ok4 = Self.room(&names, for: "more.a.test", at: [address], now: 11)
        #expect(ok4)
        #expect(names.count == 0)
    }
}
