import Foundation
import Testing

/// Network modes end to end through `sandbox exec` (issue 8). The tests build their
/// own "remote" test hosts: network namespaces `sbxtest-<hex>` made with `ip netns`
/// (test code only), each reached from the host over a veth `sbxr<hex>` and a subnet
/// 10.204.N.0/24 of its own, the host routing, and a python listener with a bounded
/// lifetime. No test sends anything to an address other than loopback and those test
/// hosts; everything a test creates is removed even when it fails.
///
/// The egress runs use the standard bridge (sbx0, 10.203.0.1/16) and therefore turn on
/// net.ipv4.ip_forward if it is off, as every egress run does (Docs/network.md).
@Suite(.serialized) struct EgressTests {
    // MARK: - Helpers

    /// `ip` (test code may use it to build test hosts; the product never does).
    @discardableResult
    static func ip(_ args: [String]) -> Harness.Output {
        (try? Harness.run("/usr/sbin/ip", args, timeout: 20)) ?? Harness.Output(status: -1, stdout: "", stderr: "")
    }

    static func nft(_ args: [String]) -> String {
        (try? Harness.run("/usr/sbin/nft", args, timeout: 20))?.stdout ?? ""
    }

    /// A test host: its namespace, the veth to it, addresses (v4 and a ULA v6), a
    /// default route back, and a listener answering `hello-PORT` on each port.
    final class RemoteHost {
        let tag = String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(6))
        let n: Int
        var netns: String { "sbxtest-\(tag)" }
        var hostIf: String { "sbxr\(tag)" }
        var address: String { "10.204.\(n).2" }
        var router: String { "10.204.\(n).1" }
        var address6: String { "fd00:204:\(n)::2" }
        private var listener: Process?

        init(avoiding: Set<Int> = []) throws {
            let used = EgressTests.ip(["-4", "-o", "addr"]).stdout
            n = (0..<256).shuffled().first { !avoiding.contains($0) && !used.contains("10.204.\($0).") } ?? 0
            let steps: [[String]] = [
                ["netns", "add", netns],
                ["link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", netns],
                ["addr", "add", "\(router)/24", "dev", hostIf],
                ["-6", "addr", "add", "fd00:204:\(n)::1/64", "dev", hostIf, "nodad"],
                ["link", "set", hostIf, "up"],
                ["-n", netns, "addr", "add", "\(address)/24", "dev", "eth0"],
                ["-n", netns, "-6", "addr", "add", "\(address6)/64", "dev", "eth0", "nodad"],
                ["-n", netns, "link", "set", "lo", "up"],
                ["-n", netns, "link", "set", "eth0", "up"],
                ["-n", netns, "route", "add", "default", "via", router],
            ]
            for step in steps {
                let r = EgressTests.ip(step)
                if r.status != 0 {
                    cleanUp()
                    throw TestHostError(message: "ip \(step.joined(separator: " ")): \(r.stderr)")
                }
            }
        }

