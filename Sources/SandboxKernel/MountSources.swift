import CSandbox
import Glibc

/// Where the supervisor finds a bind's source: by path from `/`, or by a path
/// relative to a directory fd it already holds (its own working directory).
public enum BindSourceLocation: Sendable, Equatable {
    case absolute(String)
    /// Opened beneath `directoryFD` with `RESOLVE_BENEATH`; "" is the directory itself.
    case beneath(directoryFD: Int32, relative: String)
}

/// A host object a bind comes from, opened once (`O_PATH`) by the supervisor. The
/// child clones its mount from this fd and Landlock's rule is attached to it, so
/// what was checked is what is mounted: a concurrent run that renames a directory
/// on the path or swaps in a symlink changes nothing once this is open.
/// Copies share one owner: ``close()`` closes the fd once.
public struct OpenedSource: Sendable {
    public let owner: OwnedFD
    /// The `O_PATH` fd; -1 once closed.
    public var fd: Int32 { owner.raw }
    public var device: UInt64
    public var inode: UInt64
    public var isDirectory: Bool

    public init(owner: OwnedFD, device: UInt64, inode: UInt64, isDirectory: Bool) {
        self.owner = owner; self.device = device; self.inode = inode; self.isDirectory = isDirectory
    }

    /// Closes the fd; idempotent.
    public func close() { owner.close() }
}

public enum MountSources {
    /// What a failed `open` of a source means, for the run's error.
    public static func explain(_ e: KernelError) -> String {
        switch e.errno?.rawValue {
        case ELOOP: return "a symlink is on its path; refused, because a run that can write there could swap one in between planning and mounting (name the real path)"
        case EXDEV: return "it leads outside the working directory; refused"
        default: return e.errno?.message ?? "\(e)"
        }
    }

    /// Opens `location` with no symlink in any component (`RESOLVE_NO_SYMLINKS`, and
    /// `O_NOFOLLOW` for the last), so nothing a run can plant redirects it.
    /// nil when it does not exist and `optional`.
    public static func open(_ location: BindSourceLocation, optional: Bool) throws(KernelError) -> OpenedSource? {
        let r: Int32
        let subject: String
        switch location {
        case .absolute(let path):
            subject = path
            r = sbx_mounts_open_source(AT_FDCWD, path, UInt64(SBX_RESOLVE_NO_SYMLINKS_FLAG))
        case .beneath(let dir, let relative):
            subject = relative.isEmpty ? "the working directory" : relative
            r = sbx_mounts_open_source(dir, relative, UInt64(SBX_RESOLVE_NO_SYMLINKS_FLAG | SBX_RESOLVE_BENEATH_FLAG))
        }
        if r == -ENOENT && optional { return nil }
        guard r >= 0 else { throw KernelError(operation: "open", subject: subject, errno: -r) }
        let owner = OwnedFD(r)
        var dev: UInt64 = 0, ino: UInt64 = 0, mode: UInt32 = 0
        let s = sbx_mounts_identity(r, &dev, &ino, &mode)
        guard s == 0 else {
            owner.close()
            throw KernelError(operation: "fstat", subject: subject, errno: -s)
        }
        return OpenedSource(owner: owner, device: dev, inode: ino, isDirectory: mode & S_IFMT == S_IFDIR)
    }

    /// The invoker's working directory as an `O_PATH` fd: the inode it runs in, not
    /// the path `getcwd` reported (which a rename may have changed).
    public static func openWorkingDirectory() throws(KernelError) -> OpenedSource {
        let fd = sbx_mounts_open_source(AT_FDCWD, "", 0)
        guard fd >= 0 else { throw KernelError(operation: "open", subject: ".", errno: -fd) }
        let owner = OwnedFD(fd)
        var dev: UInt64 = 0, ino: UInt64 = 0, mode: UInt32 = 0
        let s = sbx_mounts_identity(fd, &dev, &ino, &mode)
        guard s == 0 else { owner.close(); throw KernelError(operation: "fstat", subject: ".", errno: -s) }
        return OpenedSource(owner: owner, device: dev, inode: ino, isDirectory: true)
    }

    /// What ``objectInside(pid:path:)`` finds: the object's identity, the mount it is
    /// on (its id), and whether a mount sits on it.
    public struct InsideObject: Equatable, Sendable {
        public var device: UInt64, inode: UInt64
        public var mount: UInt64, mountRoot: Bool
    }

