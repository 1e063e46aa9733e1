#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import CSeccomp

/// The supervisor's answer to `utimensat` with explicit times in a nested run (issue
/// 19, R2). Landlock does not cover a file's times, and a nested command runs as the
/// invoker: left to the kernel, it could set the times of any file the invoker owns,
/// anywhere on the host. The filter lets times NULL ("now") run in the kernel and
/// hands explicit times here (USER_NOTIF), where they are set only on a file beneath
/// a writable bind, as Landlock would decide a write.
///
/// For each call, once:
/// 1. the times (32 bytes) and the path (up to PATH_MAX, page by page) are read from
///    the caller (`process_vm_readv`), each read checked with NOTIF_ID_VALID;
/// 2. the target is opened here, `O_PATH`, as the kernel would resolve it for the
///    caller: relative to its dirfd (`/proc/<pid>/fd/<n>`) or cwd (`/proc/<pid>/cwd`),
///    checked still pending after the open (so not a process that reused the pid),
///    `AT_SYMLINK_NOFOLLOW` honoured, a final symlink followed by hand so the
///    directory it lands in is known; no /proc magic link in the caller's path
///    (`RESOLVE_NO_MAGICLINKS`: this process's /proc/self is not the caller's);
/// 3. it must be the command's (explicit times need the owner, and the command has no
///    CAP_FOWNER, which a root supervisor has), and beneath a writable bind: the
///    target or its directory is an rw bind's source by (device, inode), or the
///    kernel's path of that directory (`/proc/self/fd/<n>`) lies beneath the kernel's
///    path of a source held open since the run's start, and that directory is then
///    opened again from the source by the rest of the path (`RESOLVE_BENEATH`, no
///    symlink) and is the same inode — never the caller's path compared by prefix;
/// 4. the times are set on this process's own descriptor (`utimensat(fd, "",
///    times, AT_EMPTY_PATH)`) and the call answered with that result, or EPERM.
///
/// Every lookup with this thread's DAC capabilities dropped (a root supervisor's):
/// the command's uid and groups are the supervisor's (nested runs as the invoker),
/// so the kernel answers each step as it would the command's own (EACCES where it
/// could not search).
///
/// Never SECCOMP_USER_NOTIF_FLAG_CONTINUE: the caller could change the path or the
/// times after the check; here the check and the change use the same copy.
///
/// A hard link does not widen this: Landlock's REFER right keeps the command from
/// linking a file of an `ro` bind into a writable one, and a file already linked
/// into a writable bind from outside could be written there anyway. The check is
/// not raced by the command: what it may move stays beneath the writable binds.
///
/// Bounded: one call at a time, on the run's own supervisor thread (the kernel holds
/// the others; no queue here), each a fixed number of system calls (at most 40
/// symlinks; two readlinks and one open per writable bind for the check), whatever
/// the depth of the target: the check was a walk of `..`, one open and fstat per
/// level, which a command made cost the supervisor 20–47 ms a call with a path 2000–
/// 4000 levels deep (red team 6, G3). A directory whose path is longer than PATH_MAX
/// (the kernel cannot name it) is refused (EPERM). A caller gone meanwhile only makes
/// the answer fail to arrive.
public final class TimesFence {
    /// A writable bind's source, by identity.
    public struct Root: Hashable, Sendable {
        public var device: UInt64
        public var inode: UInt64
        public init(device: UInt64, inode: UInt64) { self.device = device; self.inode = inode }
    }

    private let roots: Set<Root>
    /// The directory sources, held open (duplicates of the run's bind sources): their
    /// kernel paths now, and the start of the proof that a directory is beneath one.
    private let rootDirectories: [OwnedFD]
    private let uid: UInt32
    private let utimensatNumber: Int32

    /// - Parameters:
    ///   - writableRoots: the sources of the run's rw binds, opened at its start. A
    ///     directory's fd is duplicated here (one it cannot duplicate only matches
    ///     by identity: beneath it is refused, never allowed).
    ///   - uid: the command's uid, which must own the target.
    public init(writableRoots: [OpenedSource], uid: UInt32) {
        roots = Set(writableRoots.map { Root(device: $0.device, inode: $0.inode) })
        rootDirectories = writableRoots.filter(\.isDirectory).compactMap { s in
            let fd = fcntl(s.fd, F_DUPFD_CLOEXEC, 0)
            return fd < 0 ? nil : OwnedFD(fd)
        }
        self.uid = uid
        utimensatNumber = seccomp_syscall_resolve_name("utimensat")
    }

