import Foundation
import Testing

/// Issue 12, item 2: kernel resources that are host-wide, not per sandbox, attacked for
/// real, each with a control showing the attack works without the bound.
///
/// - Linux AIO contexts count against the global `fs.aio-nr` (limit `fs.aio-max-nr`):
///   `io_setup` and the rest of the family are refused (default profile, and base.toml's
///   `seccomp.deny` so a replacement profile cannot reopen them).
/// - Conntrack: every connection an egress run opens is an entry in the host's
///   conntrack table (forwarded and masqueraded there) that outlives the run (SYN_SENT:
///   120 s); `network.max_connections` caps how many the run has at once (`ct count` in
///   the run's own namespace).
///
/// The network test sends traffic only to a test host of its own (a namespace made
/// here, removed afterwards), never to any other address.
@Suite(.serialized) struct KernelResourceTests {
    static var agent: String { "\(Harness.repoRoot)/Policies/agent.toml" }

    // MARK: - AIO

    /// `io_setup(1)` then `io_destroy`, printing `io_setup=ok|ERRNO`, the change of the
    /// global `fs.aio-nr` while the context exists, and `io_destroy=`.
    static let aioScript = """
        import ctypes, errno, os, platform
        libc = ctypes.CDLL(None, use_errno=True)
        setup, destroy = (206, 207) if platform.machine() == "x86_64" else (0, 1)
        def aio_nr():
            try:
                return int(open("/proc/sys/fs/aio-nr").read())
            except OSError:
                return -1
        ctx = ctypes.c_ulong(0)
        before = aio_nr()
        r = libc.syscall(setup, 1, ctypes.byref(ctx))
        if r != 0:
            print("io_setup=" + errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno())))
        else:
            during = aio_nr()
            d = libc.syscall(destroy, ctx)
            print("io_setup=ok")
            print("aio_nr_delta=%d" % (during - before))
            print("io_destroy=" + ("ok" if d == 0 else errno.errorcode.get(ctypes.get_errno(), "?")))
        """

    static func results(_ stdout: String) -> [String: String] { EgressTests.results(stdout) }

    /// io_setup inside `agent` fails with EPERM, also under a replacement profile that
    /// allows it (Podman's, when installed), and `fs.aio-nr` does not move. Control: a
    /// policy that drops the deny entries and uses no profile gets a context (and
    /// `fs.aio-nr` rises, showing the counter is the host's), then destroys it.
    @Test func aioContextsAreRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.aioScript.write(toFile: "\(dir)/aio.py", atomically: true, encoding: .utf8)
        let hostBefore = try String(contentsOfFile: "/proc/sys/fs/aio-nr", encoding: .utf8)

        let out = try Harness.exec(policy: Self.agent, ["python3", "aio.py"], cwd: dir)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(Self.results(out.stdout)["io_setup"] == "EPERM", "agent: \(out.stdout) \(out.stderr)")

        // A replacement profile that allows the AIO calls: base.toml's deny still wins.
        let podman = "/usr/share/containers/seccomp.json"
        if FileManager.default.fileExists(atPath: podman) {
            let policy = Harness.policy("extends = [\"\(Self.agent)\"]\n[seccomp]\nprofile = \"\(podman)\"\n",
                                        in: dir, name: "podman-profile.toml")
            let p = try Harness.exec(policy: policy, ["python3", "aio.py"], cwd: dir)
            #expect(Self.results(p.stdout)["io_setup"] == "EPERM", "podman's profile: \(p.stdout) \(p.stderr)")
        }
        #expect(try String(contentsOfFile: "/proc/sys/fs/aio-nr", encoding: .utf8) == hostBefore)

