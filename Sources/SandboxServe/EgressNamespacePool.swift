import SandboxKit
import Synchronization

/// The server's egress namespaces made ahead (`PreparedNamespace`): two for each of
/// the rulesets of the last few egress runs, so the next run with one of them (the
/// same policy, usually) finds its firewall, veth and address in place and pays only
/// for its lease and the host end's attachment.
///
/// - Keyed by the ruleset's exact text: a run takes a namespace only if the ruleset
///   loaded in it is its plan's, byte for byte.
/// - The most recently asked rulesets are kept (``rulesets``); a ruleset asked for
///   once more than that evicts the least recent one, whose namespaces are closed.
///   So clients alternating between a few policies each keep theirs (red team,
///   session 32: with one ruleset, two clients of two policies emptied the pool for
///   each other on every run, and every run paid for the refill as well).
/// - A ruleset is prepared for from its second run on (while it is kept): a client
///   cycling through more policies than are kept would otherwise have namespaces made
///   and closed unused on every run (three times the namespaces, red team, session 32).
/// - Each namespace is given out once and is never entered before the run's init.
/// - Filled on one thread of its own after each take (the run does not wait for it),
///   most recent ruleset first; a failure to make one stops the filling until the
///   next take.
final class EgressNamespacePool: Sendable {
    /// Rulesets kept, and namespaces kept per ruleset.
    static let rulesets = 3
    static let perRuleset = 2
    /// What the pool holds at most (two each: the namespace and its refusal sets'
    /// socket), plus what the one filling thread holds while it makes one (the
    /// namespace, the refusal sets' socket, a route socket, libnftables' socket, the
    /// host lock, the state file being written, and room): reserved in the server's
    /// descriptor bound (`Server.Limits.runDescriptors`).
    static let descriptors = rulesets * perRuleset * 2 + 8

    private struct Entry {
        let ruleset: String
        var ready: [PreparedNamespace] = []
        /// Runs that asked for it while it was kept.
        var asked = 0
    }
    private struct State {
        var entries: [Entry] = []   // most recently asked first
        var filling = false
    }
    private let state = Mutex(State())

    init() {}

    /// A namespace prepared with exactly `ruleset`, or nil; either way `ruleset`
    /// becomes the most recent and the pool is filled.
    func take(ruleset: String) -> PreparedNamespace? {
        let (taken, evicted, fill) = state.withLock { s -> (PreparedNamespace?, [PreparedNamespace], Bool) in
            var entry = s.entries.firstIndex { $0.ruleset == ruleset }.map { s.entries.remove(at: $0) } ?? Entry(ruleset: ruleset)
            let taken = entry.ready.popLast()
            entry.asked += 1
            s.entries.insert(entry, at: 0)
            var evicted: [PreparedNamespace] = []
            while s.entries.count > Self.rulesets { evicted += s.entries.removeLast().ready }
            let fill = !s.filling
            s.filling = true
            return (taken, evicted, fill)
        }
        for p in evicted { p.close() }
        if fill, !Threads.detach(name: "sandbox-netns", stackSize: 1 << 20, { self.fill() }) {
            state.withLock { $0.filling = false }
        }
        return taken
    }

    /// Makes namespaces until every kept ruleset asked for more than once has
    /// ``perRuleset``, the most recent first.
    private func fill() {
        while true {
            let want = state.withLock { s -> String? in
                guard let e = s.entries.first(where: { $0.asked > 1 && $0.ready.count < Self.perRuleset }) else {
                    s.filling = false
                    return nil
                }
                return e.ruleset
            }
            guard let want else { return }
            guard let made = try? PreparedNamespace.make(ruleset: want) else {
                state.withLock { $0.filling = false }
                return
            }
            let kept = state.withLock { s -> Bool in
                guard let i = s.entries.firstIndex(where: { $0.ruleset == want }), s.entries[i].ready.count < Self.perRuleset
                else { return false }
                s.entries[i].ready.append(made)
                return true
            }
            if !kept { made.close() }
        }
    }

    /// Closes every namespace held (the server is stopping).
    func drain() {
        let all = state.withLock { s -> [PreparedNamespace] in
            defer { s.entries = [] }
            return s.entries.flatMap(\.ready)
        }
        for p in all { p.close() }
    }
}
