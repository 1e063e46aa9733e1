import Foundation
import Testing

/// Allow rules naming hosts, end to end (issue 17; Docs/network.md, "Names"): the DNS
/// stub the supervisor serves inside the run's namespace, the sets it fills, and the
/// firewall around it. Against test hosts this suite creates (`EgressTests.RemoteHost`):
/// one runs a small DNS server (Python, started and stopped here) that logs every
/// question it gets, another a TCP listener. Nothing is sent to any other address.
/// Every fence is shown with a control in which the same attempt gets through.
@Suite(.serialized) struct DomainTests {
    /// The test DNS server: `ADDRESS LOGFILE PACKETLOG NAME=IP[@TTL][~DELAY]…` on UDP
    /// and TCP port 53 of ADDRESS; every packet (UDP datagram, TCP message) is logged
    /// in PACKETLOG as hex before anything else, every question in LOGFILE as
    /// `name type`; a name not listed is NXDOMAIN; a name with a DELAY (seconds) is
    /// answered that much later over UDP (on a thread of its own).
    static let dnsServerScript = """
        import socket, struct, sys, threading, time
        addr, logpath, packetpath = sys.argv[1], sys.argv[2], sys.argv[3]
        log = open(logpath, "a", buffering=1)
        packets = open(packetpath, "a", buffering=1)
        records, delays = {}, {}
        for spec in sys.argv[4:]:
            name, rest = spec.split("=")
            rest, _, delay = rest.partition("~")
            if delay: delays[name.lower()] = float(delay)
            ip, _, ttl = rest.partition("@")
            t = 28 if ":" in ip else 1
            records.setdefault(name.lower(), []).append((t, ip, int(ttl or 60)))
        def question(q):
            labels, i = [], 12
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode().lower()); i += 1 + q[i]
            return ".".join(labels), i + 1
        def answer(q):
            qid = struct.unpack("!H", q[:2])[0]
            name, i = question(q)
            qtype = struct.unpack("!H", q[i:i + 2])[0]
            log.write("%s %d\\n" % (name, qtype))
            recs = [r for r in records.get(name, []) if r[0] == qtype]
            rcode = 0 if name in records else 3
            out = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(recs), 0, 0) + q[12:i + 4]
            for t, ip, ttl in recs:
                data = socket.inet_pton(socket.AF_INET6 if t == 28 else socket.AF_INET, ip)
                out += b"\\xc0\\x0c" + struct.pack("!HHIH", t, 1, ttl, len(data)) + data
            return out
        def reply(s, q, peer, delay=0):
            time.sleep(delay)
            try: s.sendto(answer(q), peer)
            except Exception as e: log.write("bad %r\\n" % e)
        def udp():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((addr, 53))
            while True:
                q, peer = s.recvfrom(4096)
                packets.write(q.hex() + "\\n")
                try: delay = delays.get(question(q)[0], 0)
                except Exception: delay = 0
                if delay: threading.Thread(target=reply, args=(s, q, peer, delay), daemon=True).start()
                else: reply(s, q, peer)
        def tcp():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, 53)); s.listen(16)
            while True:
                c, _ = s.accept()
                try:
                    n = struct.unpack("!H", c.recv(2))[0]
                    q = c.recv(n)
                    packets.write(q.hex() + "\\n")
                    a = answer(q)
                    c.sendall(struct.pack("!H", len(a)) + a)
                except Exception as e: log.write("bad %r\\n" % e)
                c.close()
        threading.Thread(target=udp, daemon=True).start()
        threading.Thread(target=tcp, daemon=True).start()
        time.sleep(0.2)
        print("ready", flush=True)
        time.sleep(180)
        """

    /// A DNS server on a test host, stopped (SIGKILL, our own child) by `stop`.
    final class DNSServer {
        let log: String
        let packetLog: String
        private let process: Process

        init(on host: EgressTests.RemoteHost, records: [String], dir: String) throws {
            log = "\(dir)/dns-queries.log"
            packetLog = "\(dir)/dns-packets.log"
            FileManager.default.createFile(atPath: log, contents: nil)
            FileManager.default.createFile(atPath: packetLog, contents: nil)
            let script = "\(dir)/dns_server.py"
            try DomainTests.dnsServerScript.write(toFile: script, atomically: true, encoding: .utf8)
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", host.netns, "python3", script, host.address, log, packetLog] + records
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            guard String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).hasPrefix("ready") else {
                stop()
                throw EgressTests.TestHostError(message: "DNS server in \(host.netns) did not start")
            }
        }

        /// The questions it was asked: `name type` lines.
        var questions: [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        /// Every packet it received, DNS or not, in hex (an empty datagram: an empty line).
        var packets: [String] {
            ((try? String(contentsOfFile: packetLog, encoding: .utf8)) ?? "").split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }
    }

