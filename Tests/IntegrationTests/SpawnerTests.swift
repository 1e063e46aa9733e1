import CSandboxTestSupport
import Foundation
import Glibc
import Testing

/// A server's sandbox inits are cloned by its spawner (sandbox_spawner.h), a copy of
/// the server taken before any request: an init is still the server's child, holds
/// nothing of another client's request, and the spawner neither outlives the server
/// nor takes the server down with it.
@Suite struct SpawnerTests {
    typealias Served = ServeTests.Served
    typealias Client = ServeTests.Client
    typealias Stdio = ServeTests.Stdio

    struct Proc: CustomStringConvertible { let pid: Int32, comm: String, state: Character
        var description: String { "\(pid) \(comm) \(state)" }
    }

    /// The processes whose parent is `parent` (from /proc/*/stat).
    static func children(of parent: Int32) -> [Proc] {
        var found: [Proc] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            let comm = String(stat[stat.index(after: open)..<close])
            let rest = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard rest.count > 1, let ppid = Int32(rest[1]), ppid == parent else { continue }
            found.append(Proc(pid: pid, comm: comm, state: rest[0].first ?? "?"))
        }
        return found
    }

    /// A server of this test's own, listening; nil when the test cannot run here.
    static func startServer(builtAhead: Int? = nil) throws -> Served? {
        guard Harness.require(Harness.isRoot, "root") else { return nil }
        let served = try Served(builtAhead: builtAhead)
        guard Harness.require(served.ready, "sandbox serve started") else { served.stop(); return nil }
        return served
    }

    /// The server's spawner: forked before the server listens, it names itself
    /// (PR_SET_NAME) when it first runs, which on a loaded host can be after the
    /// socket is ready; waited for up to 10 s.
    static func spawners(of server: Int32) -> [Proc] {
        waitFor(1) { children(of: server).filter { $0.comm == "sandbox-spawner" } }
    }

    static func inits(of server: Int32) -> [Int32] {
        children(of: server).filter { $0.comm == "sandbox-init" && $0.state != "Z" }.map(\.pid)
    }

    /// Waits up to 10 s for `count` live inits of the server.
    static func waitForInits(of server: Int32, count: Int) -> [Int32] {
        waitFor(count) { inits(of: server) }
    }

    /// Polls `look` for up to 10 s until it finds at least `count`; its last answer.
    static func waitFor<C: Collection>(_ count: Int, _ look: () -> C) -> C {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let found = look()
            if found.count >= count { return found }
            usleep(20_000)
        }
        return look()
    }

    /// Which of `needles` occur in the writable memory of `pid` (root reads
    /// /proc/<pid>/mem; every writable mapping: heap, stacks, data, anonymous).
    static func memory(of pid: Int32, contains needles: [String]) -> [String: Bool] {
        var found = Dictionary(uniqueKeysWithValues: needles.map { ($0, false) })
        // Read to its end: a proc file reports size 0, and a reader that trusts the
        // size stops after its first page, missing the mappings past it.
        guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/maps"),
              let bytes = try? handle.readToEnd() else { return found }
        try? handle.close()
        let maps = String(decoding: bytes, as: UTF8.self)
        let fd = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return found }
        defer { close(fd) }
        let patterns = needles.map { Array($0.utf8) }
        let overlap = patterns.map(\.count).max() ?? 0
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, fields[1].hasPrefix("rw") else { continue }
            if fields.count >= 6, fields[5].hasPrefix("[v") { continue }   // [vvar], [vsyscall]
            let range = fields[0].split(separator: "-").compactMap { UInt64($0, radix: 16) }
            guard range.count == 2 else { continue }
            var at = range[0]
            var carry: [UInt8] = []
            while at < range[1] {
                let n = Int(min(UInt64(1 << 20), range[1] - at))
                var chunk = [UInt8](repeating: 0, count: n)
                let got = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, n, off_t(Int64(bitPattern: at))) }
                if got <= 0 { break }
                let window = carry + chunk[..<got]
                for (i, p) in patterns.enumerated() where !found[needles[i]]! {
                    if window.count >= p.count, Self.find(p, in: window) { found[needles[i]] = true }
                }
                carry = Array(window.suffix(overlap))
                at += UInt64(got)
            }
        }
        return found
    }

    static func find(_ p: [UInt8], in hay: [UInt8]) -> Bool {
        guard let first = p.first, hay.count >= p.count else { return false }
        var i = 0
        let last = hay.count - p.count
        while i <= last {
            guard let j = hay[i...last].firstIndex(of: first) else { return false }
            if hay[j..<(j + p.count)].elementsEqual(p) { return true }
            i = j + 1
        }
        return false
    }

    @Test func anInitHoldsNothingOfAnotherClientsRequest() throws {
        guard let served = try Self.startServer() else { return }
        defer { served.stop() }
        let server = served.process.processIdentifier
        let spawners = Self.spawners(of: server)
        #expect(spawners.count == 1, "the server's children: \(Self.children(of: server))")
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        // A's request is the longer by far (its command ends with A's marker 200 kB
        // in): a spawner that kept the bytes of its last request would leave that
        // tail in B's init.
        let markerA = "client-a-" + UUID().uuidString
        let markerB = "client-b-" + UUID().uuidString
        let padding = String(repeating: "x", count: 100_000)   // execve takes 128 KiB a string
        let argvA = ["sh", "-c", "sleep 8", padding, padding + markerA]
        let a = try Client(served.socket)
        defer { a.close() }
        let stdioA = Stdio()
        a.send(ServeTests.request(id: "a", policy: "agent", argv: argvA, cwd: ws), fds: stdioA.fds)
        stdioA.closeSent()
        let first = Self.waitForInits(of: server, count: 1)
        try #require(first.count == 1, "A's run did not start: \(Self.children(of: server))")
        let b = try Client(served.socket)
        defer { b.close() }
        let stdioB = Stdio()
        b.send(ServeTests.request(id: "b", policy: "agent", argv: ["sh", "-c", "sleep 5 # \(markerB)"], cwd: ws), fds: stdioB.fds)
        stdioB.closeSent()
        let both = Self.waitForInits(of: server, count: 2)
        let initB = try #require(both.first { !first.contains($0) }, "B's run did not start: \(Self.children(of: server))")

        // B's init first, while it surely runs (reading the server's memory takes
        // a while on a loaded host).
        let seen = Self.memory(of: initB, contains: [markerA, markerB])
        #expect(seen[markerB] == true, "the probe does not find B's own request in B's init")
        #expect(seen[markerA] == false, "B's init holds A's request")
        // Control: A's request is in the server's memory while A runs (an init
        // copied from the server would hold it too).
        #expect(Self.memory(of: server, contains: [markerA])[markerA] == true, "the probe does not find A's request in the server")

        #expect(b.reply()?["exitCode"] as? Int == 0)
        #expect(a.reply()?["exitCode"] as? Int == 0)
        _ = stdioA.output(); _ = stdioB.output()
    }

    @Test func aKilledSpawnerLeavesTheServerCloningItself() throws {
        guard let served = try Self.startServer() else { return }
        defer { served.stop() }
        let server = served.process.processIdentifier
        let spawner = try #require(Self.spawners(of: server).first)
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        #expect(try ServeTests.runOnce(served, policy: "agent", argv: ["sh", "-c", "exit 3"], cwd: ws).reply?["exitCode"] as? Int == 3)
        // The server's spawner, started by the server this test started.
        kill(spawner.pid, SIGKILL)
        usleep(100_000)
        for i in 0..<3 {
            let r = try ServeTests.runOnce(served, policy: "agent", argv: ["sh", "-c", "exit \(4 + i)"], cwd: ws)
            #expect(r.reply?["exitCode"] as? Int == 4 + i, "run \(i) after the spawner was killed: \(r.reply ?? [:])")
        }
        #expect(served.process.isRunning)
        #expect(!Self.children(of: server).contains { $0.pid == spawner.pid }, "the killed spawner was not reaped")
    }

    @Test func theSpawnerEndsWithAKilledServer() throws {
        guard let served = try Self.startServer() else { return }
        defer { served.stop() }
        let server = served.process.processIdentifier
        let spawner = try #require(Self.spawners(of: server).first)
        kill(server, SIGKILL)   // our own child
        let deadline = Date().addingTimeInterval(5)
        var state = "?"
        while Date() < deadline {
            guard let stat = try? String(contentsOfFile: "/proc/\(spawner.pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { state = "gone"; break }
            state = String(stat[stat.index(close, offsetBy: 2)])
            if state == "Z" || state == "X" { break }
            usleep(20_000)
        }
        #expect(state == "gone" || state == "Z" || state == "X", "the spawner outlived its server by 5 s (state \(state))")
    }
}

