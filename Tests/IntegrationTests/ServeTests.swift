import CSandbox
import Foundation
import Testing

/// `sandbox serve` and its clients (Docs/serve.md): results equal `exec`'s for the
/// same request, stdio through the passed descriptors, many runs in flight on one
/// connection, a disconnect that cancels and leaves nothing, malformed requests, a
/// peer that is not allowed, the Python client of the docs, and a mixed load.
@Suite struct ServeTests {
    /// A `sandbox serve` of this test (our own child), on a socket in a directory of
    /// its own.
    final class Served {
        let dir: String
        let socket: String
        let process = Process()
        let output = Pipe()

        init(group: String? = nil, dirMode: mode_t = 0o700, in directory: String? = nil, builtAhead: Int? = nil,
             environment: [String: String] = [:], binary: String = Harness.binary) throws {
            dir = directory ?? Harness.tempDir()
            if directory == nil { chmod(dir, dirMode) }
            socket = dir + "/serve.sock"
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve", "--socket", socket] + (group.map { ["--group", $0] } ?? [])
                + (builtAhead.map { ["--built-ahead", "\($0)"] } ?? [])
            if !environment.isEmpty {
                process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            }
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let deadline = Date().addingTimeInterval(20)
            while !FileManager.default.fileExists(atPath: socket) && Date() < deadline && process.isRunning { usleep(10_000) }
        }

        var ready: Bool { FileManager.default.fileExists(atPath: socket) }

        /// SIGTERM, then the server's own output (it must never carry a run's).
        @discardableResult
        func stop() -> String {
            if process.isRunning { process.terminate() }   // our own child, not yet reaped
            process.waitUntilExit()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            try? FileManager.default.removeItem(atPath: dir)
            return text
        }
    }

    /// O_PATH (Glibc's module does not export it).
    static let oPath: Int32 = 0o10000000

    /// One connection, as a client of the protocol.
    final class Client {
        let fd: Int32
        private var buffer: [UInt8] = []