    /// The probe: `name:HOST:PORT` resolves HOST (getaddrinfo, IPv4) and connects
    /// (`ok:<answer>`, `gai:<error>`, or the errno name); `q:NAME:TYPE` sends one
    /// question to the stub over UDP (`rcode:N,an:N`, or `timeout`), `qt:NAME:TYPE`
    /// over TCP; `many:NAME:N` sends N A questions at once over UDP and counts the
    /// answers' rcodes (`rcode0:32,rcode2:16`; `lost:N` for no answer in 5 s);
    /// `tcpcap:HELD:MORE` holds HELD idle TCP connections to the stub, then opens MORE
    /// and says how many the stub closed unread (`closed:N,open:N`), then closes all;
    /// `raw:HEX` sends those bytes to the stub over UDP (`none`, or `reply:RCODE` if
    /// it answered within 0.5 s); the kinds of `EgressTests.probeScript` as they are.
    static let probeScript = EgressTests.probeScript.replacingOccurrences(of: "for arg in sys.argv[1:]:", with: """
        import struct, random
        def named(host, port):
            try:
                infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
            except socket.gaierror as e:
                return "gai:%d" % e.errno
            return "addr:" + infos[0][4][0] + "/" + attempt("tcp", infos[0][4][0], port)
        def question(qname, qtype, tcp=False):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
            s.settimeout(3)
            qid = random.randrange(65536)
            q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
            for label in qname.split("."):
                q += bytes([len(label)]) + label.encode()
            q += b"\\0" + struct.pack("!HH", qtype, 1)
            try:
                if tcp:
                    s.connect(("127.0.0.53", 53))
                    s.sendall(struct.pack("!H", len(q)) + q)
                    n = struct.unpack("!H", s.recv(2))[0]
                    a = b""
                    while len(a) < n:
                        a += s.recv(n - len(a))
                else:
                    s.sendto(q, ("127.0.0.53", 53))
                    a = s.recv(4096)
            except socket.timeout:
                return "timeout"
            except OSError as e:
                return name(e)
            return "rcode:%d,an:%d" % (struct.unpack("!H", a[2:4])[0] & 15, struct.unpack("!H", a[6:8])[0])
        def burst(qname, n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.settimeout(3)
            q = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0)
            for label in qname.split("."):
                q += bytes([len(label)]) + label.encode()
            q += b"\\0" + struct.pack("!HH", 1, 1)
            codes = {}
            try:
                # Windows of 100 outstanding: more than the stub's 32 workers, fewer
                # than its socket buffer holds.
                for _ in range(n // 100):
                    for _ in range(100):
                        s.sendto(q, ("127.0.0.53", 53))
                    for _ in range(100):
                        a = s.recv(4096)
                        c = struct.unpack("!H", a[2:4])[0] & 15
                        codes[c] = codes.get(c, 0) + 1
            except socket.timeout:
                codes["lost"] = 1
            return ",".join("rcode%d:%d" % kv for kv in sorted(codes.items()))
        def many(qname, n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.settimeout(5)
            for qid in range(n):
                q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
                for label in qname.split("."):
                    q += bytes([len(label)]) + label.encode()
                s.sendto(q + b"\\0" + struct.pack("!HH", 1, 1), ("127.0.0.53", 53))
            codes = {}
            try:
                for _ in range(n):
                    a = s.recv(4096)
                    c = "rcode%d" % (struct.unpack("!H", a[2:4])[0] & 15)
                    codes[c] = codes.get(c, 0) + 1
            except socket.timeout:
                codes["lost"] = n - sum(codes.values())
            return ",".join("%s:%d" % kv for kv in sorted(codes.items()))
        def tcpcap(held, more):
            import time
            conns = []
            for _ in range(held):
                c = socket.create_connection(("127.0.0.53", 53), timeout=3); conns.append(c)
            time.sleep(0.5)  # the stub has accepted them all
            closed = opened = 0
            extra = []
            for _ in range(more):
                c = socket.create_connection(("127.0.0.53", 53), timeout=3); extra.append(c)
            time.sleep(1)  # a close comes at once; an idle connection lasts 5 s
            for c in extra:
                c.setblocking(False)
                try:
                    if c.recv(2) == b"": closed += 1
                    else: opened += 1
                except ConnectionResetError:
                    closed += 1
                except BlockingIOError:
                    opened += 1
            for c in conns + extra: c.close()
            time.sleep(0.3)  # the stub's threads see the ends and free their places
            return "closed:%d,open:%d" % (closed, opened)
        def raw(data):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.5)
            s.sendto(data, ("127.0.0.53", 53))
            try:
                a = s.recv(4096)
                return "reply:%d" % (struct.unpack("!H", a[2:4])[0] & 15 if len(a) >= 4 else -1)
            except socket.timeout:
                return "none"
        for arg in sys.argv[1:]:
            if arg.startswith("many:"):
                _, qname, n = arg.split(":")
                print("%s=%s" % (arg, many(qname, int(n))), flush=True)
                continue
            if arg.startswith("tcpcap:"):
                _, held, more = arg.split(":")
                print("%s=%s" % (arg, tcpcap(int(held), int(more))), flush=True)
                continue
            if arg.startswith("raw:"):
                print("%s=%s" % (arg, raw(bytes.fromhex(arg[4:]))), flush=True)
                continue
            if arg.startswith("burst:"):
                _, qname, n = arg.split(":")
                print("%s=%s" % (arg, burst(qname, int(n))), flush=True)
                continue
            if arg.startswith("name:"):
                _, host, port = arg.split(":")
                print("%s=%s" % (arg, named(host, int(port))), flush=True)
                continue
            if arg.startswith("q:") or arg.startswith("qt:"):
                kind, qname, qtype = arg.split(":")
                print("%s=%s" % (arg, question(qname, int(qtype), kind == "qt")), flush=True)
                continue
        """)

    /// A test host with the DNS server, another with a listener on 8080 and 8443, a
    /// directory with the probe; all removed after `body`.
    static func withHosts(records: (EgressTests.RemoteHost) -> [String],
                          _ body: (_ dns: EgressTests.RemoteHost, _ server: DNSServer, _ web: EgressTests.RemoteHost, _ dir: String, _ probe: String) throws -> Void) throws {
        let dnsHost = try EgressTests.RemoteHost()
        defer { dnsHost.cleanUp() }
        let web = try EgressTests.RemoteHost(avoiding: [dnsHost.n])
        defer { web.cleanUp() }
        try web.listen([8080, 8443])
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try DNSServer(on: dnsHost, records: records(web), dir: dir)
        defer { server.stop() }
        let probe = "\(dir)/probe.py"
        try probeScript.write(toFile: probe, atomically: true, encoding: .utf8)
        try body(dnsHost, server, web, dir, probe)
    }

