import Foundation
@testable import SandboxPlan
import SandboxPolicy
import Testing

/// The plan carries typed words (`SandboxVocabulary`), spelled in its JSON as they
/// always were: a plan's canonical JSON, and so its digest, an audit record or a
/// cached seccomp filter keyed by it, must not change when a field's type does.
struct PlanSpellingTests {
    /// sha256 of each shipped policy's plan on the fake host (`host(uid:)`, the
    /// checkout's path replaced by `<repo>`), as the
    /// planner gave them before the plan carried types instead of strings. A change
    /// here changes every recorded plan digest: make it on purpose, never by a
    /// type's spelling. Changed on purpose by the denial account (issue 15): the
    /// seccomp rules that keep signals off PID 1 (Landlock's signal scope) and
    /// connect(2) through the supervisor in network modes none and loopback. ci-build's
    /// changed when its allow rules moved into cdn-egress (issue 18): its plan names
    /// one more policy file in `policy.sources`, and nothing else changed. The egress
    /// plans (agent-net, ci-build) changed when each refusal reason got its own chain
    /// and sets in the ruleset and the plan carried the connection limits
    /// (`network.connections`) for the result's hints. All changed when base's deny
    /// list took in the new mount API (session 47: under `profile = "none"` it was
    /// the whole filter, and it refused mount(2) but not fsopen, fsmount and the rest).
    static let goldenDigests: [String: String] = [
        "base root": "9ae1579fb8e15b5dc1523676a27ebad19343a4fe7c38c28c68b2a8f221c0b8f5",
        "base rootless": "56f18daba58b2daedc719da973043c50d83d4c7710583ef74d7a512e24833009",
        "agent root": "cd9b68a1c1529dda237b4f4381bae03d85d4ce5c0356c05f98dadb299526d03f",
        "agent rootless": "dd8e3d4d07c04b3080b15c83e99241c81b43f95eff128bbbd210073d09c39457",
        "agent-net root": "e98224839991db90d55c670d8d66e3bae151a76104e2030e61ba2663ff7cdfce",
        "ci-build root": "c730f7185129630960e9f28720d06c7e5cc6f83a01e1206905a190a1fafab7e8",
        "strict root": "de404d485f57a32479a86500984b0a97ecd0a38d42d0e383d0f6a232c8fcc053",
        "strict rootless": "187e05c27fddc9e8e48348fac65e3c75344fe526819b57e257b53d9c8d9f059c",
    ]

    static func shippedPlans() throws -> [(String, RunPlan)] {
        let loader = PolicyLoader(searchPath: [repoRoot() + "/Policies"])
        var out: [(String, RunPlan)] = []
        for name in ["base", "agent", "agent-net", "ci-build", "strict"] {
            let p = try loader.load(path: "\(repoRoot())/Policies/\(name).toml")
            out.append(("\(name) root", try PlanCompiler(host: host(uid: 0)).compile(p, argv: ["sh"], runId: "r1")))
            if p.network.mode != .egress {
                out.append(("\(name) rootless", try PlanCompiler(host: host(uid: 1000)).compile(p, argv: ["sh"], runId: "r1")))
            }
        }
        return out
    }

    @Test func shippedPlanDigestsAreUnchanged() throws {
        for (name, plan) in try Self.shippedPlans() {
            // The plan names the policy and profile files by absolute path: digested
            // with the checkout's location left out, so the figure holds in any clone.
            var copy = plan
            copy.digest = nil
            let json = String(decoding: try PlanDigest.canonicalJSON(copy), as: UTF8.self)
                .replacingOccurrences(of: repoRoot(), with: "<repo>")
            let digest = PlanDigest.sha256Hex(Array(json.utf8))
            #expect(digest == Self.goldenDigests[name], "\(name): \(digest)")
        }
    }

