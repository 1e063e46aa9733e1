import SandboxPolicy
import SandboxVocabulary
import Synchronization

/// The last few seccomp sections the planner built, with their plan JSON.
///
/// Why: a plan's seccomp section is a pure function of a few inputs (``Inputs``), and
/// `sandbox serve` compiles the same policy again for every request. Building it (a
/// profile of some 400 syscalls: the rule edits, the BPF cache key and its SHA-256)
/// and writing its JSON were a tenth of the server's CPU per run (issue 16).
///
/// A hit needs inputs equal (`==`) to remembered ones, every field, so nothing but
/// the same inputs can share a section; a policy from serve's `PolicyCache` shares
/// its arrays' storage with the remembered one, which makes that comparison mostly
/// identity checks. The JSON is found the same way: by a section equal to the one
/// remembered, so a section changed after compilation is written afresh.
final class SeccompPlanMemo: Sendable {
    /// Everything `Context.seccompPlan(nested: nil)` reads. A field added there must
    /// be added here (`SeccompPlanMemoTests` changes each one).
    struct Inputs: Equatable, Sendable {
        var seccomp: SeccompPolicy
        var keep: [String]
        var scope: [LandlockScope]
        var network: NetworkMode
        var arch: String
        var kernelRelease: String
    }

    private final class Entry: Sendable {
        let inputs: Inputs
        let plan: SeccompPlan
        let json = Mutex<[UInt8]?>(nil)
        init(inputs: Inputs, plan: SeccompPlan) { self.inputs = inputs; self.plan = plan }
    }

    static let shared = SeccompPlanMemo()
    /// A few policies at once (serve's clients mix them); newest first.
    static let capacity = 8
    private let entries = Mutex<[Entry]>([])
    /// Tests: how many sections were answered from here.
    let hits = Atomic<Int>(0)

    func plan(for inputs: Inputs, build: () throws -> SeccompPlan) rethrows -> SeccompPlan {
        if let hit = entries.withLock({ $0.first { $0.inputs == inputs } }) {
            hits.add(1, ordering: .relaxed)
            return hit.plan
        }
        let plan = try build()
        let entry = Entry(inputs: inputs, plan: plan)
        entries.withLock { e in
            e.insert(entry, at: 0)
            if e.count > Self.capacity { e.removeLast() }
        }
        return plan
    }

    /// The JSON of `plan` when a remembered section equals it, written once by
    /// `render`; nil otherwise.
    func json(of plan: SeccompPlan, render: () -> [UInt8]) -> [UInt8]? {
        guard let entry = entries.withLock({ $0.first { $0.plan == plan } }) else { return nil }
        if let bytes = entry.json.withLock({ $0 }) { return bytes }
        let bytes = render()
        entry.json.withLock { $0 = bytes }
        return bytes
    }
}
