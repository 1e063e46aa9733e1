import CSandbox
import Glibc

/// A log file that several processes append whole records to: the audit log.
///
/// Opened once, with no symlink anywhere on its path (`openat2(RESOLVE_NO_SYMLINKS)`),
/// created `0600` if absent, and refused unless it is a regular file (a FIFO would
/// block, a device is not a log). Every append runs under `flock(LOCK_EX)` on the
/// file: the writer reads the first and last lines (what the next record links to),
/// builds the record and writes it with one `write` on the `O_APPEND` descriptor. So
/// records of parallel writers never interleave inside a line, and each record links
/// to the line that really precedes it. A short write (a full filesystem) is cut
/// back with `ftruncate` to where it began, still under the lock, so a failed append
/// leaves no partial line.
public final class AppendOnlyFile {
    public let path: String
    private let fd: OwnedFD

    /// The longest line read back (a run_end record holds a whole RunResult, which is
    /// bounded at well under this).
    public static let maxLine = 16 << 20

    private init(path: String, fd: OwnedFD) { self.path = path; self.fd = fd }

    public static func open(_ path: String) throws(KernelError) -> AppendOnlyFile {
        let (fd, st) = try openRegular(path, O_RDWR | O_APPEND | O_CREAT, mode: 0o600)
        // Checked on the open file, not at plan time only: a link or a new owner made
        // between the plan and this open is seen too.
        if let problem = Self.untrusted(st) {
            fd.close()
            throw KernelError(operation: "open", subject: path, errno: problem.errno, detail: problem.why)
        }
        return AppendOnlyFile(path: path, fd: fd)
    }

    /// Under the file's lock: `compose` gets the first and last complete lines (without
    /// their newline; nil for an empty file) and returns the bytes to append, which
    /// are written with one `write`. A file that does not end with a newline (a line
    /// cut short by someone else) is refused: nothing could link to it.
    public func append(_ compose: (_ first: [UInt8]?, _ last: [UInt8]?) throws -> [UInt8]) throws {
        let raw = fd.raw
        guard raw >= 0 else { throw KernelError(operation: "append to", subject: path, errno: EBADF) }
        while flock(raw, LOCK_EX) != 0 {
            guard Glibc.errno == EINTR else { throw KernelError.last("flock", path) }
        }
        defer { _ = flock(raw, LOCK_UN) }
        var st = stat()
        guard fstat(raw, &st) == 0 else { throw KernelError.last("fstat", path) }
        let size = Int(st.st_size)
        var first: [UInt8]?, last: [UInt8]?
        if size > 0 {
            guard let end = try readAt(raw, offset: size - 1, count: 1).first, end == UInt8(ascii: "\n") else {
                throw KernelError(operation: "append to", subject: path, errno: EINVAL,
                                  detail: "the file ends inside a line (cut short or edited); `sandbox audit verify` it")
            }
            first = try firstLine(raw, size: size)
            last = try lastLine(raw, size: size)
        }
        let bytes = try compose(first, last)
        // One record, one write: on a regular file a write is not split by a signal,
        // so a short count means the filesystem is full (or a quota is reached).
        var n: Int
        repeat { n = bytes.withUnsafeBytes { Glibc.write(raw, $0.baseAddress, $0.count) } } while n < 0 && Glibc.errno == EINTR
        guard n == bytes.count else {
            let err = n < 0 ? Glibc.errno : ENOSPC
            // Cut back what part of the record got in: no partial line stays.
            _ = ftruncate(raw, off_t(size))
            throw KernelError(operation: "write", subject: path, errno: err,
                              detail: n > 0 ? "only \(n) of \(bytes.count) bytes fitted; cut back" : nil)
        }
    }

    public func close() { fd.close() }
    deinit { fd.close() }

