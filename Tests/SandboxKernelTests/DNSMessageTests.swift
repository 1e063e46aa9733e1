import Testing
@testable import SandboxKernel

/// The DNS stub's message handling (issue 17): strict queries, answers read with
/// compression but no loops, replies built from scratch.
@Suite struct DNSMessageTests {
    static func query(_ name: String, type: UInt16 = 1, id: UInt16 = 0x1234, flags: UInt16 = 0x0100,
                      counts: (UInt16, UInt16, UInt16, UInt16) = (1, 0, 0, 0), tail: [UInt8] = []) -> [UInt8] {
        var b: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), UInt8(flags >> 8), UInt8(flags & 0xff)]
        for c in [counts.0, counts.1, counts.2, counts.3] { b += [UInt8(c >> 8), UInt8(c & 0xff)] }
        b += DNSMessage.encodeName(name) + [UInt8(type >> 8), UInt8(type & 0xff), 0, 1]
        return b + tail
    }

    @Test func aQueryIsReadStrictly() throws {
        let q = try #require(DNSMessage.parseQuery(Self.query("Ok.Test")))
        #expect(q.name == "ok.test" && q.type == 1 && q.nameIsHostname && q.ednsSize == nil && q.recursionDesired)
        let opt: [UInt8] = [0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]
        #expect(DNSMessage.parseQuery(Self.query("ok.test", counts: (1, 0, 0, 1), tail: opt))?.ednsSize == 4096)
        // A response, another opcode, two questions, answer records, trailing bytes: not a query.
        #expect(DNSMessage.parseQuery(Self.query("ok.test", flags: 0x8100)) == nil)
        #expect(DNSMessage.parseQuery(Self.query("ok.test", flags: 0x2100)) == nil)
        #expect(DNSMessage.parseQuery(Self.query("ok.test", counts: (2, 0, 0, 0))) == nil)
        #expect(DNSMessage.parseQuery(Self.query("ok.test", counts: (1, 1, 0, 0))) == nil)
        #expect(DNSMessage.parseQuery(Self.query("ok.test", tail: [1, 2, 3])) == nil)
        #expect(DNSMessage.parseQuery(Array("probe".utf8)) == nil)
        // A "." inside a label must not pass for two labels.
        var dotted = Self.query("xok.test")
        dotted[13] = UInt8(ascii: ".")
        #expect(DNSMessage.parseQuery(dotted)?.nameIsHostname == false)
        #expect(DNSMessage.parseQuery(dotted)?.name == "\\046ok.test")
    }

    /// A name with bytes no host name holds is shown escaped (RFC 1035 `\DDD`): a
    /// quote, newline or escape byte from the client never reaches the result as such.
    @Test func aNameThatIsNotAHostNameIsEscaped() throws {
        let q = try #require(DNSMessage.parseQuery(Self.query("A\"b\n\u{1b}.Test")))
        #expect(q.name == "a\\034b\\010\\027.test" && !q.nameIsHostname)
        #expect(DNSMessage.parseQuery(Self.query(""))?.name == ".")
    }

    @Test func answersAreReadWithCompressionButNoLoops() throws {
        // ok.test A → CNAME c.test (pointer to the question), c.test A 192.0.2.7
        var r = Self.query("ok.test", flags: 0x8180, counts: (1, 2, 0, 0))
        r += [0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, UInt8(ascii: "c"), 0xc0, 15]
        r += [1, UInt8(ascii: "c"), 0xc0, 15, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 7]
        let resp = try #require(DNSMessage.parseResponse(r))
        #expect(resp.answers.count == 2)
        #expect(resp.answers[0].type == 5 && resp.answers[0].target == "c.test")
        #expect(resp.answers[1].name == "c.test" && resp.answers[1].data == [192, 0, 2, 7] && resp.answers[1].ttl == 30)
        // A pointer to itself (or forward) is refused.
        var loop = Self.query("ok.test", flags: 0x8180, counts: (1, 1, 0, 0))
        let at = UInt8(loop.count)
        loop += [0xc0, at, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]
        #expect(DNSMessage.parseResponse(loop) == nil)
    }

    @Test func repliesAreBuiltAndTruncatedToTheClientsSize() throws {
        let q = try #require(DNSMessage.parseQuery(Self.query("ok.test")))
        let nx = DNSMessage.reply(to: q, rcode: .nxDomain)
        #expect(nx[0] == 0x12 && nx[1] == 0x34 && nx[3] & 0xf == 3 && nx[2] & 0x80 != 0)
        let many = (0..<60).map { DNSMessage.Record(name: "ok.test", type: 1, ttl: 5, data: [192, 0, 2, UInt8($0)]) }
        let small = DNSMessage.reply(to: q, rcode: .noError, answers: many, limit: 512)
        #expect(small.count <= 512 && small[2] & 0x02 != 0, "TC set when answers are left out")
        let back = try #require(DNSMessage.parseResponse(small))
        #expect(back.answers.count > 0 && back.answers.count < 60 && back.truncated)
        let tcp = DNSMessage.reply(to: q, rcode: .noError, answers: many, limit: 65535)
        #expect(DNSMessage.parseResponse(tcp)?.answers.count == 60)
    }
}
