import CSandbox
import Glibc
import SandboxVocabulary

/// `/run/sandbox/<run-id>/` (or `$XDG_RUNTIME_DIR/sandbox/<run-id>/` rootless): the
/// plan, the state and a lock file that the supervisor holds with `flock` for its
/// whole life. A run is alive exactly when its lock is held; `ps` and `gc` never look
/// at PIDs.
public final class RunDirectory {
    public let base: String
    public let id: String
    public let path: String
    /// The `flock`ed lock file: the run is alive exactly while this is open.
    private let lock: OwnedFD

    /// Where the sandbox init mounts its new root, in its own mount namespace: one
    /// empty directory of the base that every run shares (nothing is ever mounted on
    /// it in the host's namespace; each init mounts on its private copy and then uses
    /// the mount's descriptor). Until session 41 each run had a `root` of its own:
    /// an inode made and removed per run, 0.1 ms where `/run` is ext4, not tmpfs.
    public var staging: String { Self.staging(base: base) }
    static func staging(base: String) -> String { base + "/" + stagingName }
    static let stagingName = ".root"

    /// Where run directories live for this invoker.
    public static func base(rootless: Bool, environment: [String: String]) throws(KernelError) -> String {
        if !rootless { return "/run/sandbox" }
        guard let xdg = environment["XDG_RUNTIME_DIR"], xdg.hasPrefix("/") else {
            throw KernelError(operation: "locate run directory", subject: "$XDG_RUNTIME_DIR", errno: ENOENT,
                              detail: "rootless runs keep their state under $XDG_RUNTIME_DIR/sandbox; set it to a directory you own")
        }
        return xdg + "/sandbox"
    }