extension SpawnerTests {
    /// A run without egress or a kept network capability takes a network namespace
    /// the spawner made ahead (owned by the initial user namespace; `lo` up when the
    /// policy asks for it): each run its own, none the host's. A run that keeps a
    /// network capability gets one of its own user namespace, where the capability
    /// acts (bind to port 80).
    @Test func runsTakeNetworkNamespacesMadeAheadEachItsOwn() throws {
        guard let served = try Self.startServer() else { return }
        defer { served.stop() }
        let server = served.process.processIdentifier
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let host = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")) ?? "?"
        let bind = "import socket, os; s = socket.socket(); s.bind(('127.0.0.1', PORT)); s.listen(); print(os.readlink('/proc/self/ns/net'))"
        var seen: [String] = []
        for _ in 0..<3 {
            let r = try ServeTests.runOnce(served, policy: "agent", argv: ["python3", "-c", bind.replacingOccurrences(of: "PORT", with: "5555")], cwd: ws)
            #expect(r.reply?["exitCode"] as? Int == 0, "loopback run: \(r.reply ?? [:]) \(r.err)")
            seen.append(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(Set(seen).count == 3 && !seen.contains(host) && !seen.contains(""), "namespaces \(seen), host \(host)")

        // Who owns the namespace of a running init: the initial user namespace.
        let a = try ServeTests.Client(served.socket)
        defer { a.close() }
        let stdio = ServeTests.Stdio()
        a.send(ServeTests.request(id: "a", policy: "agent", argv: ["sleep", "2"], cwd: ws), fds: stdio.fds)
        stdio.closeSent()
        let inits = Self.waitForInits(of: server, count: 1)
        try #require(inits.count == 1, "no init: \(Self.children(of: server))")
        #expect(sbx_test_netns_owned_by_ours(inits[0]) == 1, "the agent run's namespace was not made ahead")
        #expect(a.reply()?["exitCode"] as? Int == 0)
        _ = stdio.output()

        // A kept network capability acts in its own namespace only.
        let keep = Harness.policy("""
            name = "serve-keep"
            extends = ["agent"]
            [capabilities]
            keep = ["net_bind_service"]
            """, in: ws, name: "serve-keep.toml")
        let b = try ServeTests.Client(served.socket)
        defer { b.close() }
        let stdioB = ServeTests.Stdio()
        b.send(ServeTests.request(id: "b", policy: keep, argv: ["python3", "-c", bind.replacingOccurrences(of: "PORT", with: "80") + "; import time; time.sleep(2)"], cwd: ws), fds: stdioB.fds)
        stdioB.closeSent()
        let both = Self.waitForInits(of: server, count: 1)
        if let initB = both.first { #expect(sbx_test_netns_owned_by_ours(initB) == 0, "a run keeping net_bind_service took a namespace made ahead") }
        let rb = b.reply()
        let (out, err) = stdioB.output()
        #expect(rb?["exitCode"] as? Int == 0, "bind to port 80 with net_bind_service kept: \(rb ?? [:]) \(out) \(err)")
    }

    /// An egress run takes a namespace made ahead too (session 31): it is set up from
    /// the init's pidfd as before, the allowed port answers, the refused one is
    /// refused and reported, the command cannot change its interface (the namespace
    /// is owned by the initial user namespace, where it has nothing), and the next
    /// run has another namespace.
    @Test func egressRunsTakeANamespaceMadeAhead() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        guard let served = try Self.startServer() else { return }
        defer { served.stop() }
        let server = served.process.processIdentifier
        try EgressTests.withRemotes { h1, _ in
            let ws = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: ws) }
            let probe = EgressTests.writeProbe(in: ws)
            let policy = EgressTests.egressPolicy(in: ws, allow: h1.address, dns: h1.address)
            let script = "readlink /proc/self/ns/net; ip link set eth0 down 2>/dev/null; echo \"ip=$?\"; sleep 1; "
                + "python3 \(probe) tcp:\(h1.address):8080 tcp:\(h1.address):8081"
            let client = try ServeTests.Client(served.socket)
            defer { client.close() }
            var namespaces: [String] = []
            for i in 0..<2 {
                let stdio = ServeTests.Stdio()
                client.send(ServeTests.request(id: "e\(i)", policy: policy, argv: ["sh", "-c", script], cwd: ws), fds: stdio.fds)
                stdio.closeSent()
                let inits = Self.waitForInits(of: server, count: 1)
                try #require(inits.count == 1, "no init: \(Self.children(of: server))")
                #expect(sbx_test_netns_owned_by_ours(inits[0]) == 1, "the egress run's namespace was not made ahead")
                let reply = client.reply()
                let (out, err) = stdio.output()
                #expect(reply?["exitCode"] as? Int == 0, "\(reply ?? [:]) \(err)")
                let r = EgressTests.results(out)
                #expect(r["ip"] != "0" && r["ip"] != nil, "ip link set eth0 down succeeded: \(out)")
                #expect(r["tcp:\(h1.address):8080"] == "ok:hello-8080", "\(out) \(err)")
                #expect(r["tcp:\(h1.address):8081"] == "ECONNREFUSED", "\(out)")
                #expect(EgressTests.denied(reply).contains { $0.daddr == h1.address && $0.dport == 8081 && $0.proto == "tcp" },
                        "egressDenied: \(reply?["egressDenied"] ?? "none")")
                namespaces.append(out.split(separator: "\n").first.map(String.init) ?? "")
            }
            let host = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")) ?? "?"
            #expect(Set(namespaces).count == 2 && !namespaces.contains(host) && !namespaces.contains(""), "namespaces \(namespaces), host \(host)")
        }
    }
}

