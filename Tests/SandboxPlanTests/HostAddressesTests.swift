import Foundation
import SandboxPlan
import SandboxPolicy
import Testing

/// `RunSteps.hostFacts(network:)` leaves the host's addresses and resolvers out for a
/// policy that is not egress: the planner must not read them for such a plan.
struct HostAddressesOnlyForEgressTests {
    @Test func onlyAnEgressPlanDependsOnTheHostsAddresses() throws {
        var with = host(uid: 0)
        with.hostAddresses = ["140.82.112.7/24", "2001:db8::7/64"]   // inside the egress allow rule below
        with.hostResolvers = ["192.0.2.53"]
        let without = host(uid: 0)
        for mode in ["none", "loopback"] {
            let p = try derived("[network]\nmode = \"\(mode)\"\n")
            let a = try PlanCompiler(host: with).compile(p, argv: ["sh"], runId: "r1")
            let b = try PlanCompiler(host: without).compile(p, argv: ["sh"], runId: "r1")
            #expect(a.digest == b.digest, "\(mode): the plan read the host's addresses")
        }
        // Control: an egress plan does read them (its firewall drops the host's own).
        let egress = try derived("""
            [network]
            mode = "egress"
            dns = ["10.203.0.1"]
            allow = [ { cidr = "140.82.112.0/20", ports = [443], proto = "tcp" } ]
            """)
        let a = try PlanCompiler(host: with).compile(egress, argv: ["sh"], runId: "r1")
        let b = try PlanCompiler(host: without).compile(egress, argv: ["sh"], runId: "r1")
        #expect(a.digest != b.digest)
    }

    /// Fail closed: when the host's addresses could not be read whole, an egress plan
    /// is refused (a plan without some of them would let a broad allow rule open
    /// them); a plan without egress does not need them.
    @Test func egressIsRefusedWhenTheHostsAddressesAreUnknown() throws {
        var unknown = host(uid: 0)
        unknown.hostAddressesError = "netlink RTM_GETADDR every address of the host: EINTR"
        let egress = try derived("""
            [network]
            mode = "egress"
            dns = ["10.203.0.1"]
            allow = [ { cidr = "0.0.0.0/0", ports = [443], proto = "tcp" } ]
            """)
        #expect(throws: PlanError.self) { _ = try PlanCompiler(host: unknown).compile(egress, argv: ["sh"], runId: "r1") }
        do {
            _ = try PlanCompiler(host: unknown).compile(egress, argv: ["sh"], runId: "r1")
        } catch let e as PlanError {
            #expect(e.key == "network.mode" && e.message.contains("could not be read") && e.message.contains("EINTR"), "\(e)")
        }
        // Control: the same host facts without the error plan it.
        var known = unknown
        known.hostAddressesError = nil
        #expect(throws: Never.self) { _ = try PlanCompiler(host: known).compile(egress, argv: ["sh"], runId: "r1") }
        let none = try derived("[network]\nmode = \"none\"\n")
        #expect(throws: Never.self) { _ = try PlanCompiler(host: unknown).compile(none, argv: ["sh"], runId: "r1") }
    }
}
