import Foundation
import Testing

/// Issue 12, item 5: egress rules that were too broad by construction, attacked for
/// real through `sandbox exec`, each with a control showing the attack works without
/// the fence (from the host, or with a rule naming the address exactly).
///
/// - DNS: only DNS queries to the listed resolvers' port 53 (a non-DNS UDP payload to
///   port 53, also on a flow the resolver already answered, fails; so do TCP and UDP
///   to another port of the resolver).
/// - A broad allow (`0.0.0.0/0`) never opens the bridge gateway (the host), another
///   run's address or link-local (cloud metadata) — unless a rule names the host's or
///   the link-local address exactly; another run's address never.
///
/// Traffic goes only to test hosts these tests make (namespaces `sbxtest-*`, with
/// 10.204.N.0/24 or 169.254.N.0/24 of their own), to the host's own bridge address and
/// to another sandbox run of the test; everything is removed afterwards.
@Suite(.serialized) struct EgressScopeTests {
    // MARK: - Helpers

    /// A background process of the test (a server in a test namespace, a listener on
    /// the host, a second sandbox run); `stop` kills it (our own child) and waits.
    final class Background {
        let process = Process()
        let output = Pipe()
        init(_ exe: String, _ args: [String], cwd: String? = nil) throws {
            process.executableURL = URL(fileURLWithPath: exe)
            process.arguments = args
            if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
        }
        /// The first line it prints (it prints one when it is ready).
        func firstLine() -> String {
            var data = Data()
            while !data.contains(UInt8(ascii: "\n")) {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                data += chunk
            }
            return String(decoding: data, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
        }
        func stop(signal: Int32 = SIGKILL) {
            if process.isRunning { kill(process.processIdentifier, signal) }
            process.waitUntilExit()
        }
    }

    /// A DNS server for the test host: UDP and TCP port 53 answer every query with
    /// `A 10.1.2.3`; UDP 5353 and TCP 8053 are other services on the same address.
    /// Every UDP datagram and TCP DNS message received is logged (hex) to argv[1].
    static let dnsServer = """
        import socket, struct, sys, threading, time
        log = open(sys.argv[1], "a", buffering=1)
        def answer(q):
            end = q.index(b"\\0", 12) + 5
            return q[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + q[12:end] + \\
                bytes.fromhex("c00c00010001") + struct.pack(">IH", 60, 4) + bytes([10, 1, 2, 3])
        def udp(port):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", port))
            while True:
                data, peer = s.recvfrom(4096)
                log.write("udp%d %s\\n" % (port, data.hex()))
                if port == 53:
                    try:
                        s.sendto(answer(data), peer)
                    except Exception:
                        pass
        def recvall(c, n):
            b = b""
            while len(b) < n:
                chunk = c.recv(n - len(b))
                if not chunk:
                    raise EOFError
                b += chunk
            return b
        def tcp(port):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.listen(16)
            while True:
                c, _ = s.accept()
                c.settimeout(2)
                try:
                    if port == 53:
                        n = struct.unpack(">H", recvall(c, 2))[0]
                        q = recvall(c, n)
                        log.write("tcp53 %s\\n" % q.hex())
                        a = answer(q)
                        c.sendall(struct.pack(">H", len(a)) + a)
                    else:
                        c.sendall(b"hello-%d\\n" % port)
                except Exception:
                    pass
                c.close()
        for p in (53, 5353):
            threading.Thread(target=udp, args=(p,), daemon=True).start()
        for p in (53, 8053):
            threading.Thread(target=tcp, args=(p,), daemon=True).start()
        time.sleep(0.2)
        print("ready", flush=True)
        time.sleep(180)
        """