    static func policy(in dir: String, name: String = "domain-test", _ network: String) -> String {
        Harness.egressPolicy(in: dir, name: name, network: network)
    }

    static func dnsDenied(_ result: [String: Any]?) -> [(name: String, type: String, reason: String, count: Int)] {
        ((result?["dnsDenied"] as? [[String: Any]]) ?? []).map {
            ($0["name"] as? String ?? "", $0["type"] as? String ?? "", $0["reason"] as? String ?? "", $0["count"] as? Int ?? 0)
        }
    }

    // MARK: - Tests

    /// An allowed name resolves through the stub and its address connects; a name not
    /// allowed is NXDOMAIN and never reaches the upstream server; the result counts it.
    @Test func anAllowedNameConnectsAndOthersNeverLeave() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["ok.test=\($0.address)", "bad.test=\($0.address)"] }) { dns, server, web, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let script = "cat /etc/resolv.conf; getent hosts ok.test; python3 \(probe) name:ok.test:8080 name:bad.test:8080 name:ok.test:8443"
            let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir, timeout: 90)
            #expect(out.status == 0, "stderr: \(out.stderr)")
            let r = EgressTests.results(out.stdout)
            #expect(out.stdout.contains("\(web.address)      ok.test") || out.stdout.contains("\(web.address) ok.test") || out.stdout.contains("\(web.address)\tok.test") || out.stdout.split(separator: "\n").contains { $0.hasPrefix(web.address) && $0.hasSuffix("ok.test") }, "getent: \(out.stdout)")
            #expect(r["name:ok.test:8080"] == "addr:\(web.address)/ok:hello-8080", "\(out.stdout)")
            // Another port of the same address is not opened by the name.
            #expect(r["name:ok.test:8443"] == "addr:\(web.address)/ECONNREFUSED", "\(out.stdout)")
            // NXDOMAIN: getaddrinfo's EAI_NONAME (-2).
            #expect(r["name:bad.test:8080"] == "gai:-2", "\(out.stdout)")
            #expect(out.stdout.hasPrefix("nameserver 127.0.0.53\n"), "\(out.stdout)")
            let asked = server.questions
            #expect(asked.contains("ok.test 1"), "upstream saw: \(asked)")
            #expect(!asked.contains { $0.hasPrefix("bad.test") }, "a name not allowed reached upstream: \(asked)")
            #expect(Self.dnsDenied(out.result).contains { $0.name == "bad.test" && $0.reason == "not_allowed" && $0.count >= 1 },
                    "dnsDenied: \(String(describing: out.result?["dnsDenied"]))")
            // The same refusal in the one denial account, with its hint.
            let d = (out.result?["denials"] as? [[String: Any]] ?? []).first { $0["kind"] as? String == "dns" && $0["what"] as? String == "bad.test" }
            #expect((d?["detail"] as? String)?.contains("not an allowed name") == true && (d?["count"] as? Int ?? 0) >= 1, "\(String(describing: d))")
            #expect((d?["hint"] as? String)?.contains("network.allow") == true, "\(String(describing: d))")
        }
    }

    /// The stub puts each answer's addresses into the run's sets through a netfilter
    /// socket of its own with a random address (`NameSets`). Through libnftables, as
    /// before, every update opened a socket the kernel bound to the supervisor's pid,
    /// which `/proc/net/netlink` inside the run showed for that moment: a command that
    /// reads it while names resolve learns a host pid. Here 80 answers, each a new
    /// address, are put in while the command reads the table without pause.
    @Test func setUpdatesNeverShowTheSupervisorsPid() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { web in (1...80).map { "r\($0).w.test=10.204.\(web.n).\(100 + $0)" } }) { dns, server, web, dir, _ in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "*.w.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let watcher = "\(dir)/watch.py"
            try """
            import socket, threading
            seen, done = set(), False
            def watch():
                while not done:
                    for line in open("/proc/net/netlink").read().split("\\n")[1:]:
                        f = line.split()
                        if len(f) > 2 and f[2] != "0" and int(f[2]) < (1 << 22): seen.add(f[1] + ":" + f[2])
            t = threading.Thread(target=watch); t.start()
            ok = 0
            for i in range(1, 81):
                try:
                    socket.getaddrinfo("r%d.w.test" % i, 8080, socket.AF_INET, socket.SOCK_STREAM); ok += 1
                except OSError: pass
            done = True; t.join()
            print("resolved=%d" % ok)
            print("pids=%s" % ",".join(sorted(seen)))
            """.write(toFile: watcher, atomically: true, encoding: .utf8)
            let out = try Harness.exec(policy: policy, ["python3", watcher], cwd: dir, timeout: 120)
            #expect(out.status == 0, "stderr: \(out.stderr)")
            let r = EgressTests.results(out.stdout)
            #expect(Int(r["resolved"] ?? "") ?? 0 >= 75, "the names did not resolve (no set updates to watch): \(out.stdout) \(out.stderr)")
            #expect(r["pids"] == "", "netlink sockets inside bound to process ids: \(r["pids"] ?? "?")")
        }
    }

    /// An answer that lists the same address twice, when its entry is about to expire
    /// and is replaced (delete, add), still opens it: the change is made once (red team,
    /// session 32: deleted twice in one batch, the kernel refused the whole update and
    /// the question got SERVFAIL).
    @Test func anAddressListedTwiceIsRenewed() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["dup.w.test=\($0.address)@5", "dup.w.test=\($0.address)@5"] }) { dns, _, web, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "dup.w.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let script = "python3 \(probe) q:dup.w.test:1; sleep 3; python3 \(probe) q:dup.w.test:1 name:dup.w.test:8080"
            let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir, timeout: 90)
            #expect(out.status == 0, "stderr: \(out.stderr)")
            let answers = out.stdout.split(separator: "\n").filter { $0.hasPrefix("q:dup.w.test:1=") }
            #expect(answers.count == 2 && answers.allSatisfy { $0.contains("rcode:0") }, "\(out.stdout)")
            #expect(EgressTests.results(out.stdout)["name:dup.w.test:8080"] == "addr:\(web.address)/ok:hello-8080", "\(out.stdout)")
        }
    }

    /// The address behind an allowed name is closed until the name is resolved in this
    /// run; control: a CIDR rule for it opens it without any lookup.
    @Test func anAddressIsClosedUntilItsNameIsResolved() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["ok.test=\($0.address)"] }) { dns, server, web, dir, probe in
            let names = Self.policy(in: dir, """
                allow = [{ host = "ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let out = try Harness.exec(policy: names, ["python3", probe, "tcp:\(web.address):8080"], cwd: dir, timeout: 90)
            #expect(EgressTests.results(out.stdout)["tcp:\(web.address):8080"] == "ECONNREFUSED", "\(out.stdout) \(out.stderr)")
            #expect(server.questions.isEmpty, "\(server.questions)")
            // Control: the same connect under a CIDR rule for the address.
            let cidr = Self.policy(in: dir, name: "domain-control", """
                allow = [{ host = "ok.test", ports = [8080] }, { cidr = "\(web.address)/32", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let control = try Harness.exec(policy: cidr, ["python3", probe, "tcp:\(web.address):8080"], cwd: dir, timeout: 90)
            #expect(EgressTests.results(control.stdout)["tcp:\(web.address):8080"] == "ok:hello-8080", "\(control.stdout) \(control.stderr)")
        }
    }

    /// Answers in deny_resolved open nothing and are left out of the reply: loopback and
    /// the metadata address always; a range the policy adds. Control: the same name,
    /// without that range, connects.
    @Test func answersInDeniedRangesOpenNothing() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["meta.test=169.254.169.254", "lo.test=127.0.0.1", "ok.test=\($0.address)"] }) { dns, _, web, dir, probe in
            let attempts = ["name:meta.test:8080", "name:lo.test:8080", "name:ok.test:8080"]
            let denying = Self.policy(in: dir, """
                allow = [{ host = "meta.test", ports = [8080] }, { host = "lo.test", ports = [8080] }, { host = "ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                deny_resolved = ["\(web.address)/32"]
                """)
            let out = try Harness.exec(policy: denying, ["python3", probe] + attempts, cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            // No address in the reply (NOERROR without records: EAI_NODATA -5 or EAI_NONAME -2).
            for a in attempts { #expect(r[a]?.hasPrefix("gai:") == true, "\(a): \(out.stdout) \(out.stderr)") }
            let denied = Self.dnsDenied(out.result)
            for name in ["meta.test", "lo.test", "ok.test"] {
                #expect(denied.contains { $0.name == name && $0.reason == "denied_address" && $0.type == "A" }, "\(name): \(denied)")
            }
            // The address was never opened: a direct connect is refused.
            let direct = try Harness.exec(policy: denying, ["sh", "-c", "python3 \(probe) name:ok.test:8080 tcp:\(web.address):8080"], cwd: dir, timeout: 90)
            #expect(EgressTests.results(direct.stdout)["tcp:\(web.address):8080"] == "ECONNREFUSED", "\(direct.stdout)")
            // Control: without the added range the same name connects.
            let open = Self.policy(in: dir, name: "domain-control", """
                allow = [{ host = "ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let control = try Harness.exec(policy: open, ["python3", probe, "name:ok.test:8080"], cwd: dir, timeout: 90)
            #expect(EgressTests.results(control.stdout)["name:ok.test:8080"] == "addr:\(web.address)/ok:hello-8080", "\(control.stdout) \(control.stderr)")
        }
    }

    /// DNS to any address but the stub is dropped (UDP and TCP 53), even to the
    /// upstream server itself (a rule that lists port 53 next to host rules is a load
    /// error); what is not a DNS query goes nowhere upstream. Control: without host rules, the same query to
    /// the same server (named in `dns`) gets there.
    @Test func dnsGoesOnlyToTheStub() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["ok.test=\($0.address)"] }) { dns, server, _, dir, probe in
            let names = Self.policy(in: dir, """
                allow = [{ host = "ok.test", ports = [8080] }, { cidr = "\(dns.address)/32", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let attempts = ["dns:\(dns.address):53", "tcp:\(dns.address):53", "udp:127.0.0.53:53"]
            let out = try Harness.exec(policy: names, ["python3", probe] + attempts, cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            #expect(r["dns:\(dns.address):53"] == "EPERM", "\(out.stdout) \(out.stderr)")
            #expect(r["tcp:\(dns.address):53"] == "ECONNREFUSED", "\(out.stdout)")
            #expect(r["udp:127.0.0.53:53"] == "sent", "\(out.stdout)")
            usleep(300_000)
            #expect(server.questions.isEmpty, "upstream saw: \(server.questions)")
            // Control: a CIDR-only policy with the server as its resolver reaches it.
            let direct = Self.policy(in: dir, name: "domain-control", """
                dns = ["\(dns.address)"]
                allow = [{ cidr = "\(dns.address)/32", ports = [8080] }]
                """)
            let control = try Harness.exec(policy: direct, ["python3", probe, "dns:\(dns.address):53"], cwd: dir, timeout: 90)
            #expect(EgressTests.results(control.stdout)["dns:\(dns.address):53"] == "sent", "\(control.stdout)")
            var seen = false
            for _ in 0..<20 where !seen { seen = server.questions.contains("example.test 1"); if !seen { usleep(100_000) } }
            #expect(seen, "control query did not arrive: \(server.questions)")
        }
    }

    /// A wildcard admits names below it, not the name itself; HTTPS/SVCB questions are
    /// refused without being sent on. Control: the same questions for a listed name
    /// and type A go upstream and are answered.
    @Test func wildcardsAndRecordTypes() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["a.ok.test=\($0.address)", "b.a.ok.test=\($0.address)", "ok.test=\($0.address)"] }) { dns, server, _, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "*.ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let attempts = ["q:a.ok.test:1", "q:b.a.ok.test:1", "q:ok.test:1", "q:a.ok.test:65", "q:a.ok.test:64", "q:a.ok.test:16",
                            "qt:b.a.ok.test:1", "qt:ok.test:1"]
            let out = try Harness.exec(policy: policy, ["python3", probe] + attempts, cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            #expect(r["q:a.ok.test:1"] == "rcode:0,an:1", "\(out.stdout) \(out.stderr)")
            #expect(r["q:b.a.ok.test:1"] == "rcode:0,an:1", "\(out.stdout)")
            #expect(r["q:ok.test:1"] == "rcode:3,an:0", "\(out.stdout)")
            // The same over TCP.
            #expect(r["qt:b.a.ok.test:1"] == "rcode:0,an:1", "\(out.stdout)")
            #expect(r["qt:ok.test:1"] == "rcode:3,an:0", "\(out.stdout)")
            for t in [65, 64, 16] { #expect(r["q:a.ok.test:\(t)"] == "rcode:5,an:0", "type \(t): \(out.stdout)") }
            let asked = server.questions
            #expect(asked.contains("a.ok.test 1") && asked.contains("b.a.ok.test 1"), "\(asked)")
            #expect(!asked.contains("ok.test 1") && !asked.contains { $0.hasSuffix(" 65") || $0.hasSuffix(" 64") || $0.hasSuffix(" 16") },
                    "upstream saw: \(asked)")
            let denied = Self.dnsDenied(out.result)
            #expect(denied.contains { $0.name == "ok.test" && $0.reason == "not_allowed" }, "\(denied)")
            #expect(denied.contains { $0.name == "a.ok.test" && $0.type == "HTTPS" && $0.reason == "record_type" }, "\(denied)")
            #expect(denied.contains { $0.name == "a.ok.test" && $0.type == "SVCB" && $0.reason == "record_type" }, "\(denied)")
        }
    }

    /// A query name that is not a host name (a quote, newline, escape byte) reaches the
    /// result escaped (RFC 1035 `\DDD`) and with no suggested policy edit, which it
    /// could otherwise forge (red-team F3). Control: a host name not allowed gets the
    /// "add host" hint.
    @Test func aNameThatIsNotAHostNameForgesNoHint() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["ok.test=\($0.address)"] }) { dns, server, _, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let forged = "x\", ports = [1] }]\nnetwork.allow = [{ cidr = \"0.0.0.0/0\u{1b}.test"
            let attempts = ["q:\(forged):1", "q:bad.test:1"]
            let out = try Harness.exec(policy: policy, ["python3", probe] + attempts, cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            #expect(r["q:bad.test:1"] == "rcode:3,an:0", "\(out.stdout) \(out.stderr)")
            let escaped = #"x\034\044\032ports\032\061\032\0911\093\032\125\093\010network.allow\032\061\032\091\123\032cidr\032\061\032\0340.0.0.0\0470\027.test"#
            let denials = out.result?["denials"] as? [[String: Any]] ?? []
            let dnsDenied = out.result?["dnsDenied"] as? [[String: Any]] ?? []
            let entry = dnsDenied.first { $0["name"] as? String == escaped }
            #expect(entry?["reason"] as? String == "not_allowed", "\(dnsDenied)")
            let d = denials.first { $0["kind"] as? String == "dns" && $0["what"] as? String == escaped }
            #expect((d?["detail"] as? String)?.contains("not a valid host name") == true, "\(denials)")
            for hint in [entry?["hint"] as? String, d?["hint"] as? String] {
                #expect(hint?.contains("not a valid host name") == true, "\(String(describing: hint))")
                #expect(hint?.contains("network.allow") == false && hint?.contains("0.0.0.0") == false, "\(String(describing: hint))")
            }
            // No refusal in the result carries the client's bytes as they were (argv does).
            let raw = String(decoding: try JSONSerialization.data(withJSONObject: [denials, dnsDenied]), as: UTF8.self)
            #expect(raw.contains("bad.test") && !raw.contains("cidr = \\\"0.0.0.0") && !raw.contains("\\u001b"), "\(raw)")
            // Control: a host name not allowed is told how to allow it.
            let bad = dnsDenied.first { $0["name"] as? String == "bad.test" }
            #expect((bad?["hint"] as? String)?.contains("network.allow = [{ host = \"bad.test\"") == true, "\(dnsDenied)")
            #expect(server.questions.isEmpty, "\(server.questions)")
        }
    }

    /// IPv6 forms of IPv4 addresses (NAT64, local NAT64, 6to4, Teredo, IPv4-compatible)
    /// and site-local answers open nothing (red-team F5): a gateway could turn them into
    /// 169.254.169.254 or 127.0.0.1. Control: an AAAA answer outside them is opened.
    @Test func ipv6FormsOfDeniedAddressesOpenNothing() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let denied = ["nat64.test=64:ff9b::a9fe:a9fe", "lnat64.test=64:ff9b:1::a9fe:a9fe", "sixto4.test=2002:a9fe:a9fe::1",
                      "teredo.test=2001:0:4136:e378:8000:63bf:5601:5601", "compat.test=::7f00:1", "site.test=fec0::1"]
        try Self.withHosts(records: { denied + ["ok6.test=\($0.address6)"] }) { dns, _, web, dir, probe in
            let names = denied.map { String($0.split(separator: "=")[0]) }
            let policy = Self.policy(in: dir, """
                allow = [\((names + ["ok6.test"]).map { "{ host = \"\($0)\", ports = [8080] }" }.joined(separator: ", "))]
                upstream_dns = ["\(dns.address)"]
                """)
            let out = try Harness.exec(policy: policy, ["python3", probe] + (names + ["ok6.test"]).map { "q:\($0):28" }, cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            let d = Self.dnsDenied(out.result)
            for name in names {
                #expect(r["q:\(name):28"] == "rcode:0,an:0", "\(name): \(out.stdout) \(out.stderr)")
                #expect(d.contains { $0.name == name && $0.type == "AAAA" && $0.reason == "denied_address" }, "\(name): \(d)")
            }
            #expect(r["q:ok6.test:28"] == "rcode:0,an:1", "\(out.stdout)")
        }
    }

    /// Every refusal is counted (red-team F1, F4): questions over the upstream rate get
    /// SERVFAIL and `rate_limited`; an answer with more than 32 addresses opens 32 and
    /// counts the rest (`too_many_addresses`). The 40 addresses only enter the run's
    /// nft set: nothing is sent to them. Control: the first questions are answered.
    @Test func rateLimitAndAddressCapAreCounted() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let many = (1...40).map { "many.test=198.51.100.\($0)" }
        try Self.withHosts(records: { many + ["ok.test=\($0.address)"] }) { dns, _, _, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "many.test", ports = [8080] }, { host = "ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let script = "python3 \(probe) qt:many.test:1 q:ok.test:1 | head -2; python3 \(probe) \((0..<300).map { _ in "q:ok.test:1" }.joined(separator: " ")) | sort | uniq -c"
            let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir, timeout: 90)
            #expect(out.stdout.contains("qt:many.test:1=rcode:0,an:32"), "\(out.stdout) \(out.stderr)")
            #expect(out.stdout.contains("q:ok.test:1=rcode:0,an:1"), "\(out.stdout)")
            #expect(out.stdout.contains("q:ok.test:1=rcode:2,an:0"), "\(out.stdout)")
            let d = Self.dnsDenied(out.result)
            #expect(d.contains { $0.name == "many.test" && $0.reason == "too_many_addresses" && $0.count == 8 }, "\(d)")
            #expect(d.contains { $0.name == "ok.test" && $0.reason == "rate_limited" && $0.count >= 1 }, "\(d)")
            let hint = (out.result?["denials"] as? [[String: Any]] ?? []).first { ($0["detail"] as? String)?.contains("upstream rate") == true }?["hint"] as? String
            #expect(hint?.contains("retry more slowly") == true, "\(String(describing: out.result?["denials"]))")
        }
    }

    /// Questions no rule admits are answered on the stub's serving thread (red-team
    /// F2): a burst of them all get NXDOMAIN, none SERVFAIL for want of a worker
    /// (`busy`), and an allowed name asked meanwhile is still answered.
    @Test func aBurstOfRefusedNamesIsAnsweredInline() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["ok.test=\($0.address)"] }) { dns, _, _, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let out = try Harness.exec(policy: policy, ["python3", probe, "burst:flood.test:2000", "q:ok.test:1"], cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            #expect(r["burst:flood.test:2000"] == "rcode3:2000", "\(out.stdout) \(out.stderr)")
            #expect(r["q:ok.test:1"] == "rcode:0,an:1", "\(out.stdout)")
            let d = Self.dnsDenied(out.result)
            #expect(!d.contains { $0.reason == "busy" }, "\(d)")
            #expect(d.contains { $0.name == "flood.test" && $0.reason == "not_allowed" && $0.count == 2000 }, "\(d)")
        }
    }

    /// More allowed questions in flight than the stub's 32 workers (an upstream that
    /// answers after 1 s): 32 are asked upstream and answered, the other 16 get
    /// SERVFAIL at once, are never sent upstream, and are counted `busy`. Control:
    /// once the workers are free, the same question is answered.
    @Test func questionsOverTheWorkerCapAreBusy() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["slow.test=\($0.address)@60~1"] }) { dns, server, _, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "slow.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let out = try Harness.exec(policy: policy, ["python3", probe, "many:slow.test:48", "q:slow.test:1"], cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            #expect(r["many:slow.test:48"] == "rcode0:32,rcode2:16", "\(out.stdout) \(out.stderr)")
            #expect(r["q:slow.test:1"] == "rcode:0,an:1", "\(out.stdout)")
            #expect(server.questions.filter { $0 == "slow.test 1" }.count == 33, "upstream saw: \(server.questions)")
            let d = Self.dnsDenied(out.result)
            #expect(d.contains { $0.name == "slow.test" && $0.type == "A" && $0.reason == "busy" && $0.count == 16 }, "\(d)")
            let busy = (out.result?["denials"] as? [[String: Any]] ?? []).first { $0["kind"] as? String == "dns" && $0["what"] as? String == "slow.test" }
            #expect((busy?["detail"] as? String)?.contains("too many questions in flight") == true && busy?["count"] as? Int == 16,
                    "\(String(describing: out.result?["denials"]))")
        }
    }

    /// TCP connections to the stub over its 16 at once are closed before a question is
    /// read, and counted (`too_many_connections`, no name or type; in `denials` as the
    /// stub's port). Control: the 16 held ones stay open, and once they are closed a
    /// question over TCP is answered.
    @Test func tcpConnectionsOverTheCapAreCounted() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["ok.test=\($0.address)"] }) { dns, _, _, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let out = try Harness.exec(policy: policy, ["python3", probe, "tcpcap:16:4", "tcpcap:12:0", "qt:ok.test:1"], cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            #expect(r["tcpcap:16:4"] == "closed:4,open:0", "\(out.stdout) \(out.stderr)")
            #expect(r["qt:ok.test:1"] == "rcode:0,an:1", "\(out.stdout)")
            let d = Self.dnsDenied(out.result)
            #expect(d.filter { $0.reason == "too_many_connections" }.map { "\($0.name)|\($0.type)|\($0.count)" } == ["||4"], "\(d)")
            let denial = (out.result?["denials"] as? [[String: Any]] ?? []).first { $0["kind"] as? String == "dns" && $0["what"] as? String == "127.0.0.53:53/tcp" }
            #expect(denial?["count"] as? Int == 4 && (denial?["detail"] as? String)?.contains("16 TCP connections") == true,
                    "\(String(describing: out.result?["denials"]))")
            #expect((denial?["hint"] as? String)?.contains("UDP") == true, "\(String(describing: denial))")
        }
    }

    /// What is not a DNS query, sent to the stub over UDP, gets no answer and nothing
    /// reaches the upstream server — also messages that nearly are one, for an allowed
    /// name: a response, NOTIFY and UPDATE opcodes, two questions, an answer record,
    /// bytes after the question, a cut question, an empty datagram, plain text. The
    /// server logs every packet it receives. Control: a real question for the same
    /// name, sent after them, is the one packet it sees.
    @Test func whatIsNotAQueryGoesNowhereUpstream() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["ok.test=\($0.address)"] }) { dns, server, _, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "ok.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let question = "026f6b04746573740000010001"  // ok.test A IN
            let notQueries = [
                "123481800001000000000000" + question,   // QR set: a response
                "123420000001000000000000" + question,   // opcode 4, NOTIFY
                "123428000001000000000000" + question,   // opcode 5, UPDATE
                "123401000002000000000000" + question + question,  // two questions
                "123401000001000100000000" + question,        // an answer count, no answer
                "123401000001000000000000" + question + "ff", // a byte after the question
                "123401000001000000000000026f6b047465",       // the question cut
                "",                                            // an empty datagram
                "70726f6265",                                  // "probe"
            ]
            let out = try Harness.exec(policy: policy, ["python3", probe] + notQueries.map { "raw:\($0)" } + ["q:ok.test:1"], cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            for q in notQueries { #expect(r["raw:\(q)"] == "none", "\(q): \(out.stdout) \(out.stderr)") }
            #expect(r["q:ok.test:1"] == "rcode:0,an:1", "\(out.stdout)")
            usleep(300_000)
            let packets = server.packets
            #expect(packets.count == 1 && server.questions == ["ok.test 1"], "upstream saw: \(packets)")
            // The one packet is the stub's own question for ok.test A (its own id, RD, an OPT record).
            #expect(packets.first?.dropFirst(4).hasPrefix("01000001000000000001" + question) == true, "\(packets)")
        }
    }

    /// A rule's set that would overflow (4096 addresses) gets SERVFAIL and `set_full`
    /// without an nft transaction (red-team F1). 128 names of 32 addresses each fill
    /// it; the addresses only enter the run's set, nothing is sent to them.
    @Test func aFullSetIsCountedAndRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let records = (0..<130).flatMap { n in (0..<32).map { "n\(n).fill.test=10.\(100 + n / 64).\(n % 64 * 4 + $0 / 64).\($0 % 64 + 1)" } }
        try Self.withHosts(records: { _ in records }) { dns, _, _, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "*.fill.test", ports = [8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let out = try Harness.exec(policy: policy, ["python3", probe] + (0..<130).map { "qt:n\($0).fill.test:1" }, cwd: dir, timeout: 120)
            let r = EgressTests.results(out.stdout)
            #expect(r["qt:n0.fill.test:1"] == "rcode:0,an:32", "\(out.stdout) \(out.stderr)")
            #expect(r["qt:n126.fill.test:1"] == "rcode:0,an:32", "\(out.stdout)")
            #expect(r["qt:n129.fill.test:1"] == "rcode:2,an:0", "\(out.stdout)")
            let d = Self.dnsDenied(out.result)
            #expect(d.contains { $0.name == "n129.fill.test" && $0.reason == "set_full" }, "\(d)")
        }
    }

    /// The kernel checks deny_resolved again after a name's set (red-team F6b): an
    /// entry for a denied address put into the set by hand (from the host, inside the
    /// run's namespace) still cannot be connected to. Control: the same entry for an
    /// address not denied connects.
    @Test func aDeniedAddressInANameSetIsStillRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["ok.test=\($0.address)"] }) { dns, _, web, dir, probe in
            for (name, denied) in [("domain-deny", true), ("domain-control", false)] {
                let policy = Self.policy(in: dir, name: name, """
                    allow = [{ host = "ok.test", ports = [8080] }]
                    upstream_dns = ["\(dns.address)"]
                    \(denied ? "deny_resolved = [\"\(web.address)/32\"]" : "")
                    """)
                let flag = "\(dir)/added-\(name)"
                let marker = "marker-\(UUID().uuidString)"
                let script = ": \(marker); for i in $(seq 100); do [ -e \(flag) ] && break; sleep 0.1; done; python3 \(probe) tcp:\(web.address):8080"
                var added = ""
                let adder = Thread {
                    defer { FileManager.default.createFile(atPath: flag, contents: nil) }
                    for _ in 0..<100 {
                        if let pid = Self.runProcess(marker) {
                            let r = try? Harness.run("/usr/bin/nsenter", ["--net=/proc/\(pid)/ns/net", "nft", "add", "element", "inet", "sandbox",
                                                                         "name0_4", "{ \(web.address) timeout 60s }"])
                            added = r.map { "status \($0.status) \($0.stderr)" } ?? "failed"
                            return
                        }
                        usleep(50_000)
                    }
                    added = "no run process"
                }
                adder.start()
                let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir, timeout: 90)
                #expect(added == "status 0 ", "\(added)")
                let expected = denied ? "ECONNREFUSED" : "ok:hello-8080"
                #expect(EgressTests.results(out.stdout)["tcp:\(web.address):8080"] == expected, "\(name): \(out.stdout) \(out.stderr)")
            }
        }
    }

    /// The pid of the run's `sh` whose command line holds `marker` (in a network
    /// namespace other than ours: not the supervisor, whose argv holds it too).
    static func runProcess(_ marker: String) -> Int32? {
        let ours = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")) ?? ""
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            // comm "sh": the command itself, not the child before its execve, which is a
            // clone of the supervisor (its argv holds the marker too) and already in the
            // run's namespace before the supervisor has loaded the ruleset there.
            guard let pid = Int32(entry), let cmd = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  String(decoding: cmd, as: UTF8.self).contains(marker),
                  let comm = FileManager.default.contents(atPath: "/proc/\(entry)/comm"),
                  String(decoding: comm, as: UTF8.self) == "sh\n",
                  let ns = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/ns/net"), ns != ours else { continue }
            return pid
        }
        return nil
    }

    /// UDP 443 (QUIC) stays closed to a name's address; a CIDR rule opens it (control).
    @Test func quicIsClosedUnlessACIDRRuleOpensIt() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["ok.test=\($0.address)"] }) { dns, _, web, dir, probe in
            let names = Self.policy(in: dir, """
                allow = [{ host = "ok.test", ports = [443, 8080] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let script = "python3 \(probe) name:ok.test:8080 udp:\(web.address):443"
            let out = try Harness.exec(policy: names, ["sh", "-c", script], cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            #expect(r["name:ok.test:8080"] == "addr:\(web.address)/ok:hello-8080", "\(out.stdout) \(out.stderr)")
            #expect(r["udp:\(web.address):443"] == "EPERM", "\(out.stdout)")
            let cidr = Self.policy(in: dir, name: "domain-control", """
                allow = [{ host = "ok.test", ports = [443, 8080] }, { cidr = "\(web.address)/32", ports = [443], proto = "udp" }]
                upstream_dns = ["\(dns.address)"]
                """)
            let control = try Harness.exec(policy: cidr, ["sh", "-c", script], cwd: dir, timeout: 90)
            #expect(EgressTests.results(control.stdout)["udp:\(web.address):443"] == "sent", "\(control.stdout)")
        }
    }

    /// An entry lives for the answer's TTL clamped to at least 5 s: with TTL 2 the
    /// address still connects right after the lookup (the clamp), and no longer once
    /// the entry has expired without a new lookup. Control: the same wait with a TTL
    /// of 60 s still connects.
    @Test func anEntryExpiresWithItsTTL() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts(records: { ["short.test=\($0.address)@2", "long.test=\($0.address)@60"] }) { dns, _, web, dir, probe in
            let policy = Self.policy(in: dir, """
                allow = [{ host = "short.test", ports = [8080] }, { host = "long.test", ports = [8443] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let script = """
                python3 \(probe) name:short.test:8080 name:long.test:8443; sleep 2.5
                python3 \(probe) tcp:\(web.address):8080; sleep 4
                python3 \(probe) tcp:\(web.address):8443 tcp:\(web.address):8080
                """
            let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir, timeout: 90)
            let lines = out.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains("name:short.test:8080=addr:\(web.address)/ok:hello-8080"), "\(out.stdout) \(out.stderr)")
            // 2.5 s after a TTL-2 answer: open (entries live at least 5 s).
            #expect(lines.firstIndex(of: "tcp:\(web.address):8080=ok:hello-8080") != nil, "\(out.stdout)")
            // 6.5 s after: the TTL-60 entry holds (control), the clamped TTL-2 one has expired.
            #expect(lines.contains("tcp:\(web.address):8443=ok:hello-8443"), "\(out.stdout)")
            #expect(lines.contains("tcp:\(web.address):8080=ECONNREFUSED"), "\(out.stdout)")
        }
    }

    /// Runs at once with different allowlists never see each other's entries: each
    /// opens its own name's host, and the other host — opened meanwhile by the other
    /// half of the runs — stays refused.
    @Test func parallelRunsKeepTheirOwnEntries() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let second = try EgressTests.RemoteHost()
        defer { second.cleanUp() }
        try second.listen([8080])
        try Self.withHosts(records: { ["a.test=\($0.address)", "b.test=\(second.address)"] }) { dns, _, first, dir, probe in
            let policies = ["a", "b"].map { name in
                Self.policy(in: dir, name: "domain-\(name)", """
                    allow = [{ host = "\(name).test", ports = [8080] }]
                    upstream_dns = ["\(dns.address)"]
                    """)
            }
            let hosts = [first.address, second.address]
            let lock = NSLock()
            var outputs: [(Int, Harness.Output)] = []
            var failures: [String] = []
            let group = DispatchGroup()
            for i in 0..<16 {
                let mine = i % 2, other = 1 - mine
                group.enter()
                Thread {
                    defer { group.leave() }
                    do {
                        let name = mine == 0 ? "a.test" : "b.test"
                        let script = "python3 \(probe) name:\(name):8080; sleep 1; python3 \(probe) tcp:\(hosts[other]):8080"
                        let out = try Harness.exec(policy: policies[mine], ["sh", "-c", script], cwd: dir, timeout: 120)
                        lock.lock(); outputs.append((mine, out)); lock.unlock()
                    } catch {
                        lock.lock(); failures.append("\(error)"); lock.unlock()
                    }
                }.start()
            }
            group.wait()
            #expect(failures.isEmpty, "\(failures)")
            #expect(outputs.count == 16)
            for (mine, out) in outputs {
                let r = EgressTests.results(out.stdout)
                let name = mine == 0 ? "a.test" : "b.test"
                #expect(r["name:\(name):8080"] == "addr:\(hosts[mine])/ok:hello-8080", "\(out.stdout) \(out.stderr)")
                #expect(r["tcp:\(hosts[1 - mine]):8080"] == "ECONNREFUSED", "\(out.stdout)")
            }
        }
    }
}
