#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import CSeccomp

/// One system call the filter caught and the supervisor answered (on_violation = notify).
public struct SeccompViolation: Codable, Sendable, Equatable {
    /// The syscall's name (libseccomp's table for the caller's architecture), or
    /// `nr_<n>` when it has none.
    public var syscall: String
    public var number: Int32
    /// The six raw argument registers (pointers are addresses in the caller: they are
    /// never read, so nothing here can be raced).
    public var args: [UInt64]
    /// The filter action that caught it: `notify` (the caller got EPERM).
    public var action: String
    /// The notification (its id and the caller's pid), for ``SeccompNotifier/readCaller(_:address:length:)``.
    public var id: UInt64 = 0
    public var pid: UInt32 = 0

    public init(syscall: String, number: Int32, args: [UInt64], action: String) {
        self.syscall = syscall; self.number = number; self.args = args; self.action = action
    }
}

/// The supervisor's end of a seccomp user-notification filter (seccomp_unotify(2)):
/// every notification is recorded and answered with EPERM.
///
/// The answer is never `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: by the time the supervisor
/// looked at pointer arguments the caller could have changed them (TOCTOU), so the
/// notifier is an audit channel, not a policy engine — the verdict is always "denied".
/// The one exception does the call itself rather than let it run: a nested run's
/// explicit file times (``TimesFence``), set by the supervisor on its own descriptor
/// from its own copy of the arguments, answered `.succeeded` or with an errno.
///
/// Use: poll ``fd`` for `POLLIN` (a notification is pending) and call ``handleOne()``;
/// `POLLHUP` means every task using the filter has exited.
public final class SeccompNotifier {
    private let listener: OwnedFD
    /// The listener fd. -1 after ``close()``.
    public var fd: Int32 { listener.raw }
    /// The architecture the filter was compiled for (the plan's), used to name a
    /// syscall when the kernel reports no architecture.
    public let arch: String
    private let recvBuffer: UnsafeMutableRawBufferPointer
    private let sendBuffer: UnsafeMutableRawBufferPointer

    /// Takes ownership of `listenerFD` (from `SECCOMP_FILTER_FLAG_NEW_LISTENER`, passed
    /// back by the child over SCM_RIGHTS).
    public convenience init(listenerFD: Int32, arch: String) {
        self.init(listener: OwnedFD(listenerFD), arch: arch)
    }

    /// Takes over `listener` (this notifier closes it).
    public init(listener: OwnedFD, arch: String) {
        self.listener = listener
        self.arch = arch
        // The kernel's structs may be larger than the headers we were built with;
        // RECV/SEND need buffers of at least the kernel's size (SECCOMP_GET_NOTIF_SIZES).
        var notifSize: UInt16 = 0
        var respSize: UInt16 = 0
        if sbx_fence_notif_sizes(&notifSize, &respSize, nil) != 0 {
            notifSize = 0
            respSize = 0
        }
        let recvSize = max(Int(notifSize), MemoryLayout<sbx_fence_notification>.size, 80)
        let sendSize = max(Int(respSize), 24)
        recvBuffer = .allocate(byteCount: recvSize, alignment: 8)
        sendBuffer = .allocate(byteCount: sendSize, alignment: 8)
    }

    /// Receives one notification (blocking until one is pending), answers it with
    /// EPERM and returns what was attempted. nil when there was nothing to record:
    /// the caller died or was interrupted before it could be received (ENOENT), or the
    /// notifier is closed.
    /// Receives one notification. With `respond` (the default) the call is answered
    /// with EPERM. Without, it is left blocked: for `on_violation = "kill"`, where the
    /// supervisor kills the sandbox and the call must never return to the caller.
    public enum Answer: Equatable {
        case deny, allow, none, error(Int32)
        /// The call returns 0: the supervisor did it itself (TimesFence).
        case succeeded
    }

    public func handleOne(respond: Bool = true) -> SeccompViolation? {
        handleOne(answer: respond ? .deny : .none)
    }

