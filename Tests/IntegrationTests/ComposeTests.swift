import Foundation
import Testing

/// Policies compose through the built binary (issue 18, acceptance 2): a child of the
/// shipped `ci-build` that replaces its allow list shows only its own rules in
/// `explain` and in the nft ruleset of `plan`, and `memory = "!"` removes the limit.
/// Each claim has its control: the same child without the edits shows the inherited
/// rules and limit, so a merge that ignored `replace` or `"!"` fails here.
@Suite struct ComposeTests {
    static let mirror = "192.0.2.0/24"
    static let inherited = ["151.101.0.0/16", "146.75.0.0/17", "104.16.0.0/13", "140.82.112.0/20", "185.199.108.0/22"]

    /// A child of ci-build in `dir`'s policy directory; `network` and `resources` are
    /// the bodies of those tables.
    func child(in dir: String, name: String, network: String, resources: String) -> String {
        Harness.policy("""
            name = "\(name)"
            extends = ["ci-build"]
            [network]
            \(network)
            [resources]
            \(resources)
            """, in: dir, name: "\(name).toml")
    }

    func plan(_ policy: String, in dir: String) throws -> [String: Any] {
        let out = try Harness.sandbox(["plan", "--policy", policy, "--", "true"], cwd: dir)
        #expect(out.status == 0, "\(out.stderr)")
        return (try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    @Test func replacedAllowListAndUnsetMemory() throws {
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let replaced = child(in: dir, name: "own-mirror",
                             network: "allow = { replace = [{ cidr = \"\(Self.mirror)\", ports = [443] }] }",
                             resources: "memory = \"!\"")
        // Control: the same child adding its rule, memory untouched.
        let added = child(in: dir, name: "plus-mirror",
                          network: "allow = [{ cidr = \"\(Self.mirror)\", ports = [443] }]", resources: "")

        let explained = try Harness.sandbox(["explain", "--policy", replaced], cwd: dir)
        #expect(explained.status == 0, "\(explained.stderr)")
        #expect(explained.stdout.contains("allow tcp to \(Self.mirror) ports 443"), "\(explained.stdout)")
        for cidr in Self.inherited { #expect(!explained.stdout.contains(cidr), "\(cidr) still allowed:\n\(explained.stdout)") }
        #expect(explained.stdout.contains("memory: unlimited"), "\(explained.stdout)")

        let control = try Harness.sandbox(["explain", "--policy", added], cwd: dir)
        #expect(control.stdout.contains("allow tcp to \(Self.mirror) ports 443"), "\(control.stdout)")
        for cidr in Self.inherited { #expect(control.stdout.contains("allow tcp to \(cidr)"), "\(control.stdout)") }
        #expect(control.stdout.contains("memory: 8 GiB"), "\(control.stdout)")

        let own = try plan(replaced, in: dir)
        let ruleset = ((own["network"] as? [String: Any])?["nftRuleset"] as? String) ?? ""
        #expect(ruleset.contains(Self.mirror), "\(ruleset)")
        for cidr in Self.inherited { #expect(!ruleset.contains(cidr), "\(cidr) in the ruleset:\n\(ruleset)") }
        #expect((own["resources"] as? [String: Any])?["memoryBytes"] == nil, "\(own["resources"] ?? "")")

        let plus = try plan(added, in: dir)
        let controlRuleset = ((plus["network"] as? [String: Any])?["nftRuleset"] as? String) ?? ""
        for cidr in Self.inherited + [Self.mirror] { #expect(controlRuleset.contains(cidr), "\(cidr) missing:\n\(controlRuleset)") }
        #expect((plus["resources"] as? [String: Any])?["memoryBytes"] as? Int == 8 << 30)
    }

    /// ci-build itself still allows the five CDN ranges, now from cdn-egress.
    @Test func ciBuildKeepsItsRulesThroughCdnEgress() throws {
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = try Harness.sandbox(["explain", "--policy", "ci-build"], cwd: dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("cdn-egress.toml"), "\(out.stdout)")
        for cidr in Self.inherited { #expect(out.stdout.contains("allow tcp to \(cidr)"), "\(out.stdout)") }
    }

    /// A misused marker is refused by `check` with file, line and key.
    @Test func misuseNamesFileLineAndKey() throws {
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bad = Harness.policy("""
            extends = ["ci-build"]
            [process]
            hostname = "!"
            [resources]
            pids = { replace = [1] }
            """, in: dir, name: "bad.toml")
        let out = try Harness.sandbox(["check", bad], cwd: dir)
        #expect(out.status == 125)
        #expect(out.stderr.contains("bad.toml:3: process.hostname: process.hostname cannot be unset"), "\(out.stderr)")
        #expect(out.stderr.contains("bad.toml:5: resources.pids: { replace = […] }"), "\(out.stderr)")
        // A removal that matches no inherited rule leaves the writer's picture wrong.
        let stale = Harness.policy("""
            extends = ["ci-build"]
            [network]
            allow = ["!198.51.100.0/24"]
            """, in: dir, name: "stale.toml")
        let staleOut = try Harness.sandbox(["check", stale], cwd: dir)
        #expect(staleOut.status == 125)
        #expect(staleOut.stderr.contains("stale.toml:3: network.allow[0]: this removal matches nothing"), "\(staleOut.stderr)")
    }
}
