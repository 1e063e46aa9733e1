import CSandbox
import Foundation
import Glibc
import Testing

/// A connection to `sandbox serve` never reaches a command (red team, session 39).
/// Whoever holds one can send requests of their own, under any policy the server can
/// read, as that client: a command holding its client's connection leaves its sandbox.
/// A client started with stdin closed had its connection take descriptor 0 and sent
/// it as the command's stdin.
@Suite(.serialized) struct ServeStdioTests {
    /// Sends argv[1] (a request line) over the connection on descriptor 0, with four
    /// descriptors (/dev/null three times and argv[2], the request's directory), and
    /// prints "sent" and the reply it reads within 3 s.
    static let injector = """
        import os, socket, sys
        s = socket.socket(fileno=0)
        null = os.open("/dev/null", os.O_RDWR)
        d = os.open(sys.argv[2], os.O_PATH | os.O_DIRECTORY)
        socket.send_fds(s, [sys.argv[1].encode() + b"\\n"], [null, null, null, d])
        # Stays for the reply: the server refuses a message whose sender has exited.
        s.settimeout(3)
        try:
            print("sent", s.recv(65536).decode().strip(), flush=True)
        except OSError:
            print("sent, no reply", flush=True)
        """

    /// Attack: a request whose stdin is the client's own connection, its command the
    /// injector asking for a host policy that writes a marker outside the sandbox. The
    /// server refuses the request (subject `descriptors`) and nothing runs. Control:
    /// the injector run on the host with a connection as its stdin gets the marker
    /// written (what the command would have done with it).
    @Test func aRequestCarryingAConnectionToTheServerIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let attack = Attack()
        defer { attack.remove() }

        let served = try ServeTests.Served()
        defer { _ = served.stop() }
        try #require(served.ready, "sandbox serve did not start")

        let client = try ServeTests.Client(served.socket)
        defer { client.close() }
        let out = attack.sendInjector(on: client, stdin: client.fd)
        // Without the fence the injected request runs once the outer one has ended,
        // and its reply comes on this connection too.
        var reply = client.reply()
        let printed = out.output()
        if reply?["id"] as? String != "outer" || reply?["exitCode"] as? Int != 125 {
            let other = client.reply()
            if reply?["id"] as? String != "outer" { reply = other }
        }
        let message = (reply?["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(reply?["id"] as? String == "outer" && reply?["exitCode"] as? Int == 125
                && message.contains("is a connection to this server"), "\(reply ?? [:]); \(printed)")
        #expect(!FileManager.default.fileExists(atPath: attack.marker), "the injected request ran: \(attack.marker) exists; \(printed)")

        // Control: a process holding a connection has the host policy's request run.
        let connection = sbx_serve_connect(served.socket)
        try #require(connection >= 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", Self.injector, attack.injected, "/"]
        defer { Glibc.close(connection) }
        // The child gets a copy; this one stays open (closing a connection cancels its
        // runs) and reads the reply.
        process.standardInput = FileHandle(fileDescriptor: dup(connection), closeOnDealloc: true)
        let controlOut = Pipe()
        process.standardOutput = controlOut
        try process.run()
        process.waitUntilExit()
        let controlReply = String(decoding: controlOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(FileManager.default.fileExists(atPath: attack.marker), "control: the request sent over a held connection did not run: \(controlReply)")
    }

    /// One attack's setting: the client's working directory, a host directory outside
    /// it, the marker the attack writes there, and the request the injector sends
    /// (a policy that can write the host directory, run in the directory the
    /// injector opens, "/": inside a sandbox, its own root; the policy has no
    /// `{cwd}` to bind).
    struct Attack {
        let ws = Harness.tempDir(), host = Harness.tempDir()
        let marker: String
        let injected: String

        init() {
            marker = host + "/escaped"
            let policy = Harness.policy("""
                name = "serve-stdio-host"
                extends = ["base"]
                [process]
                env.set = { PATH = "/usr/bin:/bin" }
                [filesystem]
                rw = ["\(host)"]
                """, in: ws, name: "serve-stdio-host.toml")
            injected = ServeTests.request(id: "injected", policy: policy, argv: ["touch", marker], cwd: "/")
        }

        func remove() {
            try? FileManager.default.removeItem(atPath: ws)
            try? FileManager.default.removeItem(atPath: host)
        }

        /// Sends the outer request on `client`: the injector under base with `{cwd}`
        /// writable, `stdin` its stdin, pipes for its output (returned).
        func sendInjector(on client: ServeTests.Client, stdin: Int32) -> ServeTests.Stdio {
            let inner = Harness.basePolicy(in: ws, name: "serve-stdio")
            let directory = open(ws, ServeTests.oPath | O_DIRECTORY | O_CLOEXEC)
            defer { Glibc.close(directory) }
            let out = ServeTests.Stdio()
            client.send(ServeTests.request(id: "outer", policy: inner, argv: ["python3", "-c", ServeStdioTests.injector, injected, "/"], cwd: ws),
                        fds: [stdin, out.fds[1], out.fds[2], directory])
            out.closeSent()
            return out
        }
    }

    /// Attack: the client holds a connection to server A and runs a command through
    /// server B with that connection as its stdin (B's check sees a connection to
    /// another process). The command sends A a request for a host policy that writes a
    /// marker: A refuses the message, whose sender is in the command's PID namespace,
    /// and closes the connection; no marker. Control: the same injector on the host,
    /// holding a connection to A, has it written (the aRequestCarrying… control).
    @Test func aConnectionToAnotherServerIsUselessToACommand() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let attack = Attack()
        defer { attack.remove() }

        let a = try ServeTests.Served(), b = try ServeTests.Served()
        defer { _ = a.stop(); _ = b.stop() }
        try #require(a.ready && b.ready, "sandbox serve did not start")
        let toA = sbx_serve_connect(a.socket)
        try #require(toA >= 0)
        defer { Glibc.close(toA) }

        let client = try ServeTests.Client(b.socket)
        defer { client.close() }
        let out = attack.sendInjector(on: client, stdin: toA)
        let reply = client.reply()
        let printed = out.output()
        #expect(reply?["exitCode"] as? Int == 0 && printed.out.contains("sent"), "the command did not send: \(reply ?? [:]) \(printed)")
        #expect(printed.out.contains("outside the server's PID namespace"), "server A did not refuse the command's message: \(printed)")
        #expect(!FileManager.default.fileExists(atPath: attack.marker), "the command's request ran on server A: \(attack.marker) exists")
    }

