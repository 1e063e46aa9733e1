import SandboxKernel
import SandboxPlan

extension DNSStubConfig {
    /// The kernel side's view of the plan's stub.
    init(plan: DNSStubPlan) {
        self.init(address: plan.address, upstream: plan.upstream, denyResolved: plan.denyResolved,
                  ttlMin: plan.ttl.min, ttlMax: plan.ttl.max,
                  names: plan.names.map { Name(host: $0.host, set4: $0.set4, set6: $0.set6, tcpPorts: $0.proto == "tcp" ? $0.ports : []) })
    }
}
