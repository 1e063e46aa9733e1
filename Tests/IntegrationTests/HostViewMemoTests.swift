import Foundation
@testable import SandboxKernel
import Testing

/// `sandbox serve` keeps the search for unix sockets under `ro` binds, and the mount
/// table, while nothing they rest on changed (``HostViewMemo``). A socket that appears
/// after a search must still be masked: each test makes one appear for real (bound,
/// moved in inside a directory, bound inside a mount made after the search), and its
/// control shows the memory without that check answering the stale search.
@Suite(.serialized) struct HostViewMemoTests {
    /// A tree `root/a/b` old enough for a search of it to be kept (the memo keeps none
    /// resting on a ctime from the last 50 ms).
    static func tree() throws -> String {
        let root = Harness.tempDir()
        try FileManager.default.createDirectory(atPath: root + "/a/b", withIntermediateDirectories: true)
        try "".write(toFile: root + "/a/f", atomically: false, encoding: .utf8)
        usleep(150_000)
        return root
    }

    /// A unix socket bound at `path` (closed by the caller: the file stays).
    static func bindSocket(_ path: String) -> Int32 {
        let fd = Harness.bindUnixSocket(path)
        #expect(fd >= 0, "bind \(path): \(String(cString: strerror(errno)))")
        return fd
    }

    static func search(_ memo: HostViewMemo, _ root: String) -> [String] {
        memo.unixSockets(roots: [root], skip: [], limit: 100_000).sockets
    }

    /// Attack: a socket bound in a directory the last search listed. Control: the
    /// memory answering without looking at the directories still says there is none.
    @Test func aSocketBoundAfterASearchIsFound() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let memo = HostViewMemo()
        #expect(Self.search(memo, root).isEmpty)
        #expect(Self.search(memo, root).isEmpty)
        #expect(memo.searches.withLock { $0 } == 1, "the unchanged tree was searched again: nothing is kept")
        let fd = Self.bindSocket(root + "/a/b/s")
        defer { close(fd) }
        #expect(Self.search(memo, root) == [root + "/a/b/s"], "a socket bound after the search was not found")

