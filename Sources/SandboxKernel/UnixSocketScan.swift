import CSandbox
import Glibc
import SandboxVocabulary

/// The unix sockets a read-only bind would show. A read-only mount does not stop
/// `connect(2)`: the kernel asks only for write permission on the socket inode, which
/// a world-connectable socket (mode 0666/0777) grants to every uid. So the planner
/// masks each socket found beneath an `ro` bind (`SandboxPlan/SocketScan.swift`).
///
/// The walk reads directories with `readdir` and decides by `d_type`: no `stat` per
/// entry (only where the filesystem reports `DT_UNKNOWN`). It follows no symlink
/// (inside the sandbox a link resolves in the sandbox's own root, whose other trees
/// are searched on their own), crosses into submounts (the bind is recursive), and
/// does not enter the `skip` paths. A file mounted over another file does not show
/// in `d_type` (the directory lists the covered entry), so the mount table is read
/// too: every mount point beneath a root is looked at with `lstat`, which sees the
/// mounted object.
///
/// The search stops, with `incompleteRoot` and `incompleteReason` set, at `limit`
/// entries in all, at a depth of `maxDepth`, at a directory it cannot list although
/// the invoker could pass through it (a socket inside could be reached by name), at
/// a socket or mount point whose path is not UTF-8 (a mask step could not name it),
/// and at any other read error. A directory the invoker cannot pass through is
/// skipped, since the command cannot reach into it either.
public enum UnixSocketScan {
    public struct Outcome: Sendable, Equatable {
        public var sockets: [String] = []
        public var entries = 0
        /// The root being searched when the search stopped, and why.
        public var incompleteRoot: String?
        public var incompleteReason: String?
    }

    /// `mounts`: the mount table when the caller has read it already (else read here).
    public static func scan(roots: [String], skip: Set<String>, limit: Int, maxDepth: Int = 128,
                            mounts: FileSystemLocation.Table? = nil) -> Outcome {
        var trace: Trace?
        return scan(roots: roots, skip: skip, limit: limit, maxDepth: maxDepth, mounts: mounts, trace: &trace)
    }

    /// What an outcome rests on, for ``HostViewMemo``: each root that is not a
    /// directory as `lstat` saw it (nil: absent), and each directory the walk listed,
    /// directory roots included, as `fstat` saw it once opened (before its first entry
    /// was read). `cacheable` is false when the outcome rests on more than that:
    /// an entry skipped because it vanished, could not be stat'ed or could not be
    /// passed through (a `chmod` of it changes its own ctime, not its parent's), a
    /// name that is not UTF-8 (no path to stamp), a filesystem whose directories may
    /// not record their changes in ctime (``Stamp/localFilesystems``).
    struct Trace {
        var roots: [(path: String, stamp: Stamp?)] = []
        var directories: [(path: String, stamp: Stamp)] = []
        var cacheable = true
    }

