import Foundation
import SandboxPlan
import SandboxPolicy
import Testing

/// The compiler is pure: host facts and the filesystem view are faked here, so these
/// tests say the same thing on every machine and need no privileges.
struct FakeFiles: FileInspector {
    var entries: [String: FileKind]
    /// Unix sockets on the fake host: `unixSockets` finds those a walk would.
    var sockets: [String] = []
    func kind(of path: String) -> FileKind? { entries[path] }

    /// Like the real walk: beneath a root, not through a skipped path (a root itself
    /// is never skipped); every fake entry beneath a root counts against `limit`.
    func unixSockets(under roots: [String], skipping: Set<String>, limit: Int) -> SocketSearch? {
        func beneath(_ p: String, _ r: String) -> Bool { p == r || p.hasPrefix(r + "/") }
        func reachable(_ s: String, from root: String) -> Bool {
            var p = s
            while p.count > root.count {
                if skipping.contains(p) { return false }
                p = String(p[..<p.lastIndex(of: "/")!])
            }
            return true
        }
        var out = SocketSearch(sockets: [], entries: 0)
        for root in roots {
            let seen = Set(entries.keys).union(sockets).filter { $0 != root && beneath($0, root) && reachable($0, from: root) }
            out.entries += seen.count
            if out.entries > limit {
                return SocketSearch(sockets: out.sockets, entries: out.entries, incompleteRoot: root,
                                    incompleteReason: "more than \(limit) directory entries")
            }
            out.sockets += sockets.filter { beneath($0, root) && reachable($0, from: root) }
        }
        return out
    }
}

func host(abi: Int = 7, uid: UInt32 = 1000, files: [String: FileKind] = [:], kernel: String = "6.18.0") -> HostFacts {
    var all: [String: FileKind] = [
        "/usr": .directory, "/bin": .symlink(target: "usr/bin"), "/lib": .symlink(target: "usr/lib"),
        "/work/proj": .directory, "/work/proj/.git": .directory, "/etc/ssl": .directory,
    ]
    for (k, v) in files { all[k] = v }
    return HostFacts(arch: "x86_64", kernelRelease: kernel, landlockABI: abi, invokerUID: uid, invokerGID: uid,
                     cwd: "/work/proj", home: "/home/u", environment: ["PATH": "/usr/bin:/bin", "SECRET": "x", "LANG": "C"],
                     files: FakeFiles(entries: all))
}

func policy(_ toml: String, file: String = "p.toml") throws -> Policy {
    let dir = NSTemporaryDirectory() + "sbx-plan-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = "\(dir)/\(file)"
    try toml.write(toFile: path, atomically: true, encoding: .utf8)
    return try PolicyLoader(searchPath: [repoRoot() + "/Policies"]).load(path: path)
}

/// `simple` extended by a child file holding `extra` (TOML cannot reopen a table).
func derived(_ extra: String) throws -> Policy {
    let dir = NSTemporaryDirectory() + "sbx-plan-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try simple.write(toFile: "\(dir)/simple.toml", atomically: true, encoding: .utf8)
    try ("name = \"derived\"\nextends = [\"./simple.toml\"]\n" + extra).write(toFile: "\(dir)/child.toml", atomically: true, encoding: .utf8)
    return try PolicyLoader(searchPath: [repoRoot() + "/Policies"]).load(path: "\(dir)/child.toml")
}

func repoRoot(_ file: String = #filePath) -> String {
    var url = URL(fileURLWithPath: file)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}

let simple = """
    name = "simple"
    [process]
    env.pass = ["PATH", "LANG"]
    [filesystem]
    ro = ["/usr", "/bin", "/lib", "/opt/missing?"]
    rw = ["{cwd}"]
    tmpfs = ["/tmp"]
    protect = [".git", ".absent"]
    mask = ["/etc/shadow"]
    [landlock]
    scope = ["signal"]
    """

@Suite struct PlanCompilerTests {
    @Test func sameInputsSameBytesAndDigest() throws {
        let p = try policy(simple)
        let a = try PlanCompiler(host: host()).compile(p, argv: ["python3", "-c", "print(1)"], runId: "r1")
        let b = try PlanCompiler(host: host()).compile(p, argv: ["python3", "-c", "print(1)"], runId: "r1")
        #expect(try a.prettyJSON() == b.prettyJSON())
        #expect(a.digest == b.digest)
        #expect(a.digest?.count == 64)
        #expect(a.digest == (try PlanDigest.digest(of: a)))
    }

