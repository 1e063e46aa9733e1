import Foundation
import Glibc
import Testing
@testable import SandboxKernel

/// Issue 14: a uid lease file is never seen without its run id. It used to be
/// created empty (O_EXCL) and filled after, so a supervisor killed in between left
/// an empty lease that `gc` could attribute to no run: the uid stayed taken for
/// ever (17 such files on the reliability host). Now the run id is staged in
/// `.<run-id>` and hard-linked into place.
@Suite struct UidLeaseFileTests {
    @Test func aLeaseIsNeverSeenEmpty() throws {
        let dir = NSTemporaryDirectory() + "sbx-uidlease-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        final class Watch: @unchecked Sendable { // guarded by lock
            let lock = NSLock()
            var stop = false, seen = 0, empty = 0
        }
        let watch = Watch()
        let watcher = Thread {
            while true {
                watch.lock.lock(); let stop = watch.stop; watch.lock.unlock()
                if stop { return }
                for entry in FD.entries(dir) where UInt32(entry.name) != nil {
                    let fd = open("\(dir)/\(entry.name)", O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { continue }
                    var st = stat()
                    fstat(fd, &st)
                    close(fd)
                    watch.lock.lock(); watch.seen += 1; if st.st_size == 0 { watch.empty += 1 }; watch.lock.unlock()
                }
            }
        }
        watcher.start()
        // Acquire and release until the watcher has looked at enough leases: on a
        // loaded host (the suite runs in parallel on two cores) a fixed count of
        // 3 000 once left the watcher unscheduled for all but 99 of them. Bounded
        // so that a watcher that never sees one fails the control below.
        var i = 0
        while i < 200_000 {
            if i % 500 == 0 {
                watch.lock.lock(); let seen = watch.seen; watch.lock.unlock()
                if seen >= 1_000 { break }
            }
            let lease = try UidLease.acquire(directory: dir, runId: "run\(i)", record: { _ in })
            lease.release()
            i += 1
        }
        watch.lock.lock(); watch.stop = true; let seen = watch.seen, empty = watch.empty; watch.lock.unlock()
        // Control: the watcher did see leases (else it could not see an empty one).
        #expect(seen > 100, "the watcher saw only \(seen) leases")
        #expect(empty == 0, "\(empty) of \(seen) leases seen empty")
        // Nothing staged is left behind.
        #expect(FD.entries(dir).isEmpty, "left: \(FD.entries(dir).map(\.name))")
    }
}

/// `gc` keeps a stale run's lease while a process still runs as its uid
/// (`UidLease.inUse`), read from /proc/<pid>/status: any of the four uids; a zombie
/// does not count, but a thread-group leader that exited (Z) with threads still
/// running does (red team, session 42).
struct UidInUseStatusTests {
    static func status(state: String, uids: String, threads: Int) -> String {
        "Name:\tsleep\nUmask:\t0022\nState:\t\(state)\nTgid:\t12\nPid:\t12\nUid:\t\(uids)\nGid:\t0\t0\t0\t0\nThreads:\t\(threads)\n"
    }

    @Test func aRunningProcessOfTheUidCounts() {
        #expect(UidLease.status(Self.status(state: "S (sleeping)", uids: "1879000001\t1879000001\t1879000001\t1879000001", threads: 1), runsAs: "1879000001"))
        #expect(UidLease.status(Self.status(state: "D (disk sleep)", uids: "0\t0\t1879000001\t0", threads: 1), runsAs: "1879000001"),
                "a saved uid counts, and a process asleep in the kernel")
    }

    @Test func anotherUidOrAZombieDoesNot() {
        #expect(!UidLease.status(Self.status(state: "R (running)", uids: "1879000002\t1879000002\t1879000002\t1879000002", threads: 1), runsAs: "1879000001"))
        #expect(!UidLease.status(Self.status(state: "Z (zombie)", uids: "1879000001\t1879000001\t1879000001\t1879000001", threads: 1), runsAs: "1879000001"))
        #expect(!UidLease.status(Self.status(state: "S (sleeping)", uids: "18790000010\t0\t0\t0", threads: 1), runsAs: "1879000001"),
                "a longer number that starts the same is another uid")
    }

    @Test func anExitedLeaderWithThreadsStillRunningCounts() {
        #expect(UidLease.status(Self.status(state: "Z (zombie)", uids: "1879000001\t1879000001\t1879000001\t1879000001", threads: 2), runsAs: "1879000001"))
    }
}
