import Foundation
import Testing

/// The census can fail: objects of the kinds the reliability suites' runs never left
/// (a host mount, a namespace pinned by a mount, an unmarked veth, a zombie below a
/// process of ours, a survivor), made here by the test, are each named as leaked —
/// and none of them once removed. (FaultTests shows the run kinds: run directories,
/// leases, veths, cgroups and namespaces left for `gc`.) The namespace is counted
/// only when the caller names it as its own: another suite's test host is not ours.
@Suite(.serialized) struct CensusTests {
    /// Another suite's `sandbox serve` is not a leak of the suite taking the census:
    /// its spawner holds a network namespace made ahead for the next run (CI, session
    /// 30: ChurnTests named three such namespaces while ServeTests' load ran beside
    /// it). The census sees the namespace (new since `before`), and does not count it.
    @Test func anotherSuitesServerIsNotALeak() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let token = Reliability.newToken("census-serve")
        let before = Census.take()
        let served = try ServeTests.Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        // The spawner (the server's child) and the namespace it made ahead — not the
        // host's, which it holds too (to come back to), from its first moment on: a
        // look before the one made ahead existed found only that one (CI, session 32).
        let host = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        var netns: String?
        for _ in 0..<100 where netns == nil {
            let children = (try? String(contentsOfFile: "/proc/\(served.process.processIdentifier)/task/\(served.process.processIdentifier)/children", encoding: .utf8)) ?? ""
            for pid in children.split(separator: " ") {
                let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
                for fd in fds {
                    if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                       target.hasPrefix("net:["), target != host {
                        netns = target
                    }
                }
            }
            if netns == nil { usleep(50_000) }
        }
        guard let netns else { Issue.record("the spawner holds no namespace made ahead"); return }
        let now = Census.take()
        #expect(now.objects.subtracting(before.objects).contains { $0.description == "network namespace \(netns)" },
                "the census does not see \(netns)")
        let leaks = now.leaks(since: before, token: token, ours: []).map(\.description)
        #expect(!leaks.contains("network namespace \(netns)"), "another suite's server counted: \(leaks)")
    }

    @Test func theCensusNamesWhatIsLeftAndNothingOnceItIsGone() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        // The other reliability suites count host objects while they hold this lock.
        Harness.gcLock.lock()
        defer { Harness.gcLock.unlock() }
        let token = Reliability.newToken("census")
        let tag = String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(8))
        let dir = Harness.tempDir()
        let netns = "sbxtest-census\(tag.prefix(4))", veth = "sbx\(tag)"
        let before = Census.take()

        let mounted = try Harness.run("/bin/mount", ["-t", "tmpfs", "sbx-census", dir])
        defer { _ = try? Harness.run("/bin/umount", [dir]); try? FileManager.default.removeItem(atPath: dir) }
        #expect(mounted.status == 0, "mount: \(mounted.stderr)")
        EgressTests.ip(["netns", "add", netns])
        defer { EgressTests.ip(["netns", "del", netns]) }
        EgressTests.ip(["link", "add", veth, "type", "veth", "peer", "name", "sbxp\(tag.prefix(6))"])
        defer { EgressTests.ip(["link", "del", veth]) }
        // A parent of ours (the token in its argv) that never reaps its child.
        let parent = Process()
        parent.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        parent.arguments = ["-c", "import os, sys, time\nif os.fork() == 0: os._exit(0)\nprint('forked', flush=True)\ntime.sleep(60)", token]
        let out = Pipe()
        parent.standardOutput = out
        try parent.run()
        defer { if parent.isRunning { kill(parent.processIdentifier, SIGKILL); parent.waitUntilExit() } } // our own child
        _ = out.fileHandleForReading.availableData
        usleep(100_000)

        let now = Census.take()
        let leaks = now.leaks(since: before, token: token, ours: [], ownHosts: [netns]).map(\.description)
        let mountKey = "mount \(dir) (tmpfs sbx-census"
        #expect(leaks.contains { $0.hasPrefix(mountKey) }, "the tmpfs is not named: \(leaks)")
        #expect(leaks.contains { $0.hasPrefix("mount /run/netns/\(netns) (nsfs") }, "the namespace mount is not named: \(leaks)")
        #expect(leaks.contains { $0.hasPrefix("network namespace net:[") }, "the namespace is not named: \(leaks)")
        #expect(leaks.contains("veth \(veth) (unmarked)"), "the veth is not named: \(leaks)")
        #expect(leaks.contains { $0.hasPrefix("zombie ") && $0.hasSuffix("(parent \(parent.processIdentifier))") }, "the zombie is not named: \(leaks)")
        #expect(now.survivors(token: token) == [parent.processIdentifier], "survivors: \(now.survivors(token: token))")
        // Not the caller's: the same namespace as another suite's test host. Only this
        // test's namespace is looked for (by its inode): suites running beside it make
        // namespaces of their own meanwhile.
        let ino = (try? FileManager.default.attributesOfItem(atPath: "/run/netns/\(netns)")[.systemFileNumber] as? NSNumber)??.uint64Value
        #expect(ino != nil, "no inode for /run/netns/\(netns)")
        let foreign = now.leaks(since: before, token: token, ours: [], ownHosts: []).map(\.description)
        #expect(!foreign.contains { $0.hasPrefix("mount /run/netns/\(netns)") || $0.hasPrefix("network namespace net:[\(ino ?? 0)]") },
                "another suite's test host counted: \(foreign)")

        kill(parent.processIdentifier, SIGKILL) // our own child
        parent.waitUntilExit()
        EgressTests.ip(["link", "del", veth])
        EgressTests.ip(["netns", "del", netns])
        _ = try Harness.run("/bin/umount", [dir])
        let (after, left) = Census.settle(since: before, token: token, ours: [], ownHosts: [netns], timeout: 10)
        #expect(left.isEmpty, "still named once removed: \(left)")
        #expect(after.survivors(token: token).isEmpty)
    }
}
