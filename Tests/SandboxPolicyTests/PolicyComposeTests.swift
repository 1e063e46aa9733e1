import Foundation
import Testing
@testable import SandboxPolicy

/// How a child policy takes back what a base gave (issue 18): `{ replace = […] }` for
/// a list, `"!X"` for one entry (an allow rule by its cidr or host), `"!"` for a
/// scalar or a table key; misuse is an error with file, line and key. Each test
/// loads the base alone too (the control), so a merge that ignored the marker fails.
@Suite struct PolicyComposeTests {
    static let base = """
        [process]
        timeout = "1h"
        workdir = "{cwd}"
        group = 100
        env.pass = ["PATH", "HOME"]
        [filesystem]
        ro = ["/usr", "/etc/ssl?"]
        rw = ["{cwd}"]
        [landlock]
        connect_tcp = [80, 443]
        bind_tcp = [8080]
        min_abi = 4
        [seccomp]
        socket_families = ["unix", "inet"]
        [resources]
        memory = "1GiB"
        swap = "0"
        pids = 100
        cpu = 2
        io = 50
        rlimits = { nofile = 1024, core = 0 }
        [network]
        mode = "egress"
        allow = [
          { cidr = "10.0.0.0/8", ports = [443] },
          { cidr = "10.0.0.0/8", ports = [80], proto = "udp" },
          { cidr = "192.0.2.0/24", ports = [443] },
          { host = "pypi.org", ports = [443] },
          { host = "*.example.test", ports = [443] },
        ]
        deny_resolved = ["10.0.0.0/8", "172.16.0.0/12"]
        hosts = { "a.example" = "10.0.0.1", "b.example" = "10.0.0.2" }
        [binary]
        pin = { "/usr/bin/a" = "sha256:\(String(repeating: "a", count: 64))" }
        [audit]
        path = "/tmp/audit.log"
        """

    func scratch() -> PolicyScratch {
        let s = PolicyScratch()
        s.write("base.toml", Self.base)
        return s
    }

    @Test func controlBaseHasEverything() throws {
        let p = try scratch().load("base.toml")
        #expect(p.filesystem.ro.count == 2 && p.process.envPass == ["PATH", "HOME"])
        #expect(p.network.allow.count == 3 && p.network.allowHosts.count == 2)
        #expect(p.resources.memoryBytes == 1 << 30 && p.process.timeoutMs == 3_600_000)
        #expect(p.landlock.connectTCP == [80, 443] && p.seccomp.socketFamilies == [.unix, .inet])
    }

    @Test func replaceReplacesAndEmptyReplaceClears() throws {
        let s = scratch()
        s.write("c.toml", """
            extends = ["base"]
            [process]
            env.pass = { replace = [] }
            [filesystem]
            ro = { replace = ["/opt/tools", "/usr"] }
            [landlock]
            connect_tcp = { replace = [8443] }
            bind_tcp = ["!8080"]
            [seccomp]
            socket_families = { replace = ["unix"] }
            [network]
            deny_resolved = { replace = ["192.168.0.0/16"] }
            """)
        let p = try s.load("c.toml")
        #expect(p.process.envPass == [])
        #expect(p.filesystem.ro == [PathTemplate("/opt/tools"), PathTemplate("/usr")])
        #expect(p.landlock.connectTCP == [8443])
        #expect(p.landlock.bindTCP == [], "removing the only port leaves an empty list: no port may be bound")
        #expect(p.seccomp.socketFamilies == [.unix])
        #expect(p.network.denyResolved.map(\.description) == ["192.168.0.0/16"])
    }

