import SandboxAudit
import SandboxPlan

/// What the audit log records of a run, from its plan and its result.
enum RunAudit {
    static func start(_ plan: RunPlan) -> RunStart {
        RunStart(runId: plan.runId, invokerUid: plan.host.invokerUID, invokerGid: plan.host.invokerGID,
                 policyName: plan.policy.name, policyDigest: plan.policy.digest, sources: plan.policy.sources,
                 planDigest: plan.digest ?? "", argv: plan.process.argv,
                 // Filled when `[binary]` resolves and opens the executable.
                 binary: nil)
    }

    /// One denial per seccomp entry (and one for the calls past the entry cap) and
    /// per egress destination. Another change gathers every fence's denials into
    /// the result; this then maps that list.
    static func denials(_ result: RunResult) -> [Denial] {
        var out = result.violations.map {
            Denial(kind: "syscall", what: $0.syscall ?? "?", detail: $0.kind, count: $0.count)
        }
        if result.violationsDropped > 0 {
            out.append(Denial(kind: "syscall", what: "(other syscalls)",
                              detail: "calls of syscalls past the \(RunResult.Violation.maxEntries)-entry cap",
                              count: result.violationsDropped))
        }
        out += result.egressDenied.map {
            Denial(kind: "egress", what: "\($0.daddr):\($0.dport)/\($0.proto)", detail: "packets dropped",
                   count: Int(clamping: $0.packets))
        }
        return out
    }
}