    /// Receives one notification and answers it: `.deny` (EPERM), `.error(e)` (that
    /// errno), `.allow` (the call runs: on_violation = "log"), or `.none` (left
    /// blocked: "kill").
    public func handleOne(answer: Answer) -> SeccompViolation? {
        handleOne { _ in answer }?.violation
    }

    /// Receives one notification and answers it as `decide` says from what was
    /// attempted (never from memory the caller can change: only its registers).
    public func handleOne(decide: (SeccompViolation) -> Answer) -> (violation: SeccompViolation, answer: Answer)? {
        guard fd >= 0 else { return nil }
        var note = sbx_fence_notification()
        while sbx_fence_notif_recv(fd, recvBuffer.baseAddress, recvBuffer.count, &note) != 0 {
            if errno == EINTR { continue }
            return nil
        }
        let args = withUnsafeBytes(of: note.args) { Array($0.bindMemory(to: UInt64.self)) }
        var v = SeccompViolation(syscall: syscallName(note.nr, archToken: note.arch), number: note.nr, args: args, action: "")
        v.id = note.id
        v.pid = note.pid
        let answer = decide(v)
        // ENOENT here means the caller is gone (killed, or its syscall interrupted); the
        // attempt still happened, so it is recorded all the same.
        switch answer {
        case .deny: _ = sbx_fence_notif_send_error(fd, sendBuffer.baseAddress, sendBuffer.count, note.id, EPERM)
        case .error(let e): _ = sbx_fence_notif_send_error(fd, sendBuffer.baseAddress, sendBuffer.count, note.id, e)
        case .allow: _ = sbx_fence_notif_send_continue(fd, sendBuffer.baseAddress, sendBuffer.count, note.id)
        case .succeeded: _ = sbx_fence_notif_send_error(fd, sendBuffer.baseAddress, sendBuffer.count, note.id, 0) // error 0, val 0
        case .none: break
        }
        switch answer {
        case .deny, .error, .succeeded: v.action = "notify"
        case .allow: v.action = "log"
        case .none: v.action = "kill"
        }
        return (v, answer)
    }

    private func syscallName(_ nr: Int32, archToken: UInt32) -> String {
        var token = archToken
        if token == 0 {
            token = seccomp_arch_resolve_name(arch)
            if token == 0 { token = seccomp_arch_native() }
        }
        if let name = seccomp_syscall_resolve_num_arch(token, nr) {
            defer { free(name) }
            return String(cString: name)
        }
        return "nr_\(nr)"
    }

    /// Up to `length` bytes at `address` in the caller of `v` while its call is held,
    /// or nil (the caller is gone, the address unreadable). For the denial account
    /// only: the caller can change them right after, so no answer may depend on them.
    public func readCaller(_ v: SeccompViolation, address: UInt64, length: Int) -> [UInt8]? {
        guard fd >= 0, length > 0, length <= 4096 else { return nil }
        var bytes = [UInt8](repeating: 0, count: length)
        let n = bytes.withUnsafeMutableBytes { sbx_fence_notif_read_caller(fd, v.id, v.pid, address, $0.baseAddress, length) }
        guard n > 0 else { return nil }
        return Array(bytes.prefix(n))
    }

    /// True while the call of `v` is still held (SECCOMP_IOCTL_NOTIF_ID_VALID): what
    /// was opened through `/proc/<pid>` before this answer was the caller's.
    public func isPending(_ v: SeccompViolation) -> Bool {
        fd >= 0 && sbx_fence_notif_id_valid(fd, v.id) == 0
    }

    /// Closes the listener; idempotent. Tasks still blocked in a notifying syscall then
    /// get ENOSYS, and later ones too (the kernel's behaviour without a listener).
    public func close() {
        listener.close()
    }

    deinit {
        close()
        recvBuffer.deallocate()
        sendBuffer.deallocate()
    }
}
