import Foundation
import SandboxPlan
import SandboxPolicy
import Testing

/// The egress ruleset the planner renders (issue 12, items 2 and 5): the connection
/// cap, DNS only as queries to the resolvers, and what a broad allow rule never opens.
/// Pure; the kernel side is attacked in IntegrationTests (KernelResourceTests,
/// EgressScopeTests).
struct NetworkRulesTests {
    /// The host of these tests: eth0 192.0.2.2 (broadcast 192.0.2.255), the standard
    /// bridge (gateway 10.203.0.1, subnet 10.203.0.0/16), an IPv6 address.
    static let hostAddresses = ["192.0.2.2", "192.0.2.255", "10.203.0.1", "10.203.0.0/16", "2001:db8::5"]

    func compile(_ network: String, hostAddresses: [String] = NetworkRulesTests.hostAddresses) throws -> RunPlan {
        let p = try policy("name = \"net\"\n[network]\nmode = \"egress\"\n" + network)
        var facts = host(uid: 0)
        facts.hostAddresses = hostAddresses
        return try PlanCompiler(host: facts).compile(p, argv: ["sh"], runId: "r1")
    }

    func ruleset(_ network: String, hostAddresses: [String] = NetworkRulesTests.hostAddresses) throws -> [String] {
        try (compile(network, hostAddresses: hostAddresses).network.nftRuleset ?? "")
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func planError(_ network: String) -> PlanError? {
        do { _ = try compile(network); return nil } catch let e as PlanError { return e } catch { return nil }
    }

    @Test func connectionCapDefaultsTo256AndFollowsThePolicy() throws {
        let d = try ruleset("dns = [\"10.203.0.1\"]")
        #expect(d.contains("ct count over 256 goto refuse_limit"))
        // A flow already admitted passes before the count (retransmitted SYNs).
        let admit = d.firstIndex(of: "chain admit {")!
        // Then the count, then a rate (closed connections stay in the host's table), each
        // refused through a chain of its own: the result tells them from "not allowed".
        #expect(Array(d[(admit + 1)...(admit + 4)]) == ["ct status confirmed accept", "ct count over 256 goto refuse_limit",
                                                        "limit rate over 32/second burst 256 packets goto refuse_rate", "accept"])
        let small = try ruleset("max_connections = 64")
        #expect(small.contains("ct count over 64 goto refuse_limit") && small.contains("limit rate over 8/second burst 64 packets goto refuse_rate"))
        // The plan carries the same numbers for the result's hints.
        #expect(try compile("max_connections = 64").network.connections == ConnectionLimits(max: 64, perSecond: 8, burst: 64))
        #expect(try compile("dns = [\"10.203.0.1\"]").network.connections == ConnectionLimits(max: 256, perSecond: 32, burst: 256))
        // Every new connection that is allowed goes through admit; nothing accepts directly
        // after the established rule.
        let r = try ruleset("dns = [\"10.203.0.1\"]\nallow = [{ cidr = \"192.0.2.128/25\", ports = [443] }]")
        let out = r[r.firstIndex(of: "chain output {")!..<r.firstIndex(of: "chain dns {")!]
        #expect(out.filter { $0.hasSuffix(" accept") } == ["oifname \"lo\" accept", "ct state established,related accept"])
        #expect(out.contains("ip daddr 192.0.2.128/25 tcp dport { 443 } goto admit"))
        #expect(out.last == "}" && out.dropLast().last == "goto refuse")
    }

    @Test func dnsPassesOnlyQueriesToTheResolvers() throws {
        let r = try ruleset("dns = [\"10.203.0.1\", \"9.9.9.9\"]")
        // Every UDP datagram to a resolver is checked, before `established` lets a flow's
        // later datagrams through.
        let established = r.firstIndex(of: "ct state established,related accept")!
        for dns in ["10.203.0.1", "9.9.9.9"] {
            let jump = try #require(r.firstIndex(of: "ip daddr \(dns) udp dport 53 jump dns"))
            #expect(jump < established)
            #expect(r.contains("ip daddr \(dns) udp dport 53 goto admit"))
            #expect(r.contains("ip daddr \(dns) tcp dport 53 goto admit"))
        }
        let dns = r[r.firstIndex(of: "chain dns {")!...]
        for rule in ["meta length > 576 goto refuse_dns", "udp length < 25 goto refuse_dns", "@th,80,5 != 0 goto refuse_dns",
                     "@th,96,16 != 1 goto refuse_dns", "@th,112,32 != 0 goto refuse_dns", "@th,144,16 > 1 goto refuse_dns",
                     "limit rate over 100/second burst 200 packets goto refuse_dns"] {
            #expect(dns.contains(rule), "\(rule)")
        }
        // No resolver, no DNS rule at all.
        #expect(!(try ruleset("allow = [{ cidr = \"192.0.2.128/25\", ports = [443] }]")).contains { $0.contains("dport 53") })
    }

    @Test func aBroadRuleNeverOpensTheHostTheBridgeOrLinkLocal() throws {
        let r = try ruleset("""
            dns = ["10.203.0.1"]
            allow = [
              { cidr = "0.0.0.0/0", ports = [8080] },
              { cidr = "10.203.0.1/32", ports = [9090] },
              { cidr = "169.254.169.254/32", ports = [80] },
              { cidr = "::/0", ports = [443] },
            ]
            """)
        let drop4 = "ip daddr { 0.0.0.0/8, 10.203.0.0/16, 127.0.0.0/8, 169.254.0.0/16, 192.0.2.2, 192.0.2.255, 224.0.0.0/4, 255.255.255.255 } goto refuse"
        let drop6 = "ip6 daddr { ::/96, 64:ff9b::/96, 64:ff9b:1::/48, 2001::/32, 2001:db8::5, 2002::/16, fd00:ec2::254, fe80::/10, fec0::/10, ff00::/8 } goto refuse"
        let i4 = try #require(r.firstIndex(of: drop4), "\(r.joined(separator: "\n"))")
        let i6 = try #require(r.firstIndex(of: drop6), "\(r.joined(separator: "\n"))")
        // Exact rules for the host's gateway and for the metadata address come first;
        // the broad ones after the drops.
        #expect(r.firstIndex(of: "ip daddr 10.203.0.1/32 tcp dport { 9090 } goto admit")! < i4)
        #expect(r.firstIndex(of: "ip daddr 169.254.169.254/32 tcp dport { 80 } goto admit")! < i4)
        #expect(r.firstIndex(of: "ip daddr 0.0.0.0/0 tcp dport { 8080 } goto admit")! > i4)
        #expect(r.firstIndex(of: "ip6 daddr ::/0 tcp dport { 443 } goto admit")! > i6)
        // The resolver (the gateway, named exactly) comes before the drops too.
        #expect(r.firstIndex(of: "ip daddr 10.203.0.1 udp dport 53 goto admit")! < i4)
    }

    @Test func onlyRangesARuleOverlapsAreRendered() throws {
        // 10.0.0.0/8 covers the bridge and nothing else that is protected.
        let r = try ruleset("allow = [{ cidr = \"10.0.0.0/8\", ports = [443] }]")
        #expect(r.contains("ip daddr { 10.203.0.0/16 } goto refuse"), "\(r.joined(separator: "\n"))")
        #expect(!r.contains { $0.hasPrefix("ip6 daddr {") })
        // Rules that overlap nothing protected (agent-net's): no drop line at all.
        let g = try ruleset("allow = [{ cidr = \"140.82.112.0/20\", ports = [443] }, { cidr = \"2606:50c0::/32\", ports = [443] }]")
        #expect(!g.contains { $0.hasSuffix("} goto refuse") && $0.contains("daddr {") })
    }

    @Test func rulesInsideAProtectedRangeAreRefused() {
        // Another run's address: never, not even exactly.
        let other = planError("allow = [{ cidr = \"10.203.0.7/32\", ports = [80] }]")
        #expect(other?.key == "network.allow[0]")
        #expect(other?.message.contains("10.203.0.0/16") == true, "\(String(describing: other))")
        #expect(planError("allow = [{ cidr = \"10.203.0.0/24\", ports = [80] }]")?.key == "network.allow[0]")
        // Link-local as a whole, loopback, multicast: refused; an exact address is not.
        let ll = planError("allow = [{ cidr = \"169.254.0.0/16\", ports = [80] }]")
        #expect(ll?.message.contains("name the one address exactly") == true, "\(String(describing: ll))")
        #expect(planError("allow = [{ cidr = \"127.0.0.0/8\", ports = [80] }]") != nil)
        #expect(planError("allow = [{ cidr = \"224.0.0.0/24\", ports = [5353], proto = \"udp\" }]") != nil)
        #expect(planError("allow = [{ cidr = \"fe80::/64\", ports = [80] }]") != nil)
        // IPv6 forms of an IPv4 address (NAT64, 6to4, Teredo, IPv4-compatible) and
        // site-local (red-team F5).
        for cidr in ["64:ff9b::a9fe:0/112", "64:ff9b:1::/64", "2002:a9fe:a9fe::/48", "2001:0:a9fe::/48", "::a9fe:0/112", "fec0::/16"] {
            #expect(planError("allow = [{ cidr = \"\(cidr)\", ports = [80] }]") != nil, "\(cidr)")
        }
        #expect(planError("allow = [{ cidr = \"169.254.169.254/32\", ports = [80] }]") == nil)
        #expect(planError("allow = [{ cidr = \"192.0.2.2/32\", ports = [22] }]") == nil)
        // A resolver that is another run's address.
        #expect(planError("dns = [\"10.203.4.4\"]")?.key == "network.dns")
    }

    @Test func hostAddressesOrderAndJunkDoNotChangeThePlan() throws {
        let net = "allow = [{ cidr = \"0.0.0.0/0\", ports = [443] }]"
        let a = try compile(net)
        let b = try compile(net, hostAddresses: Self.hostAddresses.reversed() + ["not-an-address", "10.203.0.1", "1.2.3.4/99"])
        #expect(a.network.nftRuleset == b.network.nftRuleset)
        // Without host facts the fixed ranges still hold.
        let bare = try ruleset(net, hostAddresses: [])
        #expect(bare.contains("ip daddr { 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4, 255.255.255.255 } goto refuse"))
    }

    @Test func theRulesetLoadsAsOneTableWithItsChains() throws {
        let text = try compile("dns = [\"10.203.0.1\"]").network.nftRuleset ?? ""
        for chain in ["chain output {", "chain dns {", "chain admit {", "chain refuse {", "chain refuse_limit {",
                      "chain refuse_rate {", "chain refuse_dns {"] {
            #expect(text.contains(chain))
        }
        #expect(text.contains("type filter hook output priority filter; policy drop;"))
    }

    /// Each refusal chain records into its own sets (the result's `egressDenied[].reason`
    /// is the set a destination is in), then resets or drops exactly as `refuse` does.
    @Test func eachReasonRecordsInItsOwnSets() throws {
        let r = try ruleset("dns = [\"10.203.0.1\"]")
        for (chain, v4, v6) in [("refuse", "denied4", "denied6"), ("refuse_limit", "limit4", "limit6"),
                                ("refuse_rate", "rate4", "rate6"), ("refuse_dns", "dns4", "dns6")] {
            #expect(r.contains("set \(v4) {") && r.contains("set \(v6) {"), "\(v4), \(v6)")
            let start = try #require(r.firstIndex(of: "chain \(chain) {"))
            let body = Array(r[(start + 1)...(start + 10)])
            #expect(body == [
                "meta l4proto tcp ip daddr . meta l4proto . th dport @\(v4) counter reject with tcp reset",
                "meta l4proto tcp add @\(v4) { ip daddr . meta l4proto . th dport } reject with tcp reset",
                "meta l4proto udp ip daddr . meta l4proto . th dport @\(v4) counter drop",
                "meta l4proto udp add @\(v4) { ip daddr . meta l4proto . th dport } drop",
                "meta l4proto tcp ip6 daddr . meta l4proto . th dport @\(v6) counter reject with tcp reset",
                "meta l4proto tcp add @\(v6) { ip6 daddr . meta l4proto . th dport } reject with tcp reset",
                "meta l4proto udp ip6 daddr . meta l4proto . th dport @\(v6) counter drop",
                "meta l4proto udp add @\(v6) { ip6 daddr . meta l4proto . th dport } drop",
                "counter drop", "}",
            ], "\(chain): \(body)")
        }
    }
}

