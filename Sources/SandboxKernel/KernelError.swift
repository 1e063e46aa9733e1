import CSandbox
import Glibc

/// The one error of the kernel layer: what was attempted, on what, the errno when
/// the kernel or a library gave one, and what else explains it. Every facility
/// (files, fences, network, cgroups) throws it, so a caller reads the same
/// fields whatever failed. Prints as
///
///     open /run/sandbox/x/lock: Permission denied
///     netlink RTM_NEWLINK sbx1a2b3c4d: File exists (Link already exists)
///     lease 10.203.0.0/16: the address pool is full
public struct KernelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call or step: `open`, `landlock_add_rule`, `netlink RTM_NEWLINK`,
    /// `nft load ruleset`, `seccomp_rule_add`, …
    public var operation: String
    /// What it was applied to: a path, an interface, an nft table, a cgroup file, a
    /// syscall name; "" when the operation alone says it.
    public var subject: String
    /// The errno; nil where the failure has none (a full address pool, a value that
    /// does not fit, nft's syntax error).
    public var errno: Errno?
    /// What the errno alone does not say: the bytes written, the kernel's extended
    /// ack, nft's error text, what to do.
    public var detail: String?

    public init(operation: String, subject: String, errno: Errno? = nil, detail: String? = nil) {
        self.operation = operation; self.subject = subject; self.errno = errno
        self.detail = detail?.isEmpty == true ? nil : detail
    }

    /// With the raw errno a syscall returned (negated) or left in `errno`.
    public init(operation: String, subject: String, errno: Int32, detail: String? = nil) {
        self.init(operation: operation, subject: subject, errno: Errno(errno), detail: detail)
    }

    /// `operation subject: strerror (detail)`, or `operation subject: detail`
    /// without an errno.
    public var description: String {
        var s = subject.isEmpty ? operation : "\(operation) \(subject)"
        if let errno {
            s += ": \(errno.message)"
            if let detail { s += " (\(detail))" }
        } else if let detail {
            s += ": \(detail)"
        }
        return s
    }

    public static func text(_ err: Int32) -> String { Errno(err).message }

    /// The current errno, for the call that just failed.
    public static func last(_ operation: String, _ subject: String, detail: String? = nil) -> KernelError {
        KernelError(operation: operation, subject: subject, errno: Errno.current, detail: detail)
    }
}

/// Small fd helpers shared by the supervisor-side facilities. Descriptors they open
/// come back as ``OwnedFD``s: there is no raw `close` here on purpose.
public enum FD {
    /// A close-on-exec pipe, each end with its owner.
    public static func pipe() throws(KernelError) -> (read: OwnedFD, write: OwnedFD) {
        var fds: [Int32] = [-1, -1]
        let r = sbx_pipe_cloexec(&fds)
        guard r == 0 else { throw KernelError(operation: "pipe2", subject: "", errno: -r) }
        return (OwnedFD(fds[0]), OwnedFD(fds[1]))
    }

