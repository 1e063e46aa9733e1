import Foundation
import Glibc
import SandboxKernel
import Testing

/// The run directory's layout: the lock file every build's `ps` and `gc` look for,
/// and the base's one staging directory, which must be a directory of ours (an init
/// mounts its root on the path it is given).
@Suite struct RunDirectoryTests {
    private func base() -> String {
        let path = NSTemporaryDirectory() + "sbx-rundir-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func aRunHasALockFileAndSharesTheStagingDirectory() throws {
        let b = base()
        defer { try? FileManager.default.removeItem(atPath: b) }
        let one = try RunDirectory.create(base: b, id: "aaaaaaaaaaaa")
        let two = try RunDirectory.create(base: b, id: "bbbbbbbbbbbb")
        // An older build's gc takes a run without a held `lock` file for dead.
        for run in [one, two] {
            let fd = open(run.path + "/lock", O_RDONLY | O_CLOEXEC)
            #expect(fd >= 0, "no lock file in \(run.path)")
            #expect(flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK, "the lock is not held")
            close(fd)
        }
        #expect(one.staging == b + "/.root" && two.staging == one.staging)
        var st = stat()
        #expect(lstat(one.staging, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR)
        #expect(RunDirectory.list(base: b).map(\.id) == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"], "the staging directory is not a run")
        one.remove(); two.remove()
        #expect(lstat(one.staging, &st) == 0, "a run's removal took the shared staging directory")
    }

    /// A `.root` that is a link (or not a directory) is refused before anything of the
    /// run exists; the control is the same base with a real directory.
    @Test func aStagingPathThatIsNotOurDirectoryIsRefused() throws {
        let b = base()
        defer { try? FileManager.default.removeItem(atPath: b) }
        let elsewhere = base()
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }
        #expect(symlink(elsewhere, b + "/.root") == 0)
        #expect(throws: KernelError.self) { try RunDirectory.create(base: b, id: "cccccccccccc") }
        #expect(RunDirectory.list(base: b).isEmpty && !FileManager.default.fileExists(atPath: b + "/.cccccccccccc.new"),
                "a refused creation left a run directory")
        unlink(b + "/.root")
        #expect(FileManager.default.createFile(atPath: b + "/.root", contents: nil))
        #expect(throws: KernelError.self) { try RunDirectory.create(base: b, id: "cccccccccccc") }
        unlink(b + "/.root")
        // Control: a directory of ours.
        let run = try RunDirectory.create(base: b, id: "cccccccccccc")
        run.remove()
    }
}
