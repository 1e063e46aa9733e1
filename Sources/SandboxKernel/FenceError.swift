#if canImport(Glibc)
import Glibc
#endif

/// A Landlock or seccomp step that failed: the operation (the syscall or library
/// call), what it was applied to (a path, a syscall name, a cache file), the errno
/// when the kernel or libseccomp gave one, and what it means where that is not
/// obvious.
///
///     open /srv/data: No such file or directory (errno 2): Landlock rule for /data
public struct FenceError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The call that failed, e.g. `landlock_add_rule`, `seccomp_rule_add`.
    public var operation: String
    /// What it was applied to: a path, a syscall name, a rule origin.
    public var subject: String
    /// The errno, when a syscall or libseccomp reported one.
    public var errno: Int32?
    /// Why it failed or what it was for, when the errno alone does not say.
    public var detail: String?

    public init(operation: String, subject: String, errno: Int32? = nil, detail: String? = nil) {
        self.operation = operation; self.subject = subject; self.errno = errno; self.detail = detail
    }

    public var description: String {
        var text = subject.isEmpty ? operation : "\(operation) \(subject)"
        if let errno { text += ": \(String(cString: strerror(errno))) (errno \(errno))" }
        if let detail { text += ": \(detail)" }
        return text
    }
}
