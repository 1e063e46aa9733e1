import Foundation
import Testing

/// The server name check of host rules (issue 17, "fronting"; Docs/network.md, "The
/// server name check"): the first data of a TCP flow a host rule admitted must name,
/// in its TLS ClientHello (or HTTP Host), a name that resolved to that address in
/// this run and is allowed on that port; otherwise the flow is reset and listed in
/// `sniDenied`. Against test hosts this suite creates: a DNS server
/// (`DomainTests.DNSServer`) and a listener that answers `got:N` once it has read
/// the client's first bytes, so a connection that is reset never gets that answer.
/// Control: the same fronting connection through a CIDR rule (no check) succeeds.
@Suite(.serialized) struct ServerNameTests {
    /// `ADDRESS PORT`: reads what the client sends first (up to 1 s), answers `got:N`.
    static let listenerScript = """
        import socket, sys, threading, time
        addr, port = sys.argv[1], int(sys.argv[2])
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port)); s.listen(64)
        def serve(c):
            c.settimeout(1)
            data = b""
            try:
                data = c.recv(65536)
            except Exception:
                pass
            try:
                c.sendall(b"got:%d\\n" % len(data))
            except Exception:
                pass
            c.close()
        def loop():
            while True:
                c, _ = s.accept()
                threading.Thread(target=serve, args=(c,), daemon=True).start()
        threading.Thread(target=loop, daemon=True).start()
        print("ready", flush=True)
        time.sleep(180)
        """

    /// Inside the run: `KIND:NAME:CLAIM:PORT` resolves NAME, connects to its address and
    /// sends, by KIND: `sni` a hand-made ClientHello with server_name CLAIM; `ssl`
    /// Python's own (OpenSSL's) ClientHello for CLAIM; `http` a GET with Host CLAIM;
    /// `raw` the bytes `hello`. Prints `ok:<answer>`, `ssl-error` (the listener
    /// answered, not in TLS: the ClientHello got through), or the errno name.
    static let clientScript = """
        import errno, os, socket, ssl, struct, sys
        def hello(sni):
            n = sni.encode()
            ext = struct.pack("!HHHBH", 0, len(n) + 5, len(n) + 3, 0, len(n)) + n
            body = b"\\x03\\x03" + os.urandom(32) + b"\\x00" + struct.pack("!H", 2) + b"\\x13\\x01" + b"\\x01\\x00" + struct.pack("!H", len(ext)) + ext
            hs = b"\\x01" + struct.pack("!I", len(body))[1:] + body
            return b"\\x16\\x03\\x01" + struct.pack("!H", len(hs)) + hs
        def attempt(kind, name, claim, port):
            try:
                address = socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
            except socket.gaierror as e:
                return "gai:%d" % e.errno
            s = socket.socket()
            s.settimeout(3)
            try:
                s.connect((address, port))
                if kind == "ssl":
                    ctx = ssl.create_default_context()
                    try:
                        ctx.wrap_socket(s, server_hostname=claim)
                    except ssl.SSLError:
                        return "ssl-error"
                    return "handshake"
                if kind == "sni":
                    s.sendall(hello(claim))
                elif kind == "http":
                    s.sendall(b"GET / HTTP/1.1\\r\\nHost: " + claim.encode() + b"\\r\\n\\r\\n")
                else:
                    s.sendall(b"hello\\n")
                answer = s.recv(64).decode().strip()
                return "ok:" + answer if answer else "closed"
            except socket.timeout:
                return "timeout"
            except OSError as e:
                return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
            finally:
                s.close()
        for arg in sys.argv[1:]:
            kind, name, claim, port = arg.split(":")
            print("%s=%s" % (arg, attempt(kind, name, claim, int(port))), flush=True)
        """