        init(_ socket: String) throws {
            let r = sbx_serve_connect(socket)
            guard r >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: -r) ?? .EIO) }
            fd = r
        }

        /// Sends a line with `fds` on its first byte; three (stdio) get the fourth, the
        /// directory the line's `cwd` names, opened now (O_PATH).
        func send(_ line: String, fds: [Int32] = [], end: String = "\n") {
            var fds = fds
            var directory: Int32 = -1
            if fds.count == 3, let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
               let cwd = o["cwd"] as? String {
                directory = open(cwd, ServeTests.oPath | O_CLOEXEC)
                if directory >= 0 { fds.append(directory) }
            }
            defer { if directory >= 0 { Glibc.close(directory) } }
            let bytes = Array((line + end).utf8)
            var offset = 0
            while offset < bytes.count {
                let extra = offset == 0 ? fds : []
                let n = bytes[offset...].withUnsafeBytes { sbx_serve_send(fd, $0.baseAddress, $0.count, extra, Int32(extra.count)) }
                guard n > 0 else { return }
                offset += n
            }
        }

        /// The next reply, or nil at EOF.
        func reply() -> [String: Any]? {
            while true {
                if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Data(buffer[..<nl])
                    buffer.removeSubrange(...nl)
                    return (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] ?? ["unparsed": String(decoding: line, as: UTF8.self)]
                }
                var chunk = [UInt8](repeating: 0, count: 65536)
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return nil }
                buffer += chunk[..<n]
            }
        }

        func close() { _ = Glibc.close(fd) }
    }

    /// The environment the harness gives `sandbox exec` and `sandbox plan`
    /// (`Harness.run`): what a request sends so that its plan is the same.
    static var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        return env
    }

    static func request(id: Any, policy: String, argv: [String], cwd: String, env: [String: String]? = environment) -> String {
        var o: [String: Any] = ["id": id, "policy": policy, "argv": argv, "cwd": cwd]
        if let env { o["env"] = env }
        return String(decoding: try! JSONSerialization.data(withJSONObject: o), as: UTF8.self)
    }

    /// Three descriptors for a run: /dev/null in, and pipes for out and err (the
    /// read ends returned, the write ends closed by `close()` after sending).
    struct Stdio {
        var fds: [Int32]
        var outRead: Int32, errRead: Int32
        init(stdin: String? = nil) {
            var o: [Int32] = [0, 0], e: [Int32] = [0, 0], i: [Int32] = [0, 0]
            pipe(&o); pipe(&e)
            var input = open("/dev/null", O_RDONLY)
            if let stdin {
                pipe(&i)
                _ = stdin.withCString { write(i[1], $0, strlen($0)) }
                Glibc.close(i[1])
                input = i[0]
            }
            fds = [input, o[1], e[1]]
            outRead = o[0]; errRead = e[0]
        }
        func closeSent() { for fd in fds { Glibc.close(fd) } }
        static func drain(_ fd: Int32) -> String {
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                out += chunk[..<n]
            }
            Glibc.close(fd)
            return String(decoding: out, as: UTF8.self)
        }
        func output() -> (out: String, err: String) { (Self.drain(outRead), Self.drain(errRead)) }
    }

    /// One request on a connection of its own: the reply and what the run wrote.
    static func runOnce(_ served: Served, policy: String, argv: [String], cwd: String, stdin: String? = nil)
        throws -> (reply: [String: Any]?, out: String, err: String) {
        let client = try Client(served.socket)
        defer { client.close() }
        let stdio = Stdio(stdin: stdin)
        client.send(request(id: "one", policy: policy, argv: argv, cwd: cwd), fds: stdio.fds)
        stdio.closeSent()
        let reply = client.reply()
        let (out, err) = stdio.output()
        return (reply, out, err)
    }

    /// The digest `sandbox plan` prints for this request with that run id.
    static func planDigest(policy: String, argv: [String], runId: String, cwd: String) throws -> String? {
        let out = try Harness.run(Harness.binary, ["plan", "--policy", policy, "--run-id", runId, "--"] + argv, cwd: cwd)
        let plan = try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        return plan?["digest"] as? String
    }

    static func syscalls(_ result: [String: Any]?) -> [String] {
        ((result?["violations"] as? [[String: Any]]) ?? []).compactMap { $0["syscall"] as? String }.sorted()
    }

    /// The fields a serve result and an exec result of the same request share.
    static func sameContent(_ a: [String: Any]?, _ b: [String: Any]?) -> Bool {
        guard let a, let b else { return false }
        return comparable(a) == comparable(b)
    }

    /// What must be equal: everything but the run's own numbers (id, times, usage,
    /// leased uid, digest — checked against `plan` — and the serve reply's id/peer).
    static func comparable(_ r: [String: Any]) -> String {
        var r = r
        r["hasHostUID"] = r["hostUID"] != nil
        for key in ["id", "peer", "runId", "wallMs", "cpuUserMs", "cpuSystemMs", "resources", "planDigest", "hostUID"] {
            r.removeValue(forKey: key)
        }
        // Where the kernel refuses the Landlock observer, whether a run heard it from
        // the kernel or from the refusal remembered for the boot depends on which
        // process asked first (the suite's other tests ask too): the same refusal.
        if let notes = r["notApplied"] as? [String] {
            r["notApplied"] = notes.map { $0.replacingOccurrences(of: LandlockObserverText.rememberedSuffix, with: "") }
        }
        // Whether the filter came from the cache depends on which run compiled it first.
        if var f = r["fences"] as? [String: Any] { f["seccompCacheHit"] = nil; r["fences"] = f }
        if var d = r["denials"] as? [[String: Any]] {
            for i in d.indices { d[i]["first"] = nil }   // when, not what
            r["denials"] = d
        }
        if var v = r["violations"] as? [[String: Any]] {
            // The arguments are addresses in the command's memory, not the request's content.
            for i in v.indices { v[i]["args"] = nil; v[i]["calls"] = (v[i]["calls"] as? [Any])?.count }
            r["violations"] = v
        }
        let data = try? JSONSerialization.data(withJSONObject: r, options: [.sortedKeys])
        return data.map { String(decoding: $0, as: UTF8.self) } ?? "?"
    }

    static func notifyPolicy(in dir: String) -> String {
        Harness.policy("""
            name = "serve-notify"
            extends = ["agent"]
            [seccomp]
            on_violation = "notify"
            [resources]
            memory = "256MiB"
            """, in: dir, name: "serve-notify.toml")
    }

    @Test func resultsEqualExecsForTheSameRequest() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let policy = Self.notifyPolicy(in: ws)
        let cases: [[String]] = [
            ["sh", "-c", "echo out; echo err >&2; exit 7"],
            // A denied syscall: answered EPERM and listed (notify).
            ["sh", "-c", "unshare -r true 2>/dev/null; exit 3"],
            ["/nonexistent/command"],
        ]
        for argv in cases {
            let exec = try Harness.exec(policy: policy, argv, cwd: ws)
            let (reply, out, err) = try Self.runOnce(served, policy: policy, argv: argv, cwd: ws)
            #expect(Self.sameContent(reply, exec.result), "\(argv): serve \(reply ?? [:])\nexec \(exec.result ?? [:])")
            // exec's own messages (`sandbox: …`) go to its stderr; a server's go in the reply.
            let execErr = exec.stderr.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("sandbox: ") }.joined(separator: "\n")
            #expect(out == exec.stdout && err == execErr, "\(argv): stdout \(out) vs \(exec.stdout); stderr \(err) vs \(execErr)")
            #expect(reply?["id"] as? String == "one" && (reply?["peer"] as? [String: Any])?["uid"] as? Int == 0, "\(reply ?? [:])")
            // The digest is the one `plan` gives for that request and run id, as exec's is.
            for result in [reply, exec.result] {
                let runId = result?["runId"] as? String ?? ""
                let want = try Self.planDigest(policy: policy, argv: argv, runId: runId, cwd: ws)
                #expect(want != nil && result?["planDigest"] as? String == want, "\(argv) \(runId): digest \(result?["planDigest"] ?? "-") vs plan \(want ?? "-")")
            }
        }
        #expect(Self.syscalls(try Self.runOnce(served, policy: policy, argv: cases[1], cwd: ws).reply) == ["unshare"])
        // exec --server: the thin client, with --result like exec.
        let result = ws + "-result.json"
        defer { try? FileManager.default.removeItem(atPath: result) }
        let viaClient = try Harness.run(Harness.binary, ["exec", "--server", served.socket, "--policy", policy, "--result", result,
                                                         "--", "sh", "-c", "cat; echo to-err >&2; exit 5"], cwd: ws, stdin: "piped\n")
        let bytes = FileManager.default.contents(atPath: result)
        if let bytes { Harness.keepSample(bytes, kind: .runResult) }   // exec's schema, not the reply's
        let written = bytes.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        #expect(viaClient.status == 5 && viaClient.stdout == "piped\n" && viaClient.stderr == "to-err\n"
                && written?["exitCode"] as? Int == 5 && written?["id"] == nil && written?["peer"] == nil
                && written?["policy"] as? String == "serve-notify", "\(viaClient) \(written ?? [:])")
        #expect(!served.stop().contains("to-err"), "a run wrote to the server's own stderr")
    }

    /// The server keeps loaded policies warm, but a changed file (the policy or one it
    /// extends) is loaded again, as `exec` would load it.
    @Test func aChangedPolicyFileIsLoadedAgain() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        func write(_ name: String, _ body: String) -> String { Harness.policy(body, in: ws, name: name) }
        _ = write("parent.toml", "name = \"parent\"\nextends = [\"agent\"]\n[process]\nenv.set = { A = \"a1\" }\n")
        let child = write("child.toml", "name = \"child\"\nextends = [\"parent.toml\"]\n[process]\nenv.set = { B = \"b1\" }\n")
        func echo() throws -> String { try Self.runOnce(served, policy: child, argv: ["sh", "-c", "echo $A $B"], cwd: ws).out }
        #expect(try echo() == "a1 b1\n")
        #expect(try echo() == "a1 b1\n")
        _ = write("child.toml", "name = \"child\"\nextends = [\"parent.toml\"]\n[process]\nenv.set = { B = \"b2\" }\n")
        #expect(try echo() == "a1 b2\n", "a changed policy file was not loaded again")
        _ = write("parent.toml", "name = \"parent\"\nextends = [\"agent\"]\n[process]\nenv.set = { A = \"a2\" }\n")
        #expect(try echo() == "a2 b2\n", "a changed parent was not loaded again")
    }

    @Test func stdioTravelsThroughThePassedDescriptors() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let (reply, out, err) = try Self.runOnce(served, policy: Self.notifyPolicy(in: ws),
                                                 argv: ["sh", "-c", "tr a-z A-Z; echo oops >&2; ls /proc/self/fd | tr '\\n' ' ' >&2"],
                                                 cwd: ws, stdin: "hello\n")
        #expect(reply?["exitCode"] as? Int == 0 && out == "HELLO\n", "\(reply ?? [:]) out=\(out)")
        // 0, 1, 2 and the one ls opens for the listing: nothing of the server's.
        #expect(err == "oops\n0 1 2 3 ", "err=\(err)")
        let log = served.stop()
        #expect(!log.contains("HELLO") && !log.contains("oops"), "the server's own output: \(log)")
    }

    @Test func manyRunsInFlightOnOneConnection() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let policy = Self.notifyPolicy(in: ws)
        let client = try Client(served.socket)
        defer { client.close() }
        let started = Date()
        var pipes: [Stdio] = []
        for i in 0..<12 {
            let stdio = Stdio()
            // Later requests end first: replies come in the order runs end.
            client.send(Self.request(id: i, policy: policy, argv: ["sh", "-c", "sleep \(Double(12 - i) * 0.15); echo \(i); exit \(i)"], cwd: ws),
                        fds: stdio.fds)
            stdio.closeSent()
            pipes.append(stdio)
        }
        var seen: [Int] = []
        for _ in 0..<12 {
            guard let r = client.reply(), let id = r["id"] as? Int else { Issue.record("a reply is missing"); break }
            #expect(r["exitCode"] as? Int == id, "\(r)")
            seen.append(id)
        }
        let elapsed = Date().timeIntervalSince(started)
        #expect(Set(seen) == Set(0..<12), "\(seen)")
        #expect(seen.first != 0, "the replies came in request order, not as the runs ended: \(seen)")
        // Sequentially the sleeps alone take 11.7 s.
        #expect(elapsed < 8, "12 runs on one connection took \(elapsed) s: not in flight together")
        for (i, p) in pipes.enumerated() { #expect(p.output().out == "\(i)\n") }
    }

    /// The run's traces: its run directory, processes, cgroups, uid lease.
    static func traces(of runId: String, marker: String) -> [String] {
        var found: [String] = []
        if FileManager.default.fileExists(atPath: "/run/sandbox/\(runId)") { found.append("run directory") }
        for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int(pid) != nil {
            if let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
               String(decoding: cmd, as: UTF8.self).contains(marker) { found.append("process \(pid)") }
        }
        let cgroups = (try? FileManager.default.subpathsOfDirectory(atPath: "/sys/fs/cgroup/sandbox")) ?? []
        for c in cgroups where c.hasSuffix(runId) { found.append("cgroup \(c)") }
        for lease in (try? FileManager.default.contentsOfDirectory(atPath: "/run/sandbox/.uids")) ?? [] {
            if let text = try? String(contentsOfFile: "/run/sandbox/.uids/\(lease)", encoding: .utf8), text.contains(runId) {
                found.append("uid lease \(lease)")
            }
        }
        return found
    }

    @Test func aDisconnectCancelsItsRunsAndLeavesNothing() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let marker = "47.\(Int.random(in: 100_000...999_999))"
        let client = try Client(served.socket)
        let stdio = Stdio()
        client.send(Self.request(id: 1, policy: Self.notifyPolicy(in: ws), argv: ["sleep", marker], cwd: ws), fds: stdio.fds)
        stdio.closeSent()
        // The run is up when its record names the marker.
        var runId: String?
        let deadline = Date().addingTimeInterval(20)
        while runId == nil && Date() < deadline {
            for id in Harness.runDirEntries() {
                if let s = try? String(contentsOfFile: "/run/sandbox/\(id)/state.json", encoding: .utf8),
                   s.contains(marker), s.contains("running") { runId = id }
            }
            usleep(20_000)
        }
        guard let runId else { Issue.record("the run never started"); client.close(); return }
        // `running` is recorded while the child still builds its root: wait for the
        // command itself before cancelling.
        while !Self.traces(of: runId, marker: marker).contains(where: { $0.hasPrefix("process") }) && Date() < deadline {
            usleep(20_000)
        }
        #expect(Self.traces(of: runId, marker: marker).contains { $0.hasPrefix("process") }, "the run has no process to cancel")
        client.close()
        var left = Self.traces(of: runId, marker: marker)
        let until = Date().addingTimeInterval(15)
        while !left.isEmpty && Date() < until { usleep(50_000); left = Self.traces(of: runId, marker: marker) }
        #expect(left.isEmpty, "after the disconnect, run \(runId) left: \(left)")
        _ = Stdio.drain(stdio.outRead); _ = Stdio.drain(stdio.errRead)
        // The server goes on serving.
        #expect(try Self.runOnce(served, policy: Self.notifyPolicy(in: ws), argv: ["true"], cwd: ws).reply?["exitCode"] as? Int == 0)
    }

    @Test func malformedRequestsGetErrorRepliesAndTheServerGoesOn() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let policy = Self.notifyPolicy(in: ws)
        let client = try Client(served.socket)
        defer { client.close() }
        let bad: [(line: String, fds: Bool, id: Any?, says: String)] = [
            ("not json", false, nil, "not a JSON object"),
            ("{\"id\":true,\"policy\":\"agent\"}", false, nil, "id"),
            ("{\"id\":\"a\",\"policy\":\"agent\",\"cwd\":\"/\"}", true, "a", "argv"),
            ("{\"id\":\"b\",\"policy\":\"agent\",\"argv\":[\"true\"],\"cwd\":\"relative\"}", true, "b", "cwd"),
            ("{\"id\":\"c\",\"policy\":\"agent\",\"argv\":[\"true\"],\"cwd\":\"/\",\"extra\":1}", true, "c", "extra"),
            ("{\"id\":\"d\",\"policy\":\"agent\",\"argv\":[\"true\"],\"cwd\":\"\(ws)\"}", false, "d", "descriptors"),
            ("{\"id\":\"e\",\"policy\":\"no-such-policy\",\"argv\":[\"true\"],\"cwd\":\"\(ws)\"}", true, "e", "no-such-policy"),
            // The fourth descriptor is not a directory.
            ("{\"id\":\"f\",\"policy\":\"agent\",\"argv\":[\"true\"],\"cwd\":\"/etc/hostname\"}", true, "f", "Not a directory"),
            // Three descriptors: the directory is missing.
            ("{\"id\":\"g\",\"policy\":\"agent\",\"argv\":[\"true\"],\"cwd\":\"/no/such/dir\"}", true, "g", "came with 3 descriptors"),
        ]
        for b in bad {
            let stdio = Stdio()
            client.send(b.line, fds: b.fds ? stdio.fds : [])
            stdio.closeSent()
            let r = client.reply()
            let error = r?["error"] as? [String: Any]
            #expect(r?["exitCode"] as? Int == 125 && ["policy", "plan"].contains(error?["kind"] as? String ?? "")
                    && (error?["message"] as? String ?? "").contains(b.says), "\(b.line): \(r ?? [:])")
            if let id = b.id as? String { #expect(r?["id"] as? String == id, "\(r ?? [:])") } else { #expect(r?["id"] is NSNull, "\(r ?? [:])") }
        }
        // The same connection still serves.
        let stdio = Stdio()
        client.send(Self.request(id: "ok", policy: policy, argv: ["true"], cwd: ws), fds: stdio.fds)
        stdio.closeSent()
        #expect(client.reply()?["exitCode"] as? Int == 0)
        // A line past the bound: an error reply, and that connection is closed.
        let long = try Client(served.socket)
        defer { long.close() }
        long.send(String(repeating: "x", count: 300 * 1024))
        let r = long.reply()
        #expect(r?["exitCode"] as? Int == 125 && ((r?["error"] as? [String: Any])?["message"] as? String ?? "").contains("longer"), "\(r ?? [:])")
        #expect(long.reply() == nil, "the connection stayed open after an over-long line")
        #expect(try Self.runOnce(served, policy: policy, argv: ["true"], cwd: ws).reply?["exitCode"] as? Int == 0)
    }

    /// The run starts in the directory the client sent (a descriptor), never in one
    /// looked up again by path: a run that can write a parent swaps a component for a
    /// symlink while requests keep coming; no run's writable `{cwd}` lands on the
    /// symlink's target.
    @Test func aSwappedPathDoesNotMoveTheRunsDirectory() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let parent = Harness.tempDir(), target = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: parent); try? FileManager.default.removeItem(atPath: target) }
        try FileManager.default.createDirectory(atPath: parent + "/x/work", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: target + "/work", withIntermediateDirectories: true)
        let policy = Self.notifyPolicy(in: parent + "/x/work")
        // The client sits in x/work (its descriptor taken before the swapping starts).
        let directory = open(parent + "/x/work", Self.oPath | O_DIRECTORY | O_CLOEXEC)
        defer { Glibc.close(directory) }
        final class Flag: @unchecked Sendable { var stop = false; let lock = NSLock() }  // guarded by lock
        let flag = Flag()
        let swapper = Thread {
            while true {
                flag.lock.lock(); let stop = flag.stop; flag.lock.unlock()
                if stop { break }
                rename(parent + "/x", parent + "/x.real")
                symlink(target, parent + "/x")
                usleep(200)
                unlink(parent + "/x")
                rename(parent + "/x.real", parent + "/x")
                usleep(50)
            }
        }
        swapper.start()
        let client = try Client(served.socket)
        defer { client.close() }
        var replies: [[String: Any]?] = []
        for i in 0..<40 {
            let stdio = Stdio()
            client.send(Self.request(id: i, policy: policy, argv: ["sh", "-c", "echo \(i) >> marker"], cwd: parent + "/x/work"),
                        fds: stdio.fds + [directory])
            stdio.closeSent()
            replies.append(client.reply())
            _ = stdio.output()
        }
        flag.lock.lock(); flag.stop = true; flag.lock.unlock()
        while !swapper.isFinished { usleep(1000) }
        #expect(!FileManager.default.fileExists(atPath: target + "/work/marker"),
                "a run's {cwd} followed the swapped symlink: \((try? String(contentsOfFile: target + "/work/marker", encoding: .utf8)) ?? "")")
        let wrote = (try? String(contentsOfFile: parent + "/x/work/marker", encoding: .utf8))?.split(separator: "\n").count ?? 0
        let ran = replies.filter { $0?["exitCode"] as? Int == 0 }.count
        #expect(ran > 0 && wrote == ran, "\(ran) runs succeeded, \(wrote) wrote in the client's directory: \(replies.prefix(3))")
    }

    /// A line's descriptors are those sent with its first byte: extra ones sent with
    /// one line are not handed to the next, and any count but four is refused.
    @Test func descriptorsBelongToTheirLine() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let policy = Self.notifyPolicy(in: ws)
        let client = try Client(served.socket)
        defer { client.close() }
        let directory = open(ws, Self.oPath | O_DIRECTORY | O_CLOEXEC)
        defer { Glibc.close(directory) }
        // Eight with the first line (two requests' worth), none with the second.
        let a = Stdio(), b = Stdio()
        client.send(Self.request(id: "a", policy: policy, argv: ["true"], cwd: ws), fds: a.fds + [directory] + b.fds + [directory])
        client.send(Self.request(id: "b", policy: policy, argv: ["true"], cwd: ws), fds: [])
        a.closeSent(); b.closeSent()
        for id in ["a", "b"] {
            let r = client.reply()
            let message = (r?["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(r?["id"] as? String == id && r?["exitCode"] as? Int == 125 && message.contains("came with \(id == "a" ? 8 : 0) descriptors"), "\(r ?? [:])")
        }
        _ = a.output(); _ = b.output()
        // Descriptors in the middle of a line: the connection is closed.
        let mid = try Client(served.socket)
        defer { mid.close() }
        let c = Stdio()
        mid.send("{\"id\":\"c\",", fds: [], end: "")
        usleep(100_000)
        mid.send("\"policy\":\"agent\",\"argv\":[\"true\"]}", fds: c.fds + [directory])
        c.closeSent()
        let r = mid.reply()
        #expect(((r?["error"] as? [String: Any])?["message"] as? String ?? "").contains("middle of a request line") && mid.reply() == nil, "\(r ?? [:])")
        _ = c.output()
        // The first connection still serves a proper request.
        let d = Stdio()
        client.send(Self.request(id: "d", policy: policy, argv: ["true"], cwd: ws), fds: d.fds)
        d.closeSent()
        #expect(client.reply()?["exitCode"] as? Int == 0)
        _ = d.output()
    }

    /// A client's runs with many binds cannot push the server's descriptors past
    /// FD_SETSIZE (libnftables' select() aborts the process there): 12 runs of 100
    /// binds each at once, then an egress run; the server serves it and lives on.
    @Test func manyBindsDoNotExhaustTheServersLowDescriptors() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let ws = Harness.tempDir(), trees = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws); try? FileManager.default.removeItem(atPath: trees) }
        var dirs: [String] = []
        for i in 0..<100 {
            dirs.append("\(trees)/d\(i)")
            try FileManager.default.createDirectory(atPath: dirs.last!, withIntermediateDirectories: true)
        }
        let binds = Harness.policy("""
            name = "serve-binds"
            extends = ["serve-notify.toml"]
            [filesystem]
            ro = [\(dirs.map { "\"\($0)\"" }.joined(separator: ", "))]
            """, in: ws, name: "serve-binds.toml")
        _ = Self.notifyPolicy(in: ws)
        let net = Harness.policy("""
            name = "serve-net"
            extends = ["agent-net", "serve-notify.toml"]
            """, in: ws, name: "serve-net.toml")
        let client = try Client(served.socket)
        defer { client.close() }
        var pipes: [Stdio] = []
        for i in 0..<12 {
            let stdio = Stdio()
            client.send(Self.request(id: i, policy: binds, argv: ["sleep", "2"], cwd: ws), fds: stdio.fds)
            stdio.closeSent()
            pipes.append(stdio)
        }
        usleep(1_500_000)   // the bind runs are up
        let egress = try Self.runOnce(served, policy: net, argv: ["sh", "-c", "exit 6"], cwd: ws)
        #expect(egress.reply?["exitCode"] as? Int == 6, "egress run beside many binds: \(egress.reply ?? [:])")
        var ok = 0
        for _ in 0..<12 { if client.reply()?["exitCode"] as? Int == 0 { ok += 1 } }
        for p in pipes { _ = p.output() }
        #expect(ok == 12, "\(ok) of 12 bind runs succeeded")
        #expect(served.process.isRunning, "the server died: \(served.stop())")
    }

    @Test func aPeerOfAnotherUidIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        // A group may connect (0660); the server runs as root, which serves root only.
        let served = try Served(group: "65534", dirMode: 0o755)
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        var st = stat()
        stat(served.socket, &st)
        #expect(st.st_mode & 0o777 == 0o660 && st.st_gid == 65534, "socket mode \(String(st.st_mode & 0o777, radix: 8)) gid \(st.st_gid)")
        let probe = """
            import json, socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            try:  # the refusal may close the connection before this is sent
                socket.send_fds(s, [b'{"id":1,"policy":"agent","argv":["true"],"cwd":"/"}\\n'], [0, 1, 2])
            except OSError:
                pass
            print(s.makefile().readline(), end="")
            """
        let out = try Harness.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                       "python3", "-c", probe, served.socket])
        let reply = try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        let error = reply?["error"] as? [String: Any]
        #expect(reply?["exitCode"] as? Int == 125 && error?["step"] as? String == "peer"
                && (error?["message"] as? String ?? "").contains("uid 65534 may not use this server")
                && (reply?["peer"] as? [String: Any])?["uid"] as? Int == 65534, "\(out)")
        // Refused before anything ran: no run has that peer.
        #expect(reply?["runId"] as? String == "", "\(reply ?? [:])")
    }

    /// `--group` a group the server's user is not in: the error says the fchown failed.
    @Test func aGroupTheServerIsNotInIsNamed() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir(owner: 65534)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o700)
        let out = try Harness.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                       "env", "XDG_RUNTIME_DIR=\(dir)", Harness.binary, "serve", "--socket", dir + "/s", "--group", "0"])
        #expect(out.status == 125 && out.stderr.contains("fchown to group 0 failed"), "\(out)")
    }

    @Test func theSocketIsNeverMadeWhereOthersCanWrite() throws {
        // /tmp-like: writable by others, and a symlink planted at the name.
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o1777)
        let open = try Harness.sandbox(["serve", "--socket", dir + "/s"])
        #expect(open.status == 125 && open.stderr.contains("writable by others"), "\(open)")
        chmod(dir, 0o700)
        symlink(dir + "/elsewhere", dir + "/s")
        let planted = try Harness.sandbox(["serve", "--socket", dir + "/s"])
        #expect(planted.status == 125 && planted.stderr.contains("already there")
                && !FileManager.default.fileExists(atPath: dir + "/elsewhere"), "\(planted)")
    }

    /// The Python client of Docs/serve.md (the `serve-client` block).
    static func docClient() throws -> String? {
        let doc = try String(contentsOfFile: Harness.repoRoot + "/Docs/serve.md", encoding: .utf8)
        guard let marker = doc.range(of: "<!-- serve-client"),
              let start = doc.range(of: "```python\n", range: marker.upperBound..<doc.endIndex),
              let end = doc.range(of: "\n```", range: start.upperBound..<doc.endIndex) else { return nil }
        return String(doc[start.upperBound..<end.lowerBound])
    }

    /// A sandboxed command that reaches the socket (here: in its writable `{cwd}`) with
    /// the server's uid (root, `host_uid = "invoker"`) passes SO_PEERCRED's check; it
    /// must still not be served, or it would run anything unsandboxed. Control: the
    /// same client from outside the sandbox is served.
    @Test func aSandboxedCommandIsNotServed() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let served = try Served(in: ws)
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        guard let code = try Self.docClient() else { Issue.record("Docs/serve.md has no serve-client block"); return }
        try code.write(toFile: ws + "/client.py", atomically: true, encoding: .utf8)
        let probe = """
            import json, sys
            sys.path.insert(0, ".")
            import client
            try:
                r = client.run(sys.argv[1], "agent", ["true"], 0, 1, 2)
                print(json.dumps({"exitCode": r["exitCode"], "step": (r.get("error") or {}).get("step")}))
            except OSError as e:  # the refusal may close the connection before the request is sent
                print(json.dumps({"oserror": str(e)}))
            """
        let policy = Harness.policy("""
            name = "serve-invoker"
            extends = ["agent"]
            [process]
            host_uid = "invoker"
            """, in: ws, name: "serve-invoker.toml")
        let inside = try Harness.exec(policy: policy, ["python3", "-c", probe, served.socket], cwd: ws)
        let said = try? JSONSerialization.jsonObject(with: Data(inside.stdout.utf8)) as? [String: Any]
        // Refused at accept: the error line (step `peer`), or, when the server closed
        // before the client's send, EPIPE; never a run.
        let refused = (said?["step"] as? String == "peer" && said?["exitCode"] as? Int == 125)
            || (said?["oserror"] as? String ?? "").contains("Broken pipe")
        #expect(refused, "inside: \(inside.stdout) \(inside.stderr)")
        // Control: from outside the sandbox, the same client is served.
        let control = try Harness.run("/usr/bin/env", ["python3", "-c", probe, served.socket], cwd: ws)
        let ok = try? JSONSerialization.jsonObject(with: Data(control.stdout.utf8)) as? [String: Any]
        #expect(ok?["exitCode"] as? Int == 0, "outside: \(control)")
    }

    @Test func thePythonClientOfTheDocsWorks() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        guard let code = try Self.docClient() else { Issue.record("Docs/serve.md has no serve-client block"); return }
        #expect(code.split(separator: "\n", omittingEmptySubsequences: false).count <= 20, "the doc's client is longer than 20 lines")
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let script = ws + "-client.py"
        try code.write(toFile: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: script) }
        let out = try Harness.run("/usr/bin/env", ["python3", script, served.socket, Self.notifyPolicy(in: ws),
                                                   "sh", "-c", "read x; echo got $x; echo e >&2; exit 4"], cwd: ws, stdin: "py\n")
        #expect(out.status == 4 && out.stdout == "got py\n" && out.stderr == "e\n", "\(out)")
    }

    /// Acceptance 5, shorter (Scripts/reliability.sh runs 2 000): 200 requests from 16
    /// connections, mixed policies with egress and timeouts, each result what `exec`
    /// gives for the same request.
    @Test func mixedLoadFromSixteenConnections() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let total = Int(ProcessInfo.processInfo.environment["SANDBOX_SERVE_REQUESTS"] ?? "") ?? 200
        try Self.load(requests: total, connections: 16)
    }

    static func load(requests total: Int, connections: Int) throws {
        let served = try Served()
        defer { served.stop() }
        guard Harness.require(served.ready, "sandbox serve started") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let notify = notifyPolicy(in: ws)
        let timeout = Harness.policy("""
            name = "serve-timeout"
            extends = ["serve-notify.toml"]
            [process]
            timeout = "1s"
            grace = "1s"
            """, in: ws, name: "serve-timeout.toml")
        let net = Harness.policy("""
            name = "serve-net"
            extends = ["agent-net", "serve-notify.toml"]
            """, in: ws, name: "serve-net.toml")
        let kinds: [(policy: String, argv: [String])] = [
            (notify, ["sh", "-c", "exit 3"]),
            (notify, ["sh", "-c", "unshare -r true 2>/dev/null; exit 4"]),
            (timeout, ["sleep", "30"]),
            (net, ["sh", "-c", "exit 5"]),
            ("strict", ["/bin/true"]),
            (notify, ["sh", "-c", "kill -9 $$"]),
        ]
        // What exec gives for each kind.
        var expected: [[String: Any]] = []
        for k in kinds {
            let r = try Harness.exec(policy: k.policy, k.argv, cwd: ws).result
            guard let r else { Issue.record("exec \(k) gave no result"); return }
            expected.append(r)
        }
        final class Replies: @unchecked Sendable { // guarded by lock
            let lock = NSLock()
            var all: [(kind: Int, reply: [String: Any]?)] = []
        }
        let replies = Replies()
        let group = DispatchGroup()
        for c in 0..<connections {
            group.enter()
            Thread {
                defer { group.leave() }
                guard let client = try? Client(served.socket) else { return }
                defer { client.close() }
                let mine = Array(stride(from: c, to: total, by: connections))
                // At most 4 in flight per connection: 64 runs at once.
                var next = 0, inFlight = 0
                var pipes: [Int: Stdio] = [:]
                while next < mine.count || inFlight > 0 {
                    while next < mine.count && inFlight < 4 {
                        let i = mine[next]
                        let k = kinds[i % kinds.count]
                        let stdio = Stdio()
                        client.send(request(id: i, policy: k.policy, argv: k.argv, cwd: ws), fds: stdio.fds)
                        stdio.closeSent()
                        pipes[i] = stdio
                        next += 1; inFlight += 1
                    }
                    let r = client.reply()
                    inFlight -= 1
                    let i = r?["id"] as? Int ?? -1
                    if let p = pipes.removeValue(forKey: i) { _ = p.output() }
                    replies.lock.lock(); replies.all.append((i < 0 ? -1 : i % kinds.count, r)); replies.lock.unlock()
                    if r == nil { return }
                }
            }.start()
        }
        group.wait()
        #expect(replies.all.count == total, "\(replies.all.count) replies for \(total) requests")
        var digestsChecked = 0
        for (kind, r) in replies.all {
            guard kind >= 0 else { Issue.record("a reply without an id: \(r ?? [:])"); continue }
            #expect(sameContent(r, expected[kind]), "\(kinds[kind].argv): serve \(r ?? [:])\nexec \(expected[kind])")
            // The digest of a sample against `sandbox plan` (each kind, every 10th).
            if digestsChecked < kinds.count * 2, let runId = r?["runId"] as? String {
                let want = try planDigest(policy: kinds[kind].policy, argv: kinds[kind].argv, runId: runId, cwd: ws)
                #expect(r?["planDigest"] as? String == want, "\(kinds[kind].argv): digest")
                digestsChecked += 1
            }
        }
        // Nothing of the runs is left: every run id's directory is gone.
        let ids = replies.all.compactMap { $0.reply?["runId"] as? String }
        let left = ids.filter { FileManager.default.fileExists(atPath: "/run/sandbox/\($0)") }
        #expect(left.isEmpty, "run directories left: \(left.prefix(5))")
    }
}

/// The words a run adds to a Landlock observer refusal it read from the one
/// remembered for the boot (LandlockObserver.shared).
enum LandlockObserverText {
    static let rememberedSuffix = " (remembered for this boot; `sandbox doctor` asks the kernel again)"
}
