import CDigest
import CSandbox
import Glibc

/// After a run: which entries of a given name (`.git`) were created beneath a
/// writable directory while it ran, and which directories git would take for a git
/// directory. A `.git` the command plants in a subdirectory (with `core.fsmonitor`
/// or hooks of its choosing) is run by the host's next `git` there; it cannot be
/// prevented by a mount, so the result names it.
///
/// The walk starts from the supervisor's own fd of the bind source, never follows a
/// symlink, stays on the source's filesystem (another one beneath makes it
/// incomplete), does not descend into the entries it looks for, examines and counts
/// only directories and entries of that name, and stops after `maxEntries` of them
/// (then `complete` is false). Reported: an entry whose birth or change time is at
/// or after `since` (a rename into place changes the latter), or, for a directory,
/// whose `config`, `hooks`, any hook, or anything under its `modules/` and
/// `worktrees/` changed since — a repository that was there before but was given a
/// config or hooks by the run; and a directory shaped as a git directory (a
/// `commondir`, or `objects` and `refs`) whose HEAD, config, commondir, objects or
/// refs are that new, or whose config or hooks changed (red team, session 44).
/// A timestamp of whole seconds (ext4 with 128-byte inodes, and others that keep no
/// more) counts as the end of its second: `since` has nanoseconds, and every change
/// in the run's first second was older than it (red team, session 46: nothing was
/// reported there).
///
/// Not reported: a `.git` moved in by renaming a directory above it (its own times
/// stay old). The moved directory's change time and its new parent's are new, but
/// so are those of any directory in which the command added a file beneath one
/// where it added another: a rule on them named untouched submodules in four of six
/// ordinary runs (red team, session 46), and one more file in the moved directory
/// makes a move look like an edit.
///
/// Paths are written as text that names one path: bytes of a name that are not
/// UTF-8 as `\xNN`, and a backslash as `\\` (red team, session 46: a name with
/// byte 0xFF was reported as U+FFFD, the name of a decoy the command made); a path
/// cut at `maxPathBytes` ends in `…` and 16 hex digits of the SHA-256 of the whole.
public enum CreatedEntryScan {
    public struct Outcome: Sendable, Equatable {
        /// Absolute paths, as the plan names the bind (`rootPath` + relative path).
        /// At most `maxReported`, each at most `maxPathBytes` long (then cut, ending in …).
        public var created: [String]
        /// Every one found, reported or not.
        public var total: Int
        public var complete: Bool
        public var entriesSeen: Int
    }
    public static let maxReported = 256
    public static let maxPathBytes = 1024

    /// A name's bytes as text that names it alone: valid UTF-8 as it is, a backslash
    /// doubled, every other byte `\xNN`.
    public static func shown(_ bytes: some Collection<UInt8>) -> String {
        let b = Array(bytes)
        if !b.contains(0x5C), let text = String(validating: b, as: UTF8.self) { return text }
        var out = ""
        var i = 0
        while i < b.count {
            if b[i] == 0x5C { out += "\\\\"; i += 1; continue }
            // The shortest valid scalar starting here, if any.
            var taken = 0
            for n in 1...4 where i + n <= b.count {
                if let scalar = String(validating: b[i..<(i + n)], as: UTF8.self) { out += scalar; taken = n; break }
            }
            if taken == 0 {
                out += "\\x" + (b[i] < 0x10 ? "0" : "") + String(b[i], radix: 16)
                taken = 1
            }
            i += taken
        }
        return out
    }

    /// A timestamp at or after `since`; one of whole seconds as the end of its second.
    static func isNew(sec: Int64, nsec: UInt32, since: (sec: Int64, nsec: UInt32)) -> Bool {
        nsec == 0 ? sec >= since.sec : (sec, nsec) >= (since.sec, since.nsec)
    }

