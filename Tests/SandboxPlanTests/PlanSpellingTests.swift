import Foundation
import SandboxPlan
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
    /// type's spelling.
    static let goldenDigests: [String: String] = [
        "base root": "36a14dd1f0ab627ae03e6590a916b12bb75be3ad027e1c61b9194f2639fedf77",
        "base rootless": "87e81b1b9c4895d6e5b86122ad8abf3d42ccf5bf6b258cbb95a2c5b3f2d84c3d",
        "agent root": "95a2cb70bb3ff115b06e7f25164e6c8c160d70dfd229cadf0bb5482abb6469fe",
        "agent rootless": "ed2fdb2e35a56b1254ba345295ebe422ef70a895da6d8b81fa94598e60144013",
        "agent-net root": "2373ef131c62ae69afb3cee568bf67b85d50c135631d7a18b0d23a5855b4fba4",
        "ci-build root": "428ce954ee168ed686b535ca89a07a08f63be2d07e705ef794ae3f54f68f5def",
        "strict root": "ff6ed6e8f785b2595045b5fe44bad3479f6aa9a14c556b72c3005d3d53ce4bd6",
        "strict rootless": "ff05384221f88de4e00170146f2cd0422725f370bfaffd6235f9e5b7947fa5d9",
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
}
