import Foundation
import Glibc
import Testing
@testable import SandboxKernel

/// `CreatedEntryScan` on trees made here: what it names, and that it stays complete
/// in a tree of many files (red team, session 44).
struct CreatedEntryScanTests {
    static func scan(_ root: String, since: (Int64, UInt32)) -> CreatedEntryScan.Outcome {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(fd) }
        return CreatedEntryScan.scan(rootFD: fd, rootPath: root, name: ".git", since: (sec: since.0, nsec: since.1))
    }

    static func now() -> (Int64, UInt32) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int64(ts.tv_sec), UInt32(ts.tv_nsec))
    }

    static func make(_ path: String, file: Bool = false) throws {
        if file {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: path, contents: Data("x\n".utf8))
        } else {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
    }

    /// A submodule whose path has a component named like git's own (`tools/refs`):
    /// its config changed is reported. Before, `refs` was passed over at every level.
    @Test func aSubmoduleAtAPathNamedRefsIsLookedAt() throws {
        let root = NSTemporaryDirectory() + "sbx-scan-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let module = "\(root)/app/.git/modules/tools/refs"
        for d in ["\(root)/app/.git/objects", "\(root)/app/.git/refs", "\(module)/objects", "\(module)/refs"] { try Self.make(d) }
        try Self.make("\(module)/config", file: true)
        try Self.make("\(module)/HEAD", file: true)
        usleep(20_000)
        let since = Self.now()
        usleep(20_000)
        try "[core]\n".write(toFile: "\(module)/config", atomically: false, encoding: .utf8)
        let out = Self.scan(root, since: since)
        #expect(out.created.contains("\(root)/app/.git"), "\(out)")
        // Control: nothing changed since a later moment, nothing reported.
        usleep(20_000)
        #expect(Self.scan(root, since: Self.now()).created.isEmpty)
    }

    /// A directory shaped as a git directory after `since` (objects and refs made by
    /// the run) is reported; 60 000 files in 200 directories do not make it stop.
    @Test func aShapedDirectoryIsFoundAmongManyFiles() throws {
        let root = NSTemporaryDirectory() + "sbx-scan-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for p in 0..<200 {
            let dir = "\(root)/node_modules/p\(p)"
            try Self.make(dir)
            for f in 0..<300 { close(creat("\(dir)/f\(f)", 0o644)) }
        }
        try Self.make("\(root)/pkg/HEAD", file: true)
        usleep(20_000)
        let since = Self.now()
        usleep(20_000)
        try Self.make("\(root)/pkg/objects")
        try Self.make("\(root)/pkg/refs")
        let out = Self.scan(root, since: since)
        #expect(out.complete, "the scan stopped after \(out.entriesSeen) entries")
        #expect(out.created == ["\(root)/pkg"], "\(out.created)")
    }

    /// A timestamp of whole seconds counts as the end of its second: on a filesystem
    /// that keeps no more (ext4 with 128-byte inodes), a `.git` made in the run's first
    /// second has a change time before `since` and was not reported (red team,
    /// session 46). The predicate, for a run started half a second into a second.
    /// Controls: the second before, and a finer time before `since`, are not new.
    @Test func aWholeSecondTimestampCountsAsTheEndOfItsSecond() {
        let since: (sec: Int64, nsec: UInt32) = (1_000, 500_000_000)
        #expect(CreatedEntryScan.isNew(sec: 1_000, nsec: 0, since: since), "the whole second the run started in")
        #expect(!CreatedEntryScan.isNew(sec: 999, nsec: 0, since: since), "control: the second before")
        #expect(!CreatedEntryScan.isNew(sec: 1_000, nsec: 400_000_000, since: since), "control: a finer time before since")
        #expect(CreatedEntryScan.isNew(sec: 1_000, nsec: 500_000_000, since: since))
    }

    /// Paths longer than the bound are cut with a digest of the whole: two `.git`s
    /// under one 1 250-byte prefix were reported as the same text (red team,
    /// session 46).
    @Test func longPathsCutStayApart() throws {
        let root = NSTemporaryDirectory() + "sbx-scan-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var deep = root
        for i in 0..<6 { deep += "/" + String(repeating: Character(String(i)), count: 200) }
        try Self.make(deep)
        usleep(20_000)
        let since = Self.now()
        usleep(20_000)
        try Self.make(deep + "/decoy/.git")
        try Self.make(deep + "/evil/.git")
        let out = Self.scan(root, since: since)
        #expect(out.created.count == 2 && Set(out.created).count == 2, "\(out.created)")
        #expect(out.created.allSatisfy { $0.utf8.count <= CreatedEntryScan.maxPathBytes + 2 }, "\(out.created.map { $0.utf8.count })")
    }

    /// A name that is not UTF-8 is written with `\xNN` for its bytes (and a backslash
    /// doubled): it was decoded with U+FFFD, which named a decoy directory the command
    /// made beside it (red team, session 46). Control: the decoy itself, with no
    /// `.git`, is not reported.
    @Test func aNameThatIsNotUTF8IsWrittenAsItsBytes() throws {
        let root = NSTemporaryDirectory() + "sbx-scan-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.make(root)
        usleep(20_000)
        let since = Self.now()
        usleep(20_000)
        let raw: [UInt8] = Array("\(root)/a".utf8) + [0xFF] + Array("b".utf8)
        #expect((raw + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { mkdir($0.baseAddress!, 0o755) } } == 0)
        #expect(((raw + Array("/.git".utf8)) + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { mkdir($0.baseAddress!, 0o755) } } == 0)
        try Self.make("\(root)/a\u{FFFD}b")
        try Self.make("\(root)/c\\d/.git")
        let out = Self.scan(root, since: since)
        #expect(Set(out.created) == ["\(root)/a\\xffb/.git", "\(root)/c\\\\d/.git"], "\(out.created)")
        #expect(CreatedEntryScan.shown([0x61, 0xC3, 0xA9, 0xE2, 0x82, 0x5C, 0x0A]) == "a\u{E9}\\xe2\\x82\\\\\n")
    }
}