    @Test func typedFieldsKeepTheirSpelling() throws {
        let p = try derived("""
            [landlock]
            scope = ["signal", "abstract-unix-socket"]
            [seccomp]
            deny = ["ptrace"]
            socket_families = ["unix", "inet6"]
            on_violation = "kill"
            [network]
            mode = "egress"
            dns = ["10.203.0.1"]
            """)
        let plan = try PlanCompiler(host: host(uid: 0)).compile(p, argv: ["sh"], runId: "r1")
        let json = String(decoding: try PlanDigest.canonicalJSON(plan), as: UTF8.self)
        for fragment in [
            #""hostUID":"own""#,
            #""mode":"egress""#,
            #""mode":"enforce""#,
            #""scopes":["abstract-unix-socket","signal"]"#,
            #""access":["read_dir"]"#,
            #""handledAccessFS":["execute","write_file","read_file","read_dir","remove_dir","remove_file","make_char","make_dir","make_reg","make_sock","make_fifo","make_block","make_sym","refer","truncate","ioctl_dev"]"#,
            #""defaultAction":"SCMP_ACT_ALLOW""#,
            #""action":"SCMP_ACT_NOTIFY""#,
            #""op":"SCMP_CMP_MASKED_EQ""#,
            #""onViolation":"kill""#,
            #""socketFamilies":["inet6","unix"]"#,
            #""source":"network.resolvConf""#,
        ] {
            #expect(json.contains(fragment), "plan JSON lacks \(fragment)")
        }
        // And it reads back as the same plan.
        let decoded = try JSONDecoder().decode(RunPlan.self, from: Data(try PlanDigest.canonicalJSON(plan)))
        #expect(decoded == plan)
        #expect(plan.mounts.first { $0.kind == .file }?.inMemoryFile == .resolvConf)
    }

