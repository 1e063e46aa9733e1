@testable import SandboxKernel
import Testing

/// "Is X inside Y" by filesystem location compares the paths' bytes: `String`'s
/// `hasPrefix` and `dropFirst(count)` work on `Character`s, and a slash that a
/// combining mark follows (or a prepend mark precedes) is no `Character` of its own
/// (red team, session 45: `require_root_owned` passed a file below `/w/\u{301}d`
/// reached through a bind alias).
@Suite struct FileSystemLocationTests {
    @Test func containsComparesBytes() {
        let w = FileSystemLocation(device: "8:1", path: "/w")
        #expect(w.contains(FileSystemLocation(device: "8:1", path: "/w/\u{301}d/tool")))
        #expect(w.contains(FileSystemLocation(device: "8:1", path: "/w")))
        #expect(!w.contains(FileSystemLocation(device: "8:1", path: "/wx")))
        #expect(!w.contains(FileSystemLocation(device: "8:2", path: "/w/a")))
        #expect(FileSystemLocation(device: "8:1", path: "/").contains(FileSystemLocation(device: "8:1", path: "/\u{301}")))
        // Canonically equal, not the same bytes: another directory.
        #expect(!FileSystemLocation(device: "8:1", path: "/w/\u{E9}").contains(FileSystemLocation(device: "8:1", path: "/w/e\u{301}/x")))
    }

    @Test func thePathBelowAMountIsCutByBytes() {
        let mounts = [FileSystemLocation.Mount(device: "8:1", root: "/", mountPoint: "/"),
                      FileSystemLocation.Mount(device: "8:2", root: "/data", mountPoint: "/x\u{600}")]
        let at = FileSystemLocation.of(resolved: "/x\u{600}/d", in: mounts)
        #expect(at.map { Array($0.path.utf8) } == Array("/data/d".utf8), "\(String(describing: at))")
        #expect(FileSystemLocation.of(resolved: "/x\u{600}", in: mounts)?.path == "/data")
        #expect(FileSystemLocation.of(resolved: "/y/\u{301}z", in: mounts).map { Array($0.path.utf8) } == Array("/y/\u{301}z".utf8))
    }
}