extension SpawnerTests {
    /// The network namespaces `pid` holds open (`net:[inode]`), from /proc/<pid>/fd.
    static func heldNetworkNamespaces(of pid: Int32) -> Set<String> { heldNamespaces("net", of: pid) }

    /// The namespaces of one type (`mnt`, `net`…) `pid` holds open, from /proc/<pid>/fd.
    static func heldNamespaces(_ type: String, of pid: Int32) -> Set<String> {
        let dir = "/proc/\(pid)/fd"
        let links = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\($0)") }
        return Set(links.filter { $0.hasPrefix("\(type):[") })
    }

    /// While a run lives, the supervisor holds its mount namespace, so the init's exit
    /// does not unmount the run's tree before the result can be sent (the last
    /// reference's release does it: an expedited RCU grace period and every
    /// superblock's shutdown); teardown lets it go, after the reply.
    @Test func theRunsMountNamespaceIsHeldUntilTeardown() throws {
        // No sandbox built ahead, whose mount namespace the server holds as well.
        guard let served = try Self.startServer(builtAhead: 0) else { return }
        defer { served.stop() }
        let server = served.process.processIdentifier
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let client = try Client(served.socket)
        defer { client.close() }
        let stdio = Stdio()
        client.send(ServeTests.request(id: "m", policy: "agent", argv: ["sleep", "2"], cwd: ws), fds: stdio.fds)
        stdio.closeSent()
        let inits = Self.waitForInits(of: server, count: 1)
        try #require(inits.count == 1, "no init: \(Self.children(of: server))")
        let initsNamespace = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(inits[0])/ns/mnt")) ?? "?"
        let held = Self.waitFor(1) { Self.heldNamespaces("mnt", of: server) }
        #expect(held == [initsNamespace], "held \(held), the init's \(initsNamespace)")
        let reply = client.reply()
        _ = stdio.output()
        #expect(reply?["exitCode"] as? Int == 0, "\(reply ?? [:])")
        // Let go once the run is torn down (the reply comes first).
        let deadline = Date().addingTimeInterval(10)
        while !Self.heldNamespaces("mnt", of: server).isEmpty && Date() < deadline { usleep(20_000) }
        #expect(Self.heldNamespaces("mnt", of: server).isEmpty, "still held: \(Self.heldNamespaces("mnt", of: server))")
    }