    /// Creates the directory under a temporary name, takes the lock, then renames it
    /// into place: `gc` never sees a run directory whose lock is not yet held. All of
    /// it under a shared lock on `<base>/.create.lock`, so `gc`, holding that lock
    /// exclusively, knows every `.<id>.new` with a free lock was abandoned.
    public static func create(base: String, id: String) throws(KernelError) -> RunDirectory {
        // The id becomes a path component: the rule every consumer of it shares.
        guard RunID.isValid(id) else {
            throw KernelError(operation: "create run directory", subject: id, errno: EINVAL,
                              detail: "a run id is \(RunID.rule)")
        }
        // The modes are set with chmod too: mkdir's are masked by the process's umask
        // (077 would lock the run's own uid out of its root).
        if mkdir(base, 0o711) == 0 { chmod(base, 0o711) } else if errno != EEXIST { throw .last("mkdir", base) }
        let creating = open(base + "/" + createLockName, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard creating >= 0 else { throw .last("open", base + "/" + createLockName) }
        defer { close(creating) }
        while flock(creating, LOCK_SH) != 0 {
            if errno != EINTR { throw .last("flock", base + "/" + createLockName) }
        }
        let tmp = "\(base)/.\(id).new"
        let final = "\(base)/\(id)"
        // The staging directory, made by the first run: a directory of ours, not a
        // link. (The lock stays a file: a `ps` or `gc` of an older build looks for
        // it, and would take a live run without one for a dead one.)
        let staging = staging(base: base)
        if mkdir(staging, 0o700) != 0 {
            guard errno == EEXIST else { throw .last("mkdir", staging) }
            var st = stat()
            guard lstat(staging, &st) == 0 else { throw .last("lstat", staging) }
            guard st.st_mode & S_IFMT == S_IFDIR, st.st_uid == geteuid() else {
                throw KernelError(operation: "create run directory", subject: staging, errno: ENOTDIR,
                                  detail: "not a directory of this user; remove it")
            }
        }
        // 0711 (the base too): the sandbox init of a run with a uid of its own (no
        // capability over host files) passes through the base to the staging
        // directory; nothing in here can be listed, and the files are 0600.
        guard mkdir(tmp, 0o711) == 0 else { throw .last("mkdir", tmp) }
        guard chmod(tmp, 0o711) == 0 else { let e = KernelError.last("chmod", tmp); rmdir(tmp); throw e }
        let fd = open(tmp + "/lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { let e = KernelError.last("open", tmp + "/lock"); rmdir(tmp); throw e }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let e = KernelError.last("flock", tmp + "/lock"); close(fd); unlink(tmp + "/lock"); rmdir(tmp); throw e
        }
        guard rename(tmp, final) == 0 else {
            let e = KernelError.last("rename", final); close(fd); unlink(tmp + "/lock"); rmdir(tmp); throw e
        }
        return RunDirectory(base: base, id: id, path: final, lock: OwnedFD(fd))
    }

    private init(base: String, id: String, path: String, lock: OwnedFD) {
        self.base = base; self.id = id; self.path = path; self.lock = lock
    }

    public func write(_ name: String, _ text: String) throws(KernelError) {
        try FD.writeAtomically("\(path)/\(name)", Array(text.utf8), mode: 0o600)
    }

    /// Releases the lock but leaves the directory for `sandbox gc` (something of the
    /// run could not be removed at teardown). Idempotent.
    public func release() {
        lock.close()
    }

    /// Removes everything and releases the lock. Idempotent.
    public func remove() {
        guard lock.isOpen else { return }
        RunDirectory.removeContents(path)
        lock.close()
    }

    static func removeContents(_ path: String) {
        for (name, _) in FD.entries(path) where name != "lock" {
            let full = "\(path)/\(name)"
            if unlink(full) != 0 && errno == EISDIR { rmdir(full) }
        }
        unlink(path + "/lock")
        rmdir(path)
    }

    public struct Entry: Sendable {
        public var id: String
        public var path: String
        public var live: Bool
    }

    /// Every run directory under `base`, live or not (probing a lock does not
    /// disturb a live run: LOCK_NB fails at once while the supervisor holds it).
    public static func list(base: String) -> [Entry] {
        FD.entries(base).map(\.name).filter { !$0.hasPrefix(".") }.sorted()
            .map { Entry(id: $0, path: "\(base)/\($0)", live: isLocked("\(base)/\($0)")) }
    }

    static func isLocked(_ path: String) -> Bool {
        let fd = open(path + "/lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 { return false }
        defer { close(fd) }
        return flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    /// For `gc`: take the lock of a run whose supervisor is gone, run `cleanup` while
    /// holding it, then remove the directory unless `cleanup` said the run must stay
    /// (a process of it still runs: a later `gc` tries again). Returns false if the
    /// run is alive or stays.
    public static func reclaim(base: String, id: String, cleanup: () -> Bool) -> Bool {
        let path = "\(base)/\(id)"
        let fd = open(path + "/lock", O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        if fd >= 0 {
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { close(fd); return false }
        }
        defer { if fd >= 0 { close(fd) } }
        guard cleanup() else { return false }
        removeContents(path)
        return true
    }

    static let createLockName = ".create.lock"

    /// Directories a supervisor killed inside `create` left under their temporary
    /// name (`.<id>.new`) with a free lock: all of them when no `create` is under way
    /// (the exclusive create lock, tried for up to `waitSeconds`), else only those
    /// older than `minAgeSeconds` (a `create` may be between its mkdir and its flock).
    public static func removeAbandonedCreations(base: String, minAgeSeconds: Int = 60, waitSeconds: Int = 2) -> [String] {
        let names = FD.entries(base).map(\.name).filter { $0.hasPrefix(".") && $0.hasSuffix(".new") }
        guard !names.isEmpty else { return [] }
        var minAge = minAgeSeconds
        let creating = open(base + "/" + createLockName, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        defer { if creating >= 0 { close(creating) } }
        if creating >= 0 {
            for _ in 0..<(waitSeconds * 100) {
                if flock(creating, LOCK_EX | LOCK_NB) == 0 { minAge = 0; break }
                usleep(10_000)
            }
        }
        var removed: [String] = []
        for name in names {
            let path = "\(base)/\(name)"
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR,
                  Int(time(nil)) - Int(st.st_mtim.tv_sec) >= minAge, !isLocked(path) else { continue }
            removeContents(path)   // an older build's `root` too: it removes directories
            removed.append(name)
        }
        return removed
    }

    public static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return String(decoding: FD.readAll(fd), as: UTF8.self)
    }
}
