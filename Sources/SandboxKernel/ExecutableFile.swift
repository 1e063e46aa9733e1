import CSandbox
import Glibc
import SandboxVocabulary

/// The command's executable for `[binary]`: found by looking at host paths without
/// following symlinks (the caller resolves them in the sandbox's own view), then
/// opened once, from `/`, one component at a time with `RESOLVE_NO_SYMLINKS`, every
/// directory on the way `fstat`ed as it is passed. The checks, the hash and the
/// child's `execveat` all use the one descriptor this returns, so a rename, a
/// swapped symlink or a replaced file after the open changes nothing that runs.
public enum ExecutableFile {
    /// What the child compares before `execveat` (a write into the inode moves
    /// `ctime`, which no caller can set back).
    public struct Stamp: Sendable, Equatable {
        public var ctimeSec: Int64
        public var ctimeNsec: Int64
        public var size: Int64
    }

    /// A directory passed on the way to the file, as `fstat` saw it through the fd
    /// the walk held.
    public struct Directory: Sendable, Equatable {
        public var path: String
        public var uid: UInt32
        public var mode: UInt32
        public var device: UInt64
        public var inode: UInt64
    }

    /// The largest file `[binary]` copies or hashes (512 MiB): a bigger one is
    /// refused before a byte is read, so a planted huge file costs no memory or CPU.
    /// Executables are far smaller (a static toolchain binary: ~200 MiB).
    public static let maxSize: Int64 = 512 << 20

    /// What keeps the bytes that run equal to the bytes hashed (Docs/binary.md,
    /// "Keeping the bytes"): a read lease on the opened file, or a sealed memfd copy
    /// of it that runs instead.
    public enum Fence: String, Sendable, Codable, Equatable {
        case lease
        case copy
    }

    /// The opened executable: its descriptor (`O_RDONLY | O_CLOEXEC`), what `fstat`
    /// said of it and of every directory above it.
    public struct Opened: Sendable {
        public var owner: OwnedFD
        public var fd: Int32 { owner.raw }
        public var hostPath: String
        public var uid: UInt32
        public var mode: UInt32
        public var device: UInt64
        public var inode: UInt64
        /// `st_nlink`: how many names the inode has.
        public var linkCount: UInt64
        /// It carries file capabilities (a `security.capability` extended attribute).
        public var hasFileCapabilities: Bool
        public var stamp: Stamp
        /// `/` first, the file's own directory last.
        public var directories: [Directory]
        /// nil until ``fenced(lease:)``.
        public var fence: Fence?

        public func close() { owner.close() }

