import Foundation
import SandboxExecutor
import SandboxKernel
import Testing

/// `sandbox doctor` on the real host: every feature with a state, every shipped policy
/// with a verdict, and a non-zero exit naming a shipped policy that cannot run (as
/// nobody through setpriv, and with a data directory holding a policy this kernel
/// cannot satisfy).
@Suite struct DoctorTests {
    static func report(_ out: Harness.Output) throws -> DoctorReport {
        try JSONDecoder().decode(DoctorReport.self, from: Data(out.stdout.utf8))
    }

    static var shippedNames: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(Harness.repoRoot)/Policies")) ?? [])
            .filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// As root on this host: every feature listed with a state and a detail, in the
    /// fixed order, every shipped policy can run (exit 0). The details are what the
    /// kernel says (seccomp's actions, Landlock's ABI), not canned text.
    @Test func everyFeatureHasAStateAndEveryShippedPolicyRuns() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = try Harness.sandbox(["doctor", "--json"], cwd: dir)
        let r = try Self.report(out)
        #expect(r.features.map(\.name) == Diagnosis.featureNames)
        for f in r.features { #expect(!f.detail.isEmpty, "\(f.name) has no detail") }
        #expect(Diagnosis.featureNames.count == 16)
        let actions = (try? String(contentsOfFile: "/proc/sys/kernel/seccomp/actions_avail", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "-"
        #expect(r.features.first { $0.name == "seccomp" }?.detail == "actions: \(actions)")
        let abi = Landlock.probeABI()
        #expect(r.features.first { $0.name == "landlock" }?.detail.hasPrefix("Landlock ABI \(min(abi, 7))") == true)
        #expect(r.features.first { $0.name == "clone3-pidfd" }?.state == .available)
        #expect(r.policies.map(\.name).sorted() == Self.shippedNames)
        #expect(r.policies.allSatisfy { $0.runs }, "\(r.policies.filter { !$0.runs })")
        #expect(out.status == 0 && r.ok, "\(out.stdout)\(out.stderr)")

        // The text form: the same features and policies, one line each.
        let text = try Harness.sandbox(["doctor"], cwd: dir)
        #expect(text.status == 0, "\(text.stdout)\(text.stderr)")
        for name in Diagnosis.featureNames { #expect(text.stdout.contains("\n  \(name) "), "\(name) missing: \(text.stdout)") }
        let lines = text.stdout.split(separator: "\n").map(String.init)
        for name in Self.shippedNames {
            #expect(lines.contains { $0.hasPrefix("  \(name) ") && $0.hasSuffix(" runs") }, "\(name): \(text.stdout)")
        }
    }

    /// As nobody (rootless): the egress policies need a root invoker, and on a host
    /// where this user cannot create cgroups (cgroup v1) agent's limits cannot be
    /// applied; doctor names each with the key and exits 1. The same limits are what
    /// `exec` refuses (control: agent as nobody fails with 125 naming the memory limit).
    @Test func rootlessNamesThePoliciesThatCannotRun() throws {
        guard Harness.require(Harness.isRoot, "root (to run as nobody)") else { return }
        let dir = Harness.tempDir(owner: 65534)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Its run base (and seccomp cache) must not be in the project a run may write.
        let runtime = Harness.tempDir(owner: 65534)
        defer { try? FileManager.default.removeItem(atPath: runtime) }
        let asNobodyArgs = ["--reuid=65534", "--regid=65534", "--clear-groups", "env", "XDG_RUNTIME_DIR=\(runtime)",
                            "HOME=\(runtime)", Harness.binary]
        let asNobody = asNobodyArgs + ["doctor"]
        let out = try Harness.run("/usr/bin/setpriv", asNobody + ["--json"], cwd: dir)
        #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
        let r = try Self.report(out)
        #expect(r.rootless && !r.ok && r.invokerUID == 65534)
        #expect(r.features.map(\.name) == Diagnosis.featureNames)
        #expect(r.features.first { $0.name == "idmapped-mounts" }?.state == .notApplicable)
        func blockers(_ name: String) -> [String] { r.policies.first { $0.name == name }?.blockers.map(\.key) ?? ["<missing>"] }
        for egress in ["agent-net", "ci-build"] {
            #expect(blockers(egress).contains("network.mode"), "\(egress): \(blockers(egress))")
        }
        if case .hybrid = CgroupHost.probe().mode {
            #expect(Set(blockers("agent")).isSuperset(of: ["resources.memory", "resources.pids", "resources.cpu"]),
                    "agent: \(blockers("agent"))")
            #expect(r.features.first { $0.name == "cgroups" }?.state == .unavailable)
            // One message names every limit exec cannot apply, with the advice once.
            let exec = try Harness.exec(policy: "agent", ["true"], cwd: dir, asUser: (65534, runtime))
            #expect(exec.status == 125, "\(exec.stderr)")
            let firstLine = exec.stderr.split(separator: "\n").first.map(String.init) ?? ""
            for limit in ["memory", "pids", "cpu"] { #expect(firstLine.contains(limit), "\(limit) not named: \(exec.stderr)") }
            #expect(firstLine.contains("limits cannot be applied: this user cannot create cgroups here"), "\(exec.stderr)")
            #expect(exec.stderr.components(separatedBy: "best-effort").count == 2, "\(exec.stderr)")
            // `explain` says the same before anything runs; as root it runs here.
            let explain = try Harness.run("/usr/bin/setpriv", asNobodyArgs + ["explain", "--policy", "agent"], cwd: dir)
            #expect(explain.status == 0 && explain.stdout.contains("On this host, as uid 65534 (rootless): cannot run:")
                    && explain.stdout.contains("  - resources.memory: ") && explain.stdout.contains("  - resources.cpu: "),
                    "\(explain.stdout)\(explain.stderr)")
            // The shipped rootless policy runs, and its result names each skipped limit and why.
            #expect(blockers("agent-rootless") == [], "agent-rootless: \(blockers("agent-rootless"))")
            let rootless = try Harness.exec(policy: "agent-rootless", ["sh", "-c", "echo ran > ran"], cwd: dir, asUser: (65534, runtime))
            #expect(rootless.status == 0, "\(rootless.stderr)")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/ran"))
            let skipped = (rootless.result?["notApplied"] as? [String] ?? []).filter { $0.hasPrefix("resources.") }
            for limit in ["memory", "pids", "cpu"] {
                #expect(skipped.contains("resources.\(limit): best-effort limit not applied: this user cannot create cgroups here (see `sandbox doctor`)"),
                        "\(limit): \(skipped)")
            }
            let explainRootless = try Harness.run("/usr/bin/setpriv", asNobodyArgs + ["explain", "--policy", "agent-rootless"], cwd: dir)
            #expect(explainRootless.stdout.contains("On this host, as uid 65534 (rootless): runs.")
                    && explainRootless.stdout.contains("resources: memory (best-effort, cannot be applied here)"), "\(explainRootless.stdout)")
        }
        let asRoot = try Harness.sandbox(["explain", "--policy", "agent"], cwd: dir)
        #expect(asRoot.stdout.contains("On this host, as root: runs."), "\(asRoot.stdout)")
        let text = try Harness.run("/usr/bin/setpriv", asNobody, cwd: dir)
        #expect(text.status == 1)
        #expect(text.stdout.contains("cannot run on this host as uid 65534: ") && text.stdout.contains("agent-net (network.mode"),
                "\(text.stdout)")
    }

    /// A data directory with a policy this kernel cannot satisfy (Landlock ABI 64):
    /// exit 1 naming it, its key and why; the policy beside it runs. Control: without
    /// it, the same directory gives exit 0.
    @Test func unsatisfiableShippedPolicyIsNamed() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let data = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let cwd = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: cwd) }
        try FileManager.default.createDirectory(atPath: "\(data)/Policies", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(Harness.repoRoot)/Profiles", toPath: "\(data)/Profiles")
        try FileManager.default.copyItem(atPath: "\(Harness.repoRoot)/Policies/base.toml", toPath: "\(data)/Policies/base.toml")
        try """
            name = "future"
            extends = ["base"]
            [landlock]
            min_abi = 64
            """.write(toFile: "\(data)/Policies/future.toml", atomically: true, encoding: .utf8)
        let env = ["SANDBOX_DATA_DIR": data]
        let out = try Harness.run(Harness.binary, ["doctor", "--json"], cwd: cwd, env: env)
        #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
        let r = try Self.report(out)
        #expect(r.policyDirectory == "\(data)/Policies")
        let future = r.policies.first { $0.name == "future" }
        #expect(future?.runs == false && future?.blockers.first?.key == "landlock.mode", "\(String(describing: future))")
        #expect(future?.blockers.first?.reason.contains("landlock.min_abi (ABI 64)") == true, "\(String(describing: future))")
        #expect(r.policies.first { $0.name == "base" }?.runs == true)
        let text = try Harness.run(Harness.binary, ["doctor"], cwd: cwd, env: env)
        #expect(text.status == 1 && text.stdout.contains("cannot run on this host as uid 0: future (landlock.mode)"), "\(text.stdout)")

        try FileManager.default.removeItem(atPath: "\(data)/Policies/future.toml")
        let fine = try Harness.run(Harness.binary, ["doctor", "--json"], cwd: cwd, env: env)
        #expect(fine.status == 0, "\(fine.stdout)\(fine.stderr)")
    }
}
