import Glibc
import SandboxVocabulary
import Synchronization

/// What the plans of one long-lived process (`sandbox serve`) may share of the host
/// while it provably has not changed: the searches for unix sockets under `ro` binds
/// (``UnixSocketScan``). The CLI makes one plan and asks the host afresh; a server
/// made two per request (the sandbox built ahead, then the request's own), and the
/// search was a third of each (0.35 of 1.04 ms for `agent`: `/etc/alternatives` and
/// `/etc/ssl/certs` listed entry by entry).
///
/// - The mount table is watched (`/proc/self/mountinfo`, POLLPRI: any mount made,
///   changed or removed in this namespace). A change seen drops every search. The
///   table itself is not kept: a rename above a mount point changes its text with no
///   event (ServeMountRenameTests), so a search made here reads a table of its own,
///   after the watch was looked at.
/// - A search is answered from memory only if no mount changed since it was made and
///   every root and every directory it listed is as it was: the same device, inode,
///   mode and ctime (`lstat` now against the walk's own `fstat`). A socket can appear
///   beneath a directory only through an entry added to a directory of the tree
///   (bind, rename, link, mkdir: the directory's ctime changes; a mount point moved
///   in or out by a rename too), a mount (the watch), or a directory made reachable
///   (a `chmod` changes that directory's own ctime: an entry the walk skipped as
///   unreachable keeps the search out of memory). A rename above a root changes what
///   the root's path names (its `lstat`).
/// - ctime comes from a coarse clock: two changes within one tick can leave the same
///   value. A search is kept only if every ctime it rests on is older than 50 ms
///   before it began, so a change after (or during) the walk gives a ctime it cannot
///   have had; a ctime of whole seconds (a filesystem that keeps seconds only) counts
///   as the end of its second. ctime cannot be set from user space (`utimensat` sets
///   it to now).
/// - Only directories on local filesystems are trusted to record their changes
///   (``UnixSocketScan/Stamp/localFilesystems``); a search through NFS or FUSE is made
///   afresh every time.
public final class HostViewMemo: Sendable {
    /// By bytes: `String`'s equality is Unicode canonical equivalence, under which two
    /// different directories (é as one scalar, or e and a combining accent) were one
    /// key, and one's search answered for the other (red team, session 37).
    private struct ScanKey: Hashable {
        var roots: [PathText.Key], skip: Set<PathText.Key>, limit: Int, maxDepth: Int
    }
    private struct ScanEntry {
        var outcome: UnixSocketScan.Outcome
        var generation: UInt64
        var roots: [(path: String, stamp: UnixSocketScan.Stamp?)]
        var directories: [(path: String, stamp: UnixSocketScan.Stamp)]
    }
    private struct State {
        var generation: UInt64 = 0
        var scans: [ScanKey: ScanEntry] = [:]
    }
    private let state = Mutex(State())
    /// nil: the table cannot be watched, so nothing is kept.
    private let events: MountEvents?
    /// Bounded: clients naming many trees cannot grow the server.
    static let maxScans = 32
    /// How much older than the search's start every ctime it keeps must be.
    static let marginNs = 50_000_000

    /// What is looked at before a search is answered from memory. Tests only take
    /// one away (the control that shows what it catches).
    struct Checks: OptionSet {
        let rawValue: Int
        static let directories = Checks(rawValue: 1), mounts = Checks(rawValue: 2)
        /// A ctime of whole seconds is taken to cover its second (keeping, not taking).
        static let wholeSeconds = Checks(rawValue: 4)
        static let all: Checks = [.directories, .mounts, .wholeSeconds]
    }
    nonisolated(unsafe) var checks = Checks.all
    /// Tests only: searches made (not answered from memory).
    let searches = Mutex(0)

    public init() { events = try? MountEvents() }

    /// The current generation: a new one (every search dropped) once a mount changed.
    /// Looked at before a search reads its table: a change after this is seen next.
    private func generation() -> UInt64 {
        state.withLock { s in
            if events == nil || (checks.contains(.mounts) && events!.changed) {
                s.generation &+= 1
                s.scans.removeAll()
            }
            return s.generation
        }
    }

    /// ``UnixSocketScan/scan(roots:skip:limit:maxDepth:mounts:)``, from memory while
    /// nothing it rests on changed (above).
    public func unixSockets(roots: [String], skip: Set<String>, limit: Int, maxDepth: Int = 128) -> UnixSocketScan.Outcome {
        let generation = generation()
        let key = ScanKey(roots: roots.map(PathText.Key.init), skip: Set(skip.map(PathText.Key.init)), limit: limit, maxDepth: maxDepth)
        if events != nil, let e = state.withLock({ $0.scans[key] }), e.generation == generation,
           !checks.contains(.directories) || Self.holds(e) {
            return e.outcome
        }
        var began = timespec()
        clock_gettime(CLOCK_REALTIME, &began)
        var trace: UnixSocketScan.Trace? = UnixSocketScan.Trace()
        let outcome = UnixSocketScan.scan(roots: roots, skip: skip, limit: limit, maxDepth: maxDepth,
                                          mounts: FileSystemLocation.table(), trace: &trace)
        searches.withLock { $0 += 1 }
        guard events != nil, let t = trace, t.cacheable, outcome.incompleteRoot == nil else { return outcome }
        let stamps = t.roots.compactMap(\.stamp) + t.directories.map(\.stamp)
        let before = began.tv_sec * 1_000_000_000 + began.tv_nsec - Self.marginNs
        guard stamps.allSatisfy({ lastPossibleChange($0) < before }) else { return outcome }
        state.withLock { s in
            // A mount changed meanwhile (seen by another search): not kept.
            guard s.generation == generation else { return }
            if s.scans.count >= Self.maxScans { s.scans.removeAll() }
            s.scans[key] = ScanEntry(outcome: outcome, generation: generation, roots: t.roots, directories: t.directories)
        }
        return outcome
    }

    /// The latest time (ns) a change could have left `stamp`'s ctime: the ctime itself,
    /// or, for one of whole seconds, the end of that second. Some filesystems keep
    /// ctime in seconds (ext2/3, ext4 with 128-byte inodes): every change within a
    /// second leaves the same value, so a search begun later in the second the
    /// directory last changed in could miss a socket bound in the rest of it (red
    /// team, session 37: connected through serve on an ext4 made with `-I 128`).
    private func lastPossibleChange(_ stamp: UnixSocketScan.Stamp) -> Int {
        let ns = stamp.ctimeSec * 1_000_000_000 + stamp.ctimeNsec
        return stamp.ctimeNsec == 0 && checks.contains(.wholeSeconds) ? ns + 999_999_999 : ns
    }

    /// Every root and directory the search rests on, as it was.
    private static func holds(_ e: ScanEntry) -> Bool {
        e.roots.allSatisfy { UnixSocketScan.Stamp.of($0.path) == $0.stamp }
            && e.directories.allSatisfy { UnixSocketScan.Stamp.of($0.path) == $0.stamp }
    }
}