    /// A DNS server with `a.test`, `b.test`, `c.test` all at the web host's address, the
    /// listener on its 8443, the client script; all removed after `body`.
    static func withHosts(_ body: (_ dns: EgressTests.RemoteHost, _ web: EgressTests.RemoteHost, _ dir: String, _ client: String) throws -> Void) throws {
        let dnsHost = try EgressTests.RemoteHost()
        defer { dnsHost.cleanUp() }
        let web = try EgressTests.RemoteHost(avoiding: [dnsHost.n])
        defer { web.cleanUp() }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try DomainTests.DNSServer(on: dnsHost, records: ["a.test=\(web.address)", "b.test=\(web.address)", "c.test=\(web.address)"], dir: dir)
        defer { server.stop() }
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        listener.arguments = ["netns", "exec", web.netns, "python3", "-c", listenerScript, web.address, "8443"]
        let out = Pipe()
        listener.standardOutput = out
        listener.standardError = FileHandle.nullDevice
        try listener.run()
        defer { if listener.isRunning { kill(listener.processIdentifier, SIGKILL); listener.waitUntilExit() } }
        guard String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).hasPrefix("ready") else {
            throw EgressTests.TestHostError(message: "listener in \(web.netns) did not start")
        }
        let client = "\(dir)/client.py"
        try clientScript.write(toFile: client, atomically: true, encoding: .utf8)
        try body(dnsHost, web, dir, client)
    }

    static func sniDenied(_ result: [String: Any]?) -> [(daddr: String, dport: Int, name: String, reason: String, count: Int)] {
        ((result?["sniDenied"] as? [[String: Any]]) ?? []).map {
            ($0["daddr"] as? String ?? "", $0["dport"] as? Int ?? 0, $0["name"] as? String ?? "", $0["reason"] as? String ?? "", $0["count"] as? Int ?? 0)
        }
    }

    /// Fronting is reset: to the address `a.test` resolved to, a ClientHello for `a.test`
    /// passes (hand-made and OpenSSL's), one for `b.test` (allowed, but not resolved in
    /// this run) and one for `c.test` (not allowed) are reset, as is data that names
    /// nothing; an HTTP request with Host `a.test` passes. Once `b.test` is resolved, its
    /// own ClientHello passes. Control: the `c.test` ClientHello through a CIDR rule for
    /// the address (no host rule on the port, no check) gets its answer.
    @Test func aClientHelloMustNameANameThatResolvedThere() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try Self.withHosts { dns, web, dir, client in
            let policy = DomainTests.policy(in: dir, """
                allow = [{ host = "a.test", ports = [8443] }, { host = "b.test", ports = [8443] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let first = ["sni:a.test:a.test:8443", "ssl:a.test:a.test:8443", "http:a.test:a.test:8443",
                         "sni:a.test:b.test:8443", "sni:a.test:c.test:8443", "ssl:a.test:c.test:8443", "raw:a.test:x:8443"]
            let script = "python3 \(client) \(first.joined(separator: " ")); python3 \(client) sni:b.test:b.test:8443"
            let out = try Harness.exec(policy: policy, ["sh", "-c", script], cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            #expect(r["sni:a.test:a.test:8443"]?.hasPrefix("ok:got:") == true, "\(out.stdout) \(out.stderr)")
            #expect(r["ssl:a.test:a.test:8443"] == "ssl-error", "\(out.stdout)")
            #expect(r["http:a.test:a.test:8443"]?.hasPrefix("ok:got:") == true, "\(out.stdout)")
            #expect(r["sni:a.test:b.test:8443"] == "ECONNRESET", "\(out.stdout)")
            #expect(r["sni:a.test:c.test:8443"] == "ECONNRESET", "\(out.stdout)")
            #expect(r["ssl:a.test:c.test:8443"] == "ECONNRESET", "\(out.stdout)")
            #expect(r["raw:a.test:x:8443"] == "ECONNRESET", "\(out.stdout)")
            #expect(r["sni:b.test:b.test:8443"]?.hasPrefix("ok:got:") == true, "\(out.stdout)")
            let denied = Self.sniDenied(out.result)
            #expect(denied.contains { $0.daddr == web.address && $0.dport == 8443 && $0.name == "b.test" && $0.reason == "not_resolved" && $0.count == 1 }, "\(denied)")
            #expect(denied.contains { $0.name == "c.test" && $0.reason == "not_allowed" && $0.count == 2 }, "\(denied)")
            #expect(denied.contains { $0.name == "" && $0.reason == "no_name" && $0.count == 1 }, "\(denied)")
            #expect(!denied.contains { $0.name == "a.test" }, "\(denied)")
            #expect((out.result?["sniDenied"] as? [[String: Any]])?.allSatisfy { ($0["hint"] as? String)?.isEmpty == false } == true)
            // The same resets in the one denial account (kind egress), with their hints.
            let account = (out.result?["denials"] as? [[String: Any]] ?? []).filter {
                $0["kind"] as? String == "egress" && $0["what"] as? String == "\(web.address):8443/tcp" }
            #expect(account.contains { ($0["detail"] as? String)?.hasPrefix("server name b.test: not resolved") == true && $0["count"] as? Int == 1 }, "\(account)")
            #expect(account.contains { ($0["detail"] as? String)?.hasPrefix("server name c.test: not an allowed name") == true && $0["count"] as? Int == 2 }, "\(account)")
            // The result with sniDenied matches Docs/schemas/run-result.schema.json.
            let sample = "\(dir)/sni-result.json"
            try out.resultBytes?.write(to: URL(fileURLWithPath: sample))
            let valid = try Harness.validateSchemas(["--min-results", "1", sample])
            #expect(valid.status == 0, "\(valid.stdout)\(valid.stderr)")

            // Control: the same fronting ClientHello on a port a CIDR rule opens.
            let control = DomainTests.policy(in: dir, name: "sni-control", """
                allow = [{ host = "a.test", ports = [8080] }, { cidr = "\(web.address)/32", ports = [8443] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let c = try Harness.exec(policy: control, ["python3", client, "sni:a.test:c.test:8443"], cwd: dir, timeout: 90)
            #expect(EgressTests.results(c.stdout)["sni:a.test:c.test:8443"]?.hasPrefix("ok:got:") == true, "\(c.stdout) \(c.stderr)")
            #expect(Self.sniDenied(c.result).isEmpty, "\(String(describing: c.result?["sniDenied"]))")
        }
    }
}
