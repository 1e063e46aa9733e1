import Foundation
import Testing
@testable import SandboxPolicy

/// Allow rules naming hosts (issue 17): what parses, what is refused and why.
@Suite struct HostRulePolicyTests {
    @Test func hostRulesMixWithCIDRRules() throws {
        let s = PolicyScratch()
        s.write("p.toml", """
            [network]
            mode = "egress"
            allow = [{ host = "PyPI.org.", ports = [443] }, { cidr = "192.0.2.0/24", ports = [22] }, { host = "*.example.test", ports = [443, 8443] }]
            upstream_dns = ["192.0.2.53"]
            deny_resolved = ["10.0.0.0/8"]
            """)
        let n = try s.load("p.toml").network
        #expect(n.allowHosts.map(\.host.description) == ["pypi.org", "*.example.test"])
        #expect(n.allowHosts[1].ports == [443, 8443] && n.allowHosts[1].proto == .tcp)
        #expect(n.allow.map(\.cidr.description) == ["192.0.2.0/24"])
        #expect(n.upstreamDNS.map(\.description) == ["192.0.2.53"])
        #expect(n.denyResolved.map(\.description) == ["10.0.0.0/8"])
    }

    @Test func aWildcardMatchesLabelsBelowOnly() throws {
        let w = try #require(HostPattern("*.example.test"))
        #expect(w.matches("a.example.test") && w.matches("a.b.Example.TEST."))
        #expect(!w.matches("example.test") && !w.matches("aexample.test") && !w.matches("example.test.evil"))
        let e = try #require(HostPattern("example.test"))
        #expect(e.matches("EXAMPLE.test.") && !e.matches("a.example.test"))
    }

    @Test(arguments: [
        ("*", "may only be the whole first label"), ("*.com", "at least two labels"), ("a.*.b", "may only be the whole first label"),
        ("*example.test", "may only be the whole first label"), ("a..b", "empty label"), ("-a.b", "starts or ends"),
        ("a b.c", "letters, digits"), ("192.0.2.1", "an address is not a host name"), ("", "it is empty"),
    ])
    func badNamesAreRefused(_ name: String, _ why: String) {
        let s = PolicyScratch()
        s.write("p.toml", "[network]\nmode = \"egress\"\nallow = [{ host = \"\(name)\", ports = [443] }]\n")
        let d = s.diagnostics("p.toml")
        #expect(d.first?.keyPath == "network.allow[0].host", "\(d)")
        #expect(d.first?.message.contains(why) == true, "\(d)")
    }

    @Test func malformedRulesSayWhatToWrite() {
        let s = PolicyScratch()
        let cases: [(String, String, String)] = [
            ("allow = [{ host = \"a.test\", ports = [] }]", "network.allow[0].ports", "empty ports list"),
            ("allow = [{ host = \"a.test\", cidr = \"192.0.2.0/24\", ports = [1] }]", "network.allow[0]", "either cidr or host"),
            ("allow = [{ host = \"a.test\", ports = [443], proto = \"udp\" }]", "network.allow[0].ports", "QUIC"),
            ("allow = [{ ports = [443] }]", "network.allow[0]", "missing cidr or host"),
            ("dns = [\"192.0.2.53\"]\nallow = [{ host = \"a.test\", ports = [443] }]", "network.dns", "upstream_dns"),
            ("upstream_dns = [\"192.0.2.53\"]", "network.upstream_dns", "only host rules"),
            ("deny_resolved = [\"10.0.0.0/8\"]", "network.deny_resolved", "only host rules"),
            // Ports 53 and 853 with host rules: refused in the kernel before any rule (F6a).
            ("allow = [{ host = \"a.test\", ports = [443] }, { cidr = \"192.0.2.0/24\", ports = [53], proto = \"udp\" }]", "network.allow",
             "{ cidr = \"192.0.2.0/24\" } lists port 53, which host rules never open"),
            ("allow = [{ host = \"a.test\", ports = [443, 853] }]", "network.allow", "{ host = \"a.test\" } lists port 853"),
            ("allow = [{ host = \"a.test\", ports = [443] }]\nupstream_dns = [\"resolver\"]", "network.upstream_dns[0]", "invalid IP address"),
        ]
        for (i, (body, key, text)) in cases.enumerated() {
            s.write("p\(i).toml", "[network]\nmode = \"egress\"\n\(body)\n")
            let d = s.diagnostics("p\(i).toml")
            #expect(d.contains { $0.keyPath == key && $0.message.contains(text) }, "\(body): \(d)")
        }
        s.write("none.toml", "[network]\nallow = [{ host = \"a.test\", ports = [443] }]\n")
        #expect(s.diagnostics("none.toml").contains { $0.message.contains("host rules need network.mode = \"egress\"") })
    }
}
