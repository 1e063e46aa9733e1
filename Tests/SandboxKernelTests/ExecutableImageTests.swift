import Glibc
import Testing
@testable import SandboxKernel

/// `main` unmaps the executable's relocation table once the loader is done with it
/// (issue 16, peak RSS). On this test binary, itself a PIE with a relocation table:
/// the pages leave the resident set, and a read afterwards sees the same bytes.
@Suite struct ExecutableImageTests {
    /// How many pages of a range are mapped in this process (/proc/self/pagemap, bit 63).
    static func presentPages(_ range: (start: UInt, length: UInt)) throws -> Int {
        let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0, "open pagemap: errno \(errno)")
        defer { close(fd) }
        let pages = Int(range.length) / 4096
        var entries = [UInt64](repeating: 0, count: pages)
        let n = entries.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(range.start / 4096 * 8)) }
        try #require(n == pages * 8, "pread pagemap: \(n), errno \(errno)")
        return entries.filter { $0 >> 63 == 1 }.count
    }

    static func bytes(_ range: (start: UInt, length: UInt)) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: range.start), count: Int(range.length)))
    }

    @Test func theRelocationPagesLeaveTheResidentSetAndReadBackTheSame() throws {
        let ranges = ExecutableImage.relocationPages()
        try #require(!ranges.isEmpty, "a PIE test binary has whole pages of relocations")
        // Control: read, every page is resident.
        let before = ranges.map(Self.bytes)
        for range in ranges {
            #expect(try Self.presentPages(range) == Int(range.length) / 4096)
        }

        let released = ExecutableImage.releaseRelocationPages()
        #expect(released == Int(ranges.reduce(0) { $0 + $1.length }))
        for range in ranges {
            #expect(try Self.presentPages(range) == 0, "released pages are not mapped")
        }
        // Read again: the file's bytes, unchanged.
        #expect(ranges.map(Self.bytes) == before)
        // Nothing else moved: the same ranges are found again.
        #expect(ExecutableImage.relocationPages().map(\.start) == ranges.map(\.start))
    }
}