    /// Waits up to 10 s until the server holds at least `count` namespaces.
    static func waitForPreparedNamespaces(of pid: Int32, count: Int) -> Set<String> {
        waitFor(count) { heldNetworkNamespaces(of: pid) }
    }

    /// Under serve, an egress run after the first of its ruleset takes a namespace
    /// the server prepared while it waited (`EgressNamespacePool`): its firewall
    /// already loaded, so the run's set-up adds only its veth and address. Each is
    /// given once; a run whose ruleset differs never gets one prepared for another
    /// ruleset, and its own rules hold, not the others'.
    @Test func egressRunsTakeANamespacePreparedWithTheirRuleset() throws {
        // Nothing built ahead: each request's own run takes from the pool (a sandbox
        // built ahead takes its namespace in the build: BuiltAheadTests).
        guard let served = try Self.startServer(builtAhead: 0) else { return }
        defer { served.stop() }
        let server = served.process.processIdentifier
        try EgressTests.withRemotes { h1, _ in
            let ws = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: ws) }
            let probe = EgressTests.writeProbe(in: ws)
            let first = EgressTests.egressPolicy(in: ws, allow: h1.address, dns: h1.address)   // 8080 open
            let second = Harness.egressPolicy(in: ws, name: "egress-other", network: """
                dns = ["\(h1.address)"]
                allow = [{ cidr = "\(h1.address)/32", ports = [8081], proto = "tcp" }]
                """)
            let script = "readlink /proc/self/ns/net; python3 \(probe) tcp:\(h1.address):8080 tcp:\(h1.address):8081"
            let client = try ServeTests.Client(served.socket)
            defer { client.close() }
            func run(_ policy: String, _ id: String) throws -> (ns: String, probe: [String: String], reply: [String: Any]?) {
                let stdio = ServeTests.Stdio()
                client.send(ServeTests.request(id: id, policy: policy, argv: ["sh", "-c", script], cwd: ws), fds: stdio.fds)
                stdio.closeSent()
                let reply = client.reply()
                let (out, err) = stdio.output()
                #expect(reply?["exitCode"] as? Int == 0, "\(id): \(reply ?? [:]) \(err)")
                return (out.split(separator: "\n").first.map(String.init) ?? "", EgressTests.results(out), reply)
            }

