import Glibc
import Synchronization

/// One open file descriptor and the one place that closes it.
///
/// A descriptor number is only a name: once closed, the kernel hands the same
/// number to the next `open`, `pipe` or `pidfd` of *any* thread. A second `close` of
/// a number — by hand and again by an undo step — closes whatever another run of the
/// same process opened meanwhile (its pidfd, its cgroup fd, its seccomp socket).
/// So every descriptor the supervisor opens is held by an `OwnedFD`, and only it
/// closes the number:
///
/// - ``close()`` closes it exactly once, whoever calls it and however often
///   (teardown, an undo entry, `deinit`); afterwards ``raw`` is -1.
/// - ``release()`` hands the number to a new owner (this one then holds -1 and
///   closes nothing): for a descriptor given to another owner type.
/// - The child's spec takes plain numbers (``raw``) right before `clone3`; after it,
///   the parent's copy is closed here, once.
///
/// Thread-safe: ``withRaw(_:)`` holds the descriptor open for the duration of its
/// body, so a thread that uses it (e.g. `Executor.signal(_:)` sending through the
/// pidfd) never races a `close` on the owning thread.
public final class OwnedFD: Sendable, CustomStringConvertible {
    private let state: Mutex<Int32>

    /// Takes ownership of `fd` (-1: owns nothing).
    public init(_ fd: Int32) { state = Mutex(fd) }

    /// The descriptor, or -1 once closed or released. Valid for as long as the owner
    /// keeps it open: use it on the owning thread, or through ``withRaw(_:)``.
    public var raw: Int32 { state.withLock { $0 } }

    public var isOpen: Bool { raw >= 0 }

    /// Runs `body` with the descriptor (-1 if closed), which cannot be closed by
    /// another thread meanwhile. `body` must not call ``close()`` or ``release()``
    /// on this owner, nor block for long.
    public func withRaw<T, E: Error>(_ body: (Int32) throws(E) -> T) throws(E) -> T {
        try state.withLock { fd throws(E) in try body(fd) }
    }

    /// Closes the descriptor if it is still open; true if this call closed it.
    @discardableResult
    public func close() -> Bool {
        let fd = state.withLock { fd -> Int32 in
            let old = fd
            fd = -1
            return old
        }
        guard fd >= 0 else { return false }
        _ = Glibc.close(fd)
        return true
    }

    /// Gives up ownership: returns the descriptor (-1 if none), which the caller must
    /// now close; this owner holds -1.
    public func release() -> Int32 {
        state.withLock { fd in
            let old = fd
            fd = -1
            return old
        }
    }

    public var description: String { "fd \(raw)" }

    deinit { close() }
}

extension Array where Element == OwnedFD {
    /// Closes every descriptor still open (each at most once).
    public func closeAll() { for fd in self { fd.close() } }
}
