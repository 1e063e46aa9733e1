import CSandbox
import Glibc

/// What the supervisor's event loop needs from the kernel: signals as a file
/// descriptor, poll(2), a monotonic clock, fd passing. Kept here so the executor
/// above makes no raw calls (SandboxKernel is the only Swift module that does).

public enum Signal {
    /// Forwarded to the sandbox (DESIGN §4); the supervisor never dies of them.
    public static let forwarded: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]
    public static let term = SIGTERM
    public static let kill = SIGKILL
}

/// Signals delivered through a signalfd instead of handlers: blocked on the calling
/// thread before clone (the child resets its mask), read in the event loop, so none
/// is lost and the supervisor never runs code in a signal handler.
public final class SignalChannel {
    public let fd: Int32
    private var previous = sigset_t()

    public init(_ signals: [Int32]) throws(KernelError) {
        var mask = sigset_t()
        sigemptyset(&mask)
        for s in signals + [SIGCHLD] { sigaddset(&mask, s) }
        pthread_sigmask(SIG_BLOCK, &mask, &previous)
        let fd = sbx_signalfd(&mask)
        guard fd >= 0 else {
            var old = previous
            pthread_sigmask(SIG_SETMASK, &old, nil)
            throw KernelError(operation: "signalfd", subject: "supervisor signals", errno: -fd)
        }
        self.fd = fd
    }

    /// Signals that arrived since the last call (SIGCHLD left out: the pidfd says
    /// when the child exits).
    public func pending() -> [Int32] {
        var out: [Int32] = []
        while case let sig = sbx_signalfd_next(fd), sig > 0 { if sig != SIGCHLD { out.append(sig) } }
        return out
    }

    /// Closes the fd and restores the signal mask. Call once.
    public func close() {
        FD.close(fd)
        var old = previous
        pthread_sigmask(SIG_SETMASK, &old, nil)
    }
}

public struct PollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: Int16(POLLIN))
    public static let hangup = PollEvents(rawValue: Int16(POLLHUP))
    public static let error = PollEvents(rawValue: Int16(POLLERR))
}

public enum Poll {
    /// poll(2) for readability on `fds`; returns each fd's events (empty on timeout or
    /// EINTR). `timeoutMs` < 0 waits forever.
    public static func wait(_ fds: [Int32], timeoutMs: Int32) throws(KernelError) -> [PollEvents] {
        var items = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let n = poll(&items, nfds_t(items.count), timeoutMs)
        if n < 0 {
            if errno == EINTR { return Array(repeating: [], count: fds.count) }
            throw .last("poll", "supervisor event loop")
        }
        return items.map { PollEvents(rawValue: $0.revents) }
    }
}

public enum Clock {
    /// Milliseconds on CLOCK_MONOTONIC.
    public static func monotonicMs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }

    public static func unixSeconds() -> Int { Int(time(nil)) }

    /// CLOCK_REALTIME_COARSE: the clock the kernel stamps new inodes with, so a file
    /// created after this call never has an earlier birth time.
    public static func fileTimestampNow() -> (sec: Int64, nsec: UInt32) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        return (Int64(ts.tv_sec), UInt32(ts.tv_nsec))
    }
}

extension FD {
    /// A connected AF_UNIX SOCK_SEQPACKET pair, both ends close-on-exec.
    public static func socketPair() throws(KernelError) -> (Int32, Int32) {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw .last("socketpair", "AF_UNIX")
        }
        return (pair[0], pair[1])
    }

    /// One fd sent with SCM_RIGHTS (the child's seccomp listener), or nil.
    public static func receiveFD(_ socket: Int32) -> Int32? {
        let fd = sbx_recv_fd(socket)
        return fd >= 0 ? fd : nil
    }

    /// The errno stat(2) gives for `path`, or nil if it exists.
    public static func statError(_ path: String) -> Int32? {
        var st = stat()
        return stat(path, &st) == 0 ? nil : errno
    }
}

extension KernelError {
    /// clone3 failed because this user may not create a user namespace.
    public var isUserNamespaceDenied: Bool { [EPERM, ENOSPC, EINVAL, EUSERS].contains(errno) }
}
