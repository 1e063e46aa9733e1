import CSandbox
import Glibc

/// Network namespaces held by file descriptor only: no `/run/netns` name that could
/// outlive a crash, no PID. Work inside one runs on a dedicated thread that joins it
/// with setns(2) — which changes that thread alone — and ends when the work is done;
/// the caller's threads never leave the host namespace.
enum Netns {
    /// A fresh network namespace (only `lo`, down), as an O_CLOEXEC fd.
    static func create() throws(KernelError) -> Int32 {
        let fd = sbx_net_new_netns()
        guard fd >= 0 else {
            throw KernelError(operation: "unshare", subject: "CLONE_NEWNET", errno: -fd,
                               detail: -fd == EPERM ? "creating a network namespace needs CAP_SYS_ADMIN" : nil)
        }
        return fd
    }

    /// A duplicate of the namespace descriptor `fd` (O_CLOEXEC), owned by the caller.
    static func duplicate(_ fd: Int32) throws(KernelError) -> OwnedFD {
        let dup = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        guard dup >= 0 else { throw KernelError(operation: "dup", subject: "network namespace fd \(fd)", errno: errno) }
        return OwnedFD(dup)
    }

    /// Runs `body` on a new thread inside the namespace `fd` and returns its result.
    static func run<T>(in fd: Int32, _ body: @escaping () throws -> T) throws -> T {
        var result: Result<T, Error>? = nil
        let job = Unmanaged.passRetained(NetnsJob { result = Result { try body() } })
        defer { job.release() }
        let r = sbx_net_run_in_netns(fd, { raw in
            Unmanaged<NetnsJob>.fromOpaque(raw!).takeUnretainedValue().work()
        }, job.toOpaque())
        guard r == 0 else { throw KernelError(operation: "setns", subject: "network namespace fd \(fd)", errno: -r) }
        return try result!.get()
    }
}

/// The closure a namespace thread runs (a class, so it crosses C as one pointer).
private final class NetnsJob {
    let work: () -> Void
    init(_ work: @escaping () -> Void) { self.work = work }
}

/// A cold run's network namespace, made on a thread of its own while the supervisor
/// prepares the rest of the run: creating one (its loopback, the per-namespace
/// tables) is most of what `CLONE_NEWNET` adds to the clone, and off that path it
/// overlaps the run's other set-up on another core. Taken once, for one run; a
/// namespace not taken is closed with this object, so nothing of it reaches another
/// run. Owned by the initial user namespace, as a server's namespace made ahead:
/// only for a run that keeps no network capability.
public final class NetworkNamespaceAhead {
    /// The thread writes here after `start` returns: memory of this object's own,
    /// not a Swift property (whose address `&` guarantees only during the call).
    private let job = UnsafeMutablePointer<sbx_netns_ahead>.allocate(capacity: 1)
    private var pending: Bool
    private var fd: Int32 = -1
    public let loopbackUp: Bool

    /// Starts the thread; nil when it cannot be started (the run then makes its own),
    /// when a server's spawner clones the run (it makes its own ahead), or when this
    /// process is not root (a rootless invoker cannot make one owned by the initial
    /// user namespace; its run makes its own with CLONE_NEWNET).
    public static func start(loopbackUp: Bool) -> NetworkNamespaceAhead? {
        guard geteuid() == 0, !Child.spawnerRunning else { return nil }
        let ahead = NetworkNamespaceAhead(loopbackUp: loopbackUp)
        return ahead.pending ? ahead : nil
    }

    private init(loopbackUp: Bool) {
        self.loopbackUp = loopbackUp
        job.initialize(to: sbx_netns_ahead())
        pending = sbx_net_netns_ahead_start(job, loopbackUp ? 1 : 0) == 0
    }

    /// The namespace (borrowed: closed with this object), or nil when it could not be
    /// made. Waits for the thread the first time.
    public func take() -> Int32? {
        if pending {
            pending = false
            let r = sbx_net_netns_ahead_take(job)
            fd = r >= 0 ? r : -1
        }
        return fd >= 0 ? fd : nil
    }

    /// Closes the namespace now (after the clone: the init holds it).
    public func close() {
        _ = take()
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    deinit {
        close()
        job.deallocate()
    }
}
