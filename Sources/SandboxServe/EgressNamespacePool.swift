import SandboxKit
import Synchronization

/// The server's egress namespaces made ahead (`PreparedNamespace`): a few for the
/// ruleset of the last egress run, so the next one with the same ruleset (the same
/// policy, usually) finds its firewall loaded and pays only for its veth and address.
///
/// - Keyed by the ruleset's exact text: a run takes a namespace only if the ruleset
///   loaded in it is its plan's, byte for byte. A run with another ruleset takes
///   none, and the pool starts over for that one (one ruleset at a time: a bound on
///   what the server holds, two descriptors a namespace).
/// - Each namespace is given out once and is never entered before the run's init.
/// - Filled on a thread of its own after each take (the run does not wait for it);
///   a failure to make one stops the filling until the next take.
final class EgressNamespacePool: Sendable {
    private struct State {
        var ruleset: String? = nil
        var ready: [PreparedNamespace] = []
        var filling = false
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 2) { self.capacity = capacity }

    /// A namespace prepared with exactly `ruleset`, or nil; either way the pool is
    /// then filled for `ruleset`.
    func take(ruleset: String) -> PreparedNamespace? {
        let (taken, dropped, fill) = state.withLock { s -> (PreparedNamespace?, [PreparedNamespace], Bool) in
            var dropped: [PreparedNamespace] = []
            if s.ruleset != ruleset {
                dropped = s.ready
                s.ready = []
                s.ruleset = ruleset
            }
            let taken = s.ready.popLast()
            let fill = !s.filling
            s.filling = true
            return (taken, dropped, fill)
        }
        for p in dropped { p.close() }
        if fill, !Threads.detach(name: "sandbox-netns", stackSize: 1 << 20, { self.fill() }) {
            state.withLock { $0.filling = false }
        }
        return taken
    }

    /// Namespaces ready now (tests and the benchmark's accounting).
    var readyCount: Int { state.withLock { $0.ready.count } }

    /// Makes namespaces for the current ruleset until there are `capacity` of it.
    private func fill() {
        while true {
            let want = state.withLock { s -> String? in
                guard let r = s.ruleset, s.ready.count < capacity else { s.filling = false; return nil }
                return r
            }
            guard let want else { return }
            guard let made = try? PreparedNamespace.make(ruleset: want) else {
                state.withLock { $0.filling = false }
                return
            }
            let kept = state.withLock { s -> Bool in
                guard s.ruleset == want, s.ready.count < capacity else { return false }
                s.ready.append(made)
                return true
            }
            if !kept { made.close() }
        }
    }

    /// Closes every namespace held (the server is stopping).
    func drain() {
        let all = state.withLock { s -> [PreparedNamespace] in
            defer { s.ready = []; s.ruleset = nil }
            return s.ready
        }
        for p in all { p.close() }
    }
}
