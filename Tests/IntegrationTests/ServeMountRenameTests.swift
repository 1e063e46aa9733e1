import Foundation
import Testing

/// A rename above a mount point changes the mount table's text without a mount event
/// (no poll of /proc/self/mountinfo reports it). serve must plan on a table read for
/// the request, as exec does: with a table cached across requests (session 29's
/// withdrawn OwnMountTable), serve accepted a run that could rewrite its own policy
/// file through a bind-mount alias whose ancestor had been renamed (red team
/// helper-65), while exec refused it.
@Suite(.serialized) struct ServeMountRenameTests {
    @Test func aRenamedAliasOfThePolicyFileIsStillRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        // The reliability suites count host mounts while they hold this lock.
        Harness.gcLock.lock()
        defer { Harness.gcLock.unlock() }
        let w = URL(fileURLWithPath: Harness.tempDir()).resolvingSymlinksInPath().path
        defer { try? FileManager.default.removeItem(atPath: w) }
        let proj = w + "/proj", pol = proj + "/pol"
        for d in [pol, w + "/A/view", w + "/other"] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let policy = "name = \"aliased\"\nextends = [\"agent\"]\n"
        try policy.write(toFile: pol + "/p.toml", atomically: false, encoding: .utf8)
        try policy.write(toFile: w + "/other/p.toml", atomically: false, encoding: .utf8)
        // `A/view` shows `proj/pol`, a directory inside the run's writable cwd.
        let bound = try Harness.run("/bin/mount", ["--bind", pol, w + "/A/view"])
        #expect(bound.status == 0, "mount: \(bound.stderr)")
        var mountedAt = w + "/A/view"
        defer { _ = try? Harness.run("/bin/umount", [mountedAt]) }

        let served = try ServeTests.Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let append = ["sh", "-c", "echo '# rewritten' >> pol/p.toml"]
        func serve(_ policy: String) throws -> Int? {
            try ServeTests.runOnce(served, policy: policy, argv: append, cwd: proj).reply?["exitCode"] as? Int
        }
        // Control: the command can write pol/p.toml when it is not the policy.
        #expect(try serve(w + "/other/p.toml") == 0)
        try policy.write(toFile: pol + "/p.toml", atomically: false, encoding: .utf8)

        #expect(try serve(w + "/A/view/p.toml") == 125)
        try FileManager.default.moveItem(atPath: w + "/A", toPath: w + "/B")
        mountedAt = w + "/B/view"
        #expect(try Harness.exec(policy: w + "/B/view/p.toml", append, cwd: proj).status == 125)
        #expect(try serve(w + "/B/view/p.toml") == 125, "serve planned on a mount table older than the rename")
        #expect(try String(contentsOfFile: pol + "/p.toml", encoding: .utf8) == policy, "the run rewrote its own policy")
    }
}
