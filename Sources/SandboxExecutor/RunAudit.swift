import SandboxAudit
import SandboxPlan
import SandboxVocabulary

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

    /// One `denial` record per entry of the run's denial account.
    static func denials(_ result: RunResult) -> [Denial] {
        result.denials.map {
            Denial(kind: $0.kind.rawValue, what: $0.what, detail: $0.detail, count: $0.count, first: $0.first, hint: $0.hint)
        }
    }
}
