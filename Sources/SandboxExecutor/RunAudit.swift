import SandboxAudit
import SandboxPlan

/// What the audit log records of a run, from its plan and its result.
enum RunAudit {
    static func start(_ plan: RunPlan, binary: CheckedBinary?) -> RunStart {
        RunStart(runId: plan.runId, invokerUid: plan.host.invokerUID, invokerGid: plan.host.invokerGID,
                 policyName: plan.policy.name, policyDigest: plan.policy.digest, sources: plan.policy.sources,
                 planDigest: plan.digest ?? "", argv: plan.process.argv,
                 // What `[binary]` opened and hashed (also when a rule refused it); nil
                 // without `[binary]` checks, when argv[0] is run by path.
                 binary: binary.map { RunStart.Binary(path: $0.path, sha256: $0.sha256) })
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