    /// `v` is a utimensat this fence answers.
    public func handles(_ v: SeccompViolation) -> Bool { utimensatNumber >= 0 && v.number == utimensatNumber }

    /// The answer to `v`, nil when it is not a utimensat: `.succeeded` (set here),
    /// `.deny` (refused: EPERM), or `.error(e)` (what the kernel answered this
    /// process's own lookup or call: ENOENT, EINVAL…).
    public func answer(_ v: SeccompViolation, notifier: SeccompNotifier) -> SeccompNotifier.Answer? {
        guard handles(v) else { return nil }
        // Every lookup as the command would make it: the same uid and groups (nested:
        // the invoker's), and no DAC capability, which a root invoker's supervisor has
        // and its command has not — else it would set times beneath a directory the
        // command cannot search, and answer EPERM or ENOENT there where the command's
        // own stat gets EACCES (red team 6, G5). Per thread: capset acts on this one.
        var saved: UInt32 = 0
        guard sbx_times_drop_dac(&saved) == 0 else { return .deny }
        defer { _ = sbx_times_restore_dac(saved) }
        do throws(Failure) {
            try setTimes(v, notifier)
            return .succeeded
        } catch {
            switch error {
            case .refused: return .deny
            case .failed(let e): return .error(e)
            }
        }
    }

    enum Failure: Error { case refused, failed(Int32) }

    /// An opened target: the inode, and the directory it was found in (nil for a
    /// directory, whose own `..` is the walk).
    struct Target {
        var file: OwnedFD
        var parent: OwnedFD?
    }

    static let symlinkNoFollow: UInt32 = 0x100   // AT_SYMLINK_NOFOLLOW
    static let emptyPath: UInt32 = 0x1000        // AT_EMPTY_PATH
    static let atCWD: Int32 = -100               // AT_FDCWD
    static let pathMax = 4096                    // PATH_MAX, with its NUL
    static let utimeNow: Int64 = (1 << 30) - 1, utimeOmit: Int64 = (1 << 30) - 2

    /// The kernel's nsec_valid: 0…999 999 999, UTIME_NOW or UTIME_OMIT.
    static func validNsec(_ n: Int64) -> Bool { n == utimeNow || n == utimeOmit || (0...999_999_999).contains(n) }

    private func setTimes(_ v: SeccompViolation, _ n: SeccompNotifier) throws(Failure) {
        let dirfd = Int32(truncatingIfNeeded: v.args[0])
        let pathAddress = v.args[1], timesAddress = v.args[2]
        let flags = UInt32(truncatingIfNeeded: v.args[3])
        guard timesAddress != 0 else { throw .refused } // NULL never comes here: the filter runs it
        guard let raw = n.readCaller(v, address: timesAddress, length: 32), raw.count == 32 else { throw .failed(EFAULT) }
        let t: [Int64] = raw.withUnsafeBytes { b in (0..<4).map { Int64(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } }
        // In the kernel's order (sys_utimensat, do_utimes, vfs_utimes): both UTIME_OMIT
        // is 0 at once, without even looking at the path or the flags (nothing changes,
        // no permission is checked); then the flags; then the lookup; then tv_nsec.
        if t[1] == Self.utimeOmit && t[3] == Self.utimeOmit { return }
        guard flags & ~(Self.symlinkNoFollow | Self.emptyPath) == 0 else { throw .failed(EINVAL) }

        let target: Target
        if pathAddress == 0 {
            // futimens(fd, times) is utimensat(fd, NULL, times, 0).
            guard dirfd != Self.atCWD else { throw .failed(EFAULT) }
            guard flags == 0 else { throw .failed(EINVAL) }
            target = try callerFile(v, n, dirfd)
        } else {
            let path = try readPath(v, n, pathAddress)
            if path.isEmpty {
                guard flags & Self.emptyPath != 0 else { throw .failed(ENOENT) }
                target = try callerFile(v, n, dirfd)
            } else if path[0] == Self.slash {
                target = try resolve(path, from: Self.atCWD, follow: flags & Self.symlinkNoFollow == 0)
            } else {
                let base = try callerOpen(v, n, dirfd)
                target = try resolve(path, from: base.raw, follow: flags & Self.symlinkNoFollow == 0)
            }
        }
        guard Self.validNsec(t[1]), Self.validNsec(t[3]) else { throw .failed(EINVAL) }
        var st = stat()
        guard fstat(target.file.raw, &st) == 0 else { throw .failed(errno) }
        guard st.st_uid == uid, try beneathWritableRoot(target, Root(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))) else { throw .refused }
        guard sbx_times_set(target.file.raw, t[0], t[1], t[2], t[3]) == 0 else { throw .failed(errno) }
    }

