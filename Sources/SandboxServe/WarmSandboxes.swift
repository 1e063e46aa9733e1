import Dispatch
import SandboxKit
import Synchronization

/// Sandboxes the server built ahead of their command (Docs/serve.md, "Sandboxes
/// built ahead"): once a request's result is out, the next sandbox for the same
/// client, policy and directory is built while the client reads it — run directory,
/// uid lease, bind trees, cgroup, fences, the init cloned and its root built — and
/// the init waits for a command (`Executor.prepareAhead`). The next such request
/// sends its command to it instead of building its own.
///
/// - A request takes one only if the plan compiled for it makes exactly that
///   sandbox (`RunPlan.sameSandbox(as:)`: every field but the command, the run id
///   and the digest): its plan is compiled and checked as for any run, so a policy,
///   a bind source, an environment or a host fact that changed since means a
///   sandbox of its own, and the one built ahead is let go.
/// - Each is used once, by one request of the client it was built for (the peer's
///   uid is in the key), and nothing of one run is in another: a fresh init, root,
///   cgroup, uid lease and run directory each.
/// - At most `capacity` (`sandbox serve --built-ahead`, default 2) exist or are
///   being built at once, over all clients; one not taken within ``idleSeconds`` is
///   let go (its init killed, everything removed), and all are at the server's
///   stop. A killed server's inits die with it (PDEATHSIG) and `sandbox gc` removes
///   their run directories, as for any run.
/// - What the plan does not hold is checked at the take (``Sandbox/run(_:stdio:onResult:)``,
///   `Executor.run(command:stdio:onResult:)`): the mounts of the binds' trees, and
///   what the init mounted beneath the binds (Docs/serve.md).
public final class WarmSandboxes: Sendable {
    public static let defaultCapacity = 2
    static let idleSeconds = 30
    let capacity: Int

    struct Key: Hashable, Sendable {
        let peerUID: UInt32
        let policy: String
        /// The client's directory (the request's fourth descriptor) by identity, and
        /// the mount it is on (a read-only bind of the same directory is another).
        let device: UInt64, inode: UInt64, mount: UInt64
    }

    /// One built: its executor, the descriptors it holds in the server's budget
    /// (released by whoever ends it), and the wake-up of the thread that built it,
    /// which lets it go when it is not taken in time.
    final class Sandbox: @unchecked Sendable {
        let executor: Executor
        let descriptors: Int
        /// The server's mount namespace, watched from before the plan was made: what
        /// the sandbox cloned of the host's mounts (a bind's tree, its flags, what is
        /// mounted beneath) is as it was then; after any mount change since, the take
        /// compares the mounts of its binds' trees with ``table``.
        let mounts: MountEvents
        /// The mounts its binds' trees were built from, with their unique ids: read
        /// when the watch began, and none changed until it was built (else it was let
        /// go at once).
        let table: FileSystemLocation.Table
        let settled = DispatchSemaphore(value: 0)
        init(executor: Executor, descriptors: Int, mounts: MountEvents, table: FileSystemLocation.Table) {
            self.executor = executor; self.descriptors = descriptors; self.mounts = mounts; self.table = table
        }

        /// Runs `plan` (a request's) in it if it may: the mounts that make up its
        /// binds' trees as they were at the build (looked at only when a mount of the
        /// server's namespace changed since: a busy host mounts elsewhere all the
        /// time), and the executor's own checks (``Executor/run(command:stdio:onResult:)``).
        /// nil: it may not, and nothing was started.
        func run(_ plan: RunPlan, stdio: (Int32, Int32, Int32), onResult: @escaping (RunResult) -> Void,
                 auditState: AuditStateQuery? = nil) -> RunResult? {
            if mounts.changed {
                guard FileSystemLocation.table().sameTrees(as: table, at: Self.bindSources(plan)) else { return nil }
            }
            return executor.run(command: plan, stdio: stdio, onResult: onResult, auditState: auditState)
        }

        /// The host paths of `plan`'s binds: where the trees its mounts make up start.
        static func bindSources(_ plan: RunPlan) -> [String] {
            plan.mounts.compactMap { $0.kind == .bind ? $0.source : nil }
        }

        /// Let go unused: its init killed, everything of it removed.
        func discard() { executor.discard(); mounts.close() }
    }

    private struct State {
        var ready: [Key: [Sandbox]] = [:]
        var building: [Key: Int] = [:]
        var stopping = false
        var count: Int { ready.values.reduce(0) { $0 + $1.count } + building.values.reduce(0, +) }
    }
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    /// Whether a sandbox for `key` should be built now: room under the capacity, the
    /// server not stopping. True reserves the slot: ``offer(_:for:)`` or
    /// ``abandon(_:)`` must follow.
    func reserve(_ key: Key) -> Bool {
        state.withLock { s in
            guard !s.stopping, s.count < capacity else { return false }
            s.building[key, default: 0] += 1
            return true
        }
    }

    private static func doneBuilding(_ key: Key, _ s: inout State) {
        let left = (s.building[key] ?? 1) - 1
        s.building[key] = left > 0 ? left : nil
    }

    /// The reservation let go: the build failed.
    func abandon(_ key: Key) {
        state.withLock { Self.doneBuilding(key, &$0) }
    }

    /// A sandbox built for `key`, now ready. False when the server is stopping (the
    /// caller lets it go).
    func offer(_ sandbox: Sandbox, for key: Key) -> Bool {
        state.withLock { s in
            Self.doneBuilding(key, &s)
            guard !s.stopping else { return false }
            s.ready[key, default: []].append(sandbox)
            return true
        }
    }

    /// Whether a sandbox for `key` waits now (a request may take it).
    func isReady(_ key: Key) -> Bool { state.withLock { !($0.ready[key]?.isEmpty ?? true) } }

    /// A ready sandbox for `key`, taken (nobody else gets it), or nil. One still
    /// being built is not waited for: built once the previous result was out, it is
    /// only as far along as the client was quick, and a request that waited for it
    /// paid nearly a whole build before its own run (back to back: 1.6× bwrap
    /// waiting, 1.0× not).
    func take(_ key: Key) -> Sandbox? {
        let taken = state.withLock { s -> Sandbox? in
            guard var list = s.ready[key], !list.isEmpty else { return nil }
            let sandbox = list.removeFirst()
            s.ready[key] = list.isEmpty ? nil : list
            return sandbox
        }
        taken?.settled.signal()
        return taken
    }

    /// The builder's wait: until the sandbox is taken, the server stops or
    /// ``idleSeconds`` pass. True when the builder must let it go (not taken).
    func waitTakenOrWithdraw(_ sandbox: Sandbox, for key: Key) -> Bool {
        _ = sandbox.settled.wait(timeout: .now() + .seconds(Self.idleSeconds))
        return state.withLock { s in
            guard var list = s.ready[key], let i = list.firstIndex(where: { $0 === sandbox }) else { return false } // taken
            list.remove(at: i)
            s.ready[key] = list.isEmpty ? nil : list
            return true
        }
    }

    /// The server stops: nothing more is built, and every builder waiting on a ready
    /// sandbox wakes and lets it go.
    func stop() {
        let waiting = state.withLock { s -> [Sandbox] in
            s.stopping = true
            return s.ready.values.flatMap { $0 }
        }
        for sandbox in waiting { sandbox.settled.signal() }
    }
}