    private func readAt(_ raw: Int32, offset: Int, count: Int) throws(KernelError) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buf.withUnsafeMutableBytes { pread(raw, $0.baseAddress! + got, count - got, off_t(offset + got)) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n < 0 { throw KernelError.last("read", path) }
            if n == 0 { break }
            got += n
        }
        return Array(buf[0..<got])
    }

    private func firstLine(_ raw: Int32, size: Int) throws(KernelError) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        while offset < size {
            let chunk = try readAt(raw, offset: offset, count: min(4096, size - offset))
            if let nl = chunk.firstIndex(of: UInt8(ascii: "\n")) { return out + chunk[..<nl] }
            out += chunk
            offset += chunk.count
            guard out.count <= Self.maxLine, !chunk.isEmpty else { break }
        }
        throw KernelError(operation: "read", subject: path, errno: EFBIG, detail: "its first line is longer than \(Self.maxLine) bytes")
    }

    /// The last line, read backwards in chunks from the final newline.
    private func lastLine(_ raw: Int32, size: Int) throws(KernelError) -> [UInt8] {
        var out: [UInt8] = []
        var end = size - 1   // the final newline
        while end > 0 {
            let start = max(0, end - 65536)
            let chunk = try readAt(raw, offset: start, count: end - start)
            if let nl = chunk.lastIndex(of: UInt8(ascii: "\n")) { return Array(chunk[(nl + 1)...]) + out }
            out = chunk + out
            end = start
            guard out.count <= Self.maxLine else {
                throw KernelError(operation: "read", subject: path, errno: EFBIG, detail: "its last line is longer than \(Self.maxLine) bytes")
            }
        }
        return out
    }

    /// A small secret file (a key): opened with no symlink on its path, a regular file,
    /// read whole. Its owner and mode come back for the caller's rules.
    public static func readSecret(_ path: String, maxBytes: Int) throws(KernelError) -> (bytes: [UInt8], owner: UInt32, mode: UInt32) {
        let (fd, st) = try openRegular(path, O_RDONLY, mode: 0)
        defer { fd.close() }
        if st.st_nlink > 1 {
            throw KernelError(operation: "open", subject: path, errno: EMLINK, detail: Self.linkProblem(st.st_nlink))
        }
        let r = FD.read(fd.raw, max: maxBytes + 1)
        if let err = r.errno { throw KernelError(operation: "read", subject: path, errno: err) }
        return (r.bytes, st.st_uid, st.st_mode & 0o7777)
    }

    /// `path` opened with no symlink anywhere on it (the error names the first one
    /// found), non-blocking (a FIFO must not hang the run), and refused unless it is a
    /// regular file; with its `fstat`.
    private static func openRegular(_ path: String, _ flags: Int32, mode: mode_t) throws(KernelError) -> (OwnedFD, stat) {
        let raw = sbx_fence_open_no_symlinks(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode)
        guard raw >= 0 else {
            var e = KernelError.last("open", path)
            if e.errno == ELOOP, let link = PathInfo.firstSymlink(on: path) {
                e.detail = "a symlink is on its path: \(link.path) -> \(link.target)"
            }
            throw e
        }
        let fd = OwnedFD(raw)
        var st = stat()
        guard fstat(raw, &st) == 0 else { let e = KernelError.last("fstat", path); fd.close(); throw e }
        guard st.st_mode & S_IFMT == S_IFREG else {
            fd.close()
            throw KernelError(operation: "open", subject: path, errno: EINVAL, detail: "not a regular file")
        }
        return (fd, st)
    }

    /// Why an audit file must not be trusted, nil when it may be. Another hard link
    /// could lie in a path a run can write (or, for a key, see): writing through it
    /// rewrites the log; reading it leaks the key. A log another user owns, or that
    /// group or others may write, can be rewritten or cut by them.
    static func untrusted(_ st: stat) -> (errno: Int32, why: String)? {
        if st.st_nlink > 1 { return (EMLINK, linkProblem(st.st_nlink)) }
        if st.st_uid != 0 && st.st_uid != geteuid() {
            return (EPERM, "owned by uid \(st.st_uid); the audit log must belong to the invoker (uid \(geteuid())) or root")
        }
        if st.st_mode & 0o022 != 0 {
            return (EPERM, "mode \(String(st.st_mode & 0o7777, radix: 8)); the audit log must not be writable by group or others (chmod 600)")
        }
        return nil
    }

    static func linkProblem(_ n: some BinaryInteger) -> String {
        "it has \(n) hard links; another link could lie in a path a run can reach, and writing or reading through it would bypass the checks on this path. Use a file with a single link"
    }

    /// A whole file, for reading a log back (`sandbox audit verify`). A file longer
    /// than `maxBytes` is refused (EFBIG), never read in part: what lies past the
    /// part read would go unverified, and a cut at a line's end verified as a whole
    /// chain (red team, session 46: a 1 GiB chain with lines after it said ok).
    public static func contents(of path: String, maxBytes: Int = 1 << 30) throws(KernelError) -> [UInt8] {
        let raw = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard raw >= 0 else { throw KernelError.last("open", path) }
        let fd = OwnedFD(raw)
        defer { fd.close() }
        var st = stat()
        guard fstat(raw, &st) == 0 else { throw KernelError.last("fstat", path) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw KernelError(operation: "open", subject: path, errno: EINVAL, detail: "not a regular file")
        }
        func tooLong(_ size: String) -> KernelError {
            KernelError(operation: "read", subject: path, errno: EFBIG,
                        detail: "the file is \(size) bytes; at most \(maxBytes) are read and verified, and a part is not verified alone (start a new log per period)")
        }
        if Int64(st.st_size) > Int64(maxBytes) { throw tooLong("\(st.st_size)") }
        // One byte more than the bound: a file that grew since the fstat.
        let r = FD.read(raw, max: maxBytes + 1)
        if let err = r.errno { throw KernelError(operation: "read", subject: path, errno: err) }
        if r.bytes.count > maxBytes { throw tooLong("more than \(maxBytes)") }
        return r.bytes
    }
}
