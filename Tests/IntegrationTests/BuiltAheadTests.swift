import Foundation
import Testing

/// `sandbox serve` builds the next sandbox for a client, policy and directory ahead of
/// its command (Docs/serve.md, "Sandboxes built ahead"). A request takes it only when
/// the plan compiled for the request makes exactly that sandbox; each is used once;
/// the result is what a sandbox built for the request would give; nothing of one is
/// left for another, nor after the server.
@Suite(.serialized) struct BuiltAheadTests {
    typealias Served = ServeTests.Served

    static let runBase = "/run/sandbox"

    /// The run ids whose run directory `pid` holds open (its lock: a supervisor holds
    /// its runs' for their whole life), from /proc/<pid>/fd.
    static func runs(of pid: Int32) -> Set<String> {
        let dir = "/proc/\(pid)/fd"
        let links = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\($0)") }
        return Set(links.compactMap { link -> String? in
            guard link.hasPrefix(runBase + "/") else { return nil }
            return link.dropFirst(runBase.count + 1).split(separator: "/").first.map(String.init)
        })
    }

    /// The run directories of sandboxes built ahead that wait for their command (their
    /// record's argv is the placeholder), by run id; `server`'s only, when given (the
    /// suite's other servers run beside).
    static func waiting(of server: Int32? = nil) -> Set<String> {
        let base = runBase
        var ids = Set((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [])
        if let server { ids.formIntersection(runs(of: server)) }
        return Set(ids.filter { id in
            guard let data = FileManager.default.contents(atPath: "\(base)/\(id)/state.json"),
                  let record = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
            return record["argv"] as? [String] == ["sandbox-built-ahead"]
        })
    }

    /// The server's children waiting as a sandbox built ahead (`ps` shows "sandbox-ahead").
    static func aheadInits(of server: Int32) -> [Int32] {
        SpawnerTests.children(of: server).filter { $0.comm == "sandbox-ahead" && $0.state != "Z" }.map(\.pid)
    }

    /// Waits for a sandbox built ahead of the server's (its init waiting and its run
    /// directory recorded); the run ids waiting then. A build during which a mount
    /// changed anywhere on the host is let go (the suite's other tests mount), so
    /// when none is there after 3 s, `retrigger` (a policy and a directory) has
    /// `true` run once more, which builds the next; at most 5 times.
    static func waitForOneAhead(_ served: Served, retrigger: (policy: String, cwd: String)? = nil) -> Set<String> {
        let server = served.process.processIdentifier
        for attempt in 0..<5 {
            let deadline = Date().addingTimeInterval(retrigger == nil ? 10 : 3)
            while Date() < deadline {
                let ids = waiting(of: server)
                if !aheadInits(of: server).isEmpty && !ids.isEmpty { return ids }
                usleep(20_000)
            }
            guard let retrigger, attempt < 4 else { break }
            _ = try? ServeTests.runOnce(served, policy: retrigger.policy, argv: ["true"], cwd: retrigger.cwd)
        }
        return []
    }

    /// Whether `pid` exists and is not a zombie (its /proc stat state).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }

    /// Runs `argv` once a sandbox is built ahead, until a run takes one (at most
    /// `attempts` times): a mount made anywhere in the host's namespace meanwhile (the
    /// suite's other tests mount and unmount) lets the one built ahead go, rightly.
    /// The last run, and whether it took a sandbox built ahead.
    static func runInOneBuiltAhead(_ served: Served, policy: String, argv: [String], cwd: String, attempts: Int = 6)
        throws -> (reply: [String: Any]?, out: String, err: String, took: Bool) {
        var last: (reply: [String: Any]?, out: String, err: String) = (nil, "", "")
        for _ in 0..<attempts {
            let ahead = waitForOneAhead(served, retrigger: (policy, cwd))
            last = try ServeTests.runOnce(served, policy: policy, argv: argv, cwd: cwd)
            if ahead.contains(last.reply?["runId"] as? String ?? "-") { return (last.reply, last.out, last.err, true) }
        }
        return (last.reply, last.out, last.err, false)
    }

    static func start(builtAhead: Int? = nil) throws -> Served? {
        guard Harness.require(Harness.isRoot, "root") else { return nil }
        let served = try Served(builtAhead: builtAhead)
        guard Harness.require(served.ready, "sandbox serve started") else { served.stop(); return nil }
        return served
    }

    /// The second request of a client runs in the sandbox built after the first (its
    /// run id is the one that waited), and its result is the one `exec` gives for it;
    /// with `--built-ahead 0` nothing is built ahead (the control: the waiting one
    /// is the server's doing).
    @Test func aRequestRunsInTheSandboxBuiltForItWithExecsResult() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let policy = ServeTests.notifyPolicy(in: ws)
        _ = try ServeTests.runOnce(served, policy: policy, argv: ["true"], cwd: ws)
        let argv = ["sh", "-c", "echo out; unshare -r true 2>/dev/null; echo err >&2; exit 7"]
        for round in 0..<2 {
            let (reply, out, err, took) = try Self.runInOneBuiltAhead(served, policy: policy, argv: argv, cwd: ws)
            let runId = reply?["runId"] as? String ?? "-"
            #expect(took, "round \(round): run \(runId) did not take a sandbox built ahead")
            let exec = try Harness.exec(policy: policy, argv, cwd: ws)
            #expect(ServeTests.sameContent(reply, exec.result), "serve \(reply ?? [:])\nexec \(exec.result ?? [:])")
            #expect(out == "out\n" && err == "err\n", "stdout \(out) stderr \(err)")
            #expect(ServeTests.syscalls(reply) == ["unshare"], "\(reply ?? [:])")
            let want = try ServeTests.planDigest(policy: policy, argv: argv, runId: runId, cwd: ws)
            #expect(want != nil && reply?["planDigest"] as? String == want, "digest \(reply?["planDigest"] ?? "-") vs plan \(want ?? "-")")
        }

        guard let none = try Self.start(builtAhead: 0) else { return }
        defer { none.stop() }
        _ = try ServeTests.runOnce(none, policy: policy, argv: ["true"], cwd: ws)
        usleep(500_000)
        #expect(Self.aheadInits(of: none.process.processIdentifier).isEmpty, "--built-ahead 0 built one")
    }