    @Test func allowReplaceKeepsOnlyTheChildsRules() throws {
        let s = scratch()
        s.write("c.toml", """
            extends = ["base"]
            [network]
            allow = { replace = [{ cidr = "198.51.100.0/24", ports = [443] }] }
            deny_resolved = { replace = [] }   # filters the answers of host rules, and none are left
            """)
        let p = try s.load("c.toml")
        #expect(p.network.allow.map(\.cidr.description) == ["198.51.100.0/24"])
        #expect(p.network.allowHosts.isEmpty)
        s.write("empty.toml", "extends = [\"base\"]\n[network]\nallow = { replace = [] }\ndeny_resolved = { replace = [] }\n")
        let e = try s.load("empty.toml")
        #expect(e.network.allow.isEmpty && e.network.allowHosts.isEmpty && e.network.mode == .egress)
    }

    @Test func allowRemovalMatchesTheCidrOrHostWhateverThePorts() throws {
        let s = scratch()
        s.write("c.toml", """
            extends = ["base"]
            [network]
            allow = ["!10.0.0.0/8", "!PyPI.org.", { cidr = "203.0.113.0/24", ports = [22] }, "!203.0.113.0/24"]
            """)
        let p = try s.load("c.toml")
        // Both 10.0.0.0/8 rules (tcp 443 and udp 80) are gone; the wildcard stays: a
        // pattern removes only the rules written with that same pattern.
        #expect(p.network.allow.map(\.cidr.description) == ["192.0.2.0/24"])
        #expect(p.network.allowHosts.map(\.host.description) == ["*.example.test"])
    }

    @Test func aRemovalThatMatchesNothingIsAnErrorWithItsLine() throws {
        let s = scratch()
        s.write("c.toml", """
            extends = ["base"]
            [network]
            allow = [
              "!10.0.0.0/9",
              "!example.test",
            ]
            """)
        let d = s.diagnostics("c.toml")
        #expect(d.count == 2, "\(d)")
        #expect(d.first?.description.hasSuffix("c.toml:4: network.allow[0]: this removal matches nothing: no rule before it has cidr = \"10.0.0.0/9\" (a removal names a rule's cidr or host exactly as written there; `sandbox explain` lists the inherited rules)") == true, "\(d)")
        #expect(d.last?.keyPath == "network.allow[1]" && d.last?.line == 5, "\(d)")
    }

    @Test func unsetScalarsAndTableKeys() throws {
        let s = scratch()
        s.write("c.toml", """
            extends = ["base"]
            [process]
            timeout = "!"
            workdir = "!"
            group = "!"
            [landlock]
            connect_tcp = "!"
            min_abi = "!"
            [seccomp]
            socket_families = "!"
            profile = "!"
            [resources]
            memory = "!"
            swap = "!"
            pids = "!"
            cpu = "!"
            io = "!"
            rlimits = { core = "!" }
            [network]
            hosts = { "a.example" = "!" }
            [binary]
            pin = { "/usr/bin/a" = "!" }
            [audit]
            path = "!"
            """)
        let p = try s.load("c.toml")
        #expect(p.process.timeoutMs == nil && p.process.workdir == nil && p.process.group == nil)
        #expect(p.landlock.connectTCP == nil && p.landlock.minABI == nil && p.landlock.bindTCP == [8080])
        #expect(p.seccomp.socketFamilies == nil && p.seccomp.profile == nil)
        #expect(p.resources.memoryBytes == nil && p.resources.swapBytes == nil && p.resources.pids == nil)
        #expect(p.resources.cpu == nil && p.resources.ioWeight == nil)
        #expect(p.resources.rlimits == [.nofile: .value(1024)])
        #expect(Array(p.network.hosts.keys) == ["b.example"])
        #expect(p.binary.pin.isEmpty && p.audit.path == nil)
        // A later file may set again what an earlier one unset.
        s.write("g.toml", "extends = [\"c\"]\n[resources]\nmemory = \"2GiB\"\n")
        #expect(try s.load("g.toml").resources.memoryBytes == 2 << 30)
    }

