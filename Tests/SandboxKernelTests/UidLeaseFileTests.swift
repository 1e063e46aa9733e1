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
        for i in 0..<3000 {
            let lease = try UidLease.acquire(directory: dir, runId: "run\(i)", record: { _ in })
            lease.release()
        }
        watch.lock.lock(); watch.stop = true; let seen = watch.seen, empty = watch.empty; watch.lock.unlock()
        // Control: the watcher did see leases (else it could not see an empty one).
        #expect(seen > 100, "the watcher saw only \(seen) leases")
        #expect(empty == 0, "\(empty) of \(seen) leases seen empty")
        // Nothing staged is left behind.
        #expect(FD.entries(dir).isEmpty, "left: \(FD.entries(dir).map(\.name))")
    }
}
