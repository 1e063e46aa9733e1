import Foundation
import SandboxPolicy
@testable import SandboxServe
import Testing

/// `sandbox serve`'s cache of loaded policies keys on the bytes the loader parsed,
/// never on the file read again: a file rewritten between the load and the caching
/// is loaded again at the next request, not served as the policy it no longer is.
@Suite struct PolicyCacheTests {
    @Test func aFileRewrittenDuringTheLoadIsNotServedStale() throws {
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/p.toml"
        func body(_ name: String) -> String { "name = \"\(name)\"\nextends = [\"agent\"]\n" }
        try body("x").write(toFile: file, atomically: false, encoding: .utf8)
        usleep(200_000)   // the directory is not "just changed" (the cache would not keep it)
        let cache = PolicyCache(searchPath: PolicyLoader.defaultSearchPath())
        final class Misses: @unchecked Sendable { var count = 0 }  // the test's thread only
        let misses = Misses()
        cache.afterLoad = { _ in
            misses.count += 1
            // Rewritten in place (the directory does not change): only the bytes say so.
            if misses.count == 1 { try? body("y").write(toFile: file, atomically: false, encoding: .utf8) }
        }
        #expect(try cache.load(file, relativeTo: dir).name == "x")
        #expect(try cache.load(file, relativeTo: dir).name == "y", "the cache kept x for a file that says y")
        #expect(try cache.load(file, relativeTo: dir).name == "y")
        #expect(misses.count == 2, "\(misses.count) loads: the unchanged file was not served from the cache")
    }
}
