import FoundationEssentials
import Glibc

/// Reading the files a policy names (the policy files of the `extends` chain, seccomp
/// profiles) without trusting what they are: only a regular file is opened, never a
/// FIFO (which would block), a device (`/dev/zero` never ends; opening some devices
/// does something) or a directory, and at most a bounded number of bytes is read.
enum PolicyFile {
    /// What is at a path, following symlinks.
    enum Kind: Equatable {
        case regular
        case missing
        case directory
        /// Not a regular file: "a FIFO (named pipe)", "a character device", …
        case special(String)
        /// `stat` failed for another reason than the path not existing.
        case unreadable(String)
    }

    enum ReadError: Error, Equatable {
        case missing
        case notRegular(String)   // "a directory", "a FIFO (named pipe)", …
        case tooLarge(limit: Int)
        case failed(String)       // strerror

        /// "no such file", "it is a FIFO (named pipe), not a regular file", …
        var reason: String {
            switch self {
            case .missing: return "no such file"
            case .notRegular(let what): return "it is \(what), not a regular file"
            case .tooLarge(let limit): return "file size limit exceeded: larger than \(PolicyLimits.bytes(limit)) (\(limit) bytes)"
            case .failed(let why): return "it cannot be read (\(why))"
            }
        }
    }

    static func kind(_ path: String) -> Kind {
        if BuiltIn.isBuiltIn(path) {
            if BuiltIn.contents(of: path) != nil { return .regular }
            return BuiltIn.isDirectory(path) ? .directory : .missing
        }
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = errno
            if e == ENOENT || e == ENOTDIR { return .missing }
            return .unreadable(String(cString: strerror(e)))
        }
        return kind(mode: st.st_mode)
    }

    static func kind(mode: mode_t) -> Kind {
        switch mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        case S_IFIFO: return .special("a FIFO (named pipe)")
        case S_IFCHR: return .special("a character device")
        case S_IFBLK: return .special("a block device")
        case S_IFSOCK: return .special("a socket")
        default: return .special("not a regular file")
        }
    }

    /// "a directory", "a character device", … for a kind that is not a regular file.
    static func describe(_ kind: Kind) -> String? {
        switch kind {
        case .regular: return nil
        case .missing: return "missing"
        case .directory: return "a directory"
        case .special(let what): return what
        case .unreadable(let why): return "unreadable (\(why))"
        }
    }

    /// The bytes of the regular file at `path`, at most `limit` of them. The path is
    /// looked at with `stat` before it is opened, so a FIFO or a device is never
    /// opened; it is opened non-blocking and checked again with `fstat`, in case it
    /// was replaced in between; then at most `limit + 1` bytes are read.
    /// A built-in path (`BuiltIn`) is answered from the binary, within the same limit.
    static func read(_ path: String, limit: Int) -> Result<[UInt8], ReadError> {
        if BuiltIn.isBuiltIn(path) {
            guard let bytes = BuiltIn.contents(of: path) else {
                return .failure(BuiltIn.isDirectory(path) ? .notRegular("a directory") : .missing)
            }
            return bytes.count > limit ? .failure(.tooLarge(limit: limit)) : .success(bytes)
        }
        switch kind(path) {
        case .regular: break
        case .missing: return .failure(.missing)
        case .directory: return .failure(.notRegular("a directory"))
        case .special(let what): return .failure(.notRegular(what))
        case .unreadable(let why): return .failure(.failed(why))
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            let e = errno
            return .failure(e == ENOENT ? .missing : .failed(String(cString: strerror(e))))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(.failed(String(cString: strerror(errno)))) }
        let k = kind(mode: st.st_mode)
        guard k == .regular else { return .failure(.notRegular(describe(k) ?? "not a regular file")) }
        if Int(st.st_size) > limit { return .failure(.tooLarge(limit: limit)) }

        // The size may change while reading: read until EOF, but never past limit + 1.
        var bytes = [UInt8](repeating: 0, count: min(Int(st.st_size), limit) + 1)
        var total = 0
        while true {
            if total == bytes.count {
                if total > limit { return .failure(.tooLarge(limit: limit)) }
                bytes.append(contentsOf: repeatElement(0, count: min(bytes.count, limit + 1 - bytes.count)))
            }
            let n = bytes.withUnsafeMutableBytes { buffer in
                systemRead(fd, buffer.baseAddress! + total, buffer.count - total)
            }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.failed(String(cString: strerror(errno))))
            }
            if n == 0 { break }
            total += n
        }
        if total > limit { return .failure(.tooLarge(limit: limit)) }
        bytes.removeSubrange(total...)
        return .success(bytes)
    }
}

/// read(2); a file-level name, as `PolicyFile.read` hides the global one inside the enum.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}