/// Host rules (issue 17): the stub in the plan, the sets and their rules, DNS closed
/// to everything but the stub.
struct HostRuleRulesetTests {
    func compile(_ network: String, resolvers: [String] = ["192.0.2.53"]) throws -> RunPlan {
        try explained(network, resolvers: resolvers).plan
    }

    /// The plan for the `[network]` lines and `sandbox explain`'s text of it.
    func explained(_ network: String, resolvers: [String] = ["192.0.2.53"]) throws -> (plan: RunPlan, text: String) {
        let p = try policy("name = \"net\"\n[network]\nmode = \"egress\"\n" + network)
        var facts = host(uid: 0)
        facts.hostAddresses = NetworkRulesTests.hostAddresses
        facts.hostResolvers = resolvers
        let plan = try PlanCompiler(host: facts).compile(p, argv: ["sh"], runId: "r1")
        return (plan, Explanation.text(for: plan, policy: p, host: facts))
    }

    @Test func theStubIsTheOnlyResolverAndEachRuleHasItsSets() throws {
        let plan = try compile("allow = [{ host = \"ok.test\", ports = [8080] }, { host = \"*.cdn.test\", ports = [443] }, { cidr = \"198.51.100.0/24\", ports = [443], proto = \"udp\" }]")
        let stub = try #require(plan.network.stub)
        #expect(plan.network.resolvConf == "nameserver 127.0.0.53\noptions edns0\n")
        #expect(stub.address == "127.0.0.53" && stub.upstream == ["192.0.2.53"] && stub.upstreamSource.contains("resolv.conf"))
        #expect(stub.names.map(\.set4) == ["name0_4", "name1_4"] && stub.names[1].host.wildcard)
        #expect(stub.ttl.min == 5 && stub.ttl.max == 3600)
        // The fixed ranges and the host's own addresses and bridge, always.
        for range in ["127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8", "224.0.0.0/4", "10.203.0.0/16", "192.0.2.2", "::/96", "fe80::/10",
                      "64:ff9b::/96", "64:ff9b:1::/48", "2001::/32", "2002::/16", "fec0::/10", "::ffff:0:0/96"] {
            #expect(stub.denyResolved.contains(range), "\(range): \(stub.denyResolved)")
        }
        let r = (plan.network.nftRuleset ?? "").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let lo = try #require(r.firstIndex(of: "oifname \"lo\" accept"))
        #expect(r[lo + 1] == "meta l4proto { tcp, udp } th dport { 53, 853 } goto refuse")
        // TCP flows of host rules are marked for the server name check.
        #expect(r.contains("ip daddr @name0_4 tcp dport { 8080 } ct mark set 0x5a1 goto resolved"))
        #expect(r.contains("ip6 daddr @name1_6 tcp dport { 443 } ct mark set 0x5a1 goto resolved"))
        // Its tables: after the run's own chain, fail closed (policy drop; the queue rule
        // the supervisor appends has no bypass), a refused flow reset.
        let text = plan.network.nftRuleset ?? ""
        #expect(text.contains("table ip sandbox_sni {") && text.contains("table ip6 sandbox_sni {"))
        #expect(r.filter { $0 == "type filter hook output priority filter + 1; policy drop;" }.count == 2)
        #expect(r.contains("ct mark != 0x5a1 accept") && r.contains("meta mark 0x5a2 ct mark set 0x5a2 accept"))
        #expect(r.contains("ct mark 0x5a3 meta l4proto tcp reject with tcp reset"))
        #expect(!text.contains("bypass") && !text.contains("queue"))
        // The kernel checks deny_resolved again (red-team F6b): a set entry for a
        // denied address is refused, then the rest admitted.
        let chain = try #require(r.firstIndex(of: "chain resolved {"), "\(r.joined(separator: "\n"))")
        #expect(r[chain + 1].hasPrefix("ip daddr { 0.0.0.0/8, 10.203.0.0/16, 127.0.0.0/8, 169.254.0.0/16,") && r[chain + 1].hasSuffix("} goto refuse"), "\(r[chain + 1])")
        #expect(r[chain + 2].hasPrefix("ip6 daddr { ::/96, ::ffff:0:0/96, 64:ff9b::/96, ") && r[chain + 2].contains("2002::/16")
                && r[chain + 2].hasSuffix("} goto refuse"), "\(r[chain + 2])")
        #expect(r[chain + 3] == "goto admit")
        #expect(r.contains("set name1_4 {") && r.contains("flags timeout"))
        // UDP 443 only by the CIDR rule.
        #expect(r.filter { $0.contains("udp dport { 443 }") } == ["ip daddr 198.51.100.0/24 udp dport { 443 } goto admit"])
    }

    @Test func upstreamAndDenyResolvedFromThePolicy() throws {
        let plan = try compile("allow = [{ host = \"ok.test\", ports = [443] }]\nupstream_dns = [\"203.0.113.53\"]\ndeny_resolved = [\"10.0.0.0/8\", \"172.16.0.0/12\"]")
        let stub = try #require(plan.network.stub)
        #expect(stub.upstream == ["203.0.113.53"] && stub.upstreamSource == "network.upstream_dns")
        #expect(stub.denyResolved.contains("10.0.0.0/8") && stub.denyResolved.contains("172.16.0.0/12"))
        // 10.203.0.0/16 lies inside 10.0.0.0/8: listed once.
        #expect(!stub.denyResolved.contains("10.203.0.0/16"))
    }

    /// explain says under a wildcard rule that its sub-labels reach the zone's DNS
    /// servers (red-team F4); not under an exact name.
    @Test func explainNamesTheWildcardChannel() throws {
        let text = try explained("allow = [{ host = \"*.cdn.test\", ports = [443] }, { host = \"ok.test\", ports = [443] }]").text
        let notes = text.split(separator: "\n").filter { $0.contains("is asked upstream, so the run can send data to") }
        #expect(notes.count == 1 && notes[0].contains("cdn.test's DNS servers") && notes[0].contains("100 questions a second"), "\(text)")
    }

    /// The server name check is in the plan (`network.stub.serverNameCheck`) and in
    /// explain, with the TCP host rules and ports it covers, what it reads and what is
    /// reset; not for a UDP host rule. Control: without a TCP host rule, neither.
    @Test func planAndExplainShowTheServerNameCheck() throws {
        let (plan, text) = try explained("allow = [{ host = \"ok.test\", ports = [8443, 8080] }, { host = \"*.cdn.test\", ports = [443] }, { host = \"u.test\", ports = [5000], proto = \"udp\" }, { cidr = \"198.51.100.0/24\", ports = [443] }]")
        let check = try #require(plan.network.stub?.serverNameCheck)
        #expect(check.rules.map { "\($0.host) \($0.ports)" } == ["ok.test [8080, 8443]", "*.cdn.test [443]"])
        #expect(check.claims == [.tlsServerName, .httpHost] && check.resetWhen == [.notAllowed, .notResolved, .noName, .ech])
        let json = String(decoding: plan.canonicalJSON(), as: UTF8.self)
        #expect(json.contains(#""serverNameCheck":{"claims":["tls_server_name","http_host"],"resetWhen":["not_allowed","not_resolved","no_name","ech"],"rules":[{"host":"ok.test","ports":[8080,8443]},{"host":"*.cdn.test","ports":[443]}]}"#), "\(json)")
        let lines = text.split(separator: "\n").filter { $0.contains("server name check") }
        #expect(lines.count == 1, "\(text)")
        let line = String(lines.first ?? "")
        for part in ["ok.test 8080, 8443", "*.cdn.test 443", "TLS server_name", "HTTP Host", "resolved to that address in this run",
                     "allowed on that port", "mismatched name", "encrypted ClientHello (ECH)", "reset", "sniDenied"] {
            #expect(line.contains(part), "\(part): \(line)")
        }
        #expect(!line.contains("u.test") && !line.contains("198.51.100"), "\(line)")
        // Control: a UDP host rule alone has the stub, not the check.
        let udp = try explained("allow = [{ host = \"u.test\", ports = [5000], proto = \"udp\" }]")
        #expect(udp.plan.network.stub != nil && udp.plan.network.stub?.serverNameCheck == nil)
        #expect(!udp.text.contains("server name check"))
    }

    @Test func noResolverAnywhereIsAPlanError() {
        #expect(throws: PlanError.self) { try compile("allow = [{ host = \"ok.test\", ports = [443] }]", resolvers: []) }
    }

    @Test func withoutHostRulesNothingChanges() throws {
        let plan = try compile("dns = [\"10.203.0.1\"]\nallow = [{ cidr = \"198.51.100.0/24\", ports = [443] }]")
        #expect(plan.network.stub == nil)
        #expect(!(plan.network.nftRuleset ?? "").contains("853"))
    }
}