    /// An object inside a running sandbox as the host sees it: `path` (absolute,
    /// inside) resolved in the root of `pid` (`sbx_mounts_open_root`) — the caller's
    /// own unreaped child, so the pid names it — never leaving that root and with no
    /// symlink on the way; nil when nothing is there.
    public static func objectInside(pid: Int32, path: String) throws(KernelError) -> InsideObject? {
        let root = sbx_mounts_open_root(pid)
        guard root >= 0 else { throw KernelError(operation: "open the root of", subject: "the sandbox init, pid \(pid)", errno: -root) }
        defer { Glibc.close(root) }
        let relative = String(path.drop(while: { $0 == "/" }))
        let fd = sbx_mounts_open_source(root, relative, UInt64(SBX_RESOLVE_IN_ROOT_FLAG | SBX_RESOLVE_NO_SYMLINKS_FLAG))
        if fd == -ENOENT { return nil }
        guard fd >= 0 else { throw KernelError(operation: "open", subject: path, errno: -fd) }
        defer { Glibc.close(fd) }
        var dev: UInt64 = 0, ino: UInt64 = 0, mode: UInt32 = 0
        let s = sbx_mounts_identity(fd, &dev, &ino, &mode)
        guard s == 0 else { throw KernelError(operation: "fstat", subject: path, errno: -s) }
        let m = sbx_mounts_is_mount_root(fd)
        guard m >= 0 else { throw KernelError(operation: "statx", subject: path, errno: -m) }
        var mount: UInt64 = 0
        let id = sbx_mounts_mount_id(fd, &mount)
        guard id == 0 else { throw KernelError(operation: "statx", subject: path, errno: -id) }
        return InsideObject(device: dev, inode: ino, mount: mount, mountRoot: m == 1)
    }

    /// Device and inode of what `relative` names beneath the directory `directoryFD`,
    /// reached without leaving it and with no symlink; nil when it is not there.
    public static func identity(beneath directoryFD: Int32, _ relative: String) -> (device: UInt64, inode: UInt64)? {
        let fd = sbx_mounts_open_source(directoryFD, relative, UInt64(SBX_RESOLVE_BENEATH_FLAG | SBX_RESOLVE_NO_SYMLINKS_FLAG))
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var dev: UInt64 = 0, ino: UInt64 = 0, mode: UInt32 = 0
        return sbx_mounts_identity(fd, &dev, &ino, &mode) == 0 ? (dev, ino) : nil
    }

    /// The id of the mount `fd` is on (as mountinfo shows it), or nil.
    public static func mountID(_ fd: Int32) -> UInt64? {
        var id: UInt64 = 0
        return sbx_mounts_mount_id(fd, &id) == 0 ? id : nil
    }

    /// Whether the mount `fd` is on belongs to this process's mount namespace.
    public static func isInOwnNamespace(_ fd: Int32) -> Bool { sbx_mounts_in_own_namespace(fd) == 1 }

    /// Device and inode of the working directory (for the planner's `HostFacts`).
    public static func workingDirectoryIdentity() -> (device: UInt64, inode: UInt64)? {
        guard let s = try? openWorkingDirectory() else { return nil }
        s.close()
        return (s.device, s.inode)
    }

    /// A detached recursive clone of `source` with nosuid, nodev (and rdonly) set
    /// recursively and, with `userNamespaceFD`, idmapped through that namespace.
    public static func prepareTree(_ source: OpenedSource, readOnly: Bool,
                                   userNamespaceFD: Int32) throws(KernelError) -> OwnedFD {
        var step: Int32 = 0
        let r = sbx_mounts_prepare_tree(source.fd, readOnly ? 1 : 0, userNamespaceFD, &step)
        guard r >= 0 else {
            switch step {
            case 2: throw KernelError(operation: "idmap", subject: "", errno: -r,
                                     detail: -r == EINVAL || -r == EPERM || -r == EOPNOTSUPP
                                        ? "this filesystem cannot be idmapped" : nil)
            case 3: throw KernelError(operation: "mount_setattr", subject: "", errno: -r)
            default: throw KernelError(operation: "open_tree", subject: "", errno: -r)
            }
        }
        return OwnedFD(r)
    }

    /// A user namespace with exactly these maps, held by fd (for idmapped mounts).
    public static func makeUserNamespace(uidMap: String, gidMap: String) throws(KernelError) -> OwnedFD {
        let r = sbx_mounts_make_userns(uidMap, gidMap)
        guard r >= 0 else { throw KernelError(operation: "create user namespace", subject: uidMap.trimmedLine, errno: -r) }
        return OwnedFD(r)
    }