            // The first runs of a ruleset find none prepared (control: their
            // namespaces are not ones the server held before), and after the first
            // alone none is made (a ruleset asked for once may never come back).
            let before = Self.heldNetworkNamespaces(of: server)
            let cold = try run(first, "cold")
            #expect(!cold.ns.isEmpty && !before.contains(cold.ns), "\(cold.ns) in \(before)")
            usleep(500_000)
            let afterOne = Self.heldNetworkNamespaces(of: server)
            #expect(afterOne.isEmpty, "namespaces prepared for a ruleset asked for once: \(afterOne)")
            let again = try run(first, "again")
            #expect(!again.ns.isEmpty && !afterOne.contains(again.ns), "\(again.ns) in \(afterOne)")
            // Then the server prepares some; each later run of the ruleset takes one,
            // and its firewall is the policy's: 8080 open, 8081 refused and counted.
            var taken: [String] = []
            for i in 0..<3 {
                let held = Self.waitForPreparedNamespaces(of: server, count: 1)
                try #require(!held.isEmpty, "the server prepared no namespace")
                let warm = try run(first, "warm\(i)")
                #expect(held.contains(warm.ns), "run \(i): \(warm.ns) is not one the server prepared: \(held)")
                #expect(warm.probe["tcp:\(h1.address):8080"] == "ok:hello-8080", "\(warm.probe)")
                #expect(warm.probe["tcp:\(h1.address):8081"] == "ECONNREFUSED", "\(warm.probe)")
                #expect(EgressTests.denied(warm.reply).contains { $0.daddr == h1.address && $0.dport == 8081 && $0.proto == "tcp" },
                        "egressDenied: \(warm.reply?["egressDenied"] ?? "none")")
                taken.append(warm.ns)
            }
            #expect(Set(taken).count == taken.count, "a namespace was given twice: \(taken)")

            // Another ruleset: none of those prepared for the first is given, and
            // its own rules hold (8081 open, 8080 refused).
            let forFirst = Self.waitForPreparedNamespaces(of: server, count: 1)
            let other = try run(second, "other")
            #expect(!forFirst.contains(other.ns), "\(other.ns) was prepared for another ruleset: \(forFirst)")
            #expect(other.probe["tcp:\(h1.address):8081"] == "ok:hello-8081", "\(other.probe)")
            #expect(other.probe["tcp:\(h1.address):8080"] == "ECONNREFUSED", "\(other.probe)")

            // The first ruleset's namespaces are kept beside the second's (red team,
            // session 32: with one ruleset kept, two clients of two policies emptied
            // the pool for each other): its next run still takes one.
            let kept = Self.waitForPreparedNamespaces(of: server, count: 2)
            let back = try run(first, "back")
            #expect(forFirst.intersection(kept).contains(back.ns), "\(back.ns): not one prepared for its ruleset before: \(forFirst) / \(kept)")
            #expect(back.probe["tcp:\(h1.address):8080"] == "ok:hello-8080", "\(back.probe)")

            // A run that keeps a network capability cannot take a namespace made
            // ahead: none is taken for it (those prepared stay held) and it runs in
            // one of its own, with its own rules.
            let keeps = Harness.egressPolicy(in: ws, name: "egress-keeps", network: """
                dns = ["\(h1.address)"]
                allow = [{ cidr = "\(h1.address)/32", ports = [8080], proto = "tcp" }]
                [capabilities]
                keep = ["net_bind_service"]
                """)
            let held = Self.waitForPreparedNamespaces(of: server, count: 2)
            let keeping = try run(keeps, "keeps")
            #expect(!held.contains(keeping.ns), "a run keeping net_bind_service ran in a prepared namespace: \(keeping.ns)")
            #expect(keeping.probe["tcp:\(h1.address):8080"] == "ok:hello-8080", "\(keeping.probe)")
            #expect(held.isSubset(of: Self.heldNetworkNamespaces(of: server)), "a prepared namespace was taken for a run that cannot use it")
        }
    }
}

