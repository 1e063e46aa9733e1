@testable import SandboxPlan
import Testing

/// `GitIndex`: the gitlinks of an index built here byte by byte as
/// gitformat-index(5) lays it out, and no crash or invented path on any
/// truncation or corruption of it (the index is the host's file, but the planner
/// reads it for every plan that protects `.git`).
struct GitIndexTests {
    /// An index of `entries` (path, mode): version 2/3 padded, version 4 with
    /// compressed paths; a `link` extension when `shared` is given.
    static func index(version: UInt32, objectSize: Int = 20, entries: [(String, UInt32)], extended: Bool = false,
                      shared: [UInt8]? = nil) -> [UInt8] {
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        var out: [UInt8] = Array("DIRC".utf8) + be32(version) + be32(UInt32(entries.count))
        var previous: [UInt8] = []
        for (path, mode) in entries {
            let start = out.count
            let p = Array(path.utf8)
            out += [UInt8](repeating: 0, count: 24) + be32(mode) + [UInt8](repeating: 0, count: 12)
            out += [UInt8](repeating: 0xAB, count: objectSize)
            let flags = UInt16(min(p.count, 0xFFF)) | (extended ? 0x4000 : 0)
            out += [UInt8(flags >> 8), UInt8(flags & 255)]
            if extended { out += [0x20, 0] }   // intent to add
            if version == 4 {
                var common = 0
                while common < min(p.count, previous.count), p[common] == previous[common] { common += 1 }
                let strip = previous.count - common
                precondition(strip < 128, "one varint byte in this builder")
                out += [UInt8(strip)] + p[common...] + [0]
            } else {
                out += p + [0]
                while (out.count - start) % 8 != 0 { out.append(0) }
            }
            previous = p
        }
        if let shared {
            out += Array("link".utf8) + be32(UInt32(shared.count)) + shared
        }
        out += Array("TREE".utf8) + be32(3) + [1, 2, 3]
        return out + [UInt8](repeating: 0xCD, count: objectSize)
    }

    static let entries: [(String, UInt32)] = [("a", 0o100644), ("lib/sub", 0o160000), ("lib/subdir/file", 0o100755),
                                              ("lib/sym", 0o120000), ("vendor/" + String(repeating: "x", count: 90), 0o160000),
                                              // Longer than the flags' 12 bits: NUL-terminated.
                                              ("z/" + String(repeating: "y", count: 4094), 0o160000)]

    @Test(arguments: [(UInt32(2), false), (3, true), (4, false), (4, true)])
    func gitlinksOfEachVersion(version: UInt32, extended: Bool) throws {
        for objectSize in [20, 32] {
            let b = Self.index(version: version, objectSize: objectSize, entries: Self.entries, extended: extended)
            let read = try GitIndex.read(b, objectSize: objectSize)
            #expect(read.gitlinks.map { String(decoding: $0, as: UTF8.self) }
                    == ["lib/sub", "vendor/" + String(repeating: "x", count: 90), "z/" + String(repeating: "y", count: 4094)])
            #expect(read.sharedIndex == nil)
        }
    }

    @Test func aSplitIndexNamesItsSharedIndex() throws {
        let b = Self.index(version: 2, entries: [("a", 0o100644)], shared: [0x12] + [UInt8](repeating: 0, count: 18) + [0xFE] + [0, 0, 0, 0])
        #expect(try GitIndex.read(b, objectSize: 20).sharedIndex == "12" + String(repeating: "00", count: 18) + "fe")
        let none = Self.index(version: 2, entries: [("a", 0o100644)], shared: [UInt8](repeating: 0, count: 24))
        #expect(try GitIndex.read(none, objectSize: 20).sharedIndex == nil, "all zeros: no shared index")
    }

    @Test func notAnIndexOrAnotherVersionIsAnError() {
        #expect(throws: GitIndex.ReadError.notAnIndex) { try GitIndex.read(Array("DIRX".utf8) + [UInt8](repeating: 0, count: 40), objectSize: 20) }
        var v5 = Self.index(version: 2, entries: [])
        v5[7] = 5
        #expect(throws: GitIndex.ReadError.version(5)) { try GitIndex.read(v5, objectSize: 20) }
        // An extended entry in a version 2 index is not what git writes.
        let b = Self.index(version: 2, entries: Self.entries, extended: true)
        #expect(throws: GitIndex.ReadError.self) { try GitIndex.read(b, objectSize: 20) }
    }

    /// Every truncation and every single-byte corruption either fails to read or
    /// reads without a crash; a truncated index never reads as whole.
    @Test func truncatedOrCorruptIndexesNeverCrash() {
        for version in [UInt32(2), 4] {
            // Without the 4 096-byte path: every cut of it would be read again.
            let b = Self.index(version: version, entries: Array(Self.entries.dropLast()))
            // Where the entries end (the TREE extension begins).
            let entriesEnd = (0..<b.count - 4).first { b[$0..<$0 + 4].elementsEqual("TREE".utf8) }!
            for n in 0..<b.count {
                let cut = Array(b[..<n])
                let read = try? GitIndex.read(cut, objectSize: 20)
                // The last 20 bytes are taken as the checksum: a cut that leaves less
                // than the entries and a checksum's room is not read at all.
                if n < entriesEnd + 20 { #expect(read == nil, "version \(version), \(n) of \(b.count) bytes read") }
                else if let read { #expect(read.gitlinks.count == 2) }   // or a cut extension, refused
            }
            for i in 0..<b.count {
                for v: UInt8 in [0, 0x7F, 0x80, 0xFF] {
                    var c = b
                    c[i] = v
                    _ = try? GitIndex.read(c, objectSize: 20)
                }
            }
        }
    }

    /// What a command can write into a `.git` of its own is bounded: a path past
    /// PATH_MAX, more than 1 024 gitlinks, and version 4 paths grown a byte an entry
    /// (red team, session 44: 6.5 GB and a minute of planning) are refused at once.
    @Test func hostileIndexesAreRefusedQuickly() throws {
        let long = Self.index(version: 2, entries: [("z/" + String(repeating: "y", count: 4095), 0o160000)])
        #expect(throws: GitIndex.ReadError.tooLarge(entry: 0)) { try GitIndex.read(long, objectSize: 20) }
        let many = Self.index(version: 2, entries: (0..<1025).map { ("s\($0)", UInt32(0o160000)) })
        #expect(throws: GitIndex.ReadError.tooLarge(entry: 1024)) { try GitIndex.read(many, objectSize: 20) }
        // Version 4, each entry keeping the whole previous path and adding a byte.
        var b: [UInt8] = Array("DIRC".utf8) + [0, 0, 0, 4, 0, 1, 0x86, 0xA0]   // 100 000 entries
        for _ in 0..<100_000 {
            b += [UInt8](repeating: 0, count: 24) + [0, 0, 0xE0, 0] + [UInt8](repeating: 0, count: 12)
            b += [UInt8](repeating: 0, count: 20) + [0x0F, 0xFF] + [0, 0x61, 0]   // length: NUL-terminated
        }
        b += [UInt8](repeating: 0, count: 20)
        // Refused at the path past PATH_MAX (without the bound: 100 000 gitlinks up
        // to 100 000 bytes each, some 5 GB).
        #expect(throws: GitIndex.ReadError.tooLarge(entry: 1024)) { try GitIndex.read(b, objectSize: 20) }
    }
}
