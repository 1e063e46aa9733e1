import Foundation
import Glibc
@testable import SandboxExecutor
import SandboxPlan
import SandboxPolicy
import Testing

/// `[binary] require_root_owned`'s writable-place check fails closed: a file whose
/// place on its filesystem cannot be found, or whose name leads to another object
/// than the one opened, counts as lying in a writable place (red team, session 45: a
/// failed lookup counted as not writable; then a `tool (deleted)` symlink, planted
/// where the kernel's name for a removed file points, led the lookup to
/// /usr/bin/true and let the file through).
@Suite struct WritablePlaceTests {
    struct NoFiles: FileInspector {
        func kind(of path: String) -> FileKind? { path == "/" || path == "/usr" ? .directory : nil }
    }

    static func check() throws -> BinaryCheck {
        let dir = NSTemporaryDirectory() + "sbx-wp-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "name = \"wp\"\n[filesystem]\nro = [\"/usr\"]\n".write(toFile: dir + "/p.toml", atomically: true, encoding: .utf8)
        let policy = try PolicyLoader(searchPath: []).load(path: dir + "/p.toml")
        let host = HostFacts(arch: "x86_64", kernelRelease: "6.18.0", landlockABI: 7, invokerUID: 0, invokerGID: 0,
                             cwd: "/", home: "/root", environment: ["PATH": "/usr/bin"], files: NoFiles())
        var check = BinaryCheck(plan: try PlanCompiler(host: host).compile(policy, argv: ["true"], runId: "wp1"), sources: [:])
        check.writable = [WritablePlace(path: "/nonexistent-writable-\(UUID().uuidString)", device: 1, inode: 2, writer: "this run")]
        return check
    }

    @Test func aPlaceThatCannotBeFoundCountsAsWritable() throws {
        let check = try Self.check()
        let gone = "/nonexistent-\(UUID().uuidString)/tool"
        let w = check.writablePlace(chain: [], hostPath: gone, object: (1, 1))
        #expect(w != nil && w?.writer.hasPrefix("possibly a run") == true, "\(String(describing: w))")
        // Through a descriptor whose file is gone (its /proc/self/fd link reads "(deleted)").
        let file = NSTemporaryDirectory() + "sbx-wp-\(UUID().uuidString.prefix(8))"
        FileManager.default.createFile(atPath: file, contents: Data([1]))
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        #expect(fd >= 0)
        defer { close(fd) }
        var st = stat()
        #expect(fstat(fd, &st) == 0)
        let me = (UInt64(st.st_dev), UInt64(st.st_ino))
        unlink(file)
        #expect(check.writablePlace(chain: [], hostPath: file, object: me, opened: fd) != nil)
        // The attack: its kernel name made to lead to a file outside every writable place.
        #expect(symlink("/usr/bin/true", file + " (deleted)") == 0)
        defer { unlink(file + " (deleted)") }
        #expect(check.writablePlace(chain: [], hostPath: file, object: me, opened: fd) != nil,
                "a planted '(deleted)' link led the lookup to /usr/bin/true")
    }

    /// A writable place renamed since it was recorded (by the host, or by a run that
    /// can write its parent) is no longer where its path says: a file in it reached
    /// by a name that passes none of its inodes (a bind alias; here an empty chain)
    /// was not in it, because the place was looked up by its recorded path alone
    /// (red team, session 45, left then). It now counts as writable for every file on
    /// the place's filesystem. The control: before the rename, a file beside the
    /// place is not refused and one inside it is.
    @Test func aPlaceRenamedSinceItWasRecordedCountsForFilesOnItsFilesystem() throws {
        var check = try Self.check()
        let base = NSTemporaryDirectory() + "sbx-wp-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base + "/w/sub", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: base + "/w/sub/tool", contents: Data([1]))
        FileManager.default.createFile(atPath: base + "/beside", contents: Data([1]))
        var st = stat()
        #expect(stat(base + "/w", &st) == 0)
        check.writable = [WritablePlace(path: base + "/w", device: UInt64(st.st_dev), inode: UInt64(st.st_ino), writer: "run r1")]
        func place(_ path: String) -> WritablePlace? {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            #expect(fd >= 0, "\(path)")
            defer { close(fd) }
            var s = stat()
            #expect(fstat(fd, &s) == 0)
            return check.writablePlace(chain: [], hostPath: path, object: (UInt64(s.st_dev), UInt64(s.st_ino)), opened: fd)
        }
        #expect(place(base + "/beside") == nil, "control: a file beside the place")
        #expect(place(base + "/w/sub/tool")?.writer == "run r1", "control: a file inside it")
        #expect(rename(base + "/w", base + "/moved") == 0)
        let w = place(base + "/moved/sub/tool")
        #expect(w?.writer.hasPrefix("run r1 (its directory is no longer at that path") == true, "\(String(describing: w))")
        // What is left at the old name is not the place: a directory made there holds nothing of it.
        try FileManager.default.createDirectory(atPath: base + "/w", withIntermediateDirectories: false)
        #expect(place(base + "/moved/sub/tool") != nil, "a new directory at the recorded path hid the renamed place")
    }

    /// The control: a file that exists outside every writable place is not refused.
    @Test func aPlaceFoundOutsideEveryWritableOneIsNot() throws {
        let check = try Self.check()
        let fd = open("/usr/bin/true", O_RDONLY | O_CLOEXEC)
        #expect(fd >= 0)
        defer { close(fd) }
        var st = stat()
        #expect(fstat(fd, &st) == 0)
        let me = (UInt64(st.st_dev), UInt64(st.st_ino))
        #expect(check.writablePlace(chain: [], hostPath: "/usr/bin/true", object: me, opened: fd) == nil)
        #expect(check.writablePlace(chain: [], hostPath: "/usr/bin/true", object: me) == nil)
    }
}
