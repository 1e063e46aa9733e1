import Foundation
@testable import SandboxPlan
import SandboxPolicy
import Testing

/// `PlanFileView`: a compilation asks the host about each path once, and the next
/// compilation asks again (nothing is remembered from one plan to the next).
struct PlanFileViewTests {
    /// FakeFiles that counts the questions, per kind of question and path.
    final class Counting: FileInspector, @unchecked Sendable {
        let inner: FakeFiles
        let lock = NSLock()
        var asked: [String: Int] = [:]
        init(_ inner: FakeFiles) { self.inner = inner }
        func count(_ key: String) { lock.lock(); asked[key, default: 0] += 1; lock.unlock() }
        func kind(of path: String) -> FileKind? { count("kind \(path)"); return inner.kind(of: path) }
        func identity(of path: String) -> FileIdentity? {
            count("identity \(path)")
            return inner.kind(of: path) == nil ? nil : FileIdentity(device: 1, inode: UInt64(abs(path.hashValue % 1_000_000)))
        }
        func linkCount(of path: String) -> Int? { count("links \(path)"); return inner.kind(of: path) == nil ? nil : 1 }
        func location(of path: String) -> (device: String, path: String)? { count("location \(path)"); return ("1:1", path) }
    }

    @Test func eachPathIsAskedOncePerPlanAndAgainByTheNext() throws {
        let base = host(uid: 0, files: ["/etc/ssl/certs": .directory, "/etc/passwd": .file, "/etc/group": .file])
        let counting = Counting(base.files as! FakeFiles)
        var facts = base
        facts.files = counting
        let policy = try derived("""
            [filesystem]
            ro = ["/etc/ssl/certs", "/etc/passwd", "/etc/group"]
            """)
        let compiler = PlanCompiler(host: facts)
        let first = try compiler.compile(policy, argv: ["sh"], runId: "r1")
        let once = counting.asked
        #expect(!once.isEmpty)
        #expect(once.values.allSatisfy { $0 == 1 }, "asked more than once in one plan: \(once.filter { $0.value > 1 })")
        #expect(once["kind /etc"] == 1, "\(once.keys.sorted())")
        let second = try compiler.compile(policy, argv: ["sh"], runId: "r1")
        #expect(counting.asked.allSatisfy { $0.value == 2 * once[$0.key]! }, "the second plan did not ask again")
        #expect(first == second)
    }
}
