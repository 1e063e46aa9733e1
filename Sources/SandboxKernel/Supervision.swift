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
    /// Nested: the supervisor's kill, sent to the reaper instead of SIGKILL, which
    /// would leave the command's processes behind (no PID namespace ends them): the
    /// reaper kills the payload and then every process of the run left.
    public static let endRun = Int32(SBX_SIGNAL_END_RUN)
}

/// Signals delivered through a signalfd instead of handlers: blocked on the calling
/// thread before clone (the child resets its mask), read in the event loop, so none
/// is lost and the supervisor never runs code in a signal handler.
///
/// The mask is the calling thread's (`pthread_sigmask`), not the process's. The
/// signalfd yields signals sent to this thread and process-directed ones that are
/// pending because every thread blocks them; a process-directed signal goes to any
/// one thread that does not block it. So in a process with one run (the CLI) the
/// run receives what is sent to the process; with several runs at once, which run
/// (if any) gets a signal sent to the process is not defined — see
/// `Executor.signal(_:)`. Create, read and close it on one thread.
public final class SignalChannel {
    private let owner: OwnedFD
    private var previous = sigset_t()
    private var restored = false

    /// The signalfd; -1 after ``close()``.
    public var fd: Int32 { owner.raw }

    public init(_ signals: [Int32]) throws(KernelError) {
        var mask = sigset_t()
        sigemptyset(&mask)
        // Not SIGCHLD: the pidfd says when the child exits, and a blocked SIGCHLD read
        // here would be taken from whatever else in the process waits for its own
        // children (a Dispatch signal source, Foundation's Process).
        for s in signals where s != SIGCHLD { sigaddset(&mask, s) }
        pthread_sigmask(SIG_BLOCK, &mask, &previous)
        let fd = sbx_signalfd(&mask)
        guard fd >= 0 else {
            var old = previous
            pthread_sigmask(SIG_SETMASK, &old, nil)
            throw KernelError(operation: "signalfd", subject: "supervisor signals", errno: -fd)
        }
        owner = OwnedFD(fd)
    }

    /// Signals that arrived since the last call.
    public func pending() -> [Int32] {
        let fd = owner.raw
        guard fd >= 0 else { return [] }
        var out: [Int32] = []
        while case let sig = sbx_signalfd_next(fd), sig > 0 { out.append(sig) }
        return out
    }

    /// Closes the fd and restores the calling thread's signal mask (on the thread
    /// that created the channel). Idempotent.
    public func close() {
        owner.close()
        guard !restored else { return }
        restored = true
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
    public static func monotonicMs() -> UInt64 { monotonicUs() / 1000 }

    /// Microseconds on CLOCK_MONOTONIC (deadlines and measurements finer than a ms).
    public static func monotonicUs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
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
    /// One byte from `fd`, waiting at most `timeoutMs`: nil at EOF; ETIMEDOUT when
    /// none came in time.
    public static func readByte(_ fd: Int32, timeoutMs: Int32) throws(KernelError) -> UInt8? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var r: Int32
        repeat { r = poll(&p, 1, timeoutMs) } while r < 0 && errno == EINTR
        if r < 0 { throw .last("poll", "fd \(fd)") }
        if r == 0 { throw KernelError(operation: "read", subject: "fd \(fd)", errno: ETIMEDOUT) }
        var byte: UInt8 = 0
        var n: Int
        repeat { n = Glibc.read(fd, &byte, 1) } while n < 0 && errno == EINTR
        if n < 0 { throw .last("read", "fd \(fd)") }
        return n == 0 ? nil : byte
    }

    /// `/dev/null`, read and write, close-on-exec.
    public static func openNullDevice() throws(KernelError) -> OwnedFD {
        let fd = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open", "/dev/null") }
        return OwnedFD(fd)
    }

    /// A connected AF_UNIX SOCK_SEQPACKET pair (`stream`: SOCK_STREAM), both ends
    /// close-on-exec.
    public static func socketPair(stream: Bool = false) throws(KernelError) -> (OwnedFD, OwnedFD) {
        var pair: [Int32] = [-1, -1]
        let type = stream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_SEQPACKET.rawValue)
        guard socketpair(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw .last("socketpair", "AF_UNIX")
        }
        return (OwnedFD(pair[0]), OwnedFD(pair[1]))
    }

    /// `writeAll` with SIGPIPE held off the calling thread: a reader that is gone (a
    /// child killed before it read its sync byte) is a failed write (EPIPE), not the
    /// end of the process — an embedding program need not ignore SIGPIPE. The kernel
    /// sends that SIGPIPE to the writing thread; it is taken back here.
    public static func writeAllWithoutSIGPIPE(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var pipe = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        var old = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipe, &old)
        var before = sigset_t()
        sigpending(&before)
        let ok = writeAll(fd, bytes)
        if !ok, errno == EPIPE, sigismember(&before, SIGPIPE) == 0 {
            var now = timespec(tv_sec: 0, tv_nsec: 0)
            _ = sigtimedwait(&pipe, nil, &now)
        }
        pthread_sigmask(SIG_SETMASK, &old, nil)
        return ok
    }

    /// One fd sent with SCM_RIGHTS (the child's seccomp listener), or nil.
    public static func receiveFD(_ socket: OwnedFD) -> OwnedFD? {
        let fd = sbx_recv_fd(socket.raw)
        return fd >= 0 ? OwnedFD(fd) : nil
    }
}

extension KernelError {
    /// clone3 failed because this user may not create a user namespace.
    public var isUserNamespaceDenied: Bool { [EPERM, ENOSPC, EINVAL, EUSERS].contains(errno?.rawValue ?? 0) }
}

/// A root supervisor's process is not dumpable (`PR_SET_DUMPABLE 0`) for the rest of
/// its life (`sbx_harden_root`). The idmap helper (`sbx_mounts_make_userns`) shares its
/// memory, and the namespace probe and the sandbox init are copies of it; the helper
/// and the probe are root in a user namespace root owns, so any uid-0 process, even
/// one with no capability (a hardened service, a container sharing the host's PID
/// namespace), passes the ptrace check on them as that namespace's owner and could
/// open their memory — the helper's is the supervisor's own — read-write (red team,
/// session 27). On a memory that is not dumpable the check also needs CAP_SYS_PTRACE
/// in the initial namespace. The C functions that clone (`sbx_spawn`,
/// `sbx_probe_clone3`, `sbx_mounts_make_userns`) harden the process themselves, so a
/// harness that embeds the library is covered by its first run or plan; `main` does
/// it first for every subcommand. It also keeps a process that holds the audit key
/// out of core files.
public enum SupervisorHardening {
    public static func apply() { _ = applied }
    private static let applied: Bool = sbx_harden_root() == 0
}
