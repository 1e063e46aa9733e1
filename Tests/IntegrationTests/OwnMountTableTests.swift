import Foundation
@testable import SandboxKernel
import Testing

/// `OwnMountTable`: the process's mount table is read again when, and only when, the
/// kernel says the mount namespace changed, so a mount made after the last read is
/// in the next answer (a cache without the poll would not have it) and gone after its
/// unmount.
@Suite(.serialized) struct OwnMountTableTests {
    @Test func aMountIsSeenAtOnceAndNothingIsReadWithoutOne() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        // The reliability suites count host mounts while they hold this lock.
        Harness.gcLock.lock()
        defer { Harness.gcLock.unlock() }
        let table = OwnMountTable.shared
        let dir = URL(fileURLWithPath: Harness.tempDir()).resolvingSymlinksInPath().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func shows(_ path: String) -> Bool { FileSystemLocation.mounts().contains { $0.mountPoint == path } }

        #expect(!shows(dir))
        // No change, no read (other suites' mounts may still come and go meanwhile).
        let before = table.reads.load(ordering: .relaxed)
        for _ in 0..<200 { _ = FileSystemLocation.mounts() }
        #expect(table.reads.load(ordering: .relaxed) - before < 20, "read again without a change")

        let mounted = try Harness.run("/bin/mount", ["-t", "tmpfs", "sbx-mount-table", dir])
        #expect(mounted.status == 0, "mount: \(mounted.stderr)")
        var unmounted = false
        defer { if !unmounted { _ = try? Harness.run("/bin/umount", [dir]) } }
        #expect(shows(dir), "a mount made after the last read is not in the table")
        let m = FileSystemLocation.mounts().first { $0.mountPoint == dir }
        #expect(m?.fstype == "tmpfs")

        let umount = try Harness.run("/bin/umount", [dir])
        unmounted = umount.status == 0
        #expect(unmounted, "umount: \(umount.stderr)")
        #expect(!shows(dir), "an unmounted path is still in the table")
    }
}