        /// Starts the listener (TCP on each port) and waits until it accepts.
        func listen(_ ports: [Int], lifetime: Int = 180) throws {
            let script = """
                import socket, sys, threading, time
                def serve(port):
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("0.0.0.0", port))
                    s.listen(128)
                    while True:
                        c, _ = s.accept()
                        c.sendall(b"hello-%d\\n" % port)
                        c.close()
                for p in sys.argv[1:]:
                    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
                time.sleep(0.2)
                print("ready", flush=True)
                time.sleep(\(lifetime))
                """
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            p.arguments = ["netns", "exec", netns, "python3", "-c", script] + ports.map(String.init)
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            listener = p
            guard String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).hasPrefix("ready") else {
                throw TestHostError(message: "listener in \(netns) did not start")
            }
        }

        func cleanUp() {
            // SIGKILL our own child (`ip netns exec` execs python in place; the test
            // runner's children ignore SIGTERM).
            if let p = listener, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            listener = nil
            EgressTests.ip(["link", "del", hostIf])
            EgressTests.ip(["netns", "del", netns])
        }
    }

    struct TestHostError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Two test hosts with listeners on 8080 and 8081, removed after `body`.
    static func withRemotes(_ body: (RemoteHost, RemoteHost) throws -> Void) throws {
        let a = try RemoteHost()
        defer { a.cleanUp() }
        let b = try RemoteHost(avoiding: [a.n])
        defer { b.cleanUp() }
        try a.listen([8080, 8081])
        try b.listen([8080])
        try body(a, b)
    }

    static func egressPolicy(in dir: String, allow host: String, dns: String, extra: String = "") -> String {
        Harness.egressPolicy(in: dir, name: "egress-test", network: """
            dns = ["\(dns)"]
            allow = [{ cidr = "\(host)/32", ports = [8080], proto = "tcp" }]
            \(extra)
            """)
    }

    /// A probe the sandbox runs: each argument `kind:host:port` becomes one attempt,
    /// printed as `kind:host:port=RESULT` ("ok:<answer>", "sent", "timeout" or the
    /// errno name). Kinds: `tcp`, `udp` (a non-DNS datagram), `dns` (a DNS query over
    /// UDP), `addr`.
    static let probeScript = """
        import errno, socket, sys
        def name(e):
            return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
        def attempt(kind, host, port):
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            if kind == "tcp":
                s = socket.socket(fam, socket.SOCK_STREAM)
                s.settimeout(2)
                try:
                    s.connect((host, port))
                    return "ok:" + s.recv(64).decode().strip()
                except socket.timeout:
                    return "timeout"
                except OSError as e:
                    return name(e)
                finally:
                    s.close()
            if kind in ("udp", "dns"):
                s = socket.socket(fam, socket.SOCK_DGRAM)
                # dns: a DNS query (the resolver's port passes nothing else)
                payload = b"probe" if kind == "udp" else bytes.fromhex("123401000001000000000000076578616d706c6504746573740000010001")
                try:
                    s.sendto(payload, (host, port))
                    return "sent"
                except OSError as e:
                    return name(e)
                finally:
                    s.close()
            if kind == "addr":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.connect((host, port))  # UDP connect: no packet, just the route and source
                return s.getsockname()[0]
        for arg in sys.argv[1:]:
            kind, rest = arg.split(":", 1)
            host, port = rest.rsplit(":", 1)
            print("%s=%s" % (arg, attempt(kind, host.strip("[]"), int(port))), flush=True)
        """

    static func writeProbe(in dir: String) -> String {
        let path = "\(dir)/probe.py"
        try! probeScript.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `key=value` lines of a probe's output.
    static func results(_ stdout: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in stdout.split(separator: "\n") {
            guard let eq = line.lastIndex(of: "=") else { continue }
            out[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return out
    }

    static func denied(_ result: [String: Any]?) -> [(daddr: String, dport: Int, proto: String, packets: Int)] {
        ((result?["egressDenied"] as? [[String: Any]]) ?? []).map {
            ($0["daddr"] as? String ?? "", $0["dport"] as? Int ?? -1, $0["proto"] as? String ?? "", $0["packets"] as? Int ?? 0)
        }
    }

    /// Links carrying a run's ownership mark (IFLA_IFALIAS "sandbox:<run-id>").
    static func linksMarked(for runId: String) -> [String] {
        let out = ip(["-j", "-d", "link", "show"]).stdout
        let links = (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [[String: Any]] ?? []
        return links.filter { ($0["ifalias"] as? String) == "sandbox:\(runId)" }.compactMap { $0["ifname"] as? String }
    }

    /// True once no link carries the run's mark, within `seconds`: teardown leaves the
    /// veth to the kernel, which removes it with the run's namespace in a worker of
    /// its own.
    static func linksGone(for runId: String, seconds: Int = 10) -> Bool {
        for _ in 0..<(seconds * 20) {
            if linksMarked(for: runId).isEmpty { return true }
            usleep(50_000)
        }
        return false
    }

    /// `nft list ruleset` without our own `inet sandbox_host` table.
    static func rulesetOutsideOurTable() -> String {
        var out: [Substring] = []
        var skipping = false
        for line in nft(["list", "ruleset"]).split(separator: "\n", omittingEmptySubsequences: false) {
            // Our table, and the tables other suites of this test process create for
            // their own test bridges (sbxtest_*) while this one runs.
            if line.hasPrefix("table ") {
                skipping = line.hasPrefix("table inet sandbox_host ") || line.hasPrefix("table inet sbxtest_")
            }
            if !skipping { out.append(line) }
            if skipping && line == "}" { skipping = false }
        }
        return out.joined(separator: "\n")
    }

    /// Every path up to three levels under /run, /tmp and /etc, minus what tests
    /// (this process's other suites) create themselves.
    static func hostListing() -> Set<String> {
        var out: Set<String> = []
        for root in ["/run", "/tmp", "/etc"] {
            guard let e = FileManager.default.enumerator(atPath: root) else { continue }
            while let rel = e.nextObject() as? String {
                if e.level >= 3 { e.skipDescendants() }
                let path = "\(root)/\(rel)"
                if path.hasPrefix("/tmp/sbx-") || path.hasPrefix("/tmp/sbxnet-") { continue }
                // Other processes on the machine (a compiler's scratch directories).
                if path.hasPrefix("/tmp/TemporaryDirectory.") || path.hasPrefix("/tmp/swift") { continue }
                // Run directories of runs (ours are checked to be gone separately).
                if path.hasPrefix("/run/sandbox/"), !path.hasPrefix("/run/sandbox/.net") { continue }
                if path.hasPrefix("/run/netns/sbxtest-") { continue }
                // BinaryTests' fixtures (under /run: /tmp is world-writable, which
                // `reject_writable` refuses), made by that suite running meanwhile.
                if path.hasPrefix("/run/sandbox-binary-test-") { continue }
                out.insert(path)
            }
        }
        return out
    }

    func runGone(_ out: Harness.Output) {
        guard let id = out.result?["runId"] as? String else {
            Issue.record("no run id in result: \(out.stderr)")
            return
        }
        #expect(!FileManager.default.fileExists(atPath: "/run/sandbox/\(id)"), "run directory \(id) left behind")
        #expect(Self.linksGone(for: id), "veth of \(id) left behind")
    }

    // MARK: - egress

    /// Acceptance 1-3: the allowed port connects; another port, another host, UDP to a
    /// non-DNS port, DNS to a non-resolver and IPv6 all fail; resolv.conf lists
    /// exactly network.dns; the result lists what was denied, with packet counts.
    @Test func onlyTheAllowedDestinationIsReachable() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withRemotes { h1, h2 in
            let dir = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let probe = Self.writeProbe(in: dir)
            let policy = Self.egressPolicy(in: dir, allow: h1.address, dns: h1.address)
            let attempts = [
                "tcp:\(h1.address):8080", "tcp:\(h1.address):8081", "tcp:\(h2.address):8080",
                "udp:\(h1.address):9999", "udp:\(h2.address):53", "dns:\(h1.address):53",
                "tcp:[\(h1.address6)]:8080",
            ]
            let script = "cat /etc/resolv.conf; python3 \(probe) \(attempts.joined(separator: " "))"
            let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir, timeout: 90)
            #expect(out.status == 0, "stderr: \(out.stderr)")
            let r = Self.results(out.stdout)
            #expect(r["tcp:\(h1.address):8080"] == "ok:hello-8080", "\(out.stdout)")
            // Refused by the firewall's reset, at once (the listener is up: see the host check below).
            #expect(r["tcp:\(h1.address):8081"] == "ECONNREFUSED", "denied TCP: \(out.stdout)")
            #expect(r["tcp:\(h2.address):8080"] == "ECONNREFUSED", "\(out.stdout)")
            #expect(r["udp:\(h1.address):9999"] == "EPERM", "\(out.stdout)")
            #expect(r["udp:\(h2.address):53"] == "EPERM", "DNS to a non-resolver: \(out.stdout)")
            #expect(r["dns:\(h1.address):53"] == "sent", "DNS to the resolver: \(out.stdout)")
            let v6 = r["tcp:[\(h1.address6)]:8080"] ?? "missing"
            #expect(!v6.hasPrefix("ok") && v6 != "missing", "IPv6: \(v6)")
            // resolv.conf: exactly the policy's resolvers.
            let nameservers = out.stdout.split(separator: "\n").filter { $0.hasPrefix("nameserver ") }
            #expect(nameservers == ["nameserver \(h1.address)"], "\(out.stdout)")
            // The other hosts answer from the host: the drops were the sandbox's.
            #expect(try Harness.run("/usr/bin/python3", [probe, "tcp:\(h1.address):8081", "tcp:\(h2.address):8080"]).stdout
                == "tcp:\(h1.address):8081=ok:hello-8081\ntcp:\(h2.address):8080=ok:hello-8080\n")

            let denied = Self.denied(out.result)
            func has(_ daddr: String, _ dport: Int, _ proto: String, exactly: Int? = nil) -> Bool {
                denied.contains { d in
                    d.daddr == daddr && d.dport == dport && d.proto == proto && (exactly.map { d.packets == $0 } ?? (d.packets >= 1))
                }
            }
            #expect(has(h1.address, 8081, "tcp"), "egressDenied: \(denied)")
            #expect(has(h2.address, 8080, "tcp"), "egressDenied: \(denied)")
            #expect(has(h1.address, 9999, "udp", exactly: 1), "egressDenied: \(denied)")
            #expect(has(h2.address, 53, "udp", exactly: 1), "egressDenied: \(denied)")
            #expect(!denied.contains { $0.daddr == h1.address && ($0.dport == 8080 || $0.dport == 53) }, "\(denied)")
            runGone(out)
        }
    }

    /// Connections the cap or the new-connection rate refused are allowed destinations:
    /// the result says so (`connection_limit`, `connection_rate`, with the limits in the
    /// hint), not "not in network.allow". max_connections = 8 (rate 1/s, burst 8): eight
    /// connections held open to h1:8080 pass, a ninth is refused by the cap; then, all
    /// closed, a quick burst to h1:8081 is refused by the rate (the burst is spent).
    /// Controls: h2:8080 (no rule) is still `not_allowed` with the old hint, and a
    /// datagram to the resolver's port 53 that is no DNS query is `dns_check`.
    @Test func connectionLimitRefusalsAreNotReportedAsNotAllowed() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withRemotes { h1, h2 in
            let dir = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let probe = Self.writeProbe(in: dir)
            try Self.holdScript.write(toFile: "\(dir)/hold.py", atomically: true, encoding: .utf8)
            let policy = Harness.egressPolicy(in: dir, name: "cap-reason", network: """
                dns = ["\(h1.address)"]
                allow = [{ cidr = "\(h1.address)/32", ports = [8080, 8081], proto = "tcp" }]
                max_connections = 8
                """)
            let script = "python3 hold.py \(h1.address) && python3 \(probe) tcp:\(h2.address):8080 udp:\(h1.address):53"
            let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir, timeout: 90)
            #expect(out.status == 0, "stderr: \(out.stderr)")
            let r = Self.results(out.stdout)
            #expect(r["held"] == "8" && r["over_cap"] == "ECONNREFUSED", "\(out.stdout)")
            #expect(Int(r["burst_refused"] ?? "") ?? 0 >= 1, "the rate refused none of the burst: \(out.stdout)")
            #expect(r["tcp:\(h2.address):8080"] == "ECONNREFUSED" && r["udp:\(h1.address):53"] == "EPERM", "\(out.stdout)")

            let denied = (out.result?["egressDenied"] as? [[String: Any]]) ?? []
            func reasons(_ daddr: String, _ dport: Int, _ proto: String = "tcp") -> Set<String> {
                Set(denied.filter { $0["daddr"] as? String == daddr && $0["dport"] as? Int == dport && $0["proto"] as? String == proto }
                    .compactMap { $0["reason"] as? String })
            }
            #expect(reasons(h1.address, 8080) == ["connection_limit"], "egressDenied: \(denied)")
            #expect(reasons(h1.address, 8081) == ["connection_rate"], "egressDenied: \(denied)")
            #expect(reasons(h2.address, 8080) == ["not_allowed"], "control: \(denied)")
            #expect(reasons(h1.address, 53, "udp") == ["dns_check"], "control: \(denied)")

            let denials = (out.result?["denials"] as? [[String: Any]]) ?? []
            func hint(_ what: String) -> String {
                denials.first { $0["kind"] as? String == "egress" && $0["what"] as? String == what }?["hint"] as? String ?? "missing"
            }
            let limit = hint("\(h1.address):8080/tcp"), rate = hint("\(h1.address):8081/tcp")
            #expect(limit.contains("is allowed") && limit.contains("network.max_connections = 8") && !limit.contains("not in"), "\(limit)")
            #expect(rate.contains("is allowed") && rate.contains("1 a second (burst 8)") && !rate.contains("not in"), "\(rate)")
            #expect(hint("\(h2.address):8080/tcp") == "\(h2.address) port 8080 is not in this policy's network.allow", "\(denials)")
            #expect(hint("\(h1.address):53/udp").contains("not a DNS query"), "\(denials)")
            runGone(out)
        }
    }

    /// Holds eight TCP connections to HOST:8080 open (the listener has sent its line
    /// and closed its end: each stays tracked, CLOSE_WAIT), tries a ninth, closes them,
    /// then opens six to HOST:8081 as fast as it can. Prints `held`, `over_cap`,
    /// `burst_refused`.
    static let holdScript = """
        import errno, socket, sys, time
        host = sys.argv[1]
        def connect(port):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect((host, port))
                s.recv(64)
                return s, "ok"
            except OSError as e:
                s.close()
                return None, errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
        held = [s for s, _ in (connect(8080) for _ in range(8)) if s]
        print("held=%d" % len(held), flush=True)
        print("over_cap=%s" % connect(8080)[1], flush=True)
        for s in held:
            s.close()
        time.sleep(0.3)
        burst = [connect(8081) for _ in range(6)]
        print("burst_refused=%d" % sum(1 for s, r in burst if r == "ECONNREFUSED"), flush=True)
        for s, _ in burst:
            if s: s.close()
        """

    /// Acceptance 2: no file appears on the host for resolv.conf (or anything else),
    /// and the host's own resolv.conf is untouched.
    @Test func noHostFileIsCreated() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withRemotes { h1, _ in
            let dir = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let policy = Self.egressPolicy(in: dir, allow: h1.address, dns: h1.address)
            // A first run creates the shared host state (/run/sandbox/.net.*) once.
            _ = try Harness.exec(policy: policy, ["true"], cwd: dir)
            let hostResolv = try? Data(contentsOf: URL(fileURLWithPath: "/etc/resolv.conf"))
            let before = Self.hostListing()
            let out = try Harness.exec(policy: policy, ["cat", "/etc/resolv.conf"], cwd: dir)
            let after = Self.hostListing()
            #expect(out.status == 0, "stderr: \(out.stderr)")
            #expect(out.stdout == "nameserver \(h1.address)\noptions edns0\n")
            #expect(after.subtracting(before).isEmpty, "new host files: \(after.subtracting(before).sorted())")
            #expect((try? Data(contentsOf: URL(fileURLWithPath: "/etc/resolv.conf"))) == hostResolv)
            runGone(out)
        }
    }

    /// Acceptance 5: 32 runs at once get distinct addresses, all reach the allowed
    /// port, and leave no veth, lease or run directory; the host ruleset outside our
    /// own table is byte-identical before and after.
    @Test func thirtyTwoParallelRunsLeaveNothing() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withRemotes { h1, _ in
            let dir = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let probe = Self.writeProbe(in: dir)
            let policy = Self.egressPolicy(in: dir, allow: h1.address, dns: h1.address)
            let rulesBefore = Self.rulesetOutsideOurTable()
            let n = 32
            let lock = NSLock()
            var outputs: [Harness.Output] = []
            var failures: [String] = []
            let group = DispatchGroup()
            let started = Date()
            for _ in 0..<n {
                group.enter()
                Thread {
                    defer { group.leave() }
                    do {
                        let out = try Harness.exec(policy: policy, ["python3", probe, "addr:\(h1.address):8080", "tcp:\(h1.address):8080"],
                                                   cwd: dir, timeout: 180)
                        lock.lock(); outputs.append(out); lock.unlock()
                    } catch {
                        lock.lock(); failures.append("\(error)"); lock.unlock()
                    }
                }.start()
            }
            group.wait()
            print("32 parallel egress runs: \(Int(Date().timeIntervalSince(started) * 1000)) ms wall")
            #expect(failures.isEmpty, "\(failures)")
            #expect(outputs.count == n)
            var addresses: [String] = []
            for out in outputs {
                let r = Self.results(out.stdout)
                #expect(out.status == 0, "stderr: \(out.stderr)")
                #expect(r["tcp:\(h1.address):8080"] == "ok:hello-8080", "\(out.stdout) \(out.stderr)")
                if let a = r["addr:\(h1.address):8080"] { addresses.append(a) }
                runGone(out)
            }
            #expect(addresses.count == n && Set(addresses).count == n, "addresses: \(addresses.sorted())")
            #expect(addresses.allSatisfy { $0.hasPrefix("10.203.") }, "\(addresses)")
            #expect(Self.rulesetOutsideOurTable() == rulesBefore)
            let leftovers = Self.ip(["-j", "-d", "link", "show"]).stdout
            let ids = outputs.compactMap { $0.result?["runId"] as? String }
            #expect(ids.count == n)
            #expect(!ids.contains { leftovers.contains("sandbox:\($0)") }, "veths left behind")
        }
    }

    /// Acceptance 6: a supervisor killed with SIGKILL leaves its run directory; `sandbox
    /// gc` removes it with the lease, and the run's veth is gone.
    @Test func gcCleansUpAfterAKilledSupervisor() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withRemotes { h1, _ in
            let dir = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let policy = Self.egressPolicy(in: dir, allow: h1.address, dns: h1.address)
            let before = Set(Harness.runDirEntries())
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Harness.binary)
            p.arguments = ["exec", "--policy", policy, "--", "sleep", "60"]
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
            // Wait for the run to be up: its directory holds a lease.
            var runId: String? = nil
            for _ in 0..<200 where runId == nil {
                runId = Set(Harness.runDirEntries()).subtracting(before)
                    .first { FileManager.default.fileExists(atPath: "/run/sandbox/\($0)/lease") }
                if runId == nil { usleep(50_000) }
            }
            guard let id = runId else {
                Issue.record("the egress run never came up (exit \(p.isRunning ? "-" : "\(p.terminationStatus)"))")
                return
            }
            #expect(!Self.linksMarked(for: id).isEmpty, "the run's veth exists while it runs")
            Harness.gcLock.lock()
            defer { Harness.gcLock.unlock() }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(FileManager.default.fileExists(atPath: "/run/sandbox/\(id)/lease"), "the lease outlives a killed supervisor")
            let gc = try Harness.sandbox(["gc"])
            #expect(gc.status == 0, "\(gc.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "/run/sandbox/\(id)"), "gc left the run directory")
            // The namespace died with its last process and fd; the veth goes with it (or
            // gc deleted it). Allow the kernel's asynchronous namespace cleanup a moment.
            var gone = false
            for _ in 0..<100 where !gone {
                gone = Self.linksMarked(for: id).isEmpty
                if !gone { usleep(50_000) }
            }
            #expect(gone, "veth of \(id) left behind after gc")
        }
    }

    /// Acceptance 7: the command cannot change the firewall or the interface: nft and
    /// ip fail (no CAP_NET_ADMIN; netlink sockets are EAFNOSUPPORT under seccomp), and
    /// the rules still hold afterwards.
    @Test func theCommandCannotChangeTheFirewall() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withRemotes { h1, _ in
            let dir = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let probe = Self.writeProbe(in: dir)
            let policy = Self.egressPolicy(in: dir, allow: h1.address, dns: h1.address)
            let script = """
                if [ -x /usr/sbin/nft ]; then nft flush ruleset 2>/dev/null; echo "nft=$?"; else echo "nft=absent"; fi
                ip link set eth0 down 2>/dev/null; echo "ip=$?"
                python3 -c 'import socket
                try:
                    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0); print("netlink=open")
                except OSError as e:
                    print("netlink=%d" % e.errno)'
                python3 \(probe) tcp:\(h1.address):8080 tcp:\(h1.address):8081
                """
            let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir, timeout: 60)
            let r = Self.results(out.stdout)
            #expect(r["nft"] != "0" && r["nft"] != nil, "nft flush ruleset succeeded: \(out.stdout)")
            #expect(r["ip"] != "0" && r["ip"] != nil, "ip link set succeeded: \(out.stdout)")
            #expect(r["netlink"] == "97", "socket(AF_NETLINK) must fail with EAFNOSUPPORT: \(out.stdout)")
            #expect(r["tcp:\(h1.address):8080"] == "ok:hello-8080", "\(out.stdout) \(out.stderr)")
            #expect(r["tcp:\(h1.address):8081"] == "ECONNREFUSED", "the firewall still holds: \(out.stdout)")
            runGone(out)
        }
    }

    /// The supervisor's netlink socket inside the run's namespace (it reads the
    /// refusal sets after the run) does not tell the command the supervisor's host
    /// pid: /proc/net/netlink lists every socket of the namespace with its address,
    /// and an automatically bound socket's address is its process id (red team,
    /// session 31). The attack: read the list and look for an address that is a
    /// process id. Control: with `bind` to address 0 (the kernel's choice), as
    /// before, the supervisor's NETLINK_NETFILTER socket (protocol 12) shows its pid.
    @Test func theSupervisorsPidIsNotVisibleInside() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withRemotes { h1, _ in
            let dir = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let policy = Self.egressPolicy(in: dir, allow: h1.address, dns: h1.address)
            let out = try Harness.exec(policy: policy, ["cat", "/proc/net/netlink"], cwd: dir)
            #expect(out.status == 0, "stderr: \(out.stderr)")
            // sk Eth Pid Groups …: (protocol, address) of each socket.
            let sockets = out.stdout.split(separator: "\n").dropFirst().compactMap { line -> (Int, UInt64)? in
                let f = line.split(separator: " ")
                guard f.count > 2, let eth = Int(f[1]), let pid = UInt64(f[2]) else { return nil }
                return (eth, pid)
            }
            #expect(sockets.contains { $0.0 == 12 && $0.1 != 0 }, "the supervisor's netfilter socket is listed: \(out.stdout)")
            let pidLike = sockets.filter { $0.1 != 0 && $0.1 < 1 << 22 }
            #expect(pidLike.isEmpty, "addresses that are process ids (PID_MAX_LIMIT is 2^22): \(pidLike) in \(out.stdout)")
            runGone(out)
        }
    }

    /// network.hosts: an /etc/hosts of the policy's entries, in memory and read-only
    /// like resolv.conf; a name from it resolves and connects.
    @Test func hostsEntriesResolveInside() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withRemotes { h1, _ in
            let dir = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let probe = Self.writeProbe(in: dir)
            let policy = Self.egressPolicy(in: dir, allow: h1.address, dns: h1.address,
                                           extra: "hosts = { \"remote-one\" = \"\(h1.address)\" }")
            let script = "cat /etc/hosts; (echo x >> /etc/hosts) 2>/dev/null && echo hosts=writable; python3 \(probe) tcp:remote-one:8080"
            let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir, timeout: 60)
            #expect(out.status == 0, "stderr: \(out.stderr)")
            #expect(out.stdout.contains("\(h1.address) remote-one\n"), "\(out.stdout)")
            let r = Self.results(out.stdout)
            #expect(r["hosts"] == nil, "/etc/hosts is writable inside")
            #expect(r["tcp:remote-one:8080"] == "ok:hello-8080", "\(out.stdout) \(out.stderr)")
            runGone(out)
        }
    }

    // MARK: - none and loopback

    /// A listener on the host's 127.0.0.1, for "cannot reach the host's loopback".
    static func hostLoopbackListener() -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                _ = bind(fd, p, len)
                _ = listen(fd, 8)
                return getsockname(fd, p, &len)
            }
        }
        return (fd, UInt16(bigEndian: addr.sin_port))
    }

    static let loopbackScript = """
        import fcntl, socket, struct, sys, threading
        names = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
        print("interfaces=" + ",".join(sorted(names)))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flags = struct.unpack("16sH", fcntl.ioctl(s.fileno(), 0x8913, struct.pack("16sH", b"lo", 0)))[1]
        print("lo=" + ("up" if flags & 1 else "down"))
        def attempt(port):
            c = socket.socket(); c.settimeout(2)
            try:
                c.connect(("127.0.0.1", port)); return "ok"
            except OSError as e:
                return str(e.errno)
        try:
            srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
            threading.Thread(target=lambda: srv.accept()[0].close(), daemon=True).start()
            print("inside=" + attempt(srv.getsockname()[1]))
        except OSError as e:
            print("inside=%d" % e.errno)
        print("host=" + attempt(int(sys.argv[1])))
        """

    static func modePolicy(_ mode: String, in dir: String) -> String {
        Harness.policy("""
            name = "mode-test"
            extends = ["base"]
            [process]
            env.set = { PATH = "/usr/local/bin:/usr/bin:/bin" }
            [filesystem]
            rw = ["{cwd}"]
            [network]
            mode = "\(mode)"
            """, in: dir, name: "mode-\(mode).toml")
    }

    /// Acceptance 4: `none` has only lo, down; `loopback` has lo up and a server and
    /// client on 127.0.0.1 inside work; neither reaches the host's loopback.
    @Test(arguments: ["none", "loopback"]) func noneAndLoopback(mode: String) throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.loopbackScript.write(toFile: "\(dir)/lo.py", atomically: true, encoding: .utf8)
        let host = Self.hostLoopbackListener()
        defer { close(host.fd) }
        let out = try Harness.exec(policy: Self.modePolicy(mode, in: dir), ["python3", "\(dir)/lo.py", "\(host.port)"], cwd: dir)
        let r = Self.results(out.stdout)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(r["interfaces"] == "lo", "\(out.stdout)")
        #expect(r["lo"] == (mode == "none" ? "down" : "up"), "\(out.stdout)")
        if mode == "loopback" {
            #expect(r["inside"] == "ok", "\(out.stdout)")
        } else {
            #expect(r["inside"] != "ok", "\(out.stdout)")
        }
        #expect(r["host"] != "ok" && r["host"] != nil, "the host's loopback listener was reached: \(out.stdout)")
    }
}