    /// A message with more descriptors than a request may carry: the server keeps
    /// none of them (red team round 3: with room for the sender's pidfd, up to six
    /// past the sixteenth stayed open in the server for good), and refuses the line
    /// for its count, not for its sender.
    @Test func extraDescriptorsAreNotKeptByTheServer() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let served = try ServeTests.Served()
        defer { _ = served.stop() }
        try #require(served.ready, "sandbox serve did not start")
        let server = served.process.processIdentifier
        func open() -> Int { StartupTests.descriptors(of: server).count }
        usleep(200_000)
        let before = open()
        // A client that sends 40 (ours refuses to send more than 16), prints the
        // reply, then holds the connection open for 5 s.
        let many = """
            import os, socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            null = os.open("/dev/null", os.O_RDWR)
            socket.send_fds(s, [b'{"id":"many","policy":"agent","argv":["true"],"cwd":"/"}\\n'], [null] * 40)
            print(s.makefile().readline(), end="", flush=True)
            import time; time.sleep(5)
            """
        let client = try EgressScopeTests.Background("/usr/bin/python3", ["-c", many, served.socket])
        defer { client.stop() }
        let reply = client.firstLine()
        #expect(reply.contains("more than 16"), "\(reply)")
        usleep(200_000)
        // At most the connection itself is left (24 would be, had the server kept
        // what it does not pass on).
        #expect(open() <= before + 1, "the server keeps descriptors of the message: \(before) -> \(open())")
    }

    /// A server that is not root with `--group G` serves a member of G of another uid
    /// (red team round 3: reading a peer's PID namespace by ioctl needs ptrace access
    /// to it, so such a member was refused as "cannot be read"). The member's request
    /// gets the server's answer to the request itself (it came without descriptors),
    /// not a refusal of the peer.
    @Test func aGroupMemberOfAnotherUidIsServedByANonRootServer() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let (owner, member, group) = (65532, 65531, 65529)
        let dir = Harness.tempDir(owner: UInt32(owner))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        let socket = dir + "/s"
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        server.arguments = ["--reuid=\(owner)", "--regid=\(owner)", "--groups=\(group)", "env", "XDG_RUNTIME_DIR=\(dir)",
                            Harness.binary, "serve", "--socket", socket, "--group", "\(group)"]
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { if server.isRunning { server.terminate() }; server.waitUntilExit() }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { usleep(20_000) }
        try #require(FileManager.default.fileExists(atPath: socket), "the server did not start")
        let probe = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            try:
                s.sendall(b'{"id":1,"policy":"agent","argv":["true"],"cwd":"/"}\\n')
            except OSError:
                pass
            print(s.makefile().readline(), end="")
            """
        func ask(_ uid: Int, groups: String) throws -> [String: Any]? {
            let out = try Harness.run("/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", groups, "python3", "-c", probe, socket])
            return try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        }
        let served = try ask(member, groups: "--groups=\(group)")
        let error = served?["error"] as? [String: Any]
        #expect(error?["step"] as? String != "peer" && error != nil, "the member was refused as a peer: \(served ?? [:])")
        #expect((error?["message"] as? String ?? "").contains("descriptors"), "the member's request was not answered: \(served ?? [:])")
    }

    /// `exec --server` started with stdin closed: the command's stdin is /dev/null, not
    /// a socket (before, the connection to the server). Control: with stdin open on a
    /// pipe the command sees that pipe.
    @Test func execServerWithStdinClosedGivesTheCommandNoConnection() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let served = try ServeTests.Served()
        defer { _ = served.stop() }
        try #require(served.ready, "sandbox serve did not start")
        let policy = Harness.basePolicy(in: ws, name: "serve-stdin")
        let exec = "exec \(Harness.binary) exec --server \(served.socket) --policy \(policy) -- readlink /proc/self/fd/0"
        let closed = try Harness.run("/bin/sh", ["-c", "exec 0<&-; " + exec], cwd: ws)
        #expect(closed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "/dev/null",
                "stdin closed: the command's stdin is \(closed.stdout) \(closed.stderr)")
        let open = try Harness.run("/bin/sh", ["-c", "echo x | " + exec], cwd: ws)
        #expect(open.stdout.hasPrefix("pipe:"), "control: the command's stdin is \(open.stdout) \(open.stderr)")
    }

    /// `exec --server` sends its environment, stdio and a descriptor of its working
    /// directory to whoever listens on the path: a listener of another uid (uid 64999,
    /// on a socket in a directory it could write) got them all (red team, session
    /// 46), and so did a root listener in another PID namespace. Now nothing is sent
    /// and the client says why. Control: the same listener run as root here receives
    /// the request.
    @Test func execServerSendsNothingToAListenerOfAnotherUser() throws {
        guard Harness.require(Harness.isRoot, "root (a listener of another uid)") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o1777)
        let listener = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(1)
            open(sys.argv[1] + ".ready", "w").close()
            s.settimeout(20); c, _ = s.accept(); c.settimeout(2)
            got = b""
            try:
                while True:
                    b = c.recv(65536)
                    if not b: break
                    got += b
            except Exception: pass
            open(sys.argv[2], "wb").write(got)
            """
        // Another uid; root in another PID namespace (a sandboxed command of a rootless
        // run is its invoker's uid: red team, session 46); the control, root here.
        for (uid, pidns, refused) in [(UInt32(64999), false, true), (UInt32(0), true, true), (UInt32(0), false, false)] {
            let sock = "\(dir)/s\(uid)\(pidns)", got = "\(dir)/got\(uid)\(pidns)"
            let unshare = pidns ? "unshare -p -f --kill-child " : ""
            let listen = "exec \(unshare)setpriv --reuid=\(uid) --regid=\(uid) --clear-groups python3 -c \"$1\" \"$2\" \"$3\" & "
                + "while [ ! -e \"$2.ready\" ]; do sleep 0.05; done; "
                + "SECRET_TOKEN=t0ken \"$4\" exec --server \"$2\" --policy base -- true; echo status=$?; wait"
            let out = try Harness.run("/bin/sh", ["-c", listen, "sh", listener, sock, got, Harness.binary], cwd: dir, timeout: 60)
            let bytes = (try? String(contentsOfFile: got, encoding: .utf8)) ?? "(nothing)"
            if refused {
                let why = pidns ? "is not in this PID namespace" : "the server runs as uid 64999"
                #expect(out.stderr.contains(why) && !out.stdout.contains("status=0"), "\(out.stdout) \(out.stderr)")
                #expect(!bytes.contains("t0ken") && !bytes.contains("argv"), "the listener got: \(bytes)")
            } else {
                #expect(bytes.contains("t0ken") && bytes.contains("argv"), "control: the root listener got \(bytes); \(out.stderr)")
            }
        }
    }
}
