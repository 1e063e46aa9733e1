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

    /// A directory made at a writable place's recorded path after the place was
    /// renamed away is not the place: a file in it is not counted as in the place
    /// (the place is found by its path only while that path leads to its device and
    /// inode). Control: before the rename, a file inside the place is counted and one
    /// beside it is not.
    @Test func aDirectoryMadeWhereARenamedPlaceWasIsNotThePlace() throws {
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
        try FileManager.default.createDirectory(atPath: base + "/w", withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: base + "/w/other", contents: Data([1]))
        #expect(place(base + "/w/other") == nil, "a directory made at the recorded path was taken for the place")
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
