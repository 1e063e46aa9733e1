import CSandbox
import Glibc

/// A host uid (and the gid of the same number) leased to one run, so the command
/// shares owner permissions and per-user kernel counters (inotify instances, queued
/// signals, process counts, leases) with no other process on the host.
///
/// Leases come from the last 64 Ki block of systemd's container range
/// (524288…1879048191, `UIDS-GIDS.md`): ids no account, file or system service
/// uses. Ids inside a range of /etc/subuid or /etc/subgid (delegated to a user for
/// their own user namespaces) are never picked. A lease is a file `<dir>/<uid>`
/// holding the run id, made by hard-linking a staged `<dir>/.<run-id>` (so it is
/// never seen empty); the run records the uid in its run directory *before* taking
/// the lease, so `gc` can always find and release it after a killed supervisor.
public struct UidLease: Sendable, Equatable {
    public static let range: ClosedRange<UInt32> = 1_878_982_656...1_879_048_191
    public let uid: UInt32
    public let directory: String

    /// Where leases live under a root run base (`/run/sandbox/.uids`).
    public static func directory(runBase: String) -> String { runBase + "/.uids" }

    /// Picks a free uid at random and takes it. `record` is called with the uid
    /// before the lease file exists (it writes the run directory's record).
    public static func acquire(directory: String, runId: String,
                               record: (UInt32) throws(KernelError) -> Void) throws(KernelError) -> UidLease {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { throw .last("mkdir", directory) }
        // Ids handed to users for their own user namespaces (newuidmap) are theirs.
        let delegated = subordinateRanges("/etc/subuid") + subordinateRanges("/etc/subgid")
        // The lease appears with its content or not at all: the run id is written to
        // `.<run-id>` first and hard-linked to `<uid>` (link fails on an existing name,
        // as O_EXCL does). A lease created empty and filled after — as before — was
        // left empty by a supervisor killed in between, and no gc could tell whose.
        let staged = "\(directory)/.\(runId)"
        let fd = open(staged, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .last("create uid lease", staged) }
        let written = FD.writeAll(fd, Array((runId + "\n").utf8))
        let writeErrno = errno
        Glibc.close(fd)
        defer { unlink(staged) }
        guard written else { throw KernelError(operation: "write uid lease", subject: staged, errno: writeErrno) }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<64 {
            let uid = UInt32.random(in: range, using: &rng)
            if delegated.contains(where: { $0.contains(uid) }) { continue }
            try record(uid)
            let path = "\(directory)/\(uid)"
            if link(staged, path) != 0 {
                if errno == EEXIST { continue }
                throw .last("create uid lease", path)
            }
            return UidLease(uid: uid, directory: directory)
        }
        throw KernelError(operation: "lease a uid", subject: "\(range.lowerBound)…\(range.upperBound)", errno: EAGAIN,
                          detail: "64 random picks were all taken; run `sandbox gc`")
    }

    /// For `gc`: leases whose run has no run directory at all. A run creates its
    /// directory before it takes a lease and releases the lease before it removes the
    /// directory, so such a lease belongs to no run, live or stale. Also the staged
    /// `.<run-id>` files of such runs, and leases left empty by versions that filled
    /// them after creating them (at least `emptyAgeSeconds` old: those versions
    /// filled theirs within microseconds). Returns the uids.
    public static func releaseOrphans(directory: String, runBase: String, emptyAgeSeconds: Int = 60) -> [UInt32] {
        var released: [UInt32] = []
        for entry in FD.entries(directory) where !entry.isDirectory {
            let path = "\(directory)/\(entry.name)"
            if entry.name.hasPrefix(".") {
                let runId = String(entry.name.dropFirst())
                if !runId.isEmpty, !runId.contains("/"), access("\(runBase)/\(runId)", F_OK) != 0 { unlink(path) }
                continue
            }
            var st = stat()
            if let uid = UInt32(entry.name), lstat(path, &st) == 0, st.st_size == 0,
               Int(time(nil)) - Int(st.st_mtim.tv_sec) >= emptyAgeSeconds {
                unlink(path)
                released.append(uid)
                continue
            }
            guard let uid = UInt32(entry.name), let text = RunDirectory.read("\(directory)/\(entry.name)"),
                  let runId = text.split(separator: "\n").first.map(String.init), !runId.isEmpty,
                  !runId.contains("/"), access("\(runBase)/\(runId)", F_OK) != 0, !inUse(uid) else { continue }
            // Read again right before: a lease is never reused for another run id.
            if RunDirectory.read("\(directory)/\(entry.name)")?.hasPrefix(runId) == true {
                unlink("\(directory)/\(entry.name)")
                released.append(uid)
            }
        }
        return released
    }

    /// The ranges of a subuid(5)/subgid(5) file: `name:first:count` per line.
    static func subordinateRanges(_ path: String) -> [ClosedRange<UInt32>] {
        guard let text = RunDirectory.read(path) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ":")
            guard f.count == 3, let first = UInt32(f[1]), let count = UInt32(f[2]), count > 0,
                  first <= UInt32.max - (count - 1) else { return nil }
            return first...(first + count - 1)
        }
    }

    /// Gives the uid back. Idempotent.
    public func release() { unlink("\(directory)/\(uid)") }

    /// Whether a process runs as `uid` (any of its real, effective, saved or
    /// filesystem uids; zombies aside), as this process's /proc shows them: a leased
    /// uid is the run's alone while its lease is held, so such a process is one of that run's — one a
    /// kill did not end (asleep in the kernel), or one outside the run's cgroup (a run
    /// without limits has none). Its lease must stay (red team, session 42).
    public static func inUse(_ uid: UInt32) -> Bool {
        let want = String(uid)
        for entry in FD.entries("/proc") where entry.isDirectory && entry.name.first?.isNumber == true {
            if let status = RunDirectory.read("/proc/\(entry.name)/status"), Self.status(status, runsAs: want) { return true }
        }
        return false
    }

    /// Whether a /proc/<pid>/status text is of a process that runs as `uid` (decimal):
    /// one of its four uids is it, and it is no zombie — a zombie does nothing more (a
    /// run's abandoned init waits so for the host's PID 1 to reap it, as the lease's
    /// uid), but a thread-group leader that exited shows Z while its other threads run
    /// on (`Threads:` above 1): that one counts (red team, session 42).
    static func status(_ text: String, runsAs uid: String) -> Bool {
        func field(_ name: String) -> [Substring]? {
            text.split(separator: "\n").first { $0.hasPrefix(name) }
                .map { $0.dropFirst(name.count).split(whereSeparator: { $0 == "\t" || $0 == " " }) }
        }
        guard field("Uid:")?.contains(where: { $0 == uid }) == true else { return false }
        let zombie = field("State:")?.first?.hasPrefix("Z") == true
        let threads = field("Threads:")?.first.flatMap { Int($0) } ?? 1
        return !zombie || threads > 1
    }

    /// For `gc`: releases `uid` if its lease still names `runId` (a lease taken by
    /// a later run for the same uid is left alone).
    public static func releaseLeftover(directory: String, uid: UInt32, runId: String) {
        let path = "\(directory)/\(uid)"
        guard let text = RunDirectory.read(path), text.split(separator: "\n").first.map(String.init) == runId else { return }
        unlink(path)
    }
}