        // Control: no profile, the AIO entries removed from the deny list.
        let open = Harness.policy("""
            extends = ["\(Self.agent)"]
            [seccomp]
            profile = "none"
            deny = ["!io_setup", "!io_submit", "!io_getevents", "!io_pgetevents", "!io_cancel", "!io_destroy"]
            """, in: dir, name: "aio-open.toml")
        let c = try Harness.exec(policy: open, ["python3", "aio.py"], cwd: dir)
        let r = Self.results(c.stdout)
        #expect(r["io_setup"] == "ok", "control: io_setup without the fence: \(c.stdout) \(c.stderr)")
        #expect((Int(r["aio_nr_delta"] ?? "") ?? 0) > 0, "control: the context counts in the host's fs.aio-nr: \(c.stdout)")
        #expect(r["io_destroy"] == "ok", "\(c.stdout)")
    }

    // MARK: - Connection cap

    /// Opens `count` TCP connections at once (non-blocking) to HOST:PORT, waits, and
    /// prints how many are still pending (their SYN left) and how many were refused.
    static let synScript = """
        import errno, select, socket, sys, time
        host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        socks = []
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((host, port))
            socks.append(s)
        time.sleep(1.5)
        pending = refused = other = 0
        for s in socks:
            e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if e == 0: pending += 1
            elif e == errno.ECONNREFUSED: refused += 1
            else: other += 1
        print("pending=%d" % pending)
        print("refused=%d" % refused)
        print("other=%d" % other)
        """

    /// Entries of the host's conntrack table (this namespace's: the host's) for TCP to
    /// `daddr:dport`.
    static func hostConntrackEntries(daddr: String, dport: Int) -> Int {
        // Read to the end: a /proc file reports size 0, so read it as a stream.
        guard let f = FileHandle(forReadingAtPath: "/proc/net/nf_conntrack") else { return -1 }
        defer { try? f.close() }
        let text = String(decoding: f.readDataToEndOfFile(), as: UTF8.self)
        return text.split(separator: "\n").filter { line in
            // The original direction comes first on each line.
            guard line.contains(" tcp ") else { return false }
            let fields = line.split(separator: " ")
            return fields.first { $0.hasPrefix("dst=") } == "dst=\(daddr)"
                && fields.first { $0.hasPrefix("dport=") } == "dport=\(dport)"
        }.count
    }

    /// 1 000 SYNs to an allowed test host whose port drops them (so each stays a
    /// SYN_SENT entry for 120 s) leave at most `max_connections` (here 40) entries in the
    /// host's conntrack table; the rest are refused at once (ECONNREFUSED) and itemised
    /// in `egressDenied`. Control: with the cap raised to 2 000 every one of the 1 000
    /// reaches the host.
    @Test func connectionCapBoundsHostConntrack() throws {
        guard Harness.require(Harness.isRoot, "root"),
              Harness.require(FileManager.default.fileExists(atPath: "/proc/net/nf_conntrack"),
                              "/proc/net/nf_conntrack (CONFIG_NF_CONNTRACK_PROCFS)") else { return }
        let h = try EgressTests.RemoteHost()
        defer { h.cleanUp() }
        // The test host drops SYNs to 8090 and 8091: nothing answers, nothing closes.
        let drop = """
            table inet sbxcap {
              chain input {
                type filter hook input priority filter; policy accept;
                tcp dport { 8090, 8091 } drop
              }
            }
            """
        let loaded = try Harness.run("/usr/sbin/ip", ["netns", "exec", h.netns, "/usr/sbin/nft", "-f", "-"], stdin: drop)
        #expect(loaded.status == 0, "nft in the test host: \(loaded.stderr)")

        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.synScript.write(toFile: "\(dir)/syn.py", atomically: true, encoding: .utf8)
        func policy(_ cap: Int) -> String {
            Harness.egressPolicy(in: dir, name: "cap-\(cap)", network: """
                allow = [{ cidr = "\(h.address)/32", ports = [8090, 8091], proto = "tcp" }]
                max_connections = \(cap)
                """)
        }

        let cap = 40
        let out = try Harness.exec(policy: policy(cap), ["python3", "syn.py", h.address, "8090", "1000"], cwd: dir, timeout: 90)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let r = Self.results(out.stdout)
        #expect(r["pending"] == "\(cap)", "\(out.stdout)")
        #expect(r["refused"] == "\(1000 - cap)", "\(out.stdout)")
        let entries = Self.hostConntrackEntries(daddr: h.address, dport: 8090)
        #expect(entries >= 1 && entries <= cap, "host conntrack entries for the capped run: \(entries)")
        let denied = EgressTests.denied(out.result)
        #expect(denied.contains { $0.daddr == h.address && $0.dport == 8090 && $0.proto == "tcp" && $0.packets >= 1000 - cap },
                "the refused connections are in egressDenied: \(denied)")

        // Control: the same flood with the cap above it.
        let c = try Harness.exec(policy: policy(2000), ["python3", "syn.py", h.address, "8091", "1000"], cwd: dir, timeout: 90)
        #expect(c.status == 0, "stderr: \(c.stderr)")
        #expect(Self.results(c.stdout)["pending"] == "1000", "control: \(c.stdout)")
        let uncapped = Self.hostConntrackEntries(daddr: h.address, dport: 8091)
        #expect(uncapped >= 1000, "control: host conntrack entries without the cap: \(uncapped)")
    }
}
