import CSandbox
import Glibc

/// After a run: which entries of a given name (`.git`) were created beneath a
/// writable directory while it ran. A `.git` the command plants in a subdirectory
/// (with `core.fsmonitor` or hooks of its choosing) is run by the host's next `git`
/// there; it cannot be prevented by a mount, so the result names it.
///
/// The walk starts from the supervisor's own fd of the bind source, never follows a
/// symlink, stays on the source's filesystem, does not descend into the entries it
/// looks for, and stops after `maxEntries` (then `complete` is false). "Created"
/// means a birth time (statx `btime`) at or after `since`; on a filesystem without
/// birth times the change time is used.
public enum CreatedEntryScan {
    public struct Outcome: Sendable, Equatable {
        /// Absolute paths, as the plan names the bind (`rootPath` + relative path).
        public var created: [String]
        public var complete: Bool
        public var entriesSeen: Int
    }

    public static func scan(rootFD: Int32, rootPath: String, name: String, since: (sec: Int64, nsec: UInt32),
                            maxEntries: Int = 50_000, maxDepth: Int = 64) -> Outcome {
        var out = Outcome(created: [], complete: true, entriesSeen: 0)
        var dev: UInt64 = 0
        var sec: Int64 = 0, nsec: UInt32 = 0, birth: Int32 = 0, mode: UInt32 = 0
        guard sbx_mounts_birth(rootFD, "", &sec, &nsec, &birth, &dev, &mode) == 0 else {
            out.complete = false
            return out
        }
        walk(openat(rootFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), path: rootPath, depth: 0)
        return out

        func walk(_ fd: Int32, path: String, depth: Int) {
            guard fd >= 0 else { out.complete = false; return }
            guard let dir = fdopendir(fd) else { Glibc.close(fd); out.complete = false; return }
            defer { closedir(dir) }
            while let ent = readdir(dir) {
                let entryName = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if entryName == "." || entryName == ".." { continue }
                out.entriesSeen += 1
                if out.entriesSeen > maxEntries { out.complete = false; return }
                var s: Int64 = 0, ns: UInt32 = 0, isBirth: Int32 = 0, d: UInt64 = 0, m: UInt32 = 0
                guard sbx_mounts_birth(dirfd(dir), entryName, &s, &ns, &isBirth, &d, &m) == 0 else { continue }
                if entryName == name {
                    if (s, ns) >= (since.sec, since.nsec) { out.created.append(path + "/" + entryName) }
                    continue
                }
                guard m & UInt32(S_IFMT) == UInt32(S_IFDIR), d == dev else { continue }
                if depth + 1 > maxDepth { out.complete = false; continue }
                walk(openat(dirfd(dir), entryName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                     path: path + "/" + entryName, depth: depth + 1)
                if !out.complete && out.entriesSeen > maxEntries { return }
            }
        }
    }
}
