import Foundation
import Testing

/// Attacks on the server name check (issue 17, red-team review of the check): each
/// sends, to the address `a.test` resolved to, a connection whose server — a TLS or
/// HTTP server parsing the stream — would see `c.test`, a name no rule allows, while a
/// careless check would see `a.test`. Each must be reset (`ECONNRESET`). Controls: the
/// same shapes naming `a.test` throughout get the listener's answer, so the resets are
/// the check's doing and not the shapes'. Uses the hosts of `ServerNameTests.withHosts`
/// (the listener on 8443 answers `got:N` once it has read data).
@Suite(.serialized) struct ServerNameAttackTests {
    /// Inside the run: each argument `KIND:REAL` sends the KIND of attack whose server
    /// reads REAL (with decoy `a.test`); prints `KIND:REAL=RESULT`.
    static let attackScript = #"""
        import errno, os, socket, struct, sys, time
        def sni_ext(name):
            n = name.encode()
            return struct.pack("!HH", 0, len(n) + 5) + struct.pack("!HBH", len(n) + 3, 0, len(n)) + n
        def hello(exts):
            body = b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack("!H", 2) + b"\x13\x01" + b"\x01\x00" + struct.pack("!H", len(exts)) + exts
            return b"\x01" + struct.pack("!I", len(body))[1:] + body
        def record(hs):
            return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs
        def desync(real, decoy):
            # Extensions G1 (0x0a0a, 16 bytes) + server_name(real) + G2 (0x1a1a, body =
            # server_name(decoy)), the handshake in two records whose second header falls
            # inside G1's body: a reader ignoring records is shifted onto the decoy.
            r = sni_ext(real)
            g1 = struct.pack("!HH", 0x0a0a, 16) + b"\x00" * 11 + struct.pack("!HH", 0xbaba, 1 + len(r) + 4) + b"\x00"
            g2 = struct.pack("!HH", 0x1a1a, len(sni_ext(decoy))) + sni_ext(decoy)
            hs = hello(g1 + r + g2)
            cut = 4 + 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + 4 + 3
            return record(hs[:cut]) + record(hs[cut:])
        def talk(s, data):
            try:
                s.sendall(data)
                a = s.recv(64).decode().strip()
                return "ok:" + a if a else "closed"
            except socket.timeout:
                return "timeout"
            except OSError as e:
                return errno.errorcode.get(e.errno, str(e.errno))
            finally:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
        def conn(addr, port, sport=0):
            s = socket.socket(); s.settimeout(3)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if sport: s.bind(("0.0.0.0", sport))
            s.connect((addr, port)); return s
        addr = socket.getaddrinfo("a.test", 8443, socket.AF_INET)[0][4][0]
        sport = 45123
        for arg in sys.argv[1:]:
            kind, real = arg.split(":")
            r = "?"
            if kind == "reuse":
                # A flow that passes, closed with a reset; then a new connection on the
                # same four-tuple whose ClientHello names `real`.
                sport += 1
                first = talk(conn(addr, 8443, sport), record(hello(sni_ext("a.test"))))
                time.sleep(0.3)
                r = talk(conn(addr, 8443, sport), record(hello(sni_ext(real))))
                if not first.startswith("ok:"): r = "first:" + first
            elif kind == "records":
                r = talk(conn(addr, 8443), desync(real, "a.test"))
            elif kind == "http-lf":
                r = talk(conn(addr, 8443), b"GET / HTTP/1.1\r\nConnection: close\nHost: %s\n\r\nHost: a.test\r\n\r\n" % real.encode())
            elif kind == "http-crlf":
                r = talk(conn(addr, 8443), b"GET / HTTP/1.1\r\nConnection: close\r\nX-Host: %s\r\nHost: a.test\r\n\r\n" % real.encode())
            elif kind == "http-absolute":
                r = talk(conn(addr, 8443), b"GET http://%s/ HTTP/1.1\r\nHost: a.test\r\n\r\n" % real.encode())
            elif kind == "http-pipelined":
                r = talk(conn(addr, 8443), b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\nGET / HTTP/1.1\r\nHost: %s\r\n\r\n" % real.encode())
            print("%s=%s" % (arg, r), flush=True)
        """#

    static let kinds = ["reuse", "records", "http-lf", "http-absolute", "http-pipelined"]

    /// Every attack naming `c.test` to the server is reset and counted; the control
    /// (`a.test` to the server too, or a well-formed request) gets its answer.
    @Test func aServerThatWouldReadAnotherNameIsReset() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        try ServerNameTests.withHosts { dns, web, dir, _ in
            let policy = DomainTests.policy(in: dir, """
                allow = [{ host = "a.test", ports = [8443] }]
                upstream_dns = ["\(dns.address)"]
                """)
            let script = "\(dir)/attack.py"
            try Self.attackScript.write(toFile: script, atomically: true, encoding: .utf8)
            let controls = ["reuse:a.test", "records:a.test", "http-crlf:c.test", "http-absolute:a.test"]
            let attacks = Self.kinds.map { "\($0):c.test" }
            let out = try Harness.exec(policy: policy, ["python3", script] + controls + attacks, cwd: dir, timeout: 90)
            let r = EgressTests.results(out.stdout)
            for control in controls {
                #expect(r[control]?.hasPrefix("ok:got:") == true, "\(control): \(out.stdout) \(out.stderr)")
            }
            for attack in attacks {
                #expect(r[attack] == "ECONNRESET", "\(attack): \(out.stdout) \(out.stderr)")
            }
            let denied = ServerNameTests.sniDenied(out.result)
            // The reused four-tuple's ClientHello and the one in two records are read as
            // the server reads them: c.test, not allowed. The HTTP requests are no name.
            #expect(denied.contains { $0.daddr == web.address && $0.name == "c.test" && $0.reason == "not_allowed" && $0.count == 2 }, "\(denied)")
            #expect(denied.contains { $0.name == "" && $0.reason == "no_name" && $0.count == 3 }, "\(denied)")
            #expect(!denied.contains { $0.name == "a.test" }, "\(denied)")
        }
    }
}