    /// The client inside the sandbox: `NAME=RESULT` lines.
    static let dnsClient = """
        import errno, socket, struct, sys
        R = sys.argv[1]
        def name(e):
            return errno.errorcode.get(e.errno, str(e.errno)) if getattr(e, "errno", None) else type(e).__name__
        def query(qid=0x1234, flags=0x0100, qd=1, an=0, pad=b""):
            q = struct.pack(">HHHHHH", qid, flags, qd, an, 0, 0)
            for label in "example.test".split("."):
                q += bytes([len(label)]) + label.encode()
            return q + b"\\0" + struct.pack(">HH", 1, 1) + pad
        def parse(a):
            return "ok:" + ".".join(str(b) for b in a[-4:])
        def udp_send(payload, port=53, sock=None):
            s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.sendto(payload, (R, port))
                return "sent"
            except OSError as e:
                return name(e)
        def out(k, v):
            print("%s=%s" % (k, v), flush=True)
        # A real query, answered; then a non-DNS payload on the same (now established) flow.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        try:
            s.sendto(query(), (R, 53))
            out("udp_query", parse(s.recv(512)))
        except OSError as e:
            out("udp_query", name(e))
        out("udp_followup_junk", udp_send(b"TUNNEL-FOLLOWUP this is not DNS at all", sock=s))
        out("udp_junk", udp_send(b"TUNNEL-JUNK this is not DNS at all, just a payload"))
        out("udp_response_shaped", udp_send(query(flags=0x8180, an=1)))
        out("udp_oversized", udp_send(query(pad=b"TUNNEL-BIG" + b"x" * 900)))
        out("udp_other_port", udp_send(query(), port=5353))
        def tcp(port, payload):
            c = socket.socket()
            c.settimeout(3)
            try:
                c.connect((R, port))
                if payload is None:
                    return "ok:" + c.recv(64).decode().strip()
                c.sendall(struct.pack(">H", len(payload)) + payload)
                n = struct.unpack(">H", c.recv(2))[0]
                return parse(c.recv(n))
            except socket.timeout:
                return "timeout"
            except OSError as e:
                return name(e)
            finally:
                c.close()
        out("tcp_query", tcp(53, query()))
        out("tcp_other_port", tcp(8053, None))
        # A flood of well-formed queries: the rate limit refuses part of it.
        f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        refused = 0
        for i in range(600):
            try:
                f.sendto(query(qid=i), (R, 53))
            except OSError:
                refused += 1
        out("flood_refused", refused)
        """

    static func results(_ stdout: String) -> [String: String] { EgressTests.results(stdout) }

    static func basePolicy(in dir: String, name: String, body: String) -> String {
        Harness.egressPolicy(in: dir, name: name, network: body)
    }

    // MARK: - DNS

    /// The resolver gets DNS queries on port 53 and nothing else: a real query over UDP
    /// and TCP is answered; a non-DNS payload to port 53 (fresh, or on the flow the
    /// resolver already answered), a response-shaped packet, an oversized one, UDP to
    /// port 5353 and TCP to 8053 of the same address all fail, and none of them reaches
    /// the server; a flood is cut by the rate limit. Control: from the host, the same
    /// junk payload reaches the server on port 53 and TCP 8053 answers.
    @Test func onlyDNSQueriesReachTheResolver() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let h = try EgressTests.RemoteHost()
        defer { h.cleanUp() }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = "\(dir)/server.log"
        let server = try Background("/usr/sbin/ip", ["netns", "exec", h.netns, "python3", "-c", Self.dnsServer, log])
        defer { server.stop() }
        #expect(server.firstLine() == "ready", "the test DNS server did not start")
        try Self.dnsClient.write(toFile: "\(dir)/client.py", atomically: true, encoding: .utf8)
        let policy = Self.basePolicy(in: dir, name: "dns-test", body: "dns = [\"\(h.address)\"]")

        let out = try Harness.exec(policy: policy, ["python3", "client.py", h.address], cwd: dir, timeout: 90)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let r = Self.results(out.stdout)
        #expect(r["udp_query"] == "ok:10.1.2.3", "\(out.stdout)")
        #expect(r["tcp_query"] == "ok:10.1.2.3", "\(out.stdout)")
        for key in ["udp_followup_junk", "udp_junk", "udp_response_shaped", "udp_oversized", "udp_other_port"] {
            #expect(r[key] == "EPERM", "\(key): \(out.stdout)")
        }
        #expect(r["tcp_other_port"] == "ECONNREFUSED", "\(out.stdout)")
        #expect((Int(r["flood_refused"] ?? "") ?? 0) > 0, "the rate limit never refused: \(out.stdout)")
        let received = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        for marker in ["TUNNEL-FOLLOWUP", "TUNNEL-JUNK", "TUNNEL-BIG"] {
            #expect(!received.contains(Data(marker.utf8).map { String(format: "%02x", $0) }.joined()),
                    "\(marker) reached the resolver")
        }
        #expect(!received.contains("udp5353"), "UDP to another port of the resolver arrived")
        let denied = EgressTests.denied(out.result)
        #expect(denied.contains { $0.daddr == h.address && $0.dport == 53 && $0.proto == "udp" }, "\(denied)")
        #expect(denied.contains { $0.daddr == h.address && $0.dport == 8053 && $0.proto == "tcp" }, "\(denied)")

