import Foundation
import SandboxPlan
@testable import SandboxPolicy
import Testing

/// `ro`/`rw` entries written `{ src = …, dst = … }` (issue 18): mounted at the
/// destination, with everything about the host (identity, trust, protect, sockets)
/// taken from the source and everything inside (Landlock, masks, workdir) at the
/// destination. Each test has its control: the same entry without a dst.
@Suite struct BindDestinationTests {
    static let workspace = """
        [filesystem]
        ro = ["/usr"]
        rw = [{ src = "{cwd}", dst = "/workspace" }]
        protect = [".git"]
        [process]
        workdir = "/workspace"
        """

    @Test func parsedAsASourceWithADestination() throws {
        let p = try policy(Self.workspace)
        #expect(p.filesystem.rw == [PathTemplate("{cwd}", destination: "/workspace")])
        #expect(p.filesystem.rw.first?.inside == "/workspace")
        // A removal names the source, whatever the destination.
        let s = PolicyScratch()
        s.write("base.toml", Self.workspace)
        s.write("c.toml", "extends = [\"base\"]\n[filesystem]\nrw = [\"!{cwd}\"]\n[process]\nworkdir = \"/usr\"\n")
        #expect(try s.load("c.toml").filesystem.rw.isEmpty)
    }

    @Test func badDestinationsAreRefusedWithTheirKey() {
        let s = PolicyScratch()
        s.write("bad.toml", """
            [filesystem]
            rw = [
              { src = "{cwd}", dst = "{home}/w" },
              { src = "/srv", dst = "/" },
              { src = "/srv/a" },
              { src = "/srv/b", dst = "/b", mode = "x" },
              { src = "/srv/c", dst = "/c?" },
            ]
            tmpfs = [{ src = "/x", dst = "/y" }]
            """)
        let d = s.diagnostics("bad.toml").map(\.description).joined(separator: "\n")
        #expect(d.contains("filesystem.rw[0].dst: dst is a path inside the sandbox"), "\(d)")
        #expect(d.contains("filesystem.rw[1].dst: dst = \"/\" would cover"), "\(d)")
        #expect(d.contains("filesystem.rw[2]: a bind written as a table needs src"), "\(d)")
        #expect(d.contains("filesystem.rw[3].mode: unknown key \"mode\""), "\(d)")
        #expect(d.contains("filesystem.rw[4].dst: the optional marker"), "\(d)")
        #expect(d.contains("filesystem.tmpfs[0]: expected a string, found a table"), "\(d)")
    }

