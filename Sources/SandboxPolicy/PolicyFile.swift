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
        /// Another user could change it: why (`owned by uid 1001`, …).
        case untrusted(String)

        /// "no such file", "it is a FIFO (named pipe), not a regular file", …
        var reason: String {
            switch self {
            case .missing: return "no such file"
            case .notRegular(let what): return "it is \(what), not a regular file"
            case .tooLarge(let limit): return "file size limit exceeded: larger than \(PolicyLimits.bytes(limit)) (\(limit) bytes)"
            case .failed(let why): return "it cannot be read (\(why))"
            case .untrusted(let why): return "another user could change it: \(why); keep policies and profiles where only root or you (uid \(geteuid())) can write"
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
        if let why = untrusted(path, st) { return .failure(.untrusted(why)) }
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

extension PolicyFile {
    /// Why another user could change what a policy or profile file says, or nil. The
    /// file must be owned by root or the invoker and writable by neither group nor
    /// others; every directory above it (symlinks resolved) owned by root or the
    /// invoker and writable by neither, unless sticky (another user can add an entry
    /// there, but not rename or remove ours). A policy named `agent` is the first
    /// `agent.toml` on the search path, so without this another user who can write
    /// a directory on it, or above the data directory, chose what `--policy agent`
    /// means (red team, session 46: `/tmp/share/sandbox/Policies/agent.toml`, planted
    /// beside a binary in `/tmp/bin`, kept `sys_admin` and turned seccomp off for root).
    static func untrusted(_ path: String, _ st: stat) -> String? {
        let me = geteuid()
        let unmapped = unmappedOwner
        func owner(_ uid: uid_t) -> Bool { uid == 0 || uid == me || uid == unmapped }
        if !owner(st.st_uid) { return "\(path) is owned by uid \(st.st_uid)" }
        if st.st_mode & 0o022 != 0 { return "\(path) is writable by \(st.st_mode & 0o002 != 0 ? "others" : "its group") (mode \(String(st.st_mode & 0o7777, radix: 8)))" }
        guard let real = realpath(path, nil) else { return "\(path) cannot be resolved" }
        // Walked up by its bytes: a name that is not UTF-8 decoded is another name, and
        // a slash a combining mark follows is one `Character`.
        var bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(real).assumingMemoryBound(to: UInt8.self), count: strlen(real)))
        free(real)
        while bytes.count > 1 {
            bytes = Array(bytes[..<max(1, bytes.lastIndex(of: 0x2F) ?? 1)])
            let dir = String(decoding: bytes, as: UTF8.self)
            var d = stat()
            guard (bytes + [0]).withUnsafeBufferPointer({ b in
                b.withMemoryRebound(to: CChar.self) { stat($0.baseAddress!, &d) }
            }) == 0 else { return "\(dir) cannot be examined" }
            if !owner(d.st_uid) { return "\(dir) above it is owned by uid \(d.st_uid)" }
            if d.st_mode & 0o022 != 0 && d.st_mode & S_ISVTX == 0 {
                return "\(dir) above it is writable by \(d.st_mode & 0o002 != 0 ? "others" : "its group") (mode \(String(d.st_mode & 0o7777, radix: 8)))"
            }
        }
        return nil
    }

    /// Inside a user namespace that does not map every uid (a nested run, a rootless
    /// container), a file whose owner is not mapped shows as the overflow uid: the
    /// host's root among them, whose files (policies bound in from the host) no user
    /// in this namespace can change. Nil in the initial namespace.
    static let unmappedOwner: uid_t? = {
        // Read here, not with `read(_:limit:)`, which asks this.
        func text(_ path: String) -> String {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return "" }
            defer { close(fd) }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress!, $0.count) }
            return n > 0 ? String(decoding: buf[..<n], as: UTF8.self) : ""
        }
        let fields = text("/proc/self/uid_map").split(whereSeparator: { $0 == " " || $0 == "\n" })
        if fields.count == 3, fields[0] == "0", fields[1] == "0", fields[2] == "4294967295" { return nil }
        return UInt32(text("/proc/sys/kernel/overflowuid").split(separator: "\n").first ?? "") ?? 65534
    }()
}

/// read(2); a file-level name, as `PolicyFile.read` hides the global one inside the enum.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}