    /// A directory's (or root's) identity and last change, as `stat` gives them.
    struct Stamp: Equatable {
        var device: UInt64, inode: UInt64, mode: UInt32, ctimeSec: Int, ctimeNsec: Int
        init(_ st: stat) {
            device = UInt64(st.st_dev); inode = UInt64(st.st_ino); mode = st.st_mode
            ctimeSec = st.st_ctim.tv_sec; ctimeNsec = st.st_ctim.tv_nsec
        }
        /// `lstat(path)` now, nil when it fails (as the walk treats an absent root).
        static func of(_ path: String) -> Stamp? {
            var st = stat()
            return lstat(path, &st) == 0 ? Stamp(st) : nil
        }
        /// Filesystems whose directories change their ctime with every entry added,
        /// removed or renamed, by any writer the kernel serves: local ones (ext4, xfs,
        /// btrfs, tmpfs, overlay, f2fs) and read-only images (squashfs, iso9660,
        /// erofs). Not NFS, FUSE or the like, where another host or a daemon decides
        /// what a directory holds and the kernel's attributes may lag.
        static let localFilesystems: Set<Int> = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0x794C_7630,
                                                 0xF2F5_2010, 0x7371_7368, 0x9660, 0xE0F5_E1E2]
    }

    /// ``scan(roots:skip:limit:maxDepth:mounts:)``, and what its outcome rests on in
    /// `trace` when `trace` is given non-nil.
    static func scan(roots: [String], skip: Set<String>, limit: Int, maxDepth: Int = 128,
                     mounts: FileSystemLocation.Table?, trace: inout Trace?) -> Outcome {
        var out = Outcome()
        // Paths by their bytes: `String` sets merge canonically equivalent names,
        // which are different files (PathText.Key).
        let skip = Set(skip.map(PathText.Key.init))
        let tracing = trace != nil
        var traced = Trace()
        defer { if tracing { trace = traced } }
        /// The directory open at `fd`, stamped into the trace; the trace marked not
        /// cacheable when it cannot be, or is on a filesystem ``Stamp/localFilesystems``
        /// does not name.
        func stampDirectory(_ fd: Int32, _ path: String, exact: Bool) {
            guard tracing, traced.cacheable else { return }
            var st = stat()
            guard exact, fstat(fd, &st) == 0, case let type = sbx_fs_type(fd), type >= 0,
                  Stamp.localFilesystems.contains(Int(type)) else {
                traced.cacheable = false
                return
            }
            traced.directories.append((path, Stamp(st)))
        }
        var found = Set<PathText.Key>()
        func record(_ path: String) { if found.insert(PathText.Key(path)).inserted { out.sockets.append(path) } }
        func stop(_ root: String, _ why: String) {
            if out.incompleteRoot == nil { out.incompleteRoot = root; out.incompleteReason = why }
        }
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

        /// Walks the directory open at `fd` (closed here), shown at `path`. `exact` is
        /// false beneath a name that is not UTF-8: a mask step names its target as a
        /// `String`, so a socket there could not be hidden, and the search stops.
        func walk(_ fd: Int32, path: String, exact: Bool, depth: Int, root: String) {
            stampDirectory(fd, path, exact: exact)
            guard let dir = fdopendir(fd) else {
                let e = errno
                Glibc.close(fd)
                stop(root, "\(path): \(String(cString: strerror(e)))")
                return
            }
            defer { closedir(dir) }
            while out.incompleteRoot == nil {
                errno = 0
                guard let ent = readdir(dir) else {
                    if errno != 0 { stop(root, "\(path): \(String(cString: strerror(errno)))") }
                    return
                }
                let name = UnsafeRawPointer(ent).advanced(by: nameOffset).assumingMemoryBound(to: CChar.self)
                if name[0] == 0x2E && (name[1] == 0 || (name[1] == 0x2E && name[2] == 0)) { continue }
                out.entries += 1
                if out.entries > limit {
                    stop(root, "more than \(limit) directory entries")
                    return
                }
                var type = ent.pointee.d_type
                if type == UInt8(DT_UNKNOWN) {
                    var st = stat()
                    guard fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { traced.cacheable = false; continue }
                    switch st.st_mode & S_IFMT {
                    case S_IFDIR: type = UInt8(DT_DIR)
                    case S_IFSOCK: type = UInt8(DT_SOCK)
                    default: continue
                    }
                }
                if type == UInt8(DT_SOCK) {
                    let valid = String(validatingCString: name)
                    let p = path + "/" + (valid ?? String(cString: name))
                    // A name that is not UTF-8 reads as U+FFFD: it matches no skip entry.
                    if exact, valid != nil, skip.contains(PathText.Key(p)) { continue }
                    guard exact, valid != nil else {
                        stop(root, "\(p): a unix socket whose path is not UTF-8 cannot be masked")
                        return
                    }
                    record(p)
                } else if type == UInt8(DT_DIR) {
                    let valid = String(validatingCString: name)
                    let p = path + "/" + (valid ?? String(cString: name))
                    if exact, valid != nil, skip.contains(PathText.Key(p)) { continue }
                    if depth + 1 > maxDepth {
                        stop(root, "\(p): deeper than \(maxDepth) directories")
                        return
                    }
                    let child = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
                    if child < 0 {
                        let e = errno
                        switch e {
                        case ENOENT, ENOTDIR, ELOOP:
                            traced.cacheable = false
                            continue   // removed or replaced since it was listed
                        case EACCES, EPERM:
                            // Unreachable for the invoker, so for the command too.
                            if faccessat(dirfd(dir), name, X_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW) != 0 { traced.cacheable = false; continue }
                            stop(root, "\(p): cannot be listed (\(String(cString: strerror(e)))), but can be passed through")
                        default:
                            stop(root, "\(p): \(String(cString: strerror(e)))")
                        }
                        return
                    }
                    walk(child, path: p, exact: exact && valid != nil, depth: depth + 1, root: root)
                }
            }
        }

        var searched: [String] = []
        for root in roots {
            if out.incompleteRoot != nil { break }
            var st = stat()
            guard lstat(root, &st) == 0 else { traced.roots.append((root, nil)); continue }   // absent: nothing to show
            // A directory root is stamped by its walk (as every directory listed).
            if st.st_mode & S_IFMT != S_IFDIR { traced.roots.append((root, Stamp(st))) }
            switch st.st_mode & S_IFMT {
            case S_IFSOCK:
                record(root)
            case S_IFDIR:
                let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
                guard fd >= 0 else {
                    stop(root, "\(root): \(String(cString: strerror(errno)))")
                    break
                }
                walk(fd, path: root, exact: true, depth: 0, root: root)
                searched.append(root)
            default:
                continue
            }
        }
        guard out.incompleteRoot == nil, !searched.isEmpty else { return out }

        // Files mounted over files beneath a root: readdir showed what they cover.
        for m in (mounts ?? FileSystemLocation.table()).mounts {
            let (point, valid) = (m.mountPoint, m.valid)
            // The innermost root holding it: a nested root is searched on its own.
            guard let root = searched.filter({ !PathText.same(point, $0) && PathText.isBeneath(point, $0) })
                .max(by: { $0.utf8.count < $1.utf8.count }) else { continue }
            if skipped(point, under: root, skip, exact: valid) { continue }
            guard valid else {
                // Its name cannot be given to lstat or to a mask step.
                stop(root, "\(point): a mount point whose path is not UTF-8")
                break
            }
            var st = stat()
            if lstat(point, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK { record(point) }
        }
        return out
    }

    /// Whether `path` (beneath `root`) is at or beneath a skipped path.
    /// `exact` false: the path read a name that is not UTF-8 as U+FFFD; a prefix
    /// holding one matches no skip entry.
    static func skipped(_ path: String, under root: String, _ skip: Set<PathText.Key>, exact: Bool = true) -> Bool {
        var p = Array(path.utf8)
        let rootCount = root.utf8.count
        // Not exact: a prefix reaching past the first U+FFFD (EF BF BD) is not the path's.
        let exactLength = exact ? p.count
            : (p.indices.first { p[$0...].starts(with: [0xEF, 0xBF, 0xBD]) } ?? p.count)
        while p.count > rootCount {
            if p.count <= exactLength && skip.contains(PathText.Key(bytes: p)) { return true }
            guard let slash = p.lastIndex(of: 0x2F) else { break }
            p.removeSubrange(slash...)
        }
        return false
    }
}
