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
