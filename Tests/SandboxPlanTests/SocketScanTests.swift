import SandboxPlan
import SandboxPolicy
import Testing

/// Unix sockets under `ro` binds become `mask` steps (SocketScan.swift); the search
/// is faked here (`FakeFiles.sockets`), the real one is in UnixSocketScanTests and
/// the attack in IntegrationTests/UnixSocketTests.
@Suite struct SocketScanTests {
    static let dirs: [String: FileKind] = [
        "/usr": .directory, "/work/proj": .directory, "/srv": .directory, "/srv/a": .directory,
        "/srv/nested": .directory, "/run": .directory, "/run/user": .directory,
    ]

    func facts(sockets: [String], files: [String: FileKind] = [:], inspector: (any FileInspector)? = nil) -> HostFacts {
        var all = Self.dirs
        for (k, v) in files { all[k] = v }
        return HostFacts(arch: "x86_64", kernelRelease: "6.18.0", landlockABI: 7, invokerUID: 0, invokerGID: 0,
                         cwd: "/work/proj", home: "/root", environment: [:],
                         files: inspector ?? FakeFiles(entries: all, sockets: sockets))
    }

    func compile(_ filesystem: String, sockets: [String], files: [String: FileKind] = [:]) throws -> RunPlan {
        let p = try policy("name = \"s\"\n[filesystem]\n" + filesystem)
        return try PlanCompiler(host: facts(sockets: sockets, files: files)).compile(p, argv: ["sh"], runId: "r1")
    }

    func socketMasks(_ plan: RunPlan) -> [String] {
        plan.mounts.filter { $0.kind == .mask && $0.origin == "filesystem.ro (unix socket)" }.map(\.destination)
    }

