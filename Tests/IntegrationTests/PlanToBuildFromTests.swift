import Foundation
import Glibc
import SandboxKernel
import SandboxKit
import SandboxPlan
@testable import SandboxServe
import Testing

/// The next sandbox built ahead is made from the request's plan (`PlanToBuildFrom`):
/// it must be, field for field, the plan a compile of its own would give at that
/// moment (the placeholder command, a run id of its own), and a plan that depends
/// on its run id is never reused.
@Suite struct PlanToBuildFromTests {
    /// The host as a request from `dir` sees it (its directory by identity too).
    static func host(cwd dir: String) throws -> HostFacts {
        var probe = HostProbe.probe()
        probe.cwd = dir
        var host = RunSteps.hostFacts(probe)
        var st = stat()
        try #require(stat(dir, &st) == 0)
        host.cwdIdentity = FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        return host
    }

    @Test(arguments: ["agent", "strict", "base", "ci-build", "agent-net", "cdn-egress"])
    func aRequestsPlanIsTheOneABuildWouldCompile(_ name: String) throws {
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let policy = try RunSteps.loadPolicy(name, relativeTo: ws)
        let host = try Self.host(cwd: ws)
        let request = try RunSteps.plan(policy, argv: ["/bin/sh", "-c", "echo hi"], runId: "0123456789ab", host: host, digest: false)
        let built = try #require(PlanToBuildFrom(request, mounts: try MountEvents()).plan(runId: "ba9876543210"),
                                 "\(name): not reused")
        let own = try RunSteps.plan(policy, argv: PlanToBuildFrom.placeholder, runId: "ba9876543210", host: host, digest: false)
        #expect(built == own, "\(name): the plan built from differs from the build's own")
        #expect(built.sameSandbox(as: request))
    }

    /// A `{run_id}` template makes the plan that run's own: nothing is built from it
    /// (it would open and bind the request's paths). Control: the same policy without
    /// the template is reused.
    @Test func aPlanNamingItsRunIdIsNotReused() throws {
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let host = try Self.host(cwd: ws)
        func plan(_ log: String) throws -> RunPlan {
            let file = Harness.policy("name = \"ids\"\nextends = [\"strict\"]\n[audit]\npath = \"\(log)\"\n", in: ws, name: "ids-\(log.count).toml")
            let policy = try RunSteps.loadPolicy(file, relativeTo: ws)
            return try RunSteps.plan(policy, argv: ["true"], runId: "0123456789ab", host: host, digest: false)
        }
        #expect(PlanToBuildFrom(try plan("/var/tmp/sbx-{run_id}.log"), mounts: try MountEvents()).plan(runId: "ba9876543210") == nil)
        #expect(PlanToBuildFrom(try plan("/var/tmp/sbx-fixed.log"), mounts: try MountEvents()).plan(runId: "ba9876543210") != nil)
    }

    @Test func subsequenceSearch() {
        let hay = Array("abcabd".utf8)
        #expect(hay.contains(subsequence: Array("abd".utf8)))
        #expect(!hay.contains(subsequence: Array("abe".utf8)))
        #expect(!hay.contains(subsequence: Array("abcabdx".utf8)))
        #expect(hay.contains(subsequence: Array("abcabd".utf8)))
    }
}
