import CSandbox
import Glibc

/// A failed kernel call: what was attempted, on what, and the errno. Prints as
/// `open /run/sandbox/x/lock: Permission denied`.
public struct KernelError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var subject: String
    public var errno: Int32
    public var detail: String?

    public init(operation: String, subject: String, errno: Int32, detail: String? = nil) {
        self.operation = operation; self.subject = subject; self.errno = errno; self.detail = detail
    }

    public var description: String {
        var s = "\(operation) \(subject): \(KernelError.text(errno))"
        if let detail { s += " (\(detail))" }
        return s
    }

    public static func text(_ err: Int32) -> String { String(cString: strerror(err)) }

    /// The current errno, for the call that just failed.
    public static func last(_ operation: String, _ subject: String) -> KernelError {
        KernelError(operation: operation, subject: subject, errno: Glibc.errno)
    }
}

/// Small fd helpers shared by the supervisor-side facilities.
public enum FD {
    public static func close(_ fd: Int32) { if fd >= 0 { _ = Glibc.close(fd) } }

    public static func pipe() throws(KernelError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        let r = sbx_pipe_cloexec(&fds)
        guard r == 0 else { throw KernelError(operation: "pipe2", subject: "", errno: -r) }
        return (fds[0], fds[1])
    }

    /// Reads until EOF or `max` bytes (non-blocking callers get what is there).
    public static func readAll(_ fd: Int32, max: Int = 1 << 20) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while out.count < max {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    public static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }
}

/// lstat(2)/readlink(2) of a host path, for the planner's view of the filesystem.
public enum PathInfo: Sendable, Equatable {
    case directory, file, other
    case symlink(target: String)

    /// nil when the path does not exist (or cannot be looked at).
    public static func of(_ path: String) -> PathInfo? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(path, &buf, buf.count - 1)
            guard n >= 0 else { return .other }
            buf[n] = 0
            return .symlink(target: String(cString: buf))
        default: return .other
        }
    }
}

extension FD {
    /// Opens (creating or truncating) the `--result` file before the run starts, so
    /// the path is resolved while the command cannot yet have changed it; a symlink
    /// as the last component is refused.
    public static func openResultFile(_ path: String) throws(KernelError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw .last("open", path) }
        return fd
    }

    /// Whether `fd` is open for writing (for `--result-fd`).
    public static func isWritable(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        let mode = flags & O_ACCMODE
        return mode == O_WRONLY || mode == O_RDWR
    }
}