    /// Reads until EOF, `max` bytes, or an error (EINTR is retried); the error, if one
    /// stopped it, comes back with what was read before (EAGAIN for a drained
    /// non-blocking fd).
    public static func read(_ fd: Int32, max: Int = Int.max, chunk: Int = 16384) -> (bytes: [UInt8], errno: Int32?) {
        precondition(chunk > 0, "FD.read: a chunk of \(chunk) bytes")
        var out: [UInt8] = []
        // Not zeroed: read(2) writes what is used, and a fresh buffer's pages are
        // then touched only as far as the file goes (run start-up reads several
        // small kernel files; zeroing each buffer faulted in all of its pages).
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 1)
        defer { buf.deallocate() }
        while out.count < max {
            let n = Glibc.read(fd, buf.baseAddress, Swift.min(buf.count, max - out.count))
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                return (out, Glibc.errno)
            }
            if n == 0 { break }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
        return (out, nil)
    }

    /// What `read` got, whatever stopped it (non-blocking callers get what is there).
    public static func readAll(_ fd: Int32, max: Int = 1 << 20) -> [UInt8] {
        read(fd, max: max).bytes
    }

    /// The bytes of the regular file at `path`, not following a symlink there, when
    /// it is at most `maxBytes`; nil otherwise or on an error. Read into one buffer of
    /// the size fstat gives, by as few reads: a repository's index (megabytes) read
    /// in chunks into a growing array cost 16 ms of page faults and copies per plan.
    /// What the file grew by since fstat is not read.
    public static func regularFile(at path: String, maxBytes: Int) -> [UInt8]? {
        let opened = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard opened >= 0 else { return nil }
        let owner = OwnedFD(opened)
        defer { owner.close() }
        let fd = owner.raw
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, Int(st.st_size) <= maxBytes else { return nil }
        let size = Int(st.st_size)
        guard size > 0 else { return [] }
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let n = Glibc.read(fd, buffer.baseAddress! + count, size - count)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { failed = true; return }
                if n == 0 { return }
                count += n
            }
        }
        return failed ? nil : bytes
    }

    /// The entries of a directory, without "." and "..", with whether each is a
    /// directory (d_type); empty if it cannot be read.
    static func entries(_ path: String) -> [(name: String, isDirectory: Bool)] {
        guard let dir = opendir(path) else { return [] }
        return entries(of: dir)
    }

    /// The entries of an open directory stream, without "." and "..", and the stream
    /// closed.
    private static func entries(of dir: OpaquePointer) -> [(name: String, isDirectory: Bool)] {
        defer { closedir(dir) }
        var out: [(name: String, isDirectory: Bool)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { out.append((name, entry.pointee.d_type == UInt8(DT_DIR))) }
        }
        return out
    }

    /// The names in the directory `path` (not "." and ".."; a name that is not UTF-8
    /// decoded with U+FFFD), `path` itself not followed if a symlink; nil when it is
    /// not a directory that can be listed.
    public static func names(inDirectory path: String) -> [String]? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard let dir = fdopendir(fd) else { Glibc.close(fd); return nil }
        return entries(of: dir).map(\.name)
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

    /// Replaces `path` with `bytes` at once: written to a fresh temporary name beside
    /// it (O_EXCL, so concurrent writers never share one), then renamed into place.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t) throws(KernelError) {
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let tmp = String(path[..<slash]) + "." + String(path[slash...]) + ".\(String(UInt64.random(in: 0...UInt64.max), radix: 16)).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw .last("open", tmp) }
        let ok = writeAll(fd, bytes)
        let err = Glibc.errno
        Glibc.close(fd)
        guard ok else { unlink(tmp); throw KernelError(operation: "write", subject: tmp, errno: err) }
        guard rename(tmp, path) == 0 else { let e = KernelError.last("rename", path); unlink(tmp); throw e }
    }

    /// The temporary files `writeAtomically` leaves in `directory` when its writer is
    /// killed between the open and the rename (a killed supervisor or server, a test
    /// that ends one): `.<name>.<hex>.tmp`, a regular file, untouched for
    /// `minAgeSeconds` (a live writer holds its name for microseconds). Nothing else
    /// is removed, and nothing is followed: unlinked by name in the directory opened
    /// without following a symlink. Returns the names removed (`sandbox gc`).
    public static func removeAbandonedTemporaries(in directory: String, minAgeSeconds: Int = 60) -> [String] {
        let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dirfd >= 0 else { return [] }
        defer { Glibc.close(dirfd) }
        var removed: [String] = []
        for (name, isDirectory) in entries(directory) where !isDirectory && isTemporaryName(name) {
            var st = stat()
            guard fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFREG,
                  Int(time(nil)) - Int(st.st_mtim.tv_sec) >= minAgeSeconds,
                  unlinkat(dirfd, name, 0) == 0 else { continue }
            removed.append(name)
        }
        return removed
    }

    /// `.<name>.<hex>.tmp` as `writeAtomically` names it: a leading dot, a name, a dot,
    /// 1–16 lowercase hex digits, `.tmp`.
    static func isTemporaryName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count > 7, bytes.first == UInt8(ascii: "."), name.hasSuffix(".tmp") else { return false }
        let stem = bytes.dropLast(4)
        guard let dot = stem.lastIndex(of: UInt8(ascii: ".")), dot > 1 else { return false }
        let hex = stem[(dot + 1)...]
        return (1...16).contains(hex.count)
            && hex.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
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

    /// The first component of `path` (relative ones from the working directory) that
    /// is a symlink, with its target; nil if none is.
    public static func firstSymlink(on path: String) -> (path: String, target: String)? {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if case .symlink(let target)? = of(prefix) {
                return (prefix.hasPrefix("./") ? String(prefix.dropFirst(2)) : prefix, target)
            }
        }
        return nil
    }
}

extension FD {
    /// Whether `fd` is an io_uring instance (its `/proc/self/fd` link reads
    /// `anon_inode:[io_uring]`). False where that cannot be read.
    public static func isIoUring(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { readlink("/proc/self/fd/\(fd)", $0, b.count) }
        }
        return n > 0 && buffer[0..<n].elementsEqual("anon_inode:[io_uring]".utf8)
    }

    /// Whether `fd` is open for writing (for `--result-fd`).
    public static func isWritable(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        let mode = flags & O_ACCMODE
        return mode == O_WRONLY || mode == O_RDWR
    }
}

extension String {
    /// Without leading and trailing whitespace (kernel files end in "\n").
    var trimmed: String {
        // ASCII by its byte (space, tab to carriage return: Unicode's White_Space in
        // ASCII); `isWhitespace` looks in the runtime's Unicode tables, whose first
        // use costs page faults, and kernel files are ASCII.
        func space(_ c: Character) -> Bool {
            if let a = c.asciiValue { return a == 0x20 || (0x09...0x0D).contains(a) }
            return c.isWhitespace
        }
        var s = Substring(self)
        while let c = s.first, space(c) { s.removeFirst() }
        while let c = s.last, space(c) { s.removeLast() }
        return String(s)
    }
}