    @Test func everyPolicyValueChangesTheDigest() throws {
        let base = try PlanCompiler(host: host()).compile(try policy(simple), argv: ["sh"], runId: "r1").digest
        let variants = [
            "[filesystem]\ntmpfs = [\"/tmp2\"]",
            "[landlock]\nscope = [\"abstract-unix-socket\"]",
            "[process]\nhostname = \"other\"",
            "[resources]\npids = 10",
            "[seccomp]\ndeny = [\"ptrace\"]",
            "[capabilities]\nkeep = [\"net_bind_service\"]",
            "[filesystem]\nro = [\"!/lib\"]",
        ]
        var seen: Set<String?> = [base]
        for v in variants {
            let d = try PlanCompiler(host: host()).compile(try derived(v), argv: ["sh"], runId: "r1").digest
            #expect(!seen.contains(d), "digest unchanged for variant:\n\(v)")
            seen.insert(d)
        }
        let otherArgv = try PlanCompiler(host: host()).compile(try policy(simple), argv: ["sh", "-x"], runId: "r1").digest
        #expect(otherArgv != base)
    }

    @Test func mountOrderSymlinksProtectMask() throws {
        let plan = try PlanCompiler(host: host()).compile(try policy(simple), argv: ["sh"], runId: "r1")
        let summary = plan.mounts.map(\.summary)
        #expect(summary == [
            "symlink /bin -> usr/bin", "symlink /lib -> usr/lib", "tmpfs /tmp", "bind /usr -> /usr (ro)",
            "bind /work/proj -> /work/proj (rw)", "proc /proc", "dev /dev", "file /etc/hosts", "protect /work/proj/.git", "mask /etc/shadow",
        ])
        #expect(plan.process.workdir == "/work/proj")
    }

    /// A workdir under an optional bind whose host path is absent: the loader saw it
    /// under a listed path, but the plan mounts nothing there (issue 18). Control: the
    /// same policy on a host that has the path.
    @Test func workdirUnderAnAbsentOptionalBindIsRefused() throws {
        let p = try policy("""
            [filesystem]
            ro = ["/usr", "/opt/tools?"]
            [process]
            workdir = "/opt/tools/bin"
            """)
        #expect(throws: PlanError.self) { try PlanCompiler(host: host()).compile(p, argv: ["sh"], runId: "r1") }
        do {
            _ = try PlanCompiler(host: host()).compile(p, argv: ["sh"], runId: "r1")
        } catch let e as PlanError {
            #expect(e.key == "process.workdir" && e.message.contains("/opt/tools/bin is outside every mount"), "\(e)")
        }
        let present = try PlanCompiler(host: host(files: ["/opt/tools": .directory])).compile(p, argv: ["sh"], runId: "r1")
        #expect(present.process.workdir == "/opt/tools/bin")
    }

    @Test func environmentIsClearedButPass() throws {
        let plan = try PlanCompiler(host: host()).compile(try policy(simple), argv: ["sh"], runId: "r1")
        #expect(plan.process.env == ["LANG=C", "PATH=/usr/bin:/bin"])
    }

    @Test func rootlessMapsTheInvoker() throws {
        let p = try derived("[process]\nuser = 65534")
        let rootless = try PlanCompiler(host: host(uid: 1000)).compile(p, argv: ["sh"], runId: "r1")
        #expect(rootless.process.userNamespace?.uidMap == "65534 1000 1\n")
        #expect(rootless.process.uid == 65534 && rootless.process.gid == 65534)
        let root = try PlanCompiler(host: host(uid: 0)).compile(p, argv: ["sh"], runId: "r1")
        #expect(root.process.userNamespace == nil)
    }

    @Test func landlockEnforceNeedsTheABI() throws {
        let p = try policy(simple)
        // scope needs ABI 6; a kernel with 5 must refuse before anything starts.
        #expect(throws: PlanError.self) { try PlanCompiler(host: host(abi: 5)).compile(p, argv: ["sh"], runId: "r1") }
        do {
            _ = try PlanCompiler(host: host(abi: 5)).compile(p, argv: ["sh"], runId: "r1")
        } catch let e as PlanError {
            #expect(e.key == "landlock.mode")
            #expect(e.message.contains("ABI 5") && e.message.contains("scope"))
        }
        #expect(throws: PlanError.self) { try PlanCompiler(host: host(abi: 0)).compile(p, argv: ["sh"], runId: "r1") }
    }

    @Test func landlockMinABIAboveTheKernel() throws {
        let p = try derived("[landlock]\nmin_abi = 7\nscope = []")
        do {
            _ = try PlanCompiler(host: host(abi: 6)).compile(p, argv: ["sh"], runId: "r1")
            Issue.record("ABI 7 required on an ABI 6 kernel compiled")
        } catch let e as PlanError {
            #expect(e.message.contains("ABI 6") && e.message.contains("min_abi (ABI 7)"))
        }
        let ok = try PlanCompiler(host: host(abi: 7)).compile(p, argv: ["sh"], runId: "r1")
        #expect(ok.landlock.requiredABI == 7 && ok.notApplied.isEmpty)
    }

    @Test func landlockBestEffortRecordsWhatIsSkipped() throws {
        let p = try derived("[landlock]\nmode = \"best-effort\"")
        let plan = try PlanCompiler(host: host(abi: 5)).compile(p, argv: ["sh"], runId: "r1")
        #expect(plan.landlock.abi == 5)
        #expect(plan.landlock.scopes.isEmpty)
        #expect(plan.notApplied.count == 1 && plan.notApplied[0].contains("scope"))
        #expect(plan.landlock.handledAccessFS.contains(.ioctlDev))
    }

    @Test func landlockRulesFollowTheFilesystem() throws {
        let plan = try PlanCompiler(host: host()).compile(try policy(simple), argv: ["sh"], runId: "r1")
        let byPath = Dictionary(uniqueKeysWithValues: plan.landlock.rules.map { ($0.path, $0) })
        #expect(byPath["/usr"]?.access == [.execute, .readFile, .readDir])
        #expect(byPath["/usr"]?.hostPath == "/usr")
        #expect(byPath["/work/proj"]?.access.contains(.writeFile) == true)
        #expect(byPath["/tmp"]?.hostPath == nil)
        #expect(byPath["/etc/shadow"] == nil)
    }

    @Test func seccompDockerConditionsAndDeny() throws {
        let fixture = "\(repoRoot())/Tests/SandboxPolicyTests/Fixtures/seccomp/docker-format.json"
        let toml = "name = \"sc\"\n[seccomp]\nprofile = \"PROFILE\"\ndeny = [\"ptrace\"]\non_violation = \"kill\"\n"
        // The fixture allows no sendmsg, which the set-up needs once a filter with a
        // listener is loaded (it sends the listener with it): refused, not left to hang.
        #expect(throws: PlanError.self) {
            try PlanCompiler(host: host()).compile(try policy(toml.replacingOccurrences(of: "PROFILE", with: fixture)), argv: ["sh"], runId: "r1")
        }
        let dir = NSTemporaryDirectory() + "sbx-docker-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let withSendmsg = try String(contentsOfFile: fixture, encoding: .utf8)
            .replacingOccurrences(of: "\"names\": [\"read\", ", with: "\"names\": [\"sendmsg\", \"read\", ")
        try withSendmsg.write(toFile: "\(dir)/docker-format.json", atomically: true, encoding: .utf8)
        let p = try policy(toml.replacingOccurrences(of: "PROFILE", with: "\(dir)/docker-format.json"))
        let plan = try PlanCompiler(host: host()).compile(p, argv: ["sh"], runId: "r1")
        #expect(plan.seccomp.enabled)
        // The profile's "deny the rest" takes the policy's on_violation action; "kill"
        // goes through the supervisor (notify) so the result can name the syscall.
        #expect(plan.seccomp.defaultAction == .notify)
        let deny = plan.seccomp.rules.last
        #expect(deny?.origin == "seccomp.deny" && deny?.syscalls == ["ptrace"] && deny?.action == .notify)
        // A denied name never appears in an allow rule.
        #expect(!plan.seccomp.rules.dropLast().contains { $0.syscalls.contains("ptrace") })
        #expect(plan.seccomp.rulesDigest.count == 64)
    }

    /// io_uring's operations pass the filter (FenceTests in SandboxKernelTests makes a
    /// socket past socket_families with one), so wherever a filter is loaded and
    /// io_uring_setup could run — the default lets calls through, the profile allows
    /// it, or `on_violation = "log"` lets the deny list's calls run — one built-in
    /// rule refuses it and no other rule names it. A policy that refuses it itself
    /// keeps its own rule; a policy with no filter gets none.
    @Test func ioUringIsRefusedByABuiltInRuleWhereverItCouldRun() throws {
        let builtin = SeccompPlan.noIoUringOrigin
        func seccomp(_ toml: String) throws -> SeccompPlan {
            try PlanCompiler(host: host(uid: 0)).compile(try policy(toml), argv: ["sh"], runId: "r1").seccomp
        }
        func naming(_ plan: SeccompPlan) -> [SeccompRulePlan] { plan.rules.filter { $0.syscalls.contains("io_uring_setup") } }

        let allowByDefault = try seccomp("name = \"a\"\n[seccomp]\ndeny = [\"ptrace\"]\n")
        #expect(naming(allowByDefault).map(\.origin) == [builtin])
        #expect(naming(allowByDefault).first?.action == .errno && naming(allowByDefault).first?.args.isEmpty == true)

        let dir = NSTemporaryDirectory() + "sbx-uring-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["read", "io_uring_setup", "io_uring_enter"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["io_uring_setup"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_LE"}]}]}
            """.write(toFile: "\(dir)/uring.json", atomically: true, encoding: .utf8)
        let profileAllows = try seccomp("name = \"p\"\n[seccomp]\nprofile = \"\(dir)/uring.json\"\n")
        #expect(naming(profileAllows).map(\.origin) == [builtin], "\(profileAllows.rules)")
        #expect(profileAllows.rules.contains { $0.syscalls == ["read", "io_uring_enter"] && $0.action == .allow })

        let base = try seccomp("name = \"b\"\nextends = [\"base\"]\n")
        #expect(naming(base).map(\.origin) == ["seccomp.deny"])

        let log = try seccomp("name = \"l\"\nextends = [\"base\"]\n[seccomp]\non_violation = \"log\"\n")
        #expect(naming(log).map(\.origin) == [builtin])
        // Through the supervisor, which answers it EPERM (DenialAccount) where the deny
        // list's calls are let run.
        #expect(naming(log).first?.action == .notify)

        let unfiltered = try seccomp("name = \"n\"\n")
        #expect(!unfiltered.enabled && unfiltered.rules.isEmpty)
    }

    /// Where the deny list refuses unshare and clone or clone3 would otherwise run
    /// unconditionally (`profile = "none"`), clone is allowed only without namespace
    /// flags (each flag refused, EPERM; through the supervisor in notify modes) and
    /// clone3 gets ENOSYS. The default profile's own clone rules stand; a deny list
    /// without unshare, and "log" (whose deny list lets calls run), add nothing.
    @Test func namespaceClonesAreRefusedWhereUnshareIsDenied() throws {
        let builtin = SeccompPlan.noNamespaceClonesOrigin
        func seccomp(_ toml: String) throws -> SeccompPlan {
            try PlanCompiler(host: host(uid: 0)).compile(try policy(toml), argv: ["sh"], runId: "r1").seccomp
        }
        func naming(_ plan: SeccompPlan, _ name: String) -> [SeccompRulePlan] { plan.rules.filter { $0.syscalls.contains(name) } }

        let none = try seccomp("name = \"n\"\nextends = [\"base\"]\n[seccomp]\nprofile = \"none\"\n")
        let clone = naming(none, "clone")
        #expect(clone.allSatisfy { $0.origin == builtin && $0.syscalls == ["clone"] }, "\(clone)")
        #expect(clone.filter { $0.action == .allow }.map { $0.args.first?.value } == [0x7E02_0000])
        #expect(clone.filter { $0.action == .errno && $0.errno == 1 }.count == 7)
        #expect(naming(none, "clone3").map { "\($0.origin) \($0.action.rawValue) \($0.errno ?? 0)" } == ["\(builtin) SCMP_ACT_ERRNO 38"])
        for call in ["fsopen", "fsmount", "move_mount", "open_tree", "mount_setattr"] {
            #expect(naming(none, call).map(\.origin) == ["seccomp.deny"], "\(call)")
        }

        let notify = try seccomp("name = \"m\"\nextends = [\"base\"]\n[seccomp]\nprofile = \"none\"\non_violation = \"notify\"\n")
        #expect(naming(notify, "clone").filter { !$0.args.isEmpty && $0.args[0].valueTwo != 0 }.allSatisfy { $0.action == .notify })
        #expect(naming(notify, "clone3").first?.action == .errno)

        let profile = try seccomp("name = \"b\"\nextends = [\"base\"]\n")
        #expect(!profile.rules.contains { $0.origin == builtin })
        let log = try seccomp("name = \"l\"\nextends = [\"base\"]\n[seccomp]\nprofile = \"none\"\non_violation = \"log\"\n")
        #expect(!log.rules.contains { $0.origin == builtin })
        let noUnshare = try seccomp("name = \"u\"\n[seccomp]\ndeny = [\"ptrace\"]\n")
        #expect(!noUnshare.rules.contains { $0.origin == builtin })
        #expect(profile.namespaceFence == nil && none.namespaceFence == nil, "the default profile's clone rule refuses namespaces plainly")

        // Conditions the planner cannot read as refusing namespaces: the fence, a
        // filter of its own, refuses them; the profile's rules stay as they are.
        let dir = NSTemporaryDirectory() + "sbx-clone-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let onlyNewNet = #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1073741824, "valueTwo": 1073741824, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#
        try onlyNewNet.write(toFile: "\(dir)/p.json", atomically: true, encoding: .utf8)
        let fenced = try seccomp("name = \"f\"\nextends = [\"base\"]\n[seccomp]\nprofile = \"\(dir)/p.json\"\n")
        #expect(fenced.namespaceFence == true)
        // Unconditional rules that disagree: libseccomp keeps one, the planner cannot
        // tell which.
        let disagreeing = #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["clone", "clone3"], "action": "SCMP_ACT_ERRNO"}, {"names": ["clone", "clone3"], "action": "SCMP_ACT_ALLOW"}, {"names": ["sendmsg", "seccomp", "read"], "action": "SCMP_ACT_ALLOW"}]}"#
        try disagreeing.write(toFile: "\(dir)/d.json", atomically: true, encoding: .utf8)
        #expect(throws: PlanError.self) { try seccomp("name = \"d\"\nextends = [\"base\"]\n[seccomp]\nprofile = \"\(dir)/d.json\"\n") }
        #expect(naming(fenced, "clone").map(\.origin) == ["\(dir)/p.json syscalls[0]"])
        // The fence is stacked with seccomp(2) once the filter is loaded: a filter that
        // refuses seccomp could never start its command.
        #expect(throws: PlanError.self) {
            try seccomp("name = \"g\"\nextends = [\"base\"]\n[seccomp]\nprofile = \"\(dir)/p.json\"\ndeny = [\"seccomp\"]\n")
        }
    }

    /// Profile rules the filter cannot hold as the plan shows them are a plan error
    /// (key `seccomp.profile`), not a filter that keeps one of them or a run that fails
    /// at exec: two rules without conditions that answer one call differently
    /// (libseccomp keeps one; red team, session 47, made a user namespace that way
    /// before the namespace fence), two with the same conditions and different
    /// answers, and two conditions on one argument (libseccomp refuses both).
    /// Rules that agree, and rules that apply under different capabilities (Docker's
    /// clone3), are fine.
    @Test func profileRulesTheFilterCannotHoldAsShownAreRefused() throws {
        let dir = NSTemporaryDirectory() + "sbx-ambiguous-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let masked = #"{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}"#
        let cases: [(String, Bool)] = [
            (#"[{"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"}, {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW"}]"#, true),
            (#"[{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [\#(masked)]}, {"names": ["clone"], "action": "SCMP_ACT_KILL_PROCESS", "args": [\#(masked)]}]"#, true),
            (#"[{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [\#(masked), {"index": 0, "value": 1, "op": "SCMP_CMP_GE"}]}]"#, true),
            (#"[{"names": ["ptrace", "read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW"}]"#, false),
            (#"[{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}, {"names": ["clone3"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]"#, false),
        ]
        for (i, (rules, refused)) in cases.enumerated() {
            let profile = #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": ["# + rules.dropFirst().dropLast() + #", {"names": ["sendmsg", "seccomp"], "action": "SCMP_ACT_ALLOW"}]}"#
            try profile.write(toFile: "\(dir)/\(i).json", atomically: true, encoding: .utf8)
            let p = try policy("name = \"a\(i)\"\n[seccomp]\nprofile = \"\(dir)/\(i).json\"\n")
            do {
                _ = try PlanCompiler(host: host(uid: 0)).compile(p, argv: ["sh"], runId: "r1")
                #expect(!refused, "case \(i) compiled")
            } catch let e as PlanError {
                #expect(refused && e.key == "seccomp.profile", "case \(i): \(e)")
            }
        }
    }

    /// The set-up sends the filter's listener with sendmsg(2) after loading it: a
    /// sendmsg allowed only under a condition (the set-up's own call passes
    /// MSG_NOSIGNAL) is refused as one refused outright is (red team, session 47).
    @Test func theListenersHandOffMustPassWhateverItsArguments() throws {
        let dir = NSTemporaryDirectory() + "sbx-handoff-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let conditional = #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 2, "value": 16384, "valueTwo": 16384, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#
        try conditional.write(toFile: "\(dir)/p.json", atomically: true, encoding: .utf8)
        for mode in ["errno", "notify"] {
            let p = try policy("name = \"h\"\n[seccomp]\nprofile = \"\(dir)/p.json\"\non_violation = \"\(mode)\"\n")
            #expect(throws: PlanError.self, "\(mode)") { try PlanCompiler(host: host(uid: 0)).compile(p, argv: ["sh"], runId: "r1") }
        }
        // Without a listener (network egress: no connect account; errno) nothing is sent.
        let egress = try policy("name = \"e\"\n[seccomp]\nprofile = \"\(dir)/p.json\"\n[network]\nmode = \"egress\"\n")
        #expect(throws: Never.self) { try PlanCompiler(host: host(uid: 0)).compile(egress, argv: ["sh"], runId: "r1") }
    }

    @Test func seccompRulesDigestCoversWhatTheCompilerReads() throws {
        let variants = ["", "[seccomp]\non_violation = \"kill\"", "[seccomp]\ndeny = [\"ptrace\"]",
                        "[seccomp]\nsocket_families = [\"unix\"]"]
        var seen: Set<String> = []
        for v in variants {
            let plan = try PlanCompiler(host: host()).compile(try derived(v), argv: ["sh"], runId: "r1")
            #expect(!seen.contains(plan.seccomp.rulesDigest), "rulesDigest unchanged for \(v)")
            seen.insert(plan.seccomp.rulesDigest)
        }
        let arm = try PlanCompiler(host: HostFacts(arch: "aarch64", kernelRelease: "6.18", landlockABI: 7, invokerUID: 0,
                                                   invokerGID: 0, cwd: "/work/proj", home: "/", environment: [:],
                                                   files: FakeFiles(entries: [:])))
            .compile(try derived("[seccomp]\ndeny = [\"ptrace\"]"), argv: ["sh"], runId: "r1")
        #expect(!seen.contains(arm.seccomp.rulesDigest))
    }

    @Test func sharedPathInTwoListsIsAnError() throws {
        let p = try derived("[filesystem]\nro = [\"/work/proj\"]")
        #expect(throws: PlanError.self) { try PlanCompiler(host: host()).compile(p, argv: ["sh"], runId: "r1") }
    }

    @Test func egressRulesetIsInThePlan() throws {
        let p = try policy("""
            name = "net"
            [network]
            mode = "egress"
            dns = ["10.203.0.1"]
            allow = [{ cidr = "192.0.2.0/24", ports = [443, 80], proto = "tcp" }]
            """)
        let plan = try PlanCompiler(host: host(uid: 0)).compile(p, argv: ["sh"], runId: "r1")
        #expect(plan.network.resolvConf == "nameserver 10.203.0.1\noptions edns0\n")
        #expect(plan.mounts.contains { $0.kind == .file && $0.destination == "/etc/resolv.conf" })
        // Rootless egress is refused with the reason, not attempted.
        #expect(throws: PlanError.self) { try PlanCompiler(host: host(uid: 1000)).compile(p, argv: ["sh"], runId: "r1") }
        let nft = plan.network.nftRuleset ?? ""
        #expect(nft.contains("policy drop;"))
        #expect(nft.contains("ip daddr 10.203.0.1 udp dport 53 goto admit"))
        #expect(nft.contains("ip daddr 192.0.2.0/24 tcp dport { 80, 443 } goto admit"))
    }

    /// Lines `explain` must show for each shipped policy, as its file (and base.toml,
    /// which they all extend) says, on the fake host (where /bin and /lib are symlinks).
    static let shippedExplanations: [String: [String]] = {
        let base = [
            "  private scratch:   /tmp (empty tmpfs, gone after the run)",
            "  symlinks:          /bin → usr/bin, /lib → usr/lib",
            "  environment: only HOME, LANG, LC_ALL, PATH, TERM, TZ (passed from yours when set there, or set by the policy)",
            "  own session: no controlling terminal (TIOCSTI cannot reach yours)",
            "  Landlock ABI 7 (enforce): file access limited to the paths above, independent of the mounts",
            "    on violation: EPERM",
            "    socket families: inet, inet6, unix (others fail with EAFNOSUPPORT)",
            "  capabilities: none (all dropped); no_new_privs set (setuid binaries gain nothing)",
        ]
        let noNetwork = "  none: a private network namespace with no interfaces up"
        let egress = "  egress through a firewall inside the sandbox's namespace; everything else is dropped and reported"
        let agent = base + [
            "  read and write:    /work/proj",
            "  read-only again:   /work/proj/.git (protect: .git, .sandbox)",
            "  hostname \"sandbox\", working directory /work/proj",
            "  time limit: 10m wall clock, then SIGTERM, SIGKILL 5s later",
            "    scoped: abstract-unix-socket, signal (no reaching outside the sandbox)",
            "  memory: 2 GiB (swap 0 B)", "  processes: 256", "  cpu: 1.5 cores",
        ]
        return [
            "base": base + [
                "  read and execute:  /sbin, /usr", "  read and write:    nothing", "  time limit: none",
                noNetwork, "  memory: unlimited", "  processes: unlimited", "  rlimit nofile: 4096",
            ],
            "agent": agent + [noNetwork],
            "agent-net": agent + [
                egress, "  DNS only to: 10.203.0.1",
                "  in memory, read-only: /etc/resolv.conf (from network.dns; never a host file)",
                "  allow tcp to 140.82.112.0/20 ports 443", "  allow tcp to 2606:50c0::/32 ports 443",
            ],
            "ci-build": base + [
                "  read and write:    /work/proj", "  time limit: 2h wall clock, then SIGTERM, SIGKILL 30s later",
                egress, "  allow tcp to 151.101.0.0/16 ports 80, 443",
                "  memory: 8 GiB (swap 0 B)", "  processes: 4096", "  rlimit nofile: 16384",
            ],
            "strict": base + [
                "  read and execute:  /sbin, /usr, /work/proj", "  read and write:    nothing",
                "  unix sockets under read-only paths are hidden; not searched (socket_scan_skip, vouched socket-free): /usr, /bin, /sbin, /lib, /lib64, /lib32, /work/proj",
                "  runs as uid 65534, gid 65534, no supplementary groups",
                "  time limit: 1m wall clock, then SIGTERM, SIGKILL 5s later",
                "    TCP connect only to ports: nothing", "    TCP bind only to ports: nothing",
                noNetwork, "  memory: 512 MiB (swap 0 B)", "  processes: 64", "  rlimit nofile: 1024",
            ],
        ]
    }()

    @Test func shippedPoliciesCompile() throws {
        let loader = PolicyLoader(searchPath: [repoRoot() + "/Policies"])
        for name in ["base", "agent", "agent-net", "ci-build", "strict"] {
            let p = try loader.load(path: "\(repoRoot())/Policies/\(name).toml")
            let plan = try PlanCompiler(host: host(uid: 0)).compile(p, argv: ["sh"], runId: "r1")
            #expect(plan.policy.name == name)
            let text = Explanation.text(for: plan, policy: p, host: host(uid: 0))
            let lines = Set(text.split(separator: "\n").map(String.init))
            // Paths show as the plan used them: no template is left unexpanded.
            #expect(!text.contains("{"), "explain \(name) shows a template: \(text)")
            let expected = try #require(Self.shippedExplanations[name])
            for line in expected {
                #expect(lines.contains(line), "explain \(name) lacks: \(line)")
            }
            // What a policy does not grant is not claimed either.
            if !expected.contains(where: { $0.hasPrefix("  egress") }) {
                #expect(!lines.contains { $0.hasPrefix("  allow ") || $0.hasPrefix("  DNS only to") }, "explain \(name) shows egress")
            }
        }
    }
}
