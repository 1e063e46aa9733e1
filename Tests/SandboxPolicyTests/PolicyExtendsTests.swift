import Foundation
import Testing
@testable import SandboxPolicy

@Suite struct PolicyExtendsTests {
    @Test func childRemovesAnInheritedPathAndAddsOne() throws {
        let s = PolicyScratch()
        s.write("base.toml", """
            [filesystem]
            ro = ["/usr", "/usr/share", "/lib64?"]
            [process]
            env.pass = ["PATH", "HOME"]
            """)
        s.write("child.toml", """
            extends = ["base"]
            [filesystem]
            ro = ["!/usr/share", "/opt/tools", "!/nothing-to-remove"]
            [process]
            env.pass = ["!HOME", "LANG"]
            """)
        let p = try s.load("child.toml")
        #expect(p.filesystem.ro == [PathTemplate("/usr"), PathTemplate("/lib64", optional: true), PathTemplate("/opt/tools")])
        #expect(p.process.envPass == ["PATH", "LANG"])
        #expect(p.sources == [s.dir + "/base.toml", s.dir + "/child.toml"])
        #expect(p.name == "child")
    }

    @Test func removalIgnoresTheOptionalMarkerAndReAddingReplacesIt() throws {
        let s = PolicyScratch()
        s.write("base.toml", "[filesystem]\nro = [\"/lib64?\", \"/lib32?\", \"/usr\"]\n")
        s.write("c.toml", "extends = [\"base\"]\n[filesystem]\nro = [\"!/lib64\", \"/lib32\"]\n")
        let p = try s.load("c.toml")
        #expect(p.filesystem.ro == [PathTemplate("/lib32"), PathTemplate("/usr")])
    }

    @Test func scalarsOverrideListsAppendTablesMerge() throws {
        let s = PolicyScratch()
        s.write("base.toml", """
            [process]
            hostname = "base"
            timeout = "1m"
            env.set = { HOME = "/tmp", A = "1" }
            [seccomp]
            profile = "test"
            deny = ["ptrace"]
            socket_families = ["unix", "inet", "inet6"]
            [resources]
            memory = "1GiB"
            rlimits = { nofile = 1024, core = 0 }
            [network]
            mode = "egress"
            allow = [{ cidr = "10.0.0.0/8", ports = [443] }]
            hosts = { "a.example" = "10.0.0.1" }
            [binary]
            pin = { "/usr/bin/a" = "sha256:\(String(repeating: "a", count: 64))" }
            """)
        s.write("child.toml", """
            extends = ["base"]
            [process]
            hostname = "child"
            env.set = { A = "2", B = "3" }
            [seccomp]
            deny = ["bpf"]
            socket_families = ["!inet6"]
            [resources]
            rlimits = { nofile = 4096, stack = "8MiB" }
            [[network.allow]]
            cidr = "192.168.0.0/16"
            ports = [80, 443]
            proto = "udp"
            [network.hosts]
            "b.example" = "fd00::1"
            [binary.pin]
            "/usr/bin/b" = "sha256:\(String(repeating: "B", count: 64))"
            """)
        let p = try s.load("child.toml")
        #expect(p.process.hostname == "child")
        #expect(p.process.timeoutMs == 60_000)
        #expect(p.process.envSet == ["HOME": "/tmp", "A": "2", "B": "3"])
        #expect(p.seccomp.deny == ["ptrace", "bpf"])
        #expect(p.seccomp.socketFamilies == [.unix, .inet])
        #expect(p.seccomp.profile?.source == s.dir + "/profiles/test.json")
        #expect(p.resources.memoryBytes == 1 << 30)
        #expect(p.resources.rlimits == [.nofile: .value(4096), .core: .value(0), .stack: .value(8 << 20)])
        #expect(p.network.allow.count == 2)
        #expect(p.network.allow.last == AllowRule(cidr: try CIDR.parse("192.168.0.0/16").get(), ports: [80, 443], proto: .udp))
        #expect(p.network.allow.first?.proto == .tcp)
        #expect(p.network.hosts == ["a.example": IPAddress("10.0.0.1")!, "b.example": IPAddress("fd00::1")!])
        #expect(p.binary.pin["/usr/bin/b"] == "sha256:" + String(repeating: "b", count: 64))
        #expect(p.binary.pin.count == 2)
    }

