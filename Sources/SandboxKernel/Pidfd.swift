import CSandbox
import Glibc

/// A process addressed only by its pidfd: signalled with pidfd_send_signal and
/// reaped with waitid(P_PIDFD), so a recycled PID can never be hit.
public struct Pidfd {
    public let fd: Int32

    public init(fd: Int32) { self.fd = fd }

    /// ESRCH (already exited) counts as delivered.
    public func signal(_ sig: Int32) {
        _ = sbx_pidfd_send_signal(fd, sig)
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

    public func wait() throws(KernelError) -> Exit {
        var code: Int32 = 0, status: Int32 = 0
        var usage = rusage()
        let r = sbx_pidfd_wait(fd, &code, &status, &usage)
        if r < 0 { throw KernelError(operation: "waitid", subject: "pidfd \(fd)", errno: -r) }
        return Exit(code: code, status: status, usage: usage)
    }

    public func close() { FD.close(fd) }
}