    /// The caller's NUL-terminated path, read page by page (a read that crosses into
    /// an unmapped page fails whole), at most PATH_MAX bytes. Bytes, not a String: a
    /// name need not be UTF-8.
    private func readPath(_ v: SeccompViolation, _ n: SeccompNotifier, _ address: UInt64) throws(Failure) -> [UInt8] {
        var bytes: [UInt8] = []
        var at = address
        while bytes.count < Self.pathMax {
            let chunk = min(4096 - Int(at % 4096), Self.pathMax - bytes.count)
            guard let part = n.readCaller(v, address: at, length: chunk), !part.isEmpty else { throw .failed(EFAULT) }
            if let end = part.firstIndex(of: 0) { return bytes + part[..<end] }
            bytes += part
            at += UInt64(part.count)
        }
        throw .failed(ENAMETOOLONG)
    }

    /// The caller's fd `fd` (or its cwd, AT_FDCWD) in /proc. The one /proc/<pid> path
    /// the supervisor builds (LintTests): the pid is a notification's caller, held in
    /// its call, and every use is followed by NOTIF_ID_VALID, so what was opened was
    /// that caller's, not a process that reused the pid.
    static func procPath(_ v: SeccompViolation, _ fd: Int32) -> String {
        fd == atCWD ? "/proc/\(v.pid)/cwd" : "/proc/\(v.pid)/fd/\(fd)"
    }

    /// The caller's dirfd (or cwd for AT_FDCWD), opened here through /proc and checked
    /// to be the caller's: its call still pending after the open.
    private func callerOpen(_ v: SeccompViolation, _ n: SeccompNotifier, _ fd: Int32) throws(Failure) -> OwnedFD {
        guard fd == Self.atCWD || fd >= 0 else { throw .failed(EBADF) }
        let raw = sbx_times_open_caller(Self.procPath(v, fd))
        guard raw >= 0 else { throw .failed(errno == ENOENT ? EBADF : errno) }
        let opened = OwnedFD(raw)
        guard n.isPending(v) else { throw .failed(ESRCH) }
        return opened
    }

    /// The file a caller's fd names, with the directory it is in: a directory is its
    /// own start; another file is found again by the path the kernel keeps for the fd
    /// (`readlink /proc/<pid>/fd/<n>`) and must be the same inode (not deleted,
    /// renamed or reached some other way meanwhile), else refused.
    private func callerFile(_ v: SeccompViolation, _ n: SeccompNotifier, _ fd: Int32) throws(Failure) -> Target {
        let file = try callerOpen(v, n, fd)
        var st = stat()
        guard fstat(file.raw, &st) == 0 else { throw .failed(errno) }
        if st.st_mode & S_IFMT == S_IFDIR { return Target(file: file, parent: nil) }
        guard let link = Self.readLink(Self.atCWD, Array(Self.procPath(v, fd).utf8)), link.first == Self.slash,
              !link.reversed().starts(with: Array(" (deleted)".utf8).reversed()) else { throw .refused }
        let found = try resolve(link, from: Self.atCWD, follow: false)
        var again = stat()
        guard fstat(found.file.raw, &again) == 0, again.st_dev == st.st_dev, again.st_ino == st.st_ino else { throw .refused }
        return found
    }

