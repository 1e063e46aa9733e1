import CSandbox
import Glibc

/// A process addressed only by its pidfd: signalled with pidfd_send_signal and
/// reaped with waitid(P_PIDFD), so a recycled PID can never be hit. Owns the pidfd
/// (``OwnedFD``): closed once, by ``close()`` or when the last reference goes.
/// ``signal(_:)`` may be called from any thread, also while another closes it.
public final class Pidfd: Sendable {
    private let owner: OwnedFD

    /// The pidfd; -1 after ``close()``.
    public var fd: Int32 { owner.raw }

    /// Takes ownership of `fd`.
    public init(fd: Int32) { owner = OwnedFD(fd) }

    /// ESRCH (already exited) counts as delivered. False once closed (nothing sent).
    @discardableResult
    public func signal(_ sig: Int32) -> Bool {
        owner.withRaw { fd in
            guard fd >= 0 else { return false }
            _ = sbx_pidfd_send_signal(fd, sig)
            return true
        }
    }

    /// Whether the process has exited (its pidfd is readable), without waiting.
    public var hasExited: Bool {
        owner.withRaw { fd in
            guard fd >= 0 else { return true }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&p, 1, 0) != 0
        }
    }

    public struct Exit {
        /// CLD_EXITED, CLD_KILLED, CLD_DUMPED.
        public var code: Int32
        public var status: Int32
        public var usage: rusage

        /// Exited normally (status is the exit code) rather than by a signal.
        public var exited: Bool { code == CLD_EXITED }
        /// CPU time of the process and every descendant it reaped.
        public var cpuUserMs: UInt64 { Exit.ms(usage.ru_utime) }
        public var cpuSystemMs: UInt64 { Exit.ms(usage.ru_stime) }
        static func ms(_ t: timeval) -> UInt64 { UInt64(max(0, t.tv_sec)) * 1000 + UInt64(max(0, t.tv_usec)) / 1000 }
    }

    /// Whether the process has exited (the pidfd is readable) within `timeoutMs`;
    /// it is not reaped.
    public func waitExited(timeoutMs: Int32) -> Bool {
        let deadline = Clock.monotonicMs() + UInt64(max(0, timeoutMs))
        while true {
            let now = Clock.monotonicMs()
            guard let events = try? Poll.wait([fd], timeoutMs: Int32(clamping: deadline > now ? deadline - now : 0)) else {
                return false
            }
            if !events[0].isEmpty { return true }
            if Clock.monotonicMs() >= deadline { return false }
        }
    }

    public func wait() throws(KernelError) -> Exit {
        var code: Int32 = 0, status: Int32 = 0
        var usage = rusage()
        let r = sbx_pidfd_wait(fd, &code, &status, &usage)
        if r < 0 { throw KernelError(operation: "waitid", subject: "pidfd \(fd)", errno: -r) }
        return Exit(code: code, status: status, usage: usage)
    }

    /// Closes the pidfd; idempotent. Not while ``wait()`` runs on another thread.
    public func close() { owner.close() }
}