    @Test func misuseIsAnErrorWithFileLineAndKey() throws {
        let s = scratch()
        s.write("bad.toml", """
            extends = ["base"]
            [process]
            hostname = "!"
            user = { replace = [1] }
            env.pass = "!"
            [filesystem]
            ro = { replace = ["!/usr"] }
            rw = { replace = ["/x"], also = 1 }
            [resources]
            memory = { replace = ["1GiB"] }
            rlimits = { nofile = "!!" }
            [network]
            mode = "!"
            allow = ["!", "!not a host", "pypi.org"]
            [landlock]
            connect_tcp = ["!https"]
            """)
        let d = s.diagnostics("bad.toml")
        func at(_ key: String, _ line: Int, _ fragment: String) {
            #expect(d.contains { $0.keyPath == key && $0.line == line && $0.message.contains(fragment) && $0.file.hasSuffix("bad.toml") },
                    "\(key):\(line) \(fragment) in\n\(d.map(\.description).joined(separator: "\n"))")
        }
        at("process.hostname", 3, "process.hostname cannot be unset: it always has a value")
        at("process.user", 4, "{ replace = […] } replaces an inherited list, and process.user is not a list")
        at("process.env.pass", 5, "is a list: write pass = { replace = [] }")
        at("filesystem.ro.replace[0]", 7, "inside { replace = […] } removes nothing")
        at("filesystem.rw.also", 8, "unknown key \"also\" in { replace = […] }")
        at("resources.memory", 10, "or \"!\" to unset an inherited one")
        at("resources.rlimits.nofile", 11, "invalid value \"!!\"")
        at("network.mode", 13, "network.mode cannot be unset")
        at("network.allow[0]", 14, "\"!\" alone removes nothing")
        at("network.allow[1]", 14, "names no rule")
        at("network.allow[2]", 14, "found a string")
        at("landlock.connect_tcp[0]", 16, "write \"!\" and a port number")
        #expect(d.count == 12, "\(d.map(\.description).joined(separator: "\n"))")
    }

    @Test func topLevelKeysCannotBeUnset() {
        let s = PolicyScratch()
        s.write("t.toml", "version = \"!\"\nname = \"!\"\nextends = \"!\"\n")
        let d = s.diagnostics("t.toml")
        #expect(d.map(\.keyPath) == ["version", "name", "extends"], "\(d)")
        #expect(d.allSatisfy { $0.message.contains("cannot be unset") })
    }

    // MARK: - workdir

    @Test func workdirOutsideEveryMountIsRefusedWithItsLine() throws {
        let s = scratch()
        s.write("w.toml", "extends = [\"base\"]\n[process]\nworkdir = \"/work\"\n")
        let d = s.diagnostics("w.toml")
        #expect(d.count == 1 && d[0].keyPath == "process.workdir" && d[0].line == 3 && d[0].file.hasSuffix("w.toml"), "\(d)")
        #expect(d.first?.message.contains("\"/work\" is outside every mount") == true, "\(d)")
        // Controls: under a listed path (as written), above one, and / are accepted.
        for ok in ["{cwd}/src", "/usr/share", "/etc", "/"] {
            s.write("ok.toml", "extends = [\"base\"]\n[process]\nworkdir = \"\(ok)\"\n")
            #expect(s.diagnostics("ok.toml").isEmpty, "\(ok): \(s.diagnostics("ok.toml"))")
        }
        // The file that set it is named, though the mounts came from elsewhere.
        s.write("mid.toml", "extends = [\"base\"]\n\n[process]\nworkdir = \"/srv\"\n")
        s.write("leaf.toml", "extends = [\"mid\"]\n[filesystem]\nro = [\"/opt\"]\n")
        let leaf = s.diagnostics("leaf.toml")
        #expect(leaf.count == 1 && leaf[0].file.hasSuffix("mid.toml") && leaf[0].line == 4, "\(leaf)")
        // Removing the mount a workdir relies on is caught too.
        s.write("gone.toml", "extends = [\"base\"]\n[filesystem]\nrw = [\"!{cwd}\"]\n")
        #expect(s.diagnostics("gone.toml").first?.keyPath == "process.workdir")
    }
}
