import CSandboxTestSupport
import Foundation
import SandboxExecutor
import SandboxPlan
import SandboxPolicy
import Testing

/// A root supervisor is not dumpable once it has run anything (SupervisorHardening):
/// the idmap helper shares its memory and would otherwise let a capability-less root
/// process write into it (IdmapHelperMemoryTests has the attack and its control).
@Suite struct SupervisorHardeningTests {
    @Test func aRootSupervisorIsNotDumpableAfterARun() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let loader = PolicyLoader(searchPath: [Harness.repoRoot + "/Policies"],
                                  profileSearchPath: [Harness.repoRoot + "/Profiles/seccomp"])
        let policy = try loader.load(nameOrPath: "base")
        let plan = try PlanCompiler(host: ConcurrencyTests.hostFacts())
            .compile(policy, argv: ["true"], runId: ConcurrencyTests.newRunId())
        var options = ExecOptions(runBase: "/run/sandbox")
        options.restoreTerminal = false
        let result = Executor(plan: plan, options: options).run()
        #expect(result.exitCode == 0, "\(result.error?.message ?? "")")
        #expect(sbx_test_dumpable() == 0, "a root supervisor is still dumpable after a run")
    }
}