    /// `path` resolved from `base` as the kernel resolves it for utimensat, the last
    /// symlink followed by hand (`follow`) so the directory it lands in is known.
    func resolve(_ path: [UInt8], from base: Int32, follow: Bool) throws(Failure) -> Target {
        var base = base, path = path, hops = 0
        var held: OwnedFD? = nil   // keeps `base` open while it is one of ours
        while true {
            guard path.count < Self.pathMax else { throw .failed(ENAMETOOLONG) }
            let slash = path.lastIndex(of: Self.slash)
            let name = Array(slash.map { path[($0 + 1)...] } ?? path[...])
            if name.isEmpty || name == [Self.dot] || name == [Self.dot, Self.dot] {
                // Names a directory (a trailing slash follows a final symlink).
                let fd = Self.open(base, path, nofollow: false, directory: true)
                guard fd >= 0 else { throw .failed(errno) }
                return Target(file: OwnedFD(fd), parent: nil)
            }
            let dir = slash.map { Array(path[...$0]) } ?? [Self.dot]
            let pfd = Self.open(base, dir, nofollow: false, directory: true)
            guard pfd >= 0 else { throw .failed(errno) }
            let parent = OwnedFD(pfd)
            let fd = Self.open(parent.raw, name, nofollow: true, directory: false)
            guard fd >= 0 else { throw .failed(errno) }
            let file = OwnedFD(fd)
            var st = stat()
            guard fstat(file.raw, &st) == 0 else { throw .failed(errno) }
            if st.st_mode & S_IFMT == S_IFDIR { return Target(file: file, parent: nil) }
            guard follow, st.st_mode & S_IFMT == S_IFLNK else { return Target(file: file, parent: parent) }
            hops += 1
            guard hops <= 40, let link = Self.readLink(file.raw, []) else { throw .failed(hops > 40 ? ELOOP : errno) }
            guard !link.isEmpty else { throw .failed(ENOENT) }
            held = parent
            base = link[0] == Self.slash ? Self.atCWD : parent.raw
            path = link
            _ = held
        }
    }

    /// The target is a writable bind's source, or lies beneath one: the target or its
    /// directory is a source by (device, inode); or the kernel's path of the directory
    /// is a source's kernel path and more, and the rest of it, opened from the source
    /// (beneath it, no symlink), is that directory. The kernel's paths are taken at
    /// once (under its rename lock), and the reopen proves the relation by identity,
    /// so neither a rename meanwhile (the command can rename only within the writable
    /// binds; Landlock) nor a path the kernel renders oddly (a deleted directory's
    /// " (deleted)", a detached mount) can make an outside directory pass: it only
    /// refuses. Stricter than Landlock in one place: a directory reached through
    /// another mount of a source (a host bind mount of it elsewhere) has another
    /// path, and is refused.
    func beneathWritableRoot(_ target: Target, _ identity: Root) throws(Failure) -> Bool {
        if roots.contains(identity) { return true }
        let dir = target.parent ?? target.file
        let dirIdentity = try Self.identity(dir)
        if roots.contains(dirIdentity) { return true }
        guard let path = Self.kernelPath(dir.raw) else { return false }
        for root in rootDirectories {
            guard let prefix = Self.kernelPath(root.raw) else { continue }
            let start = prefix == [Self.slash] ? 1 : prefix.count + 1
            guard path.count > start, path.starts(with: prefix), prefix == [Self.slash] || path[prefix.count] == Self.slash else { continue }
            let rest = Array(path[start...])
            let fd = (rest + [0]).withUnsafeBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) { sbx_times_open_beneath(root.raw, $0.baseAddress) }
            }
            guard fd >= 0 else { continue }
            if try Self.identity(OwnedFD(fd)) == dirIdentity { return true }
        }
        return false
    }

    /// The kernel's path of this process's fd (`readlink /proc/self/fd/<n>`), nil when
    /// it has none that starts with `/` (longer than PATH_MAX, unreachable).
    static func kernelPath(_ fd: Int32) -> [UInt8]? {
        guard let link = readLink(atCWD, Array("/proc/self/fd/\(fd)".utf8)), link.first == slash else { return nil }
        return link
    }

    static func identity(_ fd: OwnedFD) throws(Failure) -> Root {
        var st = stat()
        guard fstat(fd.raw, &st) == 0 else { throw .failed(errno) }
        return Root(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    static let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")

    /// sbx_times_open with a path of bytes.
    static func open(_ base: Int32, _ path: [UInt8], nofollow: Bool, directory: Bool) -> Int32 {
        (path + [0]).withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { sbx_times_open(base, $0.baseAddress, nofollow ? 1 : 0, directory ? 1 : 0) }
        }
    }

    /// readlinkat(fd, path), its bytes, or nil with errno set.
    static func readLink(_ fd: Int32, _ path: [UInt8]) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: Self.pathMax + 1)
        let n = (path + [0]).withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { name in
                buf.withUnsafeMutableBufferPointer { b in
                    b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { readlinkat(fd, name.baseAddress!, $0, b.count - 1) }
                }
            }
        }
        guard n >= 0 else { return nil }
        return Array(buf[..<n])
    }
}