    @Test func mountedAtTheDestinationWithLandlockThere() throws {
        var h = host()
        h.cwdIdentity = FileIdentity(device: 1, inode: 2)
        let plan = try PlanCompiler(host: h).compile(try policy(Self.workspace), argv: ["sh"], runId: "r1")
        let bind = plan.mounts.first { $0.kind == .bind && $0.origin == "filesystem.rw" }
        #expect(bind?.source == "/work/proj" && bind?.destination == "/workspace", "\(plan.mounts.map(\.summary))")
        #expect(bind?.cwdRelative == "" && bind?.sourceIdentity == h.cwdIdentity,
                "the cwd is still opened from the supervisor's own cwd fd and checked against its identity")
        #expect(!plan.mounts.contains { $0.destination == "/work/proj" || $0.destination.hasPrefix("/work/") })
        // protect applies inside, to what the host has under the source.
        #expect(plan.mounts.contains { $0.kind == .protect && $0.destination == "/workspace/.git" })
        let rule = plan.landlock.rules.first { $0.hostPath == "/work/proj" }
        #expect(rule?.path == "/workspace" && rule?.access.contains(.writeFile) == true, "\(plan.landlock.rules)")
        #expect(plan.process.workdir == "/workspace")
        // Control: without the dst, all of it is at the cwd's own path.
        let same = try PlanCompiler(host: host()).compile(try policy(Self.workspace
            .replacingOccurrences(of: #"{ src = "{cwd}", dst = "/workspace" }"#, with: #""{cwd}""#)
            .replacingOccurrences(of: #"workdir = "/workspace""#, with: "")), argv: ["sh"], runId: "r1")
        #expect(same.mounts.contains { $0.kind == .bind && $0.destination == "/work/proj" })
        #expect(same.mounts.contains { $0.kind == .protect && $0.destination == "/work/proj/.git" })
        #expect(same.process.workdir == "/work/proj")
    }

    /// With no workdir the cwd is shown at its place under the destination.
    @Test func defaultWorkdirFollowsTheDestination() throws {
        var h = host(files: ["/work/proj/src": .directory])
        h.cwd = "/work/proj/src"
        let p = try policy("""
            [filesystem]
            ro = ["/usr"]
            rw = [{ src = "/work/proj", dst = "/workspace" }]
            """)
        let plan = try PlanCompiler(host: h).compile(p, argv: ["sh"], runId: "r1")
        #expect(plan.process.workdir == "/workspace/src")
    }

    /// The trust checks look at the source: a writable bind of the directory holding
    /// the sandbox binary is refused wherever it is mounted; a reserved destination
    /// is refused too. Control: the same bind read-only is allowed.
    @Test func trustChecksApplyToTheSource() throws {
        var h = host()
        h.trusted = [.executable("/work/proj/sandbox")]
        let p = try policy(Self.workspace)
        #expect(throws: PlanError.self) { try PlanCompiler(host: h).compile(p, argv: ["sh"], runId: "r1") }
        let readOnly = try policy("""
            [filesystem]
            ro = ["/usr", { src = "{cwd}", dst = "/workspace" }]
            [process]
            workdir = "/workspace"
            """)
        _ = try PlanCompiler(host: h).compile(readOnly, argv: ["sh"], runId: "r1")
        let reserved = try policy("""
            [filesystem]
            ro = ["/usr", { src = "/work/proj", dst = "/proc/x" }]
            """)
        #expect(throws: PlanError.self) { try PlanCompiler(host: host()).compile(reserved, argv: ["sh"], runId: "r1") }
    }

    /// A symlink source cannot be mounted elsewhere (a mirrored link would point
    /// somewhere else there). Control: without a dst the link is mirrored.
    @Test func aSymlinkSourceIsRefused() throws {
        let p = try policy("""
            [filesystem]
            ro = ["/usr", { src = "/bin", dst = "/tools" }]
            """)
        #expect(throws: PlanError.self) { try PlanCompiler(host: host()).compile(p, argv: ["sh"], runId: "r1") }
        let mirrored = try PlanCompiler(host: host()).compile(try policy("[filesystem]\nro = [\"/usr\", \"/bin\"]\n"), argv: ["sh"], runId: "r1")
        #expect(mirrored.mounts.contains { $0.kind == .symlink && $0.destination == "/bin" })
    }

    /// Two entries at one destination, or a dst that is another entry's path, are
    /// refused; a workdir at the destination is accepted, one at the source is not.
    @Test func oneEntryPerPlaceInside() throws {
        let s = PolicyScratch()
        s.write("two.toml", """
            [filesystem]
            ro = ["/usr", { src = "/srv", dst = "/usr" }]
            """)
        #expect(s.diagnostics("two.toml").first?.message.contains("\"/usr\" is listed twice in filesystem.ro") == true, "\(s.diagnostics("two.toml"))")
        s.write("across.toml", """
            [filesystem]
            ro = ["/usr"]
            rw = [{ src = "/srv", dst = "/usr" }]
            """)
        #expect(s.diagnostics("across.toml").first?.message.contains("\"/usr\" is in both filesystem.ro and filesystem.rw") == true)
        s.write("src.toml", """
            [filesystem]
            rw = [{ src = "{cwd}", dst = "/workspace" }]
            [process]
            workdir = "{cwd}"
            """)
        #expect(s.diagnostics("src.toml").first?.keyPath == "process.workdir")
    }
}

/// Policy files in a fresh directory, loaded with it as the search path.
private final class PolicyScratch {
    let dir = NSTemporaryDirectory() + "sbx-bind-\(UUID().uuidString.prefix(8))"
    init() { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: dir) }
    func write(_ name: String, _ text: String) { try? text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8) }
    func load(_ name: String) throws -> Policy { try PolicyLoader(searchPath: [dir]).load(path: "\(dir)/\(name)") }
    func diagnostics(_ name: String) -> [PolicyDiagnostic] {
        do { _ = try load(name); return [] } catch let e as PolicyError { return e.diagnostics } catch { return [] }
    }

    /// One host path, one bind: a second bind of the same source (another dst, or
    /// `{cwd}` beside its literal path, ro beside rw in either depth order) is
    /// refused — the trust checks, socket masks and git protects follow one bind
    /// (red-team findings 1–3). Control: two different sources at two places compile.
    @Test func aSourceIsBoundOnce() throws {
        let shapes = [
            "ro = [\"/usr\", { src = \"{cwd}\", dst = \"/v\" }]\nrw = [\"{cwd}\"]",
            "ro = [\"/usr\", \"{cwd}\"]\nrw = [{ src = \"/work/proj\", dst = \"/a/b/c/d\" }]",
            "ro = [\"/usr\", { src = \"{cwd}\", dst = \"/y\" }, { src = \"/work/proj\", dst = \"/z\" }]",
            "ro = [\"/usr\"]\nrw = [{ src = \"/work/proj\", dst = \"/w\" }, \"{cwd}\"]",
        ]
        for shape in shapes {
            let p = try policy("[filesystem]\n" + shape + "\n[process]\nworkdir = \"/usr\"\n")
            #expect(throws: PlanError.self, "\(shape)") { try PlanCompiler(host: host()).compile(p, argv: ["sh"], runId: "r1") }
        }
        let two = try policy("[filesystem]\nro = [\"/usr\", { src = \"/srv\", dst = \"/v\" }]\nrw = [\"{cwd}\"]\n")
        _ = try PlanCompiler(host: host()).compile(two, argv: ["sh"], runId: "r1")
    }

    /// A read-only bind whose source lies inside a writable bind's source with a dst:
    /// the same files were writable at the dst (red team, session 46: rw
    /// `{ src = W, dst = /w }` with ro `W/sub` left `/w/sub` writable). Refused, naming
    /// where to bind it. Control: the same read-only source bound at that place
    /// compiles, and so does one nested without a dst on either.
    @Test func aReadOnlySourceInsideAWritableOneBoundElsewhereIsRefused() throws {
        let files: [String: FileKind] = ["/work/proj/Makefile": .file]
        let refused = try policy("[filesystem]\nro = [\"/usr\", \"{cwd}/Makefile\"]\nrw = [{ src = \"{cwd}\", dst = \"/workspace\" }]\n[process]\nworkdir = \"/workspace\"\n")
        do {
            _ = try PlanCompiler(host: host(files: files)).compile(refused, argv: ["sh"], runId: "r1")
            Issue.record("compiled: /workspace/Makefile is writable")
        } catch let e as PlanError {
            #expect(e.key == "filesystem.ro" && e.message.contains("dst = \"/workspace/Makefile\""), "\(e)")
        }
        let placed = try policy("[filesystem]\nro = [\"/usr\", { src = \"{cwd}/Makefile\", dst = \"/workspace/Makefile\" }]\nrw = [{ src = \"{cwd}\", dst = \"/workspace\" }]\n[process]\nworkdir = \"/workspace\"\n")
        _ = try PlanCompiler(host: host(files: files)).compile(placed, argv: ["sh"], runId: "r1")
        let nested = try policy("[filesystem]\nro = [\"/usr\", \"{cwd}/Makefile\"]\nrw = [\"{cwd}\"]\n")
        _ = try PlanCompiler(host: host(files: files)).compile(nested, argv: ["sh"], runId: "r1")
    }

    /// A mask names a place inside: one naming a host path that is bound elsewhere hid
    /// nothing where the files are shown (red team, session 46). Refused, naming the
    /// place to mask. Control: the place inside compiles.
    @Test func aMaskOfAHostPathBoundElsewhereIsRefused() throws {
        let files: [String: FileKind] = ["/work/proj/.env": .file]
        let base = "[filesystem]\nro = [\"/usr\"]\nrw = [{ src = \"{cwd}\", dst = \"/workspace\" }]\n[process]\nworkdir = \"/workspace\"\n"
        let refused = try policy(base.replacingOccurrences(of: "[process]", with: "mask = [\"{cwd}/.env\"]\n[process]"))
        do {
            _ = try PlanCompiler(host: host(files: files)).compile(refused, argv: ["sh"], runId: "r1")
            Issue.record("compiled: /workspace/.env is readable")
        } catch let e as PlanError {
            #expect(e.key == "filesystem.mask[0]" && e.message.contains("mask /workspace/.env"), "\(e)")
        }
        let inside = try policy(base.replacingOccurrences(of: "[process]", with: "mask = [\"/workspace/.env\"]\n[process]"))
        _ = try PlanCompiler(host: host(files: files)).compile(inside, argv: ["sh"], runId: "r1")
    }

    /// A mask under /proc/self covered the sandbox init's file, not the command's
    /// (red team, session 46): refused. Control: a /proc entry every process shares
    /// compiles.
    @Test func aMaskUnderProcSelfIsRefused() throws {
        for m in ["/proc/self/mountinfo", "/proc/thread-self/environ"] {
            let p = try policy("[filesystem]\nro = [\"/usr\"]\nmask = [\"\(m)\"]\n")
            #expect(throws: PlanError.self, "\(m)") { try PlanCompiler(host: host()).compile(p, argv: ["sh"], runId: "r1") }
        }
        _ = try PlanCompiler(host: host()).compile(try policy("[filesystem]\nro = [\"/usr\"]\nmask = [\"/proc/kcore\"]\n"), argv: ["sh"], runId: "r1")
    }

    /// A mask of a host path bound elsewhere is refused also when another bind (a
    /// read-only parent) shows that path: the bind with the dst shows the files
    /// unmasked (red team, session 46: /workspace/secret read TOPSECRET). And masks of
    /// `/proc/mounts`, `/proc/net` and `/dev/fd`, links into /proc/self, are refused
    /// as /proc/self is. Control: the place inside compiles.
    @Test func aMaskOfAHostPathShownElsewhereIsRefusedWhateverElseShowsIt() throws {
        let files: [String: FileKind] = ["/work/proj/secret": .file, "/work": .directory]
        let base = "[filesystem]\nro = [\"/usr\", \"/work\"]\nrw = [{ src = \"{cwd}\", dst = \"/workspace\" }]\n[process]\nworkdir = \"/workspace\"\n"
        let refused = try policy(base.replacingOccurrences(of: "[process]", with: "mask = [\"{cwd}/secret\"]\n[process]"))
        #expect(throws: PlanError.self) { try PlanCompiler(host: host(files: files)).compile(refused, argv: ["sh"], runId: "r1") }
        let inside = try policy(base.replacingOccurrences(of: "[process]", with: "mask = [\"/workspace/secret\"]\n[process]"))
        _ = try PlanCompiler(host: host(files: files)).compile(inside, argv: ["sh"], runId: "r1")
        for m in ["/proc/net", "/proc/net/tcp", "/proc/mounts", "/dev/fd/3"] {
            let p = try policy("[filesystem]\nro = [\"/usr\"]\nmask = [\"\(m)\"]\n")
            #expect(throws: PlanError.self, "\(m)") { try PlanCompiler(host: host()).compile(p, argv: ["sh"], runId: "r1") }
        }
    }
}