    /// The plan's hand-written canonical JSON (`PlanJSON.swift`, on every run's
    /// start-up) is the bytes the Codable encoder gives: on each shipped plan, with and
    /// without its digest, and on a plan with every optional set and odd strings.
    @Test func handWrittenPlanJSONIsTheCodableEncoding() throws {
        var plans = try Self.shippedPlans().map(\.1)
        var full = plans[0]
        full.digest = "d\u{1}\"\\é"
        full.policy.digest = nil
        full.audit = AuditPlan(path: "/var/log/a\nb", keyFile: "/etc/k")
        full.process.timeoutMs = 0
        full.process.userNamespace = UserNamespacePlan(uidMap: "0 1000 1\n", gidMap: "0 1000 1\n")
        full.process.rlimits.append(RlimitPlan(name: "nofile", resource: 7, soft: UInt64.max, hard: 0))
        full.resources = ResourcePlan(memoryBytes: 1, swapBytes: 2, pids: 3, cpuQuotaUs: 4, cpuPeriodUs: 5, ioWeight: 6,
                                      bestEffort: ["memory", ""])
        full.landlock.connectTCP = [443, 80]
        full.landlock.bindTCP = []
        full.landlock.rules.append(LandlockRule(path: "/x", hostPath: "/h\t", access: [.readFile, .execute]))
        full.seccomp.profile = nil
        full.seccomp.defaultErrno = 38
        full.seccomp.socketFamilies = [.unix, .inet]
        full.seccomp.syscallNumbers["Zeta"] = -1
        full.seccomp.explicitTimesViaSupervisor = true
        full.seccomp.refusedIoctls = [IoctlCommand("FS_IOC_SETFLAGS", 0x4008_6602), IoctlCommand("\u{1}", UInt32.max)]
        full.seccomp.rules.append(SeccompRulePlan(syscalls: ["a", "b"], action: .errno, errno: 1,
            args: [SeccompArgPlan(index: 5, op: .maskedEqual, value: UInt64.max, valueTwo: 0)], origin: "o"))
        full.network.resolvConf = "nameserver 10.0.0.1\n"
        full.network.hosts = "127.0.0.1 localhost\n"
        full.network.nftRuleset = "table inet t {}"
        full.network.stub = DNSStubPlan(address: "10.0.0.1", upstream: ["9.9.9.9"], upstreamSource: "policy",
            denyResolved: ["10.0.0.0/8"], ttl: .init(min: 5, max: 300),
            names: [.init(host: try #require(HostPattern("*.example.org")), ports: [443], proto: "tcp",
                          set4: "h0_4", set6: "h0_6")])
        full.network.stub?.serverNameCheck = ServerNameCheckPlan(
            rules: [.init(host: try #require(HostPattern("*.example.org")), ports: [443, 80])],
            claims: [.tlsServerName, .httpHost], resetWhen: [.notAllowed, .ech])
        full.network.allow = [NetworkAllowPlan(cidr: "10.0.0.0/8", ports: [], proto: "tcp"),
                              NetworkAllowPlan(cidr: "::/0", ports: [53, 1], proto: "udp")]
        full.binary.pin = ["/usr/bin/b": "ff", "/usr/bin/a": "00", "/usr/bin/B": "11"]
        full.reportCreated = [".git"]
        full.notApplied = ["x\u{7f}", "control: \u{8}\u{c}\u{1}\u{1f}\t\r\n\"\\ {[,:]} é"]
        var step = MountStep(kind: .bind, source: "/s", destination: "/d", readOnly: false, options: "mode=0755",
                             optional: true, origin: "filesystem.rw")
        step.sourceIdentity = FileIdentity(device: 1, inode: UInt64.max)
        step.cwdRelative = ""
        full.mounts.append(step)
        plans.append(full)
        for plan in plans {
            var bare = plan
            bare.digest = nil
            for p in [plan, bare] {
                let hand = p.canonicalJSON()
                let codable = try CanonicalJSON.encode(p)
                #expect(hand == codable, "\(String(decoding: hand, as: UTF8.self))\n!=\n\(String(decoding: codable, as: UTF8.self))")
            }
            // `sandbox plan`'s layout is JSONEncoder's .prettyPrinted, written from the
            // canonical bytes.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            for p in [plan, bare] {
                #expect(try p.prettyJSON() == String(decoding: try encoder.encode(p), as: UTF8.self))
            }
            let (digest, json) = try PlanDigest.digestAndJSON(of: bare)
            #expect(digest == PlanDigest.sha256Hex(try CanonicalJSON.encode(bare)))
            var withDigest = bare
            withDigest.digest = digest
            #expect(json == (try CanonicalJSON.encode(withDigest)))
        }
    }
}

/// The start-up path's own replacements for Foundation (the substitution of path
/// variables, the canonical string escape) give what Foundation's and the earlier
/// code gave.
@Suite struct HandWrittenStringsTests {
    @Test(arguments: [
        ("{cwd}/x", "{cwd}", "/home/a"), ("{cwd}{cwd}", "{cwd}", "/w"), ("a{cw}d}", "{cwd}", "/w"),
        ("{home}/.cache/{home}", "{home}", "/root"), ("", "{uid}", "0"), ("{{uid}}", "{uid}", "1000"),
        ("/p/é/{run_id}/ü", "{run_id}", "abc123"), ("{gid", "{gid}", "5"), ("x{cwd}", "{cwd}", "{home}"),
    ])
    func replacingAllIsFoundationsReplace(_ text: String, _ name: String, _ value: String) {
        #expect(Context.replacingAll(name, with: value, in: text) == text.replacingOccurrences(of: name, with: value))
    }

    /// The escape as it was written before it worked on bytes.
    static func quoteByScalars(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    @Test func quoteIsTheScalarEscape() {
        var samples = ["", "plain", "quote\"back\\slash", "/p/é/ü/日本/🙂", "\u{7f}\u{80}\u{FFFF}"]
        samples += (0..<0x20).map { "a" + String(UnicodeScalar(UInt8($0))) + "b" }
        for s in samples {
            #expect(CanonicalJSON.quote(s) == Self.quoteByScalars(s), "\(Array(s.utf8))")
        }
    }
}