extension SpawnerTests {
    /// A client whose stdin is a file whose close never returns (a FUSE daemon that
    /// never answers FLUSH) holds up no other client (red team, session 28: the
    /// spawner closed it before replying, under the one lock every spawn takes, so
    /// every other run and the server's shutdown waited for ever). The spawner now
    /// replies first and leaves such a close to a child of its own.
    @Test func aCloseThatNeverReturnsHoldsUpNoOtherClient() throws {
        guard let served = try Self.startServer() else { return }
        defer { served.stop() }
        let ws = Harness.tempDir(), mnt = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws); rmdir(mnt) }
        var daemon: Int32 = 0
        let mounted = sbx_test_fuse_that_never_flushes(mnt, 0, &daemon)
        try #require(mounted == 0, "FUSE mount: \(String(cString: strerror(-mounted)))")
        let stuck = open(mnt + "/f", O_RDONLY | O_CLOEXEC)
        // Killing our daemon aborts the connection: every waiting close returns
        // (ours too: closed only then).
        defer { kill(daemon, SIGKILL); waitpid(daemon, nil, 0); if stuck >= 0 { close(stuck) }; umount2(mnt, Int32(MNT_DETACH)) }
        try #require(stuck >= 0, "open the FUSE file: \(String(cString: strerror(errno)))")

        let attacker = try Client(served.socket)
        defer { attacker.close() }
        var out: [Int32] = [0, 0]
        pipe(&out)
        attacker.send(ServeTests.request(id: "stuck", policy: "agent", argv: ["true"], cwd: ws), fds: [stuck, out[1], out[1]])
        close(out[1])
        defer { close(out[0]) }
        usleep(500_000)

        // Another client's run, with a deadline instead of a hang.
        final class Box: @unchecked Sendable {   // written by the thread before `done`
            let served: Served
            var reply: [String: Any]?
            let done = DispatchSemaphore(value: 0)
            init(_ served: Served) { self.served = served }
        }
        let box = Box(served)
        Thread.detachNewThread {
            box.reply = (try? ServeTests.runOnce(box.served, policy: "agent", argv: ["sh", "-c", "exit 7"], cwd: ws))?.reply
            box.done.signal()
        }
        let finished = box.done.wait(timeout: .now() + 30) == .success
        #expect(finished, "another client's run waited 30 s behind the stuck close")
        if finished { #expect(box.reply?["exitCode"] as? Int == 7, "\(box.reply ?? [:])") }
    }
}
