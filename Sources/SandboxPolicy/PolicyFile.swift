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
    /// file must be owned by the invoker or root and writable by neither group nor
    /// others, and so must every directory on its way: those its path names as
    /// written (a symlink there is chosen by whoever can write its directory: red
    /// team, session 46, a link in another user's directory made a root-owned
    /// profile that allows `clone(CLONE_NEWUSER)` root's `default`) and those it
    /// resolves to, a sticky one (`/tmp`) excepted. A policy named `agent` is the
    /// first `agent.toml` on the search path, so without this another user who can
    /// write a directory on it, or above the data directory, chose what `--policy
    /// agent` means (the same review: `/tmp/…/share/sandbox/Policies/agent.toml`,
    /// planted beside a binary in `/tmp/…/bin`, kept `sys_admin` with seccomp off).
    ///
    /// Owners trusted: root, the invoker, under `sudo` the user who ran it (their
    /// own policies), and inside a user namespace the overflow uid when it stands
    /// for no mapped user (the host's files, a nested run's). Group write is allowed
    /// only in a user-private group: the group is the invoker's own, numbered as its
    /// uid (umask 002 systems; another member would have to be added by root).
    static func untrusted(_ path: String, _ st: stat) -> String? {
        let trusted = trustedOwners
        func owner(_ uid: uid_t) -> Bool { trusted.contains(uid) }
        let me = geteuid()
        func groupOK(_ s: stat) -> Bool { me != 0 && s.st_gid == me && getegid() == me }
        func writable(_ s: stat, sticky: Bool) -> String? {
            if s.st_mode & 0o002 != 0 && !(sticky && s.st_mode & S_ISVTX != 0) { return "others" }
            if s.st_mode & 0o020 != 0 && !groupOK(s) && !(sticky && s.st_mode & S_ISVTX != 0) { return "its group" }
            return nil
        }
        func mode(_ s: stat) -> String { String(s.st_mode & 0o7777, radix: 8) }
        if !owner(st.st_uid) { return "\(path) is owned by uid \(st.st_uid)" }
        if let who = writable(st, sticky: false) { return "\(path) is writable by \(who) (mode \(mode(st))); chmod go-w it" }
        func checkChain(_ full: [UInt8]) -> String? {
            // Walked up by bytes: a name that is not UTF-8 decoded is another name, and
            // a slash a combining mark follows is one `Character`.
            var bytes = full
            while bytes.count > 1 {
                bytes = Array(bytes[..<max(1, bytes.lastIndex(of: 0x2F) ?? 1)])
                let dir = String(decoding: bytes, as: UTF8.self)
                var d = stat()
                guard (bytes + [0]).withUnsafeBufferPointer({ b in
                    b.withMemoryRebound(to: CChar.self) { stat($0.baseAddress!, &d) }
                }) == 0 else { return "\(dir) cannot be examined" }
                if !owner(d.st_uid) { return "\(dir) above it is owned by uid \(d.st_uid)" }
                if let who = writable(d, sticky: true) { return "\(dir) above it is writable by \(who) (mode \(mode(d)))" }
            }
            return nil
        }
        // As written: the directories holding each name on the way, links included.
        let written = Array((path.hasPrefix("/") ? path : Paths.absolute(path)).utf8)
        if let why = checkChain(written) { return why }
        guard let real = realpath(path, nil) else { return "\(path) cannot be resolved" }
        let resolved = Array(UnsafeBufferPointer(start: UnsafeRawPointer(real).assumingMemoryBound(to: UInt8.self), count: strlen(real)))
        free(real)
        return resolved == written ? nil : checkChain(resolved)
    }

    /// Root, the invoker, `sudo`'s user, and the overflow uid where it stands for no
    /// mapped user (see ``untrusted(_:_:)``).
    static let trustedOwners: Set<uid_t> = {
        var out: Set<uid_t> = [0, geteuid()]
        if geteuid() == 0, getuid() == 0, let s = getenv("SUDO_UID"), let u = UInt32(String(cString: s)) { out.insert(u) }
        // Read here, not with `read(_:limit:)`, which asks this.
        func text(_ path: String) -> String {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return "" }
            defer { close(fd) }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress!, $0.count) }
            return n > 0 ? String(decoding: buf[..<n], as: UTF8.self) : ""
        }
        let overflow = UInt32(text("/proc/sys/kernel/overflowuid").split(separator: "\n").first ?? "") ?? 65534
        if overflowStandsForNoUser(uidMap: text("/proc/self/uid_map"), overflow: overflow) { out.insert(overflow) }
        return out
    }()

    /// Whether, under this `uid_map`, a file owned by the overflow uid is one whose
    /// owner is not mapped: not in the initial namespace (where it is a real user),
    /// and not inside a mapped range (in "0 100000 65536" it is the namespace's own
    /// nobody, who can write its files: red team, session 46).
    static func overflowStandsForNoUser(uidMap: String, overflow: UInt32) -> Bool {
        let ranges = uidMap.split(separator: "\n").compactMap { line -> (UInt64, UInt64)? in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count == 3, let inside = UInt64(f[0]), let count = UInt64(f[2]) else { return nil }
            return (inside, count)
        }
        if ranges.isEmpty || (ranges.count == 1 && ranges[0].0 == 0 && ranges[0].1 == 4_294_967_295) { return false }
        return !ranges.contains { UInt64(overflow) >= $0.0 && UInt64(overflow) < $0.0 + $0.1 }
    }
}

/// read(2); a file-level name, as `PolicyFile.read` hides the global one inside the enum.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}
