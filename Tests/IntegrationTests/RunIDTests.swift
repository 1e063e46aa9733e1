import Foundation
import SandboxExecutor
import SandboxKit
import SandboxKernel
import SandboxPlan
import SandboxPolicy
import Testing

/// One run-id rule (`RunID`): an id the planner accepts is accepted by every
/// consumer that makes something of it (the run directory, the cgroup directories,
/// the egress interface's mark), and one it refuses is refused by all of them —
/// before, the planner took `ABC` and `a_b`, which the cgroup facility refused
/// after the run had begun.
struct RunIDTests {
    static let candidates = [
        "abc", "0a1b2c3d4e5f", "run-1", "plan", "explain", String(repeating: "a", count: 64),
        "ABC", "a_b", "a.b", "..", "a/b", "", " a", "é", String(repeating: "a", count: 65),
    ]

    func plannerAccepts(_ id: String) -> Bool {
        let compiler = PlanCompiler(host: HostFacts(
            arch: "x86_64", kernelRelease: "6.18.0", landlockABI: 0, invokerUID: 0, invokerGID: 0,
            cwd: "/", home: "/root", environment: [:], files: HostFiles()))
        var policy = Policy(name: "ids")
        policy.landlock.mode = .off
        return (try? compiler.compile(policy, argv: ["true"], runId: id)) != nil
    }

    @Test func everyConsumerAppliesThePlannersRule() throws {
        let base = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: base) }
        for id in Self.candidates {
            let planned = plannerAccepts(id)
            #expect(planned == RunID.isValid(id), "planner and RunID disagree on \"\(id)\"")
            #expect(((try? RunCgroup.validate(runId: id)) != nil) == planned, "cgroups disagree on \"\(id)\"")
            // A relative run directory is refused right after the run id is checked, so
            // nothing is set up whichever way the id goes.
            do {
                _ = try EgressNetwork.setUp(EgressConfig(runId: id, runDir: "relative", nftRuleset: "table inet sandbox {}"))
                Issue.record("egress set up with a relative run directory")
            } catch {
                #expect("\(error)".contains("run id") == !planned, "egress disagrees on \"\(id)\": \(error)")
            }
            do {
                let dir = try RunDirectory.create(base: base, id: id)
                #expect(planned, "run directory made for \"\(id)\"")
                try? FileManager.default.removeItem(atPath: dir.path)
            } catch {
                #expect(!planned, "run directory refused \"\(id)\": \(error)")
            }
        }
    }

    /// `sandbox plan --run-id` gives one answer: refused up front with the rule, not
    /// planned and then refused by a later consumer.
    @Test func planRunIdOption() throws {
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("name = \"ids\"\nextends = [\"base\"]", in: dir)
        let refused = try Harness.sandbox(["plan", "--policy", policy, "--run-id", "ABC", "--", "true"], cwd: dir)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("\"ABC\" is not a valid run id (\(RunID.rule))"), "stderr: \(refused.stderr)")
        let planned = try Harness.sandbox(["plan", "--policy", policy, "--run-id", "abc", "--", "true"], cwd: dir)
        #expect(planned.status == 0, "stderr: \(planned.stderr)")
        #expect(planned.stdout.contains("\"runId\" : \"abc\""), "stdout: \(planned.stdout)")
    }
}

/// A run id is twelve lowercase hex digits, a valid `RunID`, new on every call.
@Suite struct NewRunIdTests {
    @Test func twelveHexDigitsEachTimeNew() {
        let ids = (0..<200).map { _ in RunSteps.newRunId() }
        for id in ids {
            #expect(id.utf8.count == 12 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }, "\(id)")
            #expect(RunID.isValid(id), "\(id)")
        }
        #expect(Set(ids).count == ids.count)
    }
}