        // Control: without the sandbox's ruleset the junk reaches the server, 8053 answers.
        try Self.dnsClient.write(toFile: "\(dir)/host-client.py", atomically: true, encoding: .utf8)
        let host = try Harness.run("/usr/bin/python3", ["\(dir)/host-client.py", h.address], timeout: 60)
        let hr = Self.results(host.stdout)
        #expect(hr["udp_junk"] == "sent" && hr["tcp_other_port"] == "ok:hello-8053", "control: \(host.stdout)")
        usleep(300_000)
        let after = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(after.contains(Data("TUNNEL-JUNK".utf8).map { String(format: "%02x", $0) }.joined()),
                "control: the junk payload from the host did not reach the server")
    }

    // MARK: - Broad allow rules

    /// A test host on a link-local subnet (169.254.N.0/24): namespace, veth, addresses,
    /// a route back, and the EgressTests listener script on the given ports.
    final class LinkLocalHost {
        let tag = String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(6))
        let n: Int
        var netns: String { "sbxtest-\(tag)" }
        var hostIf: String { "sbxl\(tag)" }
        var address: String { "169.254.\(n).2" }
        var router: String { "169.254.\(n).1" }
        var listener: Background?

        init() throws {
            let used = EgressTests.ip(["-4", "-o", "addr"]).stdout + EgressTests.ip(["-4", "route"]).stdout
            n = (200..<250).shuffled().first { !used.contains("169.254.\($0).") } ?? 200
            let steps: [[String]] = [
                ["netns", "add", netns],
                ["link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", netns],
                ["addr", "add", "\(router)/24", "dev", hostIf],
                ["link", "set", hostIf, "up"],
                ["-n", netns, "addr", "add", "\(address)/24", "dev", "eth0"],
                ["-n", netns, "link", "set", "lo", "up"],
                ["-n", netns, "link", "set", "eth0", "up"],
                ["-n", netns, "route", "add", "default", "via", router],
            ]
            for step in steps {
                let r = EgressTests.ip(step)
                if r.status != 0 {
                    cleanUp()
                    throw EgressTests.TestHostError(message: "ip \(step.joined(separator: " ")): \(r.stderr)")
                }
            }
        }

        func listen(_ port: Int) throws {
            let l = try Background("/usr/sbin/ip", ["netns", "exec", netns, "python3", "-c", EgressScopeTests.helloServer, String(port)])
            listener = l
            guard l.firstLine() == "ready" else { throw EgressTests.TestHostError(message: "listener in \(netns) did not start") }
        }

        func cleanUp() {
            listener?.stop()
            listener = nil
            EgressTests.ip(["link", "del", hostIf])
            EgressTests.ip(["netns", "del", netns])
        }
    }

    /// TCP on argv[1:], answering `hello-PORT`; prints `ready`, lives 180 s. With
    /// `addr` first it prints the address eth0 uses instead of `ready` (for a sandbox
    /// run that other runs try to reach), and it stops when the file `stop` appears.
    static let helloServer = """
        import os, socket, sys, threading, time
        args = sys.argv[1:]
        report_addr = args and args[0] == "addr"
        if report_addr:
            args = args[1:]
        def serve(s, port):
            while True:
                c, _ = s.accept()
                c.sendall(b"hello-%d\\n" % port)
                c.close()
        for p in args:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", int(p)))
            except OSError as e:
                print("bind failed: %s" % e, flush=True)
                sys.exit(1)
            s.listen(16)
            threading.Thread(target=serve, args=(s, int(p)), daemon=True).start()
        if report_addr:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.connect(("10.203.0.1", 9))
            print(u.getsockname()[0], flush=True)
        else:
            print("ready", flush=True)
        for _ in range(900):
            if os.path.exists("stop"):
                break
            time.sleep(0.2)
        """

    /// With `allow = [{cidr = "0.0.0.0/0"}]` a listener on the bridge gateway (the
    /// host), one in another sandbox run, and one on a link-local test host (where cloud
    /// metadata lives) are unreachable (ECONNREFUSED, listed in `egressDenied`), while an
    /// ordinary test host is reached through the same rule. Controls: each listener
    /// answers from the host; rules naming exactly the gateway /32 and the link-local
    /// /32 open them; a rule naming the other run's /32 is refused by the planner.
    @Test func broadAllowNeverOpensHostBridgeOrLinkLocal() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.helloServer.write(toFile: "\(dir)/hello.py", atomically: true, encoding: .utf8)
        let probe = EgressTests.writeProbe(in: dir)

        // An ordinary test host, and a link-local one.
        let remote = try EgressTests.RemoteHost()
        defer { remote.cleanUp() }
        try remote.listen([8080])
        let ll = try LinkLocalHost()
        defer { ll.cleanUp() }
        try ll.listen(8080)

        // Another run: an egress sandbox listening on 8095 (its address on the bridge).
        let otherDir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: otherDir) }
        try Self.helloServer.write(toFile: "\(otherDir)/hello.py", atomically: true, encoding: .utf8)
        let otherPolicy = Self.basePolicy(in: otherDir, name: "other-run", body: "")
        let other = try Background(Harness.binary, ["exec", "--policy", otherPolicy, "--", "python3", "hello.py", "addr", "8095"],
                                   cwd: otherDir)
        defer {
            FileManager.default.createFile(atPath: "\(otherDir)/stop", contents: nil)
            for _ in 0..<100 where other.process.isRunning { usleep(100_000) }
            other.stop(signal: SIGTERM)
        }
        let otherAddress = other.firstLine()
        #expect(otherAddress.hasPrefix("10.203."), "the other run's address: \(otherAddress)")

        // The gateway: a listener of the test's on the host (the bridge exists now).
        let gateway = "10.203.0.1"
        let port = try Self.freePortListener(dir: dir)
        defer { port.listener.stop() }

        // Controls from the host: all four answer.
        let fromHost = try Harness.run("/usr/bin/python3", [probe, "tcp:\(gateway):\(port.number)", "tcp:\(otherAddress):8095",
                                                            "tcp:\(ll.address):8080", "tcp:\(remote.address):8080"])
        let h = Self.results(fromHost.stdout)
        #expect(h["tcp:\(gateway):\(port.number)"] == "ok:hello-\(port.number)", "control from the host: \(fromHost.stdout)")
        #expect(h["tcp:\(otherAddress):8095"] == "ok:hello-8095", "control from the host: \(fromHost.stdout)")
        #expect(h["tcp:\(ll.address):8080"] == "ok:hello-8080", "control from the host: \(fromHost.stdout)")

        let attempts = ["tcp:\(gateway):\(port.number)", "tcp:\(otherAddress):8095", "tcp:\(ll.address):8080",
                        "tcp:\(remote.address):8080"]
        let broad = Self.basePolicy(in: dir, name: "broad", body: """
            allow = [{ cidr = "0.0.0.0/0", ports = [8080, 8095, \(port.number)], proto = "tcp" }]
            """)
        let out = try Harness.exec(policy: broad, ["python3", probe] + attempts, cwd: dir, timeout: 90)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let r = Self.results(out.stdout)
        #expect(r["tcp:\(remote.address):8080"] == "ok:hello-8080", "the broad rule itself works: \(out.stdout)")
        #expect(r["tcp:\(gateway):\(port.number)"] == "ECONNREFUSED", "the gateway (host): \(out.stdout)")
        #expect(r["tcp:\(otherAddress):8095"] == "ECONNREFUSED", "another run: \(out.stdout)")
        #expect(r["tcp:\(ll.address):8080"] == "ECONNREFUSED", "link-local: \(out.stdout)")
        let denied = EgressTests.denied(out.result)
        for (a, p) in [(gateway, port.number), (otherAddress, 8095), (ll.address, 8080)] {
            #expect(denied.contains { $0.daddr == a && $0.dport == p && $0.proto == "tcp" }, "\(a):\(p) not in egressDenied: \(denied)")
        }

        // Control: exact rules for the gateway and the link-local address open them.
        let exact = Self.basePolicy(in: dir, name: "exact", body: """
            allow = [
              { cidr = "0.0.0.0/0", ports = [8080, 8095, \(port.number)], proto = "tcp" },
              { cidr = "\(gateway)/32", ports = [\(port.number)], proto = "tcp" },
              { cidr = "\(ll.address)/32", ports = [8080], proto = "tcp" },
            ]
            """)
        let e = try Harness.exec(policy: exact, ["python3", probe] + attempts, cwd: dir, timeout: 90)
        let er = Self.results(e.stdout)
        #expect(er["tcp:\(gateway):\(port.number)"] == "ok:hello-\(port.number)", "exact gateway rule: \(e.stdout) \(e.stderr)")
        #expect(er["tcp:\(ll.address):8080"] == "ok:hello-8080", "exact link-local rule: \(e.stdout)")
        #expect(er["tcp:\(otherAddress):8095"] == "ECONNREFUSED", "another run stays closed: \(e.stdout)")

        // Another run's address, even named exactly, is refused before anything runs.
        let named = Self.basePolicy(in: dir, name: "other-exact", body: """
            allow = [{ cidr = "\(otherAddress)/32", ports = [8095], proto = "tcp" }]
            """)
        let n = try Harness.exec(policy: named, ["python3", probe, "tcp:\(otherAddress):8095"], cwd: dir)
        #expect(n.status == 125, "a rule naming another run's address: \(n.status) \(n.stdout)")
        #expect(n.stderr.contains("network.allow[0]") && n.stderr.contains("10.203.0.0/16"), "\(n.stderr)")
    }

    /// A listener on the host on a free port (all addresses), answering `hello-PORT`.
    static func freePortListener(dir: String) throws -> (number: Int, listener: Background) {
        for _ in 0..<20 {
            let candidate = Int.random(in: 20000..<30000)
            let l = try Background("/usr/bin/python3", ["\(dir)/hello.py", String(candidate)], cwd: dir)
            if l.firstLine() == "ready" { return (candidate, l) }
            l.stop()
        }
        throw EgressTests.TestHostError(message: "no free port for a host listener")
    }
}