    @Test func profileNoneOverridesAnInheritedProfile() throws {
        let s = PolicyScratch()
        s.write("base.toml", "[seccomp]\nprofile = \"test\"\n")
        s.write("c.toml", "extends = [\"base\"]\n[seccomp]\nprofile = \"none\"\n")
        #expect(try s.load("base.toml").seccomp.profile != nil)
        #expect(try s.load("c.toml").seccomp.profile == nil)
    }

    @Test func profilePathIsRelativeToThePolicyFile() throws {
        let s = PolicyScratch()
        s.write("sub/my.json", #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#)
        s.write("sub/p.toml", "[seccomp]\nprofile = \"my.json\"\n")
        s.write("q.toml", "[seccomp]\nprofile = \"{policy_dir}/sub/my.json\"\n")
        #expect(try s.load("sub/p.toml").seccomp.profile?.source == s.dir + "/sub/my.json")
        #expect(try s.load("q.toml").seccomp.profile?.defaultAction == .errno)
    }

    @Test func diamondMergesTheSharedBaseOnce() throws {
        let s = PolicyScratch()
        s.write("d.toml", "[filesystem]\nro = [\"/usr\"]\n[seccomp]\ndeny = [\"ptrace\"]\n")
        s.write("b.toml", "extends = [\"d\"]\n[filesystem]\nro = [\"/b\"]\n")
        s.write("c.toml", "extends = [\"./d.toml\"]\n[filesystem]\nro = [\"/c\", \"!/usr\"]\n")
        s.write("a.toml", "extends = [\"b\", \"c\"]\n[filesystem]\nro = [\"/a\"]\n")
        let p = try s.load("a.toml")
        #expect(p.sources == ["d", "b", "c", "a"].map { s.dir + "/\($0).toml" })
        // d is merged once, before b: c's "!/usr" is not undone by merging d again.
        #expect(p.filesystem.ro.map(\.raw) == ["/b", "/c", "/a"])
        #expect(p.seccomp.deny == ["ptrace"])
    }

    @Test func threeFileCycleNamesEveryFile() {
        let s = PolicyScratch()
        s.write("a.toml", "extends = [\"b\"]\n")
        s.write("b.toml", "extends = [\"c\"]\n")
        s.write("c.toml", "version = 1\nextends = [\"a\"]\n")
        let d = s.diagnostics("a.toml")
        let cycles = d.filter { $0.message.contains("extends cycle") }
        #expect(cycles.count == 1, "\(d)")
        let names = ["a", "b", "c", "a"].map { s.dir + "/\($0).toml" }
        #expect(cycles.first?.message == "extends cycle: " + names.joined(separator: " -> "))
        #expect(cycles.first?.file == s.dir + "/c.toml")
        #expect(cycles.first?.keyPath == "extends[0]")
        #expect(cycles.first?.line == 2)
    }

    @Test func selfExtensionIsACycle() {
        let s = PolicyScratch()
        s.write("a.toml", "extends = [\"./a.toml\"]\n")
        let d = s.diagnostics("a.toml")
        #expect(d.map(\.message) == ["extends cycle: \(s.dir)/a.toml -> \(s.dir)/a.toml"])
    }

    @Test func aSymlinkToAnAncestorIsACycle() throws {
        let s = PolicyScratch()
        s.write("a.toml", "extends = [\"link.toml\"]\n")
        try FileManager.default.createSymbolicLink(atPath: s.dir + "/link.toml", withDestinationPath: s.dir + "/a.toml")
        let d = s.diagnostics("a.toml")
        #expect(d.count == 1)
        #expect(d.first?.message.hasPrefix("extends cycle: ") == true)
    }

    /// The same base reached once by name and once through a symlink in another
    /// directory (`Paths.identity`: realpath(3)) is merged once.
    @Test func aBaseReachedThroughASymlinkIsMergedOnce() throws {
        let s = PolicyScratch()
        s.write("d.toml", "[filesystem]\nro = [\"/usr\"]\n")
        try FileManager.default.createDirectory(atPath: s.dir + "/sub", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: s.dir + "/sub/alias.toml", withDestinationPath: "../d.toml")
        s.write("b.toml", "extends = [\"./sub/alias.toml\"]\n")
        s.write("c.toml", "extends = [\"d\"]\n[filesystem]\nro = [\"!/usr\", \"/c\"]\n")
        s.write("a.toml", "extends = [\"b\", \"c\"]\n")
        let p = try s.load("a.toml")
        #expect(p.filesystem.ro.map(\.raw) == ["/c"])
        #expect(p.sources.count == 4, "\(p.sources)")
    }

    @Test func ipv6AddressesSplitOnTheirOneDoubleColon() {
        #expect(IPAddress("::") == .v6([0, 0, 0, 0, 0, 0, 0, 0]))
        #expect(IPAddress("::1") == .v6([0, 0, 0, 0, 0, 0, 0, 1]))
        #expect(IPAddress("fe80::") == .v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]))
        #expect(IPAddress("fd00:1::2:3") == .v6([0xfd00, 1, 0, 0, 0, 0, 2, 3]))
        #expect(IPAddress("1:2:3:4:5:6:7:8") == .v6([1, 2, 3, 4, 5, 6, 7, 8]))
        for bad in [":::1", "1::2::3", "::1::", "1:::2", ":1::", "1::2:", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "::g"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func profileErrorsNameTheProfileFile() {
        let s = PolicyScratch()
        s.write("profiles/bad.json", #"{"defaultAction": "SCMP_ACT_EXPLODE"}"#)
        s.write("p.toml", "[seccomp]\nprofile = \"bad\"\n")
        let d = s.diagnostics("p.toml")
        #expect(!d.isEmpty)
        #expect(d.allSatisfy { $0.file.hasSuffix("profiles/bad.json") }, "\(d)")
    }

    @Test func relativeExtendsIsRelativeToTheExtendingFile() throws {
        let s = PolicyScratch()
        s.write("shared/common.toml", "[process]\nhostname = \"common\"\n[filesystem]\nro = [\"{policy_dir}/data\"]\n")
        s.write("team/p.toml", "extends = [\"../shared/common.toml\"]\n")
        let p = try s.load("team/p.toml")
        #expect(p.process.hostname == "common")
        // {policy_dir} is the directory of the file that wrote it, not of the child.
        #expect(p.filesystem.ro == [PathTemplate(s.dir + "/shared/data")])
        #expect(p.sources == [s.dir + "/shared/common.toml", s.dir + "/team/p.toml"])
    }

    @Test func nameIsNotInheritedAndDefaultsToTheFileStem() throws {
        let s = PolicyScratch()
        s.write("base.toml", "name = \"the-base\"\n")
        s.write("mine.toml", "extends = [\"base\"]\n")
        s.write("named.toml", "name = \"custom\"\nextends = [\"base\"]\n")
        #expect(try s.load("base.toml").name == "the-base")
        #expect(try s.load("mine.toml").name == "mine")
        #expect(try s.load("named.toml").name == "custom")
    }

    @Test func errorsInABaseAreReportedAgainstTheBase() {
        let s = PolicyScratch()
        s.write("base.toml", "[resources]\npids = 0\n")
        s.write("c.toml", "extends = [\"base\"]\n")
        let d = s.diagnostics("c.toml")
        #expect(d.count == 1)
        #expect(d.first?.file == s.dir + "/base.toml")
        #expect(d.first?.keyPath == "resources.pids")
    }

    @Test func mergedResultIsCrossChecked() {
        let s = PolicyScratch()
        s.write("net.toml", "[network]\nmode = \"egress\"\ndns = [\"10.0.0.53\"]\n")
        s.write("off.toml", "extends = [\"net\"]\n[network]\nmode = \"none\"\n")
        let d = s.diagnostics("off.toml")
        #expect(d.count == 1)
        #expect(d.first?.keyPath == "network.dns")
        #expect(d.first?.file == s.dir + "/off.toml")
    }

    @Test func resolveNamesAndPaths() throws {
        let s = PolicyScratch()
        s.write("agent.toml", "")
        let loader = s.loader
        #expect(try loader.resolve(nameOrPath: "agent", relativeTo: nil) == s.dir + "/agent.toml")
        #expect(try loader.resolve(nameOrPath: "./x.toml", relativeTo: "/etc/p") == "/etc/p/x.toml")
        #expect(try loader.resolve(nameOrPath: "../a/b.toml", relativeTo: "/etc/p") == "/etc/a/b.toml")
        #expect(try loader.resolve(nameOrPath: "/abs.toml", relativeTo: "/etc/p") == "/abs.toml")
        #expect(try loader.resolve(nameOrPath: "x.toml", relativeTo: nil) == "x.toml")
        #expect(throws: PolicyError.self) { try loader.resolve(nameOrPath: "nosuch", relativeTo: nil) }
        #expect(try loader.load(nameOrPath: "agent").sources == [s.dir + "/agent.toml"])
    }

    @Test func searchPathOrderWins() throws {
        let s = PolicyScratch()
        s.write("one/p.toml", "[process]\nhostname = \"one\"\n")
        s.write("two/p.toml", "[process]\nhostname = \"two\"\n")
        s.write("c.toml", "extends = [\"p\"]\n")
        let loader = PolicyLoader(searchPath: [s.dir + "/missing", s.dir + "/two", s.dir + "/one"], profileSearchPath: [])
        #expect(try loader.load(path: s.dir + "/c.toml").process.hostname == "two")
    }

    @Test func defaultSearchPathReadsTheEnvironment() {
        let data = DataDirectory(root: "/opt/sandbox")
        #expect(PolicyLoader.defaultSearchPath(environment: ["SANDBOX_POLICY_PATH": "/a::/b"], data: data)
                == ["/a", "/b", "/opt/sandbox/Policies", BuiltIn.policies])
        #expect(PolicyLoader.defaultSearchPath(environment: [:], data: nil) == [BuiltIn.policies])
    }
}

@Suite struct PolicyDefaultsTests {
    @Test func emptyFileGivesTheDocumentedDefaults() throws {
        let s = PolicyScratch()
        s.write("empty.toml", "")
        let p = try s.load("empty.toml")
        var expected = Policy(name: "empty", sources: [s.dir + "/empty.toml"])
        expected.version = 1
        // SHA-256 of no bytes: each file's digest is of exactly what was parsed, and
        // the policy's digest is over those digests (the audit log's policy.digest).
        let emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        expected.sourceDigests = [emptySHA]
        #expect(p == expected)
        #expect(p.digest == Digest.sha256Hex(Array((emptySHA + "\n").utf8)))
        #expect(p.process.graceMs == 5_000)
        #expect(p.landlock.connectTCP == nil)
        #expect(p.seccomp.socketFamilies == nil)
    }

    @Test func everyKeyOfTheLanguageLoads() throws {
        let s = PolicyScratch()
        s.write("full.toml", """
            version = 1
            name = "full"

            [process]
            hostname = "box.example"
            user = 65534
            group = "invoker"
            workdir = "{cwd}/src"
            env.pass = ["PATH", "LANG", "TERM"]
            env.set = { HOME = "/tmp" }
            timeout = "1m30s"
            grace = 2
            new_session = false

            [filesystem]
            ro = ["/usr", "/lib64?", "{home}/.config/tool"]
            rw = ["{cwd}", "/run/user/{uid}/work"]
            tmpfs = ["/tmp", "/var/tmp/{run_id}"]
            protect = [".git", "./.github//workflows/"]
            mask = ["/etc/shadow"]
            unix_sockets = ["/run/user/{uid}/bus?"]

            [landlock]
            mode = "best-effort"
            connect_tcp = [443, 80, 443]
            bind_tcp = []
            scope = ["abstract-unix-socket", "signal"]

            [seccomp]
            profile = "test"
            deny = ["ptrace", "bpf"]
            socket_families = ["unix", "inet", "inet6"]
            on_violation = "notify"

            [capabilities]
            keep = ["CAP_NET_BIND_SERVICE", "sys_chroot", "cap_kill"]

            [resources]
            memory = "2GiB"
            swap = "0"
            pids = 256
            cpu = 1.5
            io = 500
            rlimits = { nofile = 4096, core = 0, stack = "unlimited", as = "4GiB" }
            best_effort = ["io", "swap"]

            [network]
            mode = "egress"
            dns = ["10.203.0.1", "fd00::53"]
            allow = [
              { cidr = "140.82.112.0/20", ports = [443], proto = "tcp" },
              { cidr = "2606:50c0::/32", ports = [443] },
            ]
            hosts = { "api.example" = "140.82.112.3" }

            [binary]
            require_root_owned = true
            reject_writable = true
            reject_setuid = true
            pin = { "/usr/bin/python3" = "sha256:\(String(repeating: "0", count: 64))" }

            [audit]
            path = "{home}/.local/state/sandbox/audit.jsonl"
            """)
        let p = try s.load("full.toml")
        #expect(p.name == "full")
        #expect(p.process.hostname == "box.example")
        #expect(p.process.user == .id(65534))
        #expect(p.process.group == .invoker)
        #expect(p.process.workdir == PathTemplate("{cwd}/src"))
        #expect(p.process.timeoutMs == 90_000)
        #expect(p.process.graceMs == 2_000)
        #expect(p.process.newSession == false)
        #expect(p.filesystem.ro == [PathTemplate("/usr"), PathTemplate("/lib64", optional: true), PathTemplate("{home}/.config/tool")])
        #expect(p.filesystem.rw.map(\.raw) == ["{cwd}", "/run/user/{uid}/work"])
        #expect(p.filesystem.tmpfs.map(\.raw) == ["/tmp", "/var/tmp/{run_id}"])
        #expect(p.filesystem.protect == [".git", ".github/workflows"])
        #expect(p.filesystem.mask.map(\.raw) == ["/etc/shadow"])
        #expect(p.filesystem.unixSockets == [PathTemplate("/run/user/{uid}/bus", optional: true)])
        #expect(p.landlock.mode == .bestEffort)
        #expect(p.landlock.connectTCP == [443, 80])
        #expect(p.landlock.bindTCP == [])
        #expect(p.landlock.scope == [.abstractUnixSocket, .signal])
        #expect(p.seccomp.profile?.defaultAction == .allow)
        #expect(p.seccomp.deny == ["ptrace", "bpf"])
        #expect(p.seccomp.socketFamilies == [.unix, .inet, .inet6])
        #expect(p.seccomp.onViolation == .notify)
        #expect(p.capabilities.keep == ["net_bind_service", "sys_chroot", "kill"])
        #expect(p.resources.memoryBytes == 2 << 30)
        #expect(p.resources.swapBytes == 0)
        #expect(p.resources.pids == 256)
        #expect(p.resources.cpu == 1.5)
        #expect(p.resources.ioWeight == 500)
        #expect(p.resources.rlimits == [.nofile: .value(4096), .core: .value(0), .stack: .unlimited, .as: .value(4 << 30)])
        #expect(p.resources.bestEffort == ["io", "swap"])
        #expect(p.network.mode == .egress)
        #expect(p.network.dns == [IPAddress("10.203.0.1")!, IPAddress("fd00::53")!])
        #expect(p.network.allow.map(\.cidr.description) == ["140.82.112.0/20", "2606:50c0::/32"])
        #expect(p.network.hosts == ["api.example": IPAddress("140.82.112.3")!])
        #expect(p.binary.requireRootOwned && p.binary.rejectWritable && p.binary.rejectSetuid)
        #expect(p.binary.pin == ["/usr/bin/python3": "sha256:" + String(repeating: "0", count: 64)])
        #expect(p.audit.path == PathTemplate("{home}/.local/state/sandbox/audit.jsonl"))
    }

    @Test func arrayOfTablesAllowRules() throws {
        let s = PolicyScratch()
        s.write("p.toml", """
            [network]
            mode = "egress"
            [[network.allow]]
            cidr = "10.0.0.0/8"
            ports = [53]
            proto = "udp"
            [[network.allow]]
            cidr = "192.0.2.7"
            ports = [443]
            """)
        let p = try s.load("p.toml")
        #expect(p.network.allow.map(\.description) == ["udp 10.0.0.0/8 53", "tcp 192.0.2.7/32 443"])
    }
}

extension AllowRule {
    fileprivate var description: String { "\(proto.rawValue) \(cidr) \(ports.map(String.init).joined(separator: ","))" }
}