    /// An ro bind with a dst (issue 18): its sockets are found under the source and
    /// hidden at the destination. A tree that is also bound at its own path is hidden
    /// in both places: the nested bind covers only its own path, not the copy under
    /// the dst. Control: without the dst the socket is hidden at its own path.
    @Test func socketsUnderABindElsewhereAreHiddenWhereTheyAreSeen() throws {
        let elsewhere = try compile(#"ro = ["/usr", { src = "/srv", dst = "/data" }]"#, sockets: ["/srv/a/s.sock"])
        #expect(socketMasks(elsewhere) == ["/data/a/s.sock"])
        let twice = try compile(#"ro = ["/usr", { src = "/srv", dst = "/data" }, "/srv/a"]"#, sockets: ["/srv/a/s.sock"])
        #expect(Set(socketMasks(twice)) == ["/data/a/s.sock", "/srv/a/s.sock"], "\(socketMasks(twice))")
        let same = try compile(#"ro = ["/usr", "/srv"]"#, sockets: ["/srv/a/s.sock"])
        #expect(socketMasks(same) == ["/srv/a/s.sock"])
    }

    func refusal(_ filesystem: String, sockets: [String], files: [String: FileKind] = [:]) -> PlanError? {
        do {
            _ = try compile(filesystem, sockets: sockets, files: files)
            return nil
        } catch let e as PlanError { return e } catch { return nil }
    }

    @Test func socketsUnderROBindsAreMaskedLast() throws {
        let plan = try compile("ro = [\"/srv\", \"/usr\"]\nrw = [\"{cwd}\"]\nmask = [\"/srv/secret\"]",
                               sockets: ["/srv/a/z.sock", "/srv/b.sock", "/work/proj/dev.sock", "/run/docker.sock"])
        #expect(socketMasks(plan) == ["/srv/a/z.sock", "/srv/b.sock"])
        // Masks come after every other step (a mask must not be covered), sorted.
        let kinds = plan.mounts.suffix(3).map(\.kind)
        #expect(kinds == [.mask, .mask, .mask], "\(plan.mounts.map(\.summary))")
        #expect(plan.mounts.last { $0.kind == .mask }?.optional == true)
        #expect(plan.notApplied.isEmpty)
    }

    /// A socket in an rw bind is the command's to use (it can bind its own there);
    /// a mounted-over path (tmpfs, nested rw) shows what is mounted, not the host's.
    @Test func onlyWhatAnROBindShows() throws {
        let plan = try compile("ro = [\"/srv\"]\nrw = [\"/srv/a\"]\ntmpfs = [\"/srv/tmp\"]",
                               sockets: ["/srv/a/x.sock", "/srv/tmp/y.sock", "/srv/z.sock"])
        #expect(socketMasks(plan) == ["/srv/z.sock"])
    }

    /// A tmpfs (or any mount) above the ro bind does not hide the bind's sockets.
    @Test func aMountAboveTheBindDoesNotCoverIt() throws {
        let plan = try compile("ro = [\"/run/user\"]\ntmpfs = [\"/run\"]", sockets: ["/run/user/1000/bus"])
        #expect(socketMasks(plan) == ["/run/user/1000/bus"])
    }

    @Test func nestedROBindsAreEachSearched() throws {
        let plan = try compile("ro = [\"/srv\", \"/srv/nested\"]", sockets: ["/srv/nested/n.sock", "/srv/s.sock"])
        #expect(socketMasks(plan) == ["/srv/nested/n.sock", "/srv/s.sock"])
    }

    /// Listed in unix_sockets (the socket or its directory): bound read-write on top,
    /// not masked.
    @Test func unixSocketsEntriesStayConnectable() throws {
        let one = try compile("ro = [\"/run\"]\nunix_sockets = [\"/run/docker.sock\"]",
                              sockets: ["/run/docker.sock", "/run/other.sock"], files: ["/run/docker.sock": .other])
        #expect(socketMasks(one) == ["/run/other.sock"])
        #expect(one.mounts.contains { $0.kind == .bind && $0.destination == "/run/docker.sock" && !$0.readOnly })
        let dir = try compile("ro = [\"/run\"]\nunix_sockets = [\"/run/user\"]",
                              sockets: ["/run/user/1000/bus", "/run/other.sock"])
        #expect(socketMasks(dir) == ["/run/other.sock"])
    }

    @Test func skippedTreesAreNotSearched() throws {
        let plan = try compile("ro = [\"/usr\", \"/srv\"]\nsocket_scan_skip = [\"/usr\", \"/srv/a\"]",
                               sockets: ["/usr/x.sock", "/srv/a/y.sock", "/srv/z.sock"])
        #expect(socketMasks(plan) == ["/srv/z.sock"])
    }

    /// base.toml vouches for the package-managed trees; its other ro trees (/etc/…) are searched.
    @Test func baseSkipsUsrOnly() throws {
        let p = try policy("name = \"b\"\nextends = [\"base\"]\n")
        #expect(p.filesystem.socketScanSkip.map(\.raw) == ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"])
        #expect(p.filesystem.socketScanLimit == FilesystemPolicy.defaultSocketScanLimit)
        let plan = try PlanCompiler(host: facts(sockets: ["/usr/lib/x.sock", "/etc/ssl/certs/odd.sock"],
                                                files: ["/etc/ssl/certs": .directory]))
            .compile(p, argv: ["sh"], runId: "r1")
        #expect(socketMasks(plan) == ["/etc/ssl/certs/odd.sock"])
    }

    /// Over the limit the plan is refused, naming the bind, the limit and the ways out;
    /// never a partial search.
    @Test func overTheLimitIsRefused() throws {
        var files: [String: FileKind] = [:]
        for i in 0..<20 { files["/srv/f\(i)"] = .file }
        let e = refusal("ro = [\"/usr\", \"/srv\"]\nsocket_scan_limit = 10", sockets: [], files: files)
        #expect(e?.key == "filesystem.ro[1]", "\(String(describing: e))")
        #expect(e?.message.contains("/srv cannot be searched for unix sockets (more than 10 directory entries)") == true)
        #expect(e?.message.contains("socket_scan_skip") == true && e?.message.contains("socket_scan_limit") == true)
        // Raised, or the tree vouched for: it runs.
        #expect(try compile("ro = [\"/srv\"]\nsocket_scan_limit = 100", sockets: [], files: files).mounts.count > 0)
        #expect(try compile("ro = [\"/srv\"]\nsocket_scan_limit = 10\nsocket_scan_skip = [\"/srv\"]", sockets: [], files: files).mounts.count > 0)
    }

    @Test func aSocketListedInROIsRefused() throws {
        let e = refusal("ro = [\"/usr\", \"/run/docker.sock\"]", sockets: ["/run/docker.sock"],
                        files: ["/run/docker.sock": .other])
        #expect(e?.key == "filesystem.ro[1]")
        #expect(e?.message.contains("/run/docker.sock is a unix socket") == true)
        #expect(e?.message.contains("filesystem.unix_sockets") == true)
    }

    /// An inspector that cannot list directories (a harness's own) is not a silent
    /// pass: the plan says what was not done.
    @Test func anInspectorWithoutTheSearchIsReported() throws {
        struct Plain: FileInspector {
            func kind(of path: String) -> FileKind? { path == "/srv" ? .directory : nil }
        }
        let p = try policy("name = \"s\"\n[filesystem]\nro = [\"/srv\"]\n")
        let plan = try PlanCompiler(host: facts(sockets: [], inspector: Plain())).compile(p, argv: ["sh"], runId: "r1")
        #expect(plan.notApplied.contains { $0.contains("not searched for unix sockets") }, "\(plan.notApplied)")
    }

    @Test func limitAndSkipAreValidated() throws {
        do {
            _ = try policy("name = \"s\"\n[filesystem]\nsocket_scan_limit = -1\n")
            Issue.record("a negative limit loaded")
        } catch let e as PolicyError {
            #expect(e.diagnostics.contains { $0.message.contains("socket_scan_limit = -1 is out of range") }, "\(e)")
        }
        let p = try policy("name = \"s\"\n[filesystem]\nsocket_scan_skip = [\"{home}/x\"]\nsocket_scan_limit = 0\n")
        #expect(p.filesystem.socketScanSkip.map(\.raw) == ["{home}/x"] && p.filesystem.socketScanLimit == 0)
    }
}