        // Control.
        let other = try Self.tree()
        defer { try? FileManager.default.removeItem(atPath: other) }
        let stale = HostViewMemo()
        #expect(Self.search(stale, other).isEmpty)
        stale.checks = [.mounts]
        let fd2 = Self.bindSocket(other + "/a/b/s")
        defer { close(fd2) }
        #expect(Self.search(stale, other).isEmpty, "control: without the directory checks the stale search is answered")
        stale.checks = .all
        #expect(Self.search(stale, other) == [other + "/a/b/s"])
    }

    /// Attack: a directory holding a socket, made elsewhere, renamed into the tree
    /// (its own ctime is old; the directory it lands in changes). Control: without the
    /// directory checks, the memory does not see it.
    @Test func aDirectoryMovedInWithASocketIsFound() throws {
        for checked in [true, false] {
            let root = try Self.tree(), outside = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: outside) }
            try FileManager.default.createDirectory(atPath: outside + "/d", withIntermediateDirectories: true)
            let fd = Self.bindSocket(outside + "/d/s")
            defer { close(fd) }
            usleep(150_000)
            let memo = HostViewMemo()
            #expect(Self.search(memo, root).isEmpty)
            if !checked { memo.checks = [.mounts] }
            #expect(rename(outside + "/d", root + "/a/d") == 0)
            let found = Self.search(memo, root)
            if checked {
                #expect(found == [root + "/a/d/s"], "a socket moved in inside a directory was not found: \(found)")
            } else {
                #expect(found.isEmpty, "control: without the directory checks the stale search is answered")
            }
        }
    }

    /// Attack: a socket bind-mounted over a file of the tree after the search (no
    /// directory of the tree changes: only the mount table does; a mount over a
    /// directory the search listed changes what `lstat` sees there, which the
    /// directory checks catch). Control: without the mount watch, the memory does not
    /// see it.
    @Test func aSocketMountedOverAFileAfterASearchIsFound() throws {
        guard Harness.require(Harness.isRoot, "root (mount)") else { return }
        for watched in [true, false] {
            let root = try Self.tree(), outside = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: outside) }
            let fd = Self.bindSocket(outside + "/s")
            defer { close(fd) }
            let memo = HostViewMemo()
            #expect(Self.search(memo, root).isEmpty)
            if !watched { memo.checks = [.directories] }
            let file = root + "/a/f"
            try #require(mount(outside + "/s", file, nil, UInt(MS_BIND), nil) == 0, "mount: \(String(cString: strerror(errno)))")
            defer { umount2(file, Int32(MNT_DETACH)) }
            let found = Self.search(memo, root)
            if watched {
                #expect(found == [file], "a socket mounted over a file after the search was not found: \(found)")
            } else {
                #expect(found.isEmpty, "control: without the mount watch the stale search is answered")
            }
        }
    }

    /// Through `sandbox serve`, where two plans a request share the memory (the
    /// sandbox built ahead, the request's own): a socket bound under an `ro` bind after
    /// the next sandbox was built is masked in the next run, which does not take the
    /// sandbox built without the mask. Control: before the socket, the same request
    /// takes the sandbox built ahead (the kept search matched).
    @Test func aSocketBoundAfterTheBuildIsMaskedThroughServe() throws {
        guard let served = try BuiltAheadTests.start() else { return }
        defer { served.stop() }
        let ws = Harness.tempDir(), root = try Self.tree()
        defer { try? FileManager.default.removeItem(atPath: ws); try? FileManager.default.removeItem(atPath: root) }
        let policy = Harness.policy("""
            name = "memo-socket"
            extends = ["agent"]
            [filesystem]
            ro = ["\(root)"]
            """, in: ws, name: "memo-socket.toml")
        let socket = root + "/a/b/s"
        let look = ["sh", "-c", "test -S \(socket) && echo visible || echo hidden"]
        _ = try ServeTests.runOnce(served, policy: policy, argv: ["true"], cwd: ws)
        let same = try BuiltAheadTests.runInOneBuiltAhead(served, policy: policy, argv: look, cwd: ws)
        #expect(same.out == "hidden\n" && same.took, "control: \(same.out) \(same.reply ?? [:]) did not take a sandbox built ahead")

        let ahead = BuiltAheadTests.waitForOneAhead(served, retrigger: (policy, ws))
        try #require(!ahead.isEmpty, "no sandbox was built ahead")
        let fd = Self.bindSocket(socket)
        defer { close(fd) }
        chmod(socket, 0o777)
        let after = try ServeTests.runOnce(served, policy: policy, argv: look, cwd: ws)
        let runId = after.reply?["runId"] as? String ?? "-"
        #expect(after.out == "hidden\n", "the socket bound after the build was \(after.out) in run \(runId): \(after.reply ?? [:])")
        #expect(!ahead.contains(runId), "run \(runId) took the sandbox built before the socket")
    }

    /// Sleeps until the wall clock is `fraction` into a second (the next such moment).
    static func waitUntil(fraction: Double) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let into = Double(now.tv_nsec) / 1e9
        let wait = into <= fraction ? fraction - into : 1 - into + fraction
        usleep(UInt32(wait * 1e6))
    }

    /// Attack (red team, session 37): on a filesystem that keeps ctime in whole
    /// seconds (ext4 made with 128-byte inodes), a directory changed early in a second,
    /// searched later in that second and then given a socket in the same second keeps
    /// its ctime. The memory must not keep a search resting on such a ctime until the
    /// second is over. Control: taking the whole-second ctime at its face value, the
    /// stale search is answered.
    @Test func aSocketBoundInTheSecondOfAWholeSecondCtimeIsFound() throws {
        guard Harness.require(Harness.isRoot, "root (loop mount)") else { return }
        for whole in [true, false] {
            let dir = Harness.tempDir()
            let image = dir + "/ext4.img", mnt = dir + "/mnt"
            try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
            let made = try Harness.run("/bin/sh", ["-c", "truncate -s 8M \(image) && mkfs.ext4 -q -I 128 \(image) 2>/dev/null && mount -o loop \(image) \(mnt)"])
            try #require(made.status == 0, "an ext4 with 128-byte inodes: \(made.stderr)")
            defer { _ = try? Harness.run("/bin/umount", [mnt]); try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.createDirectory(atPath: mnt + "/a/b", withIntermediateDirectories: true)
            let memo = HostViewMemo()
            if !whole { memo.checks.remove(.wholeSeconds) }
            Self.waitUntil(fraction: 0.1)
            try "".write(toFile: mnt + "/a/b/t", atomically: false, encoding: .utf8)   // ctime S.000000000
            Self.waitUntil(fraction: 0.4)
            #expect(Self.search(memo, mnt).isEmpty)
            let fd = Self.bindSocket(mnt + "/a/b/s")                                      // the same second
            defer { close(fd) }
            let found = Self.search(memo, mnt)
            if whole {
                #expect(found == [mnt + "/a/b/s"], "a socket bound within the second of a whole-second ctime was not found: \(found)")
            } else {
                #expect(found.isEmpty, "control: with the ctime at its face value the stale search is answered (or the second ended between the steps)")
            }
        }
    }

    /// Attack (red team, session 37): two directories whose names read the same (é as
    /// one scalar, or e and a combining accent) are two directories to the kernel and
    /// one `String` to Swift; the second's search must not be answered with the
    /// first's. Control (the premise): Swift's `==` says the two paths are equal.
    @Test func twoDirectoriesWhoseNamesReadTheSameAreSearchedApart() throws {
        let base = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let nfc = base + "/\u{E9}", nfd = base + "/e\u{301}"
        #expect(nfc == nfd && Array(nfc.utf8) != Array(nfd.utf8), "control: the two names are one String")
        for dir in [nfc, nfd] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let fd = Self.bindSocket(nfd + "/s")
        defer { close(fd) }
        usleep(150_000)
        let memo = HostViewMemo()
        #expect(Self.search(memo, nfc).isEmpty)
        let found = Self.search(memo, nfd)
        #expect(found.map { Array($0.utf8) } == [Array((nfd + "/s").utf8)], "the search of \(nfd) was answered with another's: \(found)")
    }
}
