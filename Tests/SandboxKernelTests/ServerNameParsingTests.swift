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
}