        /// Reads the whole file from the descriptor (`pread` from offset 0, so the
        /// bytes are those of this inode, whatever its path names now), in chunks;
        /// `EFBIG` past ``ExecutableFile/maxSize`` (a file grown since its `fstat`).
        public func read(_ body: (UnsafeRawBufferPointer) -> Void) throws(KernelError) {
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            var offset: off_t = 0
            while true {
                if Int64(offset) > ExecutableFile.maxSize {
                    throw KernelError(operation: "read", subject: hostPath, errno: EFBIG,
                                      detail: "over the \(ExecutableFile.maxSize >> 20) MiB [binary] reads at most")
                }
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, offset) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw KernelError.last("read", hostPath)
                }
                if n == 0 { return }
                buf.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                offset += off_t(n)
            }
        }

        /// The file's stamp now, through the same descriptor.
        public func currentStamp() throws(KernelError) -> Stamp {
            var st = stat()
            if fstat(fd, &st) < 0 { throw KernelError.last("fstat", hostPath) }
            return Stamp(ctimeSec: Int64(st.st_ctim.tv_sec), ctimeNsec: Int64(st.st_ctim.tv_nsec), size: Int64(st.st_size))
        }

        /// The file's bytes copied into a sealed memfd (no write, grow or shrink, seals
        /// locked): what an interpreter reads from it can no longer change. A script is
        /// never exec'd itself, so the kernel would not refuse writers to it
        /// (`ETXTBSY`) while the interpreter reads it line by line; the caller hashes
        /// the copy and compares. Same owner, mode and directories as the original:
        /// the rules were checked on that.
        public func sealedCopy() throws(KernelError) -> Opened {
            let raw = sbx_memfd_sealable("sandbox-checked")
            guard raw >= 0 else { throw KernelError.last("memfd_create", hostPath) }
            let copy = OwnedFD(raw)
            var failed: Int32 = 0
            do {
                try read { chunk in
                    guard failed == 0 else { return }
                    if !FD.writeAll(raw, Array(chunk)) { failed = errno == 0 ? EIO : errno }
                }
            } catch { copy.close(); throw error }
            guard failed == 0 else { copy.close(); throw KernelError(operation: "copy into memfd", subject: hostPath, errno: failed) }
            guard sbx_memfd_seal(raw) == 0 else { let e = KernelError.last("seal memfd", hostPath); copy.close(); throw e }
            var out = self
            out.owner = copy
            out.fence = .copy
            do { out.stamp = try out.currentStamp() } catch { copy.close(); throw error }
            return out
        }

        /// The file fenced so that what runs is what is read from now on (hash after
        /// this): with `lease`, a read lease on this descriptor where the kernel grants
        /// one and the filesystem is one where every write goes through this kernel's
        /// VFS; else a sealed copy, this descriptor then closed. A lease is refused
        /// while a writer or a shared writable mapping exists (EAGAIN), for a file the
        /// supervisor neither owns nor has CAP_LEASE over (EACCES: a rootless run of a
        /// root-owned binary), or where leases are off: each falls back to the copy.
        public func fenced(lease: Bool) throws(KernelError) -> Opened {
            if lease, Self.leaseHolds(fd), sbx_read_lease(fd) == 0 {
                TestHooks.pauseInLease() // debug builds only: a writer breaks the lease here
                // Disowning drops the lease if it fails: then the copy, as for no lease.
                if sbx_lease_disown(fd) == 0 {
                    var f = self
                    f.fence = .lease
                    return f
                }
            }
            let copy = try sealedCopy()
            close()
            return copy
        }

        /// The lease taken by ``fenced(lease:)`` is still held and was never broken
        /// (no open for writing, no truncate since). True without a lease.
        public var leaseIntact: Bool { fence != .lease || sbx_holds_read_lease(fd) == 1 }

        /// Filesystems where every write to the inode passes this kernel's VFS, so a
        /// lease sees it: not NFS, CIFS or 9p (another host writes), FUSE (its daemon
        /// serves any bytes it likes), overlayfs (its upper and lower files can be
        /// written by their own paths, past the overlay inode's lease).
        static func leaseHolds(_ fd: Int32) -> Bool {
            let local: Set<Int64> = [
                0xEF53,       // ext2/3/4
                0x5846_5342,  // xfs
                0x9123_683E,  // btrfs
                0x0102_1994,  // tmpfs
                0xF2F5_2010,  // f2fs
                0xCA45_1A4E,  // bcachefs
            ]
            return local.contains(sbx_fs_magic(fd))
        }

        /// The first bytes of the file (for `#!`).
        public func head(_ count: Int = 256) -> [UInt8] {
            var buf = [UInt8](repeating: 0, count: count)
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, count, 0) }
            return n > 0 ? Array(buf[0..<n]) : []
        }
    }

    /// What a host path is, its last component not followed.
    public enum Entry: Sendable, Equatable {
        case missing
        case symlink(target: String)
        case directory
        case file(mode: UInt32)
        case other
    }

    /// What `relative` names beneath `directoryFD` (a bind source's fd; "" is the
    /// source itself), without following its last component. Only for finding the
    /// file: the open (``open(hostPath:anchorDepth:anchor:)``) checks again.
    public static func lookup(beneath directoryFD: Int32, _ relative: String) -> Entry {
        var st = stat()
        let r = relative.isEmpty ? fstatat(directoryFD, "", &st, 0x1000 /* AT_EMPTY_PATH */ | AT_SYMLINK_NOFOLLOW)
                                 : fstatat(directoryFD, relative, &st, AT_SYMLINK_NOFOLLOW)
        if r < 0 { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file(mode: st.st_mode & 0o7777)
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlinkat(directoryFD, relative, &buf, buf.count - 1)
            guard n > 0 else { return .missing }
            return .symlink(target: String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        default: return .other
        }
    }

    /// The device and inode `relative` names beneath `directoryFD`, its last
    /// component not followed; nil if nothing is there.
    public static func identity(beneath directoryFD: Int32, _ relative: String) -> (device: UInt64, inode: UInt64)? {
        var st = stat()
        let r = relative.isEmpty ? fstatat(directoryFD, "", &st, 0x1000 /* AT_EMPTY_PATH */ | AT_SYMLINK_NOFOLLOW)
                                 : fstatat(directoryFD, relative, &st, AT_SYMLINK_NOFOLLOW)
        return r < 0 ? nil : (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Opens `hostPath` (absolute, normalized) from `/`, each component with
    /// `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH)` from the directory fd before
    /// it, recording each directory; the object reached after `anchorDepth`
    /// components must be `anchor` (the bind source the supervisor opened and the
    /// child mounts), else `ESTALE`: the file is then the one the sandbox sees. The
    /// file itself is opened `O_RDONLY | O_NOFOLLOW | O_NONBLOCK` and must be a
    /// regular file (`EACCES` otherwise, as execve says).
    public static func open(hostPath: String, anchorDepth: Int, anchor: (device: UInt64, inode: UInt64))
        throws(KernelError) -> Opened {
        let (dir, dirs, components) = try walk(hostPath: hostPath, anchorDepth: anchorDepth, anchor: anchor)
        defer { dir.close() }
        let raw = openat(dir.raw, components.last!, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard raw >= 0 else { throw KernelError.last("open", hostPath) }
        let file = OwnedFD(raw)
        var st = stat()
        do throws(KernelError) {
            if fstat(raw, &st) < 0 { throw KernelError.last("fstat", hostPath) }
            try checkAnchor(st, depth: components.count, anchorDepth: anchorDepth, anchor: anchor, at: hostPath)
        } catch { file.close(); throw error }
        guard st.st_mode & S_IFMT == S_IFREG else {
            file.close()
            throw KernelError(operation: "open", subject: hostPath, errno: EACCES, detail: "not a regular file")
        }
        // File capabilities (setcap) are privilege as setuid is: read from the opened
        // file, so it is the inode that runs. ENODATA: none; ENOTSUP: no xattrs here.
        let capabilities = sbx_has_file_caps(raw) == 1
        return Opened(owner: file, hostPath: hostPath, uid: st.st_uid, mode: st.st_mode & 0o7777,
                      device: UInt64(st.st_dev), inode: UInt64(st.st_ino), linkCount: UInt64(st.st_nlink),
                      hasFileCapabilities: capabilities,
                      stamp: Stamp(ctimeSec: Int64(st.st_ctim.tv_sec), ctimeNsec: Int64(st.st_ctim.tv_nsec),
                                   size: Int64(st.st_size)),
                      directories: dirs, fence: nil)
    }

    /// A symlink the lookup followed on a bind, as its rules see it: its owner and
    /// identity and the directories above it (the walk of ``open(hostPath:anchorDepth:anchor:)``).
    public struct Link: Sendable, Equatable {
        public var hostPath: String
        public var uid: UInt32
        public var device: UInt64
        public var inode: UInt64
        /// `/` first, the link's own directory last.
        public var directories: [Directory]
    }

    /// The symlink at `hostPath`, reached as ``open(hostPath:anchorDepth:anchor:)``
    /// reaches a file; `EINVAL` if it is no longer a symlink.
    public static func link(hostPath: String, anchorDepth: Int, anchor: (device: UInt64, inode: UInt64))
        throws(KernelError) -> Link {
        let (dir, dirs, components) = try walk(hostPath: hostPath, anchorDepth: anchorDepth, anchor: anchor)
        defer { dir.close() }
        var st = stat()
        if fstatat(dir.raw, components.last!, &st, AT_SYMLINK_NOFOLLOW) < 0 { throw KernelError.last("lstat", hostPath) }
        guard st.st_mode & S_IFMT == S_IFLNK else {
            throw KernelError(operation: "lstat", subject: hostPath, errno: EINVAL, detail: "no longer a symlink")
        }
        return Link(hostPath: hostPath, uid: st.st_uid, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), directories: dirs)
    }

    private static func checkAnchor(_ st: stat, depth: Int, anchorDepth: Int, anchor: (device: UInt64, inode: UInt64),
                                    at: String) throws(KernelError) {
        guard depth == anchorDepth else { return }
        if UInt64(st.st_dev) != anchor.device || UInt64(st.st_ino) != anchor.inode {
            throw KernelError(operation: "open", subject: at, errno: ESTALE,
                              detail: "not the bind source the supervisor opened; renamed or swapped meanwhile")
        }
    }

    /// Walks `hostPath`'s directories from `/` (each with `RESOLVE_NO_SYMLINKS |
    /// RESOLVE_BENEATH` from the one before, `fstat`ed as held, the anchor checked):
    /// the last one's fd, every directory seen, the path's components.
    private static func walk(hostPath: String, anchorDepth: Int, anchor: (device: UInt64, inode: UInt64))
        throws(KernelError) -> (OwnedFD, [Directory], [String]) {
        // At slash bytes (PathText), as the kernel splits: `split(separator: "/")`
        // does not cut a slash that a combining mark follows, so the walk counted one
        // directory too few and missed its anchor.
        let components = PathText.components(hostPath)
        guard !components.isEmpty, !components.contains(where: { PathText.same($0, "..") || PathText.same($0, ".") }) else {
            throw KernelError(operation: "open", subject: hostPath, errno: EINVAL)
        }
        var dirs: [Directory] = []
        var dir = OwnedFD(sbx_mounts_open_source(AT_FDCWD, "/", UInt64(SBX_RESOLVE_NO_SYMLINKS_FLAG)))
        guard dir.isOpen else { throw KernelError.last("open", "/") }
        var path = ""
        var st = stat()
        do throws(KernelError) {
            if fstat(dir.raw, &st) < 0 { throw KernelError.last("fstat", "/") }
            try checkAnchor(st, depth: 0, anchorDepth: anchorDepth, anchor: anchor, at: "/")
            for (i, name) in components.enumerated() {
                dirs.append(Directory(path: path.isEmpty ? "/" : path, uid: st.st_uid, mode: st.st_mode & 0o7777,
                                      device: UInt64(st.st_dev), inode: UInt64(st.st_ino)))
                path += "/" + name
                if i == components.count - 1 { break }
                let next = sbx_mounts_open_source(dir.raw, name,
                                                  UInt64(SBX_RESOLVE_NO_SYMLINKS_FLAG | SBX_RESOLVE_BENEATH_FLAG))
                guard next >= 0 else { throw KernelError(operation: "open", subject: path, errno: -next) }
                dir.close()
                dir = OwnedFD(next)
                if fstat(dir.raw, &st) < 0 { throw KernelError.last("fstat", path) }
                guard st.st_mode & S_IFMT == S_IFDIR else { throw KernelError(operation: "open", subject: path, errno: ENOTDIR) }
                try checkAnchor(st, depth: i + 1, anchorDepth: anchorDepth, anchor: anchor, at: path)
            }
        } catch { dir.close(); throw error }
        return (dir, dirs, components)
    }
}

/// Test hooks of debug builds only: compiled out of a release build (`#if DEBUG`),
/// so no environment variable can change what a release build runs.
public enum TestHooks {
    /// `SANDBOX_TEST_PAUSE_AFTER_BINARY_CHECK=DIR`: after the `[binary]` check, create
    /// `DIR/checked` and wait (at most 20 s) until `DIR/go` exists, so a test can
    /// swap or rewrite the binary between the check and the exec.
    public static func pauseAfterBinaryCheck() { pause("SANDBOX_TEST_PAUSE_AFTER_BINARY_CHECK") }

    /// `SANDBOX_TEST_PAUSE_BEFORE_CLONE=DIR`: the same, after the supervisor's last
    /// look at the binary (right before clone3), so only the child's check is left.
    public static func pauseBeforeClone() { pause("SANDBOX_TEST_PAUSE_BEFORE_CLONE") }

    /// `SANDBOX_TEST_PAUSE_IN_LEASE=DIR`: the same, between taking the read lease and
    /// clearing its owner, so a test can break the lease while the kernel would still
    /// signal the supervisor.
    public static func pauseInLease() { pause("SANDBOX_TEST_PAUSE_IN_LEASE") }

    private static func pause(_ variable: String) {
        #if DEBUG
        guard let dir = getenv(variable).map({ String(cString: $0) }) else { return }
        let fd = Glibc.open(dir + "/checked", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { Glibc.close(fd) }
        for _ in 0..<2000 {
            if access(dir + "/go", F_OK) == 0 { return }
            usleep(10_000)
        }
        #endif
    }

    /// `SANDBOX_TEST_EXEC_FENCE=none|copy`: `none` runs an ELF without its fence (no
    /// lease, no copy: the control of the shared-mapping rewrite test); `copy` skips
    /// the lease, so a root test exercises the copy a rootless run gets.
    public static var execFence: String? { value("SANDBOX_TEST_EXEC_FENCE") }

    /// A hook's variable; always nil in a release build, which no environment sets a
    /// test hook in.
    private static func value(_ variable: String) -> String? {
        #if DEBUG
        return getenv(variable).map { String(cString: $0) }
        #else
        return nil
        #endif
    }

    private static func isSet(_ variable: String) -> Bool { value(variable) == "1" }

    /// `SANDBOX_TEST_EXEC_HOST_FD=1`: the control of the `/proc/self/exe` test: the
    /// child execs the supervisor's descriptor (opened through the host's mount)
    /// instead of reopening the file through the sandbox's own mount.
    public static var execHostFD: Bool { isSet("SANDBOX_TEST_EXEC_HOST_FD") }

    /// `SANDBOX_TEST_STATUS_BEFORE_SWEEP=1`: the control of the served-result test:
    /// the namespaced reaper writes the command's status before the rest of the run
    /// is killed, and exits (which kills it) 0.5 s later; the supervisor's teardown,
    /// whose kill of the init would end it sooner, waits as long.
    public static var statusBeforeSweep: Bool { isSet("SANDBOX_TEST_STATUS_BEFORE_SWEEP") }

    /// `SANDBOX_TEST_EXEC_BY_PATH=1`: the control of the swap test: the child execs
    /// `argv[0]` by path after the check, as it would without the checked fd.
    public static var execByPath: Bool { isSet("SANDBOX_TEST_EXEC_BY_PATH") }
}