    /// The sandbox built after a request is made from that request's plan, so the
    /// mount watch it rests on starts before that plan: a mount made and undone while
    /// the request runs (after its plan, before the build) lets the build go, and
    /// nothing waits. Control: the same request with no mount leaves one waiting (a
    /// few tries: the suite's other tests mount too). A build with its own plan and
    /// watch would have kept the first.
    @Test func aMountChangeAfterTheRequestsPlanLetsTheBuildFromItGo() throws {
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let target = ws + "/mnt"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let slow = ["sh", "-c", "sleep 0.6"]
        func firstRequest(mounting: Bool) throws -> Bool {
            guard let served = try Self.start() else { throw CancellationError() }
            defer { served.stop() }
            let server = served.process.processIdentifier
            var mountStatus: Int32 = -1
            let mounter = Thread {
                usleep(250_000)
                mountStatus = (try? Harness.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "window-test", target]))?.status ?? -1
                _ = try? Harness.run("/bin/umount", [target])
            }
            if mounting { mounter.start() }
            let reply = try ServeTests.runOnce(served, policy: "agent", argv: slow, cwd: ws).reply
            #expect(reply?["exitCode"] as? Int == 0, "\(reply ?? [:])")
            if mounting { #expect(mountStatus == 0, "the test's mount failed") }
            usleep(1_000_000)
            return !Self.aheadInits(of: server).isEmpty && !Self.waiting(of: server).isEmpty
        }
        guard Harness.require(Harness.isRoot, "root") else { return }
        var controlBuilt = false
        for _ in 0..<5 where !controlBuilt { controlBuilt = try firstRequest(mounting: false) }
        #expect(controlBuilt, "control: no sandbox was built after a request without a mount")
        #expect(try firstRequest(mounting: true) == false, "a sandbox was built from a plan made before a mount change")
    }

    /// Attack (red team, session 42): the sandbox built after request A is made from
    /// A's plan, and A's command renames an optional bind source away (`{cwd}/cfg/npmrc?`
    /// over the host's `~/.npmrc`); a request from the same client's `cfg` directory (a
    /// different key) puts it back, same inode, so the next request's plan equals A's.
    /// Its run must show the project's file, as a fresh build does. Before the fix the
    /// build skipped the missing optional source quietly, and that request read the
    /// host's file under a plan that lists the bind (its digest and audit record too);
    /// now an optional source the plan found is refused as changed when it is gone
    /// (`openBindSources`). Control: with that check switched off, the request reads
    /// the host's file (measured: `SECRET-host-token`). No other request comes first:
    /// the capacity is the server's, not a key's, and its builds would fill it.
    @Test func anOptionalSourceGoneSinceThePlanLeavesNoSandboxWithoutItsBind() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        let ws = Harness.tempDir(), home = Harness.tempDir(), policies = Harness.tempDir()
        defer { for d in [ws, home, policies] { try? FileManager.default.removeItem(atPath: d) } }
        try "SECRET-host-token\n".write(toFile: home + "/.npmrc", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: ws + "/cfg", withIntermediateDirectories: true)
        try "SAFE-project-npmrc\n".write(toFile: ws + "/cfg/npmrc", atomically: true, encoding: .utf8)
        let policy = Harness.policy("""
            version = 1
            name = "overlay"
            extends = ["agent"]
            [filesystem]
            ro = ["\(home)", { src = "{cwd}/cfg/npmrc?", dst = "\(home)/.npmrc" }]
            """, in: policies, name: "overlay.toml")
        let read = ["cat", home + "/.npmrc"]
        // The first request of this policy and directory: nothing waits for them yet,
        // so the next request would take the sandbox built from A's plan (the builds
        // given time to finish).
        _ = try ServeTests.runOnce(served, policy: policy, argv: ["mv", "cfg/npmrc", "cfg/npmrc.x"], cwd: ws)
        usleep(400_000)
        _ = try ServeTests.runOnce(served, policy: policy, argv: ["mv", "npmrc.x", "npmrc"], cwd: ws + "/cfg")
        usleep(400_000)
        let b = try ServeTests.runOnce(served, policy: policy, argv: read, cwd: ws)
        #expect(b.out == "SAFE-project-npmrc\n", "the run read \(b.out) under a plan that binds the project's file: \(b.reply ?? [:])")
    }

    /// An egress request takes a sandbox built ahead too (its network namespace set up
    /// in the build, from one prepared for its ruleset when the pool has one), with
    /// the result `exec` gives: the allowed port answers, the other is refused and
    /// counted. The next one built ahead has a network of its own: another
    /// namespace, and a refusal account that holds nothing of the first run's
    /// (control: the first run's refusal is counted, so an empty account is this
    /// sandbox's own).
    @Test func anEgressRequestRunsInASandboxBuiltAheadWithANetworkOfItsOwn() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        try EgressTests.withRemotes { h1, _ in
            let ws = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: ws) }
            let probe = EgressTests.writeProbe(in: ws)
            let policy = EgressTests.egressPolicy(in: ws, allow: h1.address, dns: h1.address)
            let open = "tcp:\(h1.address):8080", closed = "tcp:\(h1.address):8081"
            _ = try ServeTests.runOnce(served, policy: policy, argv: ["true"], cwd: ws)

            let refused = ["sh", "-c", "readlink /proc/self/ns/net; python3 \(probe) \(open) \(closed)"]
            let first = try Self.runInOneBuiltAhead(served, policy: policy, argv: refused, cwd: ws)
            #expect(first.took, "run \(first.reply?["runId"] ?? "-") did not take a sandbox built ahead")
            #expect(EgressTests.results(first.out)[open] == "ok:hello-8080", "\(first.out) \(first.err)")
            #expect(EgressTests.results(first.out)[closed] == "ECONNREFUSED", "\(first.out) \(first.err)")
            #expect(EgressTests.denied(first.reply).contains { $0.daddr == h1.address && $0.dport == 8081 && $0.proto == "tcp" },
                    "egressDenied: \(first.reply?["egressDenied"] ?? "none")")
            let exec = try Harness.exec(policy: policy, refused, cwd: ws)
            #expect(ServeTests.sameContent(first.reply, exec.result), "serve \(first.reply ?? [:])\nexec \(exec.result ?? [:])")

            let allowed = ["sh", "-c", "readlink /proc/self/ns/net; python3 \(probe) \(open)"]
            let second = try Self.runInOneBuiltAhead(served, policy: policy, argv: allowed, cwd: ws)
            #expect(second.took, "run \(second.reply?["runId"] ?? "-") did not take a sandbox built ahead")
            #expect(EgressTests.results(second.out)[open] == "ok:hello-8080", "\(second.out) \(second.err)")
            #expect(EgressTests.denied(second.reply).isEmpty, "egressDenied: \(second.reply?["egressDenied"] ?? "none")")
            let namespaces = [first.out, second.out].map { $0.split(separator: "\n").first.map(String.init) ?? "" }
            #expect(!namespaces[0].isEmpty && namespaces[0] != namespaces[1], "network namespaces \(namespaces)")
        }
    }

    /// An egress policy with an allow rule naming a host: the DNS stub and its name
    /// sets are started when a request takes the sandbox built ahead (with its
    /// network), and the run is what `exec` gives: the allowed name resolves through
    /// the stub and connects, another name is NXDOMAIN, never asked upstream, and
    /// counted.
    @Test func aSandboxBuiltAheadResolvesAllowedNamesThroughItsStub() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        try DomainTests.withHosts(records: { ["ok.test=\($0.address)", "bad.test=\($0.address)"] }) { dns, server, web, dir, probe in
            let policy = DomainTests.policy(in: dir, """
                allow = [{ host = "ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            _ = try ServeTests.runOnce(served, policy: policy, argv: ["true"], cwd: dir)
            let argv = ["python3", probe, "name:ok.test:8080", "name:bad.test:8080"]
            let r = try Self.runInOneBuiltAhead(served, policy: policy, argv: argv, cwd: dir)
            #expect(r.took, "run \(r.reply?["runId"] ?? "-") did not take a sandbox built ahead")
            let results = EgressTests.results(r.out)
            #expect(results["name:ok.test:8080"] == "addr:\(web.address)/ok:hello-8080", "\(r.out) \(r.err)")
            #expect(results["name:bad.test:8080"] == "gai:-2", "\(r.out)")
            #expect(!server.questions.contains { $0.hasPrefix("bad.test") }, "a name not allowed reached upstream: \(server.questions)")
            #expect(DomainTests.dnsDenied(r.reply).contains { $0.name == "bad.test" && $0.reason == "not_allowed" },
                    "dnsDenied: \(r.reply?["dnsDenied"] ?? "none")")
            let exec = try Harness.exec(policy: policy, argv, cwd: dir, timeout: 90)
            #expect(ServeTests.sameContent(r.reply, exec.result), "serve \(r.reply ?? [:])\nexec \(exec.result ?? [:])")
        }
    }

    /// A host process that sends a datagram to a sandbox puts a conntrack entry in its
    /// namespace, and the firewall then lets the command's "reply" from that port go
    /// out (`ct state established`). Attack (red team, session 38): prime every
    /// sandbox built ahead and waiting, then have the request that takes one send from
    /// the primed port to the host's refused port. Built ahead, a sandbox's host end
    /// is down and detached until the take, so the priming reaches nothing and the
    /// send is refused and counted. Control: the same priming against a running
    /// command's sandbox (reachable, as any run's is while its command runs) lets the
    /// send out. Not covered, a known limit (Docs/network.md): a datagram the host's
    /// ARP held for the waiting address arrives once the take attaches it, as one
    /// sent just after the command starts would.
    @Test func aHostProcessCannotPrimeASandboxWaitingForItsCommand() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        let server = served.process.processIdentifier
        try EgressTests.withRemotes { h1, _ in
            let ws = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: ws) }
            let policy = EgressTests.egressPolicy(in: ws, allow: h1.address, dns: h1.address)
            let gateway = try #require(Self.bridgeGateway(), "no address on the bridge")
            _ = try ServeTests.runOnce(served, policy: policy, argv: ["true"], cwd: ws)

            var took = false
            for attempt in 0..<4 where !took {
                let ahead = Self.waitForOneAhead(served, retrigger: (policy, ws))
                let addresses = Self.aheadInits(of: server).compactMap(Self.eth0Address(ofProcess:))
                let port = 40100 + attempt
                let listener = try Self.primer(gateway: gateway, port: port, primes: addresses)
                let r = try ServeTests.runOnce(served, policy: policy, argv: Self.sendFromPrimedPort(gateway, port), cwd: ws)
                let heard = Self.finish(listener)
                guard ahead.contains(r.reply?["runId"] as? String ?? "-") else { continue }
                took = true
                #expect(r.out.hasPrefix("error"), "the command's send: \(r.out) \(r.err)")
                #expect(heard == "nothing", "the host heard: \(heard)")
                #expect(EgressTests.denied(r.reply).contains { $0.daddr == gateway && $0.dport == port && $0.proto == "udp" },
                        "egressDenied: \(r.reply?["egressDenied"] ?? "none")")
            }
            #expect(took, "no request took a sandbox built ahead")

            // Control: a running command's sandbox, primed while the command waits.
            let script = "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                + "s.connect((\"\(gateway)\",9))\nprint(s.getsockname()[0],flush=True)\ntime.sleep(2)\n"
                + Self.sendScript(gateway, 40199)
            let run = try EgressScopeTests.Background(Harness.binary, ["exec", "--policy", policy, "--", "python3", "-c", script], cwd: ws)
            let address = run.firstLine()
            let listener = try Self.primer(gateway: gateway, port: 40199, primes: [address])
            let rest = Self.finish(run)
            let heard = Self.finish(listener)
            #expect(rest.hasPrefix("sent") && heard.hasPrefix("GOT"), "control: the command \(rest), the host \(heard) (address \(address))")
        }
    }

    /// The host's address on the sandboxes' bridge.
    static func bridgeGateway() -> String? {
        firstIPv4(EgressTests.ip(["-4", "-o", "addr", "show", "dev", "sbx0"]).stdout)
    }

    /// The IPv4 address of eth0 in the network namespace of `pid`, if any.
    static func eth0Address(ofProcess pid: Int32) -> String? {
        firstIPv4((try? Harness.run("/usr/bin/nsenter", ["--net=/proc/\(pid)/ns/net", "ip", "-4", "-o", "addr", "show", "dev", "eth0"]))?.stdout ?? "")
    }

    /// The address after the first "inet" of `ip -4 -o addr` output, without its length.
    static func firstIPv4(_ ipOutput: String) -> String? {
        let words = ipOutput.split(separator: " ")
        guard let inet = words.firstIndex(of: "inet"), inet + 1 < words.count else { return nil }
        return words[inet + 1].split(separator: "/").first.map(String.init)
    }

    static func sendScript(_ gateway: String, _ port: Int) -> String {
        "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nu.bind((\"0.0.0.0\",5555))\n"
            + "try:\n    u.sendto(b\"exfil\",(\"\(gateway)\",\(port)));print(\"sent\")\n"
            + "except OSError as e:\n    print(\"error\",e.errno)\n"
    }

    static func sendFromPrimedPort(_ gateway: String, _ port: Int) -> [String] {
        ["python3", "-c", "import socket\n" + sendScript(gateway, port)]
    }

    /// A host process (as nobody) bound to `gateway:port` that sends one datagram to
    /// port 5555 of each address in `primes`, then waits 4 s for one back; started
    /// once it has sent.
    static func primer(gateway: String, port: Int, primes: [String]) throws -> EgressScopeTests.Background {
        let code = "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            + "s.bind((\"\(gateway)\",\(port)))\n"
            + "for a in sys.argv[1:]:\n    s.sendto(b\"prime\",(a,5555))\n"
            + "print(\"primed\",flush=True)\ns.settimeout(4)\n"
            + "try:\n    d,p=s.recvfrom(100);print(\"GOT\",d,p,flush=True)\nexcept socket.timeout:\n    print(\"nothing\",flush=True)\n"
        let p = try EgressScopeTests.Background("/usr/bin/setpriv",
                                                ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", code] + primes)
        _ = p.firstLine()
        usleep(200_000)
        return p
    }

    /// What a background process printed after its first line, once it has ended
    /// (the primer: "nothing" or "GOT …").
    static func finish(_ background: EgressScopeTests.Background) -> String {
        background.process.waitUntilExit()
        return String(decoding: background.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A sandbox built ahead after every request does not ask the server's pool of
    /// egress namespaces (`EgressNamespacePool` prepares for a ruleset from its second
    /// request on): after one egress request the network namespaces the server holds
    /// are those of the sandboxes built ahead (their waiting inits'), nothing else.
    /// Control: two requests with nothing built ahead (`--built-ahead 0`) have the
    /// pool prepare some.
    @Test func aSandboxBuiltAheadLeavesThePoolOfEgressNamespacesAlone() throws {
        try EgressTests.withRemotes { h1, _ in
            let ws = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: ws) }
            // Each attempt a ruleset of its own (its port): a build the server let go
            // because the host's mounts changed meanwhile (the suite's other tests
            // mount) is retried with another request, and a second request of one
            // ruleset is the one from which the pool prepares.
            func policy(_ attempt: Int) -> String {
                Harness.egressPolicy(in: ws, name: "egress-ahead-\(attempt)", network: """
                    dns = ["\(h1.address)"]
                    allow = [{ cidr = "\(h1.address)/32", ports = [\(8080 + attempt)], proto = "tcp" }]
                    """)
            }

            guard let served = try Self.start() else { return }
            defer { served.stop() }
            let server = served.process.processIdentifier
            var ahead = Set<String>()
            for attempt in 0..<5 where ahead.isEmpty {
                _ = try ServeTests.runOnce(served, policy: policy(attempt), argv: ["true"], cwd: ws)
                let deadline = Date().addingTimeInterval(3)
                while ahead.isEmpty && Date() < deadline {
                    if !Self.aheadInits(of: server).isEmpty { ahead = Self.waiting(of: server) }
                    if ahead.isEmpty { usleep(20_000) }
                }
            }
            #expect(!ahead.isEmpty, "no sandbox was built ahead")
            usleep(1_000_000)
            let held = SpawnerTests.heldNetworkNamespaces(of: server)
            let waiting = Set(Self.aheadInits(of: server).compactMap {
                try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/ns/net")
            })
            #expect(!waiting.isEmpty && held.isSubset(of: waiting),
                    "namespaces held beside those of the sandboxes built ahead (\(waiting)): \(held)")

            guard let none = try Self.start(builtAhead: 0) else { return }
            defer { none.stop() }
            for _ in 0..<2 { _ = try ServeTests.runOnce(none, policy: policy(0), argv: ["true"], cwd: ws) }
            let prepared = SpawnerTests.waitForPreparedNamespaces(of: none.process.processIdentifier, count: 1)
            #expect(!prepared.isEmpty, "control: the pool prepared nothing after two requests")
        }
    }

    /// Attack: a bind source swapped (renamed away, another directory put in its place)
    /// after the sandbox was built ahead. The request's plan sees the new directory, so
    /// the sandbox holding the old one is not used: the command reads the new file.
    /// Control: without the swap, the same request takes the sandbox built ahead.
    @Test func aSandboxBuiltBeforeASwapIsNotUsed() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        let ws = Harness.tempDir(), shared = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws); try? FileManager.default.removeItem(atPath: shared) }
        let data = shared + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try "old\n".write(toFile: data + "/f", atomically: true, encoding: .utf8)
        let policy = Harness.policy("""
            name = "ahead-bind"
            extends = ["agent"]
            [filesystem]
            ro = ["\(data)"]
            """, in: ws, name: "ahead-bind.toml")
        let read = ["cat", data + "/f"]
        #expect(try ServeTests.runOnce(served, policy: policy, argv: read, cwd: ws).out == "old\n")

        // Control: nothing changed, the sandbox built ahead runs the request.
        let same = try Self.runInOneBuiltAhead(served, policy: policy, argv: read, cwd: ws)
        #expect(same.out == "old\n" && same.took, "control: \(same.reply ?? [:]) did not take a sandbox built ahead")

        // The swap, once the next one is built with the old directory.
        let ahead = Self.waitForOneAhead(served, retrigger: (policy, ws))
        try #require(!ahead.isEmpty, "no sandbox was built ahead")
        try FileManager.default.moveItem(atPath: data, toPath: shared + "/old")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try "new\n".write(toFile: data + "/f", atomically: true, encoding: .utf8)
        let swapped = try ServeTests.runOnce(served, policy: policy, argv: read, cwd: ws)
        let runId = swapped.reply?["runId"] as? String ?? "-"
        #expect(swapped.out == "new\n", "the command read \(swapped.out.debugDescription) after the swap")
        #expect(!ahead.contains(runId), "run \(runId) took the sandbox built before the swap")
        #expect(swapped.reply?["exitCode"] as? Int == 0, "\(swapped.reply ?? [:])")
    }

    /// Attack: a run in a sandbox built ahead leaves a file in its /tmp and a process
    /// of its own (a daemon that left its session); the next run, in the next sandbox
    /// built ahead, finds neither. Control: the run itself sees both.
    @Test func aRunLeavesNothingForTheNextSandboxBuiltAhead() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let policy = "agent"
        _ = try ServeTests.runOnce(served, policy: policy, argv: ["true"], cwd: ws)
        let leave = ["sh", "-c", "echo mark > /tmp/left; setsid sleep 30 < /dev/null > /dev/null 2>&1 & sleep 0.2; cat /tmp/left; ls /proc | grep -c '^[0-9]'"]
        let look = ["sh", "-c", "cat /tmp/left 2>/dev/null || echo none; ls /proc | grep -c '^[0-9]'"]
        let first = try Self.runInOneBuiltAhead(served, policy: policy, argv: leave, cwd: ws)
        #expect(first.took, "the first run was not built ahead: \(first.reply ?? [:])")
        // Control: in its own run, the file is there and the daemon is one more process.
        let mine = first.out.split(separator: "\n")
        #expect(mine.first == "mark" && (Int(mine.last ?? "") ?? 0) >= 4, "control: \(first.out)")
        let next = try Self.runInOneBuiltAhead(served, policy: policy, argv: look, cwd: ws)
        #expect(next.took, "the next run was not built ahead: \(next.reply ?? [:])")
        let seen = next.out.split(separator: "\n")
        // Its own processes only: the init, sh, ls and grep.
        #expect(seen.first == "none" && (Int(seen.last ?? "") ?? 99) <= 4, "the next run saw: \(next.out)")
    }

    /// A server that stops lets its sandboxes built ahead go (init gone, run directory
    /// removed); one killed takes their inits with it (PDEATHSIG), and `sandbox gc`
    /// removes what they left.
    @Test func aStoppedOrKilledServerLeavesNoSandboxBuiltAhead() throws {
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        for kill in [false, true] {
            guard let served = try Self.start() else { return }
            let server = served.process.processIdentifier
            _ = try ServeTests.runOnce(served, policy: "agent", argv: ["true"], cwd: ws)
            let ahead = Self.waitForOneAhead(served, retrigger: ("agent", ws))
            let inits = Self.aheadInits(of: server)
            try #require(!ahead.isEmpty && !inits.isEmpty, "no sandbox was built ahead")
            if kill { Glibc.kill(server, SIGKILL) }   // our own child, not yet reaped
            _ = served.stop()
            let deadline = Date().addingTimeInterval(10)
            func alive() -> [Int32] { inits.filter(Self.isRunning) }
            while !alive().isEmpty && Date() < deadline { usleep(20_000) }
            #expect(alive().isEmpty, "kill \(kill): inits \(alive()) outlived the server")
            if kill {
                // Under the suite's gc lock: a gc removes every stale run, and another
                // test may be keeping one stale on purpose (ExecTests' killed supervisor).
                Harness.gcLock.lock()
                defer { Harness.gcLock.unlock() }
                _ = try Harness.sandbox(["gc"])
            }
            #expect(Self.waiting().intersection(ahead).isEmpty, "kill \(kill): left \(Self.waiting().intersection(ahead))")
        }
    }

    /// Attack (red team, session 36): `.git` replaced on the host after the sandbox
    /// was built ahead (`rm -rf .git && mkdir .git`, or renamed away and made anew).
    /// The plan names `protect` by path, so it compares equal; but the mount the init
    /// made sits on the old entry, and the new `.git` would be writable: hooks planted
    /// there run with the host's next git command. Control: seen from the host, the
    /// waiting sandbox's `.git` is no longer a mount (the attack's premise), and
    /// without a replacement the sandbox is taken and `.git` is read-only in it.
    @Test func aSandboxWhoseProtectedEntryWasReplacedIsNotUsed() throws {
        // One at a time: the waiting init looked at is the one built before the replacement.
        guard let served = try Self.start(builtAhead: 1) else { return }
        defer { served.stop() }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let server = served.process.processIdentifier
        try FileManager.default.createDirectory(atPath: ws + "/.git/hooks", withIntermediateDirectories: true)
        let plant = ["sh", "-c", "touch .git/hooks/pwn 2>/dev/null; echo rc=$?"]
        _ = try ServeTests.runOnce(served, policy: "agent", argv: ["true"], cwd: ws)

        // Control: nothing replaced; taken, and .git read-only in it.
        let kept = try Self.runInOneBuiltAhead(served, policy: "agent", argv: plant, cwd: ws)
        #expect(kept.took && kept.out == "rc=1\n", "control: \(kept.out) \(kept.reply ?? [:])")

        for replace in ["rm -rf .git && mkdir -p .git/hooks", "mv .git .git-old && mkdir -p .git/hooks"] {
            let ahead = Self.waitForOneAhead(served, retrigger: ("agent", ws))
            let waitingInit = try #require(Self.aheadInits(of: server).first, "no sandbox was built ahead")
            #expect(Self.isMountRoot(pid: waitingInit, ws + "/.git") == true, "\(replace): .git is not protected in the sandbox built ahead")
            let r = try Harness.run("/bin/sh", ["-c", replace], cwd: ws)
            #expect(r.status == 0, "\(replace): \(r)")
            // The premise: the sandbox built before now has an unprotected .git.
            #expect(Self.isMountRoot(pid: waitingInit, ws + "/.git") == false, "\(replace): the attack did not take")
            let after = try ServeTests.runOnce(served, policy: "agent", argv: plant, cwd: ws)
            #expect(after.out == "rc=1\n", "\(replace): the new .git was writable: \(after.out)")
            #expect(!ahead.contains(after.reply?["runId"] as? String ?? "-"), "\(replace): ran in the sandbox built before")
            #expect(!FileManager.default.fileExists(atPath: ws + "/.git/hooks/pwn"))
            try? FileManager.default.removeItem(atPath: ws + "/.git-old")
        }
    }

    /// Attack (red team, session 36): a mount on the host after the sandbox was built
    /// ahead — a tmpfs over a directory beneath the client's, hiding what is under it.
    /// The plan does not see mounts beneath a bind; the sandbox cloned the tree as it
    /// was. Control: seen from the host, the waiting sandbox still shows the hidden
    /// file (the attack's premise); a request after the mount does not run there and
    /// does not see it.
    @Test func aSandboxBuiltBeforeAMountChangeIsNotUsed() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let server = served.process.processIdentifier
        try FileManager.default.createDirectory(atPath: ws + "/secrets", withIntermediateDirectories: true)
        try "TOPSECRET\n".write(toFile: ws + "/secrets/key", atomically: true, encoding: .utf8)
        let read = ["sh", "-c", "cat secrets/key 2>/dev/null || echo hidden"]
        _ = try ServeTests.runOnce(served, policy: "agent", argv: ["true"], cwd: ws)
        let ahead = Self.waitForOneAhead(served, retrigger: ("agent", ws))
        let waitingInit = try #require(Self.aheadInits(of: server).first, "no sandbox was built ahead")
        let mounted = try Harness.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "ahead-test", ws + "/secrets"])
        try #require(mounted.status == 0, "mount: \(mounted)")
        defer { _ = try? Harness.run("/bin/umount", [ws + "/secrets"]) }
        // The premise: the sandbox built before still shows what the mount hides.
        let inside = (try? String(contentsOfFile: "/proc/\(waitingInit)/root\(ws)/secrets/key", encoding: .utf8)) ?? "-"
        #expect(inside == "TOPSECRET\n", "the sandbox built ahead does not show the hidden file: \(inside)")
        let after = try ServeTests.runOnce(served, policy: "agent", argv: read, cwd: ws)
        #expect(after.out == "hidden\n", "the command read what the mount hides: \(after.out)")
        #expect(!ahead.contains(after.reply?["runId"] as? String ?? "-"), "ran in the sandbox built before the mount")
    }

    /// Attack (red team, session 36): a tmpfs the policy puts inside the writable
    /// directory moved away with its directory after the sandbox was built ahead —
    /// by a command of another run, with no help from the host: run A renames the
    /// parent and plants a file where the tmpfs was; the next run, in the sandbox
    /// that waited while A ran, would work on the host's directory there instead of a
    /// fresh tmpfs. Control: seen from the host, the waiting sandbox's tmpfs moved with the
    /// renamed parent (the attack's premise). The next request runs elsewhere and
    /// finds its tmpfs empty.
    @Test func aSandboxWhoseTmpfsWasMovedAwayIsNotUsed() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let server = served.process.processIdentifier
        try FileManager.default.createDirectory(atPath: ws + "/a/cache", withIntermediateDirectories: true)
        let policy = Harness.policy("""
            name = "ahead-tmpfs"
            extends = ["agent"]
            [filesystem]
            tmpfs = ["{cwd}/a/cache"]
            """, in: ws, name: "ahead-tmpfs.toml")
        let look = ["sh", "-c", "cat a/cache/x 2>/dev/null || echo empty; echo y > a/cache/y"]
        #expect(try ServeTests.runOnce(served, policy: policy, argv: look, cwd: ws).out == "empty\n")
        let ahead = Self.waitForOneAhead(served, retrigger: (policy, ws))
        let waitingInit = try #require(Self.aheadInits(of: server).first, "no sandbox was built ahead")
        #expect(Self.isMountRoot(pid: waitingInit, ws + "/a/cache") == true, "the tmpfs is not in the sandbox built ahead")
        // Run A, under the same policy by another name (so it does not take the
        // waiting sandbox itself), moves the tmpfs's parent while that one waits.
        let policyA = Harness.policy("""
            name = "ahead-tmpfs-a"
            extends = ["agent"]
            [filesystem]
            tmpfs = ["{cwd}/a/cache"]
            """, in: ws, name: "ahead-tmpfs-a.toml")
        let plant = try ServeTests.runOnce(served, policy: policyA,
                                            argv: ["sh", "-c", "mv a a.old && mkdir -p a/cache && echo PLANTED > a/cache/x && echo moved"], cwd: ws)
        #expect(plant.out == "moved\n", "run A: \(plant.out) \(plant.reply ?? [:])")
        // The premise: A's rename reached the waiting sandbox, whose tmpfs went with a.old.
        let moved = Self.aheadInits(of: server).filter { Self.isMountRoot(pid: $0, ws + "/a.old/cache") == true }
        #expect(!moved.isEmpty, "no waiting sandbox had its tmpfs moved: the attack did not take")
        let b = try ServeTests.runOnce(served, policy: policy, argv: look, cwd: ws)
        #expect(!ahead.contains(b.reply?["runId"] as? String ?? "-"), "run B ran in the sandbox whose tmpfs was moved")
        #expect(b.out == "empty\n", "run B read what run A planted: \(b.out)")
        #expect(!FileManager.default.fileExists(atPath: ws + "/a/cache/y"), "run B wrote to the host through the moved tmpfs")
    }

    /// Attack (red team, session 36, round 3): beneath a read-only bind, which
    /// shares its entries with the host, a masked path created (absent at the build,
    /// so not masked then) or replaced (`mv secret old && mkdir secret`) after the
    /// sandbox was built ahead. Control: seen from the host, the waiting sandbox shows
    /// the new file unmasked (the attack's premise). The request does not run there.
    @Test func aSandboxWhoseMaskBeneathAReadOnlyBindChangedIsNotUsed() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        let ws = Harness.tempDir(), data = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws); try? FileManager.default.removeItem(atPath: data) }
        let server = served.process.processIdentifier
        let policy = Harness.policy("""
            name = "ahead-mask"
            extends = ["agent"]
            [filesystem]
            ro = ["\(data)"]
            mask = ["\(data)/secret"]
            """, in: ws, name: "ahead-mask.toml")
        let read = ["sh", "-c", "cat \(data)/secret/key 2>/dev/null || echo hidden"]
        for change in ["mkdir secret && echo TOPSECRET > secret/key", "mv secret old && mkdir secret && echo NEW > secret/key"] {
            _ = try ServeTests.runOnce(served, policy: policy, argv: ["true"], cwd: ws)
            let ahead = Self.waitForOneAhead(served, retrigger: (policy, ws))
            let waitingInit = try #require(Self.aheadInits(of: server).first, "no sandbox was built ahead")
            let r = try Harness.run("/bin/sh", ["-c", change], cwd: data)
            #expect(r.status == 0, "\(change): \(r)")
            let seen = (try? String(contentsOfFile: "/proc/\(waitingInit)/root\(data)/secret/key", encoding: .utf8)) ?? "-"
            #expect(seen != "-", "\(change): the sandbox built ahead does not show the new file (the attack's premise)")
            let after = try ServeTests.runOnce(served, policy: policy, argv: read, cwd: ws)
            #expect(after.out == "hidden\n", "\(change): the command read \(after.out)")
            #expect(!ahead.contains(after.reply?["runId"] as? String ?? "-"), "\(change): ran in the sandbox built before")
        }
    }

    /// Attack (red team, session 36, round 3): a mount beneath a read-only bind's
    /// source replaced after the build by another of the same source at the same
    /// place — the mountinfo line reads the same (its id reused), the content
    /// differs. Control: the waiting sandbox still shows the old content. The request
    /// runs elsewhere and reads the new one.
    @Test func aMountReplacedByOneThatReadsTheSameIsSeen() throws {
        guard let served = try Self.start() else { return }
        defer { served.stop() }
        let ws = Harness.tempDir(), data = Harness.tempDir(), srv = Harness.tempDir()
        defer {
            _ = try? Harness.run("/bin/umount", [data + "/m"])
            for d in [ws, data, srv, srv + "-x"] { try? FileManager.default.removeItem(atPath: d) }
        }
        let server = served.process.processIdentifier
        try FileManager.default.createDirectory(atPath: data + "/m", withIntermediateDirectories: true)
        try "V1\n".write(toFile: srv + "/v", atomically: true, encoding: .utf8)
        try #require(try Harness.run("/bin/mount", ["--bind", srv, data + "/m"]).status == 0)
        let policy = Harness.policy("""
            name = "ahead-aba"
            extends = ["agent"]
            [filesystem]
            ro = ["\(data)"]
            """, in: ws, name: "ahead-aba.toml")
        _ = try ServeTests.runOnce(served, policy: policy, argv: ["true"], cwd: ws)
        let ahead = Self.waitForOneAhead(served, retrigger: (policy, ws))
        let waitingInit = try #require(Self.aheadInits(of: server).first, "no sandbox was built ahead")
        let swap = "umount \(data)/m && mv \(srv) \(srv)-x && mkdir \(srv) && echo V2 > \(srv)/v && mount --bind \(srv) \(data)/m"
        let r = try Harness.run("/bin/sh", ["-c", swap])
        try #require(r.status == 0, "\(r)")
        let seen = (try? String(contentsOfFile: "/proc/\(waitingInit)/root\(data)/m/v", encoding: .utf8)) ?? "-"
        #expect(seen == "V1\n", "the sandbox built ahead does not show the old mount: \(seen)")
        let after = try ServeTests.runOnce(served, policy: policy, argv: ["cat", data + "/m/v"], cwd: ws)
        #expect(after.out == "V2\n", "the command read \(after.out)")
        #expect(!ahead.contains(after.reply?["runId"] as? String ?? "-"), "ran in the sandbox built before the swap")
    }

    /// Whether a mount sits on `path` (absolute, as `pid` sees it) in `pid`'s mount
    /// namespace (its /proc/PID/mountinfo), or nil when that cannot be read.
    static func isMountRoot(pid: Int32, _ path: String) -> Bool? {
        guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/mountinfo"),
              let bytes = try? handle.readToEnd() else { return nil }
        try? handle.close()
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        // Field 5 is the mount point as the process sees it (octal escapes for spaces).
        return lines.contains { $0.split(separator: " ").dropFirst(4).first.map(String.init) == path }
    }
}
