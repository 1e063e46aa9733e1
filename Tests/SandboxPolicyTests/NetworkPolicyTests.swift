import Foundation
import Testing
@testable import SandboxPolicy

/// `network.max_connections` (issue 12: a per-run connection cap).
@Suite struct NetworkPolicyTests {
    @Test func maxConnectionsDefaultsAndIsInherited() throws {
        let s = PolicyScratch()
        s.write("base.toml", "[network]\nmode = \"egress\"\n")
        s.write("mid.toml", "extends = [\"base\"]\n[network]\nmax_connections = 64\n")
        s.write("child.toml", "extends = [\"mid\"]\n[network]\nmax_connections = 1000\n")
        #expect(try s.load("base.toml").network.maxConnections == 256)
        #expect(try s.load("mid.toml").network.maxConnections == 64)
        #expect(try s.load("child.toml").network.maxConnections == 1000)
    }

    @Test(arguments: ["0", "-1", "65537", "1000000"])
    func maxConnectionsOutOfRangeIsAnError(_ value: String) {
        let s = PolicyScratch()
        s.write("p.toml", "[network]\nmode = \"egress\"\nmax_connections = \(value)\n")
        let d = s.diagnostics("p.toml")
        #expect(d.count == 1)
        #expect(d.first?.keyPath == "network.max_connections")
        #expect(d.first?.message.contains("out of range; use 1…65536") == true, "\(d)")
        #expect(d.first?.line == 3)
    }

    @Test func maxConnectionsMustBeAnInteger() {
        let s = PolicyScratch()
        s.write("p.toml", "[network]\nmode = \"egress\"\nmax_connections = \"many\"\n")
        let d = s.diagnostics("p.toml")
        #expect(d.first?.keyPath == "network.max_connections", "\(d)")
    }

    @Test func shippedBaseDeniesLinuxAIO() throws {
        let p = try PolicyLoader(searchPath: [repositoryRoot() + "/Policies"],
                                 profileSearchPath: [repositoryRoot() + "/Profiles/seccomp"])
            .load(path: repositoryRoot() + "/Policies/base.toml")
        for name in ["io_setup", "io_submit", "io_getevents", "io_pgetevents", "io_cancel", "io_destroy"] {
            #expect(p.seccomp.deny.contains(name), "\(name)")
        }
        // The default profile no longer lists them either.
        let text = try String(contentsOfFile: repositoryRoot() + "/Profiles/seccomp/default.json", encoding: .utf8)
        #expect(!text.contains("\"io_setup\""))
    }
}
