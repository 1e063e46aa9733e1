import Foundation
@testable import SandboxPlan
import SandboxPolicy
import SandboxVocabulary
import Testing

/// `SeccompPlanMemo`: serve's compilations of one policy share one seccomp section,
/// and nothing but equal inputs can: each input changed alone gets a section of its
/// own, the one the planner builds afresh for it.
struct SeccompPlanMemoTests {
    /// A profile whose rules hang on every condition the planner reads: a capability,
    /// an architecture and a kernel release.
    static func conditional() throws -> Policy {
        var p = try derived("")
        p.seccomp.profile = SeccompProfile(
            source: "/memo-test.json", defaultAction: .errno, defaultErrnoRet: 1, architectures: ["SCMP_ARCH_X86_64"],
            syscalls: [
                SeccompRule(names: ["read", "write", "exit_group", "kill", "tgkill", "connect", "chmod", "sendmsg"], action: .allow),
                SeccompRule(names: ["ptrace"], action: .allow, includes: SeccompCondition(minKernel: "4.8")),
                SeccompRule(names: ["personality"], action: .allow, includes: SeccompCondition(caps: ["CAP_SYS_ADMIN"])),
                SeccompRule(names: ["arch_prctl"], action: .allow, includes: SeccompCondition(arches: ["amd64"])),
            ],
            flags: [])
        return p
    }

    @Test func eachInputChangedAloneGetsTheSectionBuiltForIt() throws {
        let base = try Self.conditional()
        let h = host(uid: 0)
        var variants: [(String, Policy, HostFacts)] = []
        var p = base; p.capabilities.keep.append("sys_admin"); variants.append(("capabilities.keep", p, h))
        p = base; p.seccomp.deny.append("write"); variants.append(("seccomp.deny", p, h))
        p = base; p.seccomp.onViolation = base.seccomp.onViolation == .errno ? .notify : .errno
        variants.append(("seccomp.on_violation", p, h))
        p = base; p.seccomp.socketFamilies = [.unix]; variants.append(("seccomp.socket_families", p, h))
        p = base; p.seccomp.profile?.syscalls[0].names.append("openat"); variants.append(("the profile", p, h))
        p = base; p.landlock.scope = base.landlock.scope.contains(.signal) ? [] : [.signal]
        variants.append(("landlock.scope", p, h))
        p = base; p.network.mode = base.network.mode == .egress ? .none : .egress; variants.append(("network.mode", p, h))
        var other = h; other.kernelRelease = "4.4.0"; variants.append(("kernel release", base, other))
        other = h; other.arch = "aarch64"; variants.append(("arch", base, other))

        let first = try Context(policy: base, host: h, runId: "r1").seccompPlan()
        let same = try Context(policy: base, host: h, runId: "r2").seccompPlan() == first
        #expect(same)
        for (input, policy, hostFacts) in variants {
            let ctx = Context(policy: policy, host: hostFacts, runId: "r1")
            let remembered = try ctx.seccompPlan()
            let fresh = try ctx.buildSeccompPlan(nested: nil)
            // (Compared outside #expect: a failure would print both sections whole.)
            let built = remembered == fresh, differs = remembered != first
            #expect(built, "\(input): the memo gave another section than the planner builds")
            #expect(differs, "\(input): the same section as the unchanged inputs (the test cannot tell)")
            // Asked again, the memo gives it (it was remembered, not only built).
            let again = try ctx.seccompPlan() == fresh
            #expect(again, "\(input)")
        }
    }

    @Test func theSameInputsAgainAreAnsweredFromTheMemoWithItsJSON() throws {
        // A memo of the test's own: the shared one is the other tests' too.
        let memo = SeccompPlanMemo()
        let policy = try Self.conditional()
        let ctx = Context(policy: policy, host: host(uid: 0), runId: "r1")
        let inputs = SeccompPlanMemo.Inputs(
            seccomp: policy.seccomp, keep: policy.capabilities.keep, scope: policy.landlock.scope,
            network: policy.network.mode, arch: "x86_64", kernelRelease: "6.18.0")
        var builds = 0, renders = 0
        let a = try memo.plan(for: inputs) { builds += 1; return try ctx.buildSeccompPlan(nested: nil) }
        let b = try memo.plan(for: inputs) { builds += 1; return try ctx.buildSeccompPlan(nested: nil) }
        #expect(builds == 1 && memo.hits.load(ordering: .relaxed) == 1)
        let same = a == b
        #expect(same)
        let first = memo.json(of: a) { renders += 1; return [1] }
        let second = memo.json(of: b) { renders += 1; return [2] }
        #expect(first == [1] && second == [1] && renders == 1)
        var changed = a
        changed.rules.removeLast()
        #expect(memo.json(of: changed) { [3] } == nil)
    }

    @Test func aRememberedSectionsJSONIsItsCodableEncoding() throws {
        let policy = try Self.conditional()
        let compiler = PlanCompiler(host: host(uid: 0))
        let a = try compiler.compile(policy, argv: ["sh"], runId: "r1")
        let b = try compiler.compile(policy, argv: ["sh"], runId: "r2")
        // Each time it is asked for, and a section changed after compilation is
        // written afresh.
        for plan in [a, b, a] {
            var copy = plan
            copy.digest = nil
            #expect(copy.canonicalJSON() == (try CanonicalJSON.encode(copy)))
        }
        var changed = b
        changed.digest = nil
        changed.seccomp.rules.removeLast()
        #expect(changed.canonicalJSON() == (try CanonicalJSON.encode(changed)))
    }
}