    public static func scan(rootFD: Int32, rootPath: String, name: String, since: (sec: Int64, nsec: UInt32),
                            maxEntries: Int = 50_000, maxDepth: Int = 64) -> Outcome {
        var out = Outcome(created: [], total: 0, complete: true, entriesSeen: 0)
        var dev: UInt64 = 0
        var sec: Int64 = 0, nsec: UInt32 = 0, birth: Int32 = 0, mode: UInt32 = 0
        guard sbx_mounts_birth(rootFD, "", &sec, &nsec, &birth, &dev, &mode) == 0 else {
            out.complete = false
            return out
        }
        walk(openat(rootFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), path: shown(rootPath.utf8), depth: 0)
        return out

        func isNew(_ sec: Int64, _ nsec: UInt32) -> Bool { CreatedEntryScan.isNew(sec: sec, nsec: nsec, since: since) }

        /// A repository the run did not create can still have been given a config or
        /// hooks of its choosing: `config`, `hooks` and each hook changed since `since`.
        func changedInside(_ parent: Int32, _ entry: String, isDirectory: Bool) -> Bool {
            guard isDirectory else { return false }
            let fd = openat(parent, entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { return false }
            defer { Glibc.close(fd) }
            func changed(_ dirFD: Int32, _ n: String) -> Bool {
                var s: Int64 = 0, ns: UInt32 = 0, b: Int32 = 0, d: UInt64 = 0, m: UInt32 = 0
                return sbx_mounts_birth(dirFD, n, &s, &ns, &b, &d, &m) == 0 && isNew(s, ns)
            }
            if changed(fd, "config") || changed(fd, "hooks") || changed(fd, "config.worktree") || changed(fd, "commondir") { return true }
            // A submodule's or worktree's git directory (`modules/<name>[/modules/…]`,
            // `worktrees/<x>`) changed in any way: a config, hooks, a `commondir` or
            // `gitdir` redirected, entries added (red team, session 44: a commondir
            // pointed at a repository of the command's, and 5 000 directories added
            // to get past a bound). Entries beneath `objects`, `refs` and `logs` are
            // git's own work and not looked at; past the bound the scan is incomplete.
            func changedModule(_ dirFD: Int32, depth: Int) -> Bool {
                guard depth < 8, let dir = fdopendir(dup(dirFD)) else { out.complete = false; return false }
                defer { closedir(dir) }
                // Git's own busy names are passed over only inside a git directory: a
                // submodule at `tools/refs` is a path, not refs (red team, session 44).
                // Git's own test (a HEAD, and a commondir or objects and refs): a module
                // named `config` beside one named `logs` made their parent look like one
                // (red team, session 44).
                var probe = stat()
                let inGitDirectory = fstatat(dirFD, "HEAD", &probe, AT_SYMLINK_NOFOLLOW) == 0
                    && (fstatat(dirFD, "commondir", &probe, AT_SYMLINK_NOFOLLOW) == 0
                        || (fstatat(dirFD, "objects", &probe, AT_SYMLINK_NOFOLLOW) == 0 && fstatat(dirFD, "refs", &probe, AT_SYMLINK_NOFOLLOW) == 0))
                var seen = 0
                while let ent = readdir(dir) {
                    seen += 1
                    if seen > 4096 { out.complete = false; return false }
                    let n = withUnsafeBytes(of: ent.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
                    if n == Array(".".utf8) || n == Array("..".utf8) { continue }
                    let name = String(decoding: n, as: UTF8.self)
                    if inGitDirectory && (name == "objects" || name == "refs" || name == "logs" || name == "index"
                        || name == "FETCH_HEAD" || name == "ORIG_HEAD" || name == "packed-refs") { continue }
                    let sub = (n + [0]).withUnsafeBufferPointer { b in
                        b.withMemoryRebound(to: CChar.self) { p -> Int32 in
                            var s: Int64 = 0, ns: UInt32 = 0, bb: Int32 = 0, d: UInt64 = 0, m: UInt32 = 0
                            if sbx_mounts_birth(dirfd(dir), p.baseAddress!, &s, &ns, &bb, &d, &m) == 0 && isNew(s, ns) { return -2 }
                            return openat(dirfd(dir), p.baseAddress!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                        }
                    }
                    if sub == -2 { return true }
                    guard sub >= 0 else { continue }
                    defer { Glibc.close(sub) }
                    if changedModule(sub, depth: depth + 1) { return true }
                }
                return false
            }
            if changed(fd, "modules") || changed(fd, "worktrees") { return true }
            for name in ["modules", "worktrees"] {
                let sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard sub >= 0 else { continue }
                defer { Glibc.close(sub) }
                if changedModule(sub, depth: 0) { return true }
            }
            let hooks = openat(fd, "hooks", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard hooks >= 0, let dir = fdopendir(hooks) else { if hooks >= 0 { Glibc.close(hooks) }; return false }
            defer { closedir(dir) }
            var seen = 0
            while let ent = readdir(dir) {
                seen += 1
                if seen > 4096 { out.complete = false; return false }
                let n = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                if n != "." && n != "..", changed(dirfd(dir), n) { return true }
            }
            return false
        }

        /// Git's own `is_git_directory` on an open directory: a HEAD of any type
        /// (a symlink too), and a `commondir` or both `objects` and `refs`. Such a
        /// directory is a repository to git's discovery, before any `.git` above it.
        func isGitDirectory(_ fd: Int32) -> Bool {
            // Without a HEAD too: the directory a `commondir` names needs only
            // `objects` and `refs` (red team, session 44).
            var st = stat()
            if fstatat(fd, "commondir", &st, AT_SYMLINK_NOFOLLOW) == 0 { return true }
            return fstatat(fd, "objects", &st, AT_SYMLINK_NOFOLLOW) == 0 && fstatat(fd, "refs", &st, AT_SYMLINK_NOFOLLOW) == 0
        }

        func report(_ full: String) {
            out.total += 1
            if out.created.count < maxReported {
                guard full.utf8.count > maxPathBytes else { out.created.append(full); return }
                // Cut at a character's end; the digest keeps two long paths apart.
                var cut = ""
                for c in full {
                    if cut.utf8.count + c.utf8.count > maxPathBytes - 20 { break }
                    cut.append(c)
                }
                var hex = [CChar](repeating: 0, count: Int(SBX_SHA256_HEX_LENGTH) + 1)
                Array(full.utf8).withUnsafeBufferPointer { sbx_sha256_hex($0.baseAddress, $0.count, &hex) }
                out.created.append(cut + "…" + String(String(cString: hex).prefix(16)))
            }
        }

        func walk(_ fd: Int32, path: String, depth: Int) {
            guard fd >= 0 else { out.complete = false; return }
            // A directory shaped as a git directory whose HEAD, config, commondir,
            // objects or refs the run made or changed, or whose config or hooks it
            // changed: git's discovery takes it for a repository (red team, session
            // 44: made in a subdirectory, or the working directory itself reshaped,
            // with a symlinked HEAD, a commondir, or over two runs).
            if isGitDirectory(fd) {
                var s: Int64 = 0, ns: UInt32 = 0, b: Int32 = 0, d: UInt64 = 0, m: UInt32 = 0
                let names: [String] = ["HEAD", "config", "commondir", "objects", "refs"]
                let touched = names.contains { (n: String) -> Bool in
                    sbx_mounts_birth(fd, n, &s, &ns, &b, &d, &m) == 0 && isNew(s, ns)
                }
                if touched || changedInside(fd, ".", isDirectory: true) { report(path) }
            }
            guard let dir = fdopendir(fd) else { Glibc.close(fd); out.complete = false; return }
            defer { closedir(dir) }
            while let ent = readdir(dir) {
                // The name's bytes as the kernel gave them: a name that is not UTF-8,
                // decoded, is another name, and its directory was skipped unseen
                // (red team, session 44).
                var raw = withUnsafeBytes(of: ent.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
                if raw == [0x2E] || raw == [0x2E, 0x2E] { continue }
                let entryName = shown(raw)
                raw.append(0)
                // Only directories (and entries of the name looked for) are examined
                // and counted: a project's node_modules passed the bound counting its
                // files, and every scan there said it was incomplete (red team,
                // session 44). A git directory's own names are checked above, by
                // the directory that holds them.
                let type = ent.pointee.d_type
                if type != UInt8(DT_DIR) && type != UInt8(DT_UNKNOWN) && entryName != name { continue }
                out.entriesSeen += 1
                if out.entriesSeen > maxEntries { out.complete = false; return }
                var s: Int64 = 0, ns: UInt32 = 0, isBirth: Int32 = 0, d: UInt64 = 0, m: UInt32 = 0
                let statted = raw.withUnsafeBufferPointer { name in
                    name.withMemoryRebound(to: CChar.self) { sbx_mounts_birth(dirfd(dir), $0.baseAddress!, &s, &ns, &isBirth, &d, &m) }
                }
                guard statted == 0 else { out.complete = false; continue }
                if entryName == name {
                    if isNew(s, ns) || changedInside(dirfd(dir), entryName, isDirectory: m & UInt32(S_IFMT) == UInt32(S_IFDIR)) {
                        report(path + "/" + entryName)
                    }
                    continue
                }
                guard m & UInt32(S_IFMT) == UInt32(S_IFDIR) else { continue }
                // Another filesystem mounted beneath is not walked: the scan says it
                // is incomplete rather than that nothing was made there.
                guard d == dev else { out.complete = false; continue }
                if depth + 1 > maxDepth { out.complete = false; continue }
                let sub = raw.withUnsafeBufferPointer { name in
                    name.withMemoryRebound(to: CChar.self) {
                        openat(dirfd(dir), $0.baseAddress!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    }
                }
                walk(sub, path: path + "/" + entryName, depth: depth + 1)
                if !out.complete && out.entriesSeen > maxEntries { return }
            }
        }
    }
}