    /// Writes the id maps of our own child `pid` (clone3'd, not reaped, so the pid
    /// names it): the supervisor uses a pid here because only /proc/<pid>/{uid,gid}_map
    /// can set a user namespace's maps (LintTests lists every such place).
    public static func writeIDMaps(pid: Int32, uidMap: String, gidMap: String) throws(KernelError) {
        let r = sbx_mounts_write_maps(pid, uidMap, gidMap)
        guard r == 0 else { throw KernelError(operation: "write id maps", subject: uidMap.trimmedLine, errno: -r) }
    }

    /// Sets our own child's `oom_score_adj` (clone3'd, not reaped, so the pid names
    /// it; no pidfd form exists).
    public static func writeOOMScoreAdj(pid: Int32, _ value: Int32) throws(KernelError) {
        let r = sbx_mounts_write_oom_score_adj(pid, value)
        guard r == 0 else { throw KernelError(operation: "write", subject: "oom_score_adj of the sandbox init", errno: -r) }
    }

    /// Whether the filesystem at `path` can be idmapped (what a writable bind of a run
    /// with its own uid needs): nil if it can, else why not. Needs root.
    public static func idmapProblem(at path: String) -> String? {
        let source: OpenedSource?
        do { source = try open(.absolute(path), optional: false) } catch { return "\(error)" }
        guard let source else { return "absent" }
        defer { source.close() }
        let userns: OwnedFD
        let first = UidLease.range.lowerBound
        do { userns = try makeUserNamespace(uidMap: "0 \(first) 1\n", gidMap: "0 \(first) 1\n") } catch { return "\(error)" }
        defer { userns.close() }
        do {
            let tree = try prepareTree(source, readOnly: true, userNamespaceFD: userns.raw)
            tree.close()
            return nil
        } catch { return error.errno?.message ?? "\(error)" }
    }

    /// The network namespace of the process behind `pidfd`.
    public static func networkNamespace(pidfd: Int32) throws(KernelError) -> OwnedFD {
        try namespace(sbx_mounts_pidfd_netns(pidfd), "PIDFD_GET_NET_NAMESPACE")
    }

    /// The mount namespace of the process behind `pidfd`.
    public static func mountNamespace(pidfd: Int32) throws(KernelError) -> OwnedFD {
        try namespace(sbx_mounts_pidfd_mntns(pidfd), "PIDFD_GET_MNT_NAMESPACE")
    }

    /// An ioctl's namespace descriptor, or its -errno as the error.
    private static func namespace(_ r: Int32, _ ioctl: String) throws(KernelError) -> OwnedFD {
        guard r >= 0 else { throw KernelError(operation: ioctl, subject: "sandbox init", errno: -r) }
        return OwnedFD(r)
    }
}

private extension String {
    var trimmedLine: String { split(separator: "\n").first.map(String.init) ?? self }
}

/// This process's mount namespace watched for change: any mount made, changed
/// (a remount read-only) or removed in it since ``init()`` (or the last ``changed``)
/// marks it. What a sandbox built ahead cloned of the host's mounts is as it was at
/// its build; a change since means it may differ from what a build now would clone.
public final class MountEvents: Sendable {
    private let fd: OwnedFD

    public init() throws(KernelError) {
        let r = sbx_mounts_events_open()
        guard r >= 0 else { throw KernelError(operation: "open", subject: "/proc/self/mountinfo", errno: -r) }
        fd = OwnedFD(r)
    }

    /// Whether any mount of the namespace changed since the last call (or since init).
    public var changed: Bool { fd.withRaw { $0 < 0 || sbx_mounts_events_changed($0) == 1 } }

    public func close() { fd.close() }
}

/// A descriptor closed on a thread of its own while the caller goes on (the last
/// reference to a run's mount namespace: its close unmounts the run's whole tree,
/// about half a millisecond a cold run's teardown would otherwise wait for before it
/// removes the cgroups and the run directory). ``wait()`` joins it; `deinit` too.
public final class BackgroundClose {
    /// The thread reads here after `start` returns: memory of this object's own.
    private let job = UnsafeMutablePointer<sbx_background_close>.allocate(capacity: 1)
    private var waited = false

    public init(_ fd: OwnedFD) {
        job.initialize(to: sbx_background_close())
        let raw = fd.release()
        if raw >= 0 { sbx_close_in_background(job, raw) } else { waited = true }
    }

    public func wait() {
        if !waited { sbx_background_close_wait(job); waited = true }
    }

    deinit {
        wait()
        job.deallocate()
    }
}
