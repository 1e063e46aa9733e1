import Foundation
import SandboxPlan
import SandboxPolicy
import Testing

/// TrustCheck (issue 11): no writable bind may hold or lie inside what later runs
/// trust, and no bind may reach /proc, /sys, /dev or the run base. Pure: the host's
/// files are faked (`host()` in PlanCompilerTests.swift: cwd /work/proj, rw {cwd}).
@Suite struct TrustCheckTests {
    /// `simple` (rw {cwd} = /work/proj, ro /usr…, tmpfs /tmp, protect .git) with what
    /// later runs trust and the run base set.
    func facts(trusted: [TrustedPath] = [], runBase: String? = "/run/sandbox", files: [String: FileKind] = [:],
               cwd: String = "/work/proj") -> HostFacts {
        var h = host(files: files)
        h.cwd = cwd
        h.trusted = trusted
        h.runBase = runBase
        return h
    }

    func refusal(_ p: Policy, _ h: HostFacts) -> PlanError? {
        do {
            _ = try PlanCompiler(host: h).compile(p, argv: ["sh"], runId: "r1")
            return nil
        } catch let e as PlanError {
            return e
        } catch {
            Issue.record("not a PlanError: \(error)")
            return nil
        }
    }

    func simplePolicy(_ extra: String = "") throws -> Policy {
        extra.isEmpty ? try policy(simple) : try derived(extra)
    }

    @Test func executableInTheWritableDirectoryIsRefusedNamingBoth() throws {
        let h = facts(trusted: [.executable("/work/proj/.build/release/sandbox")])
        let e = refusal(try simplePolicy(), h)
        #expect(e?.key == "filesystem.rw[0]")
        #expect(e?.message == "/work/proj is writable by the command, and it holds the sandbox executable /work/proj/.build/release/sandbox; a run could replace what later runs trust. Run sandbox from outside the writable paths (install it, see README)")
        // Control: installed elsewhere (under the ro /usr: read-only is fine).
        #expect(refusal(try simplePolicy(), facts(trusted: [.executable("/usr/local/bin/sandbox")])) == nil)
    }

    @Test func symlinksAreResolvedOnBothSides() throws {
        // The executable reached through a symlinked directory that points into rw.
        let viaLink = facts(trusted: [.executable("/opt/tools/sandbox")],
                            files: ["/opt": .directory, "/opt/tools": .symlink(target: "../work/proj/bin"),
                                    "/work/proj/bin": .directory, "/work/proj/bin/sandbox": .file])
        let e = refusal(try simplePolicy(), viaLink)
        #expect(e?.key == "filesystem.rw[0]")
        #expect(e?.message.contains("holds the sandbox executable /work/proj/bin/sandbox") == true, "\(String(describing: e))")

        // The rw path reached through a symlinked directory ({cwd} as the invoker typed it).
        let rwViaLink = facts(trusted: [.executable("/work/proj/sandbox")],
                              files: ["/srv": .directory, "/srv/ws": .symlink(target: "/work"), "/srv/ws/proj": .directory],
                              cwd: "/srv/ws/proj")
        let e2 = refusal(try simplePolicy(), rwViaLink)
        #expect(e2?.message.hasPrefix("/srv/ws/proj (that is /work/proj) is writable by the command, and it holds the sandbox executable /work/proj/sandbox") == true,
                "\(String(describing: e2))")
    }

    @Test func writableDirectoryInsideTheDataDirectoryIsRefused() throws {
        let h = facts(trusted: [.policies("/opt/sandbox/Policies"), .profiles("/opt/sandbox/Profiles")],
                      files: ["/opt": .directory, "/opt/sandbox": .directory, "/opt/sandbox/Policies": .directory,
                              "/opt/sandbox/Profiles": .directory, "/opt/sandbox/Profiles/seccomp": .directory])
        let p = try simplePolicy("[filesystem]\nrw = [\"/opt/sandbox/Profiles/seccomp\"]\n")
        let e = refusal(p, h)
        #expect(e?.key == "filesystem.rw[1]")
        #expect(e?.message.hasPrefix("/opt/sandbox/Profiles/seccomp is writable by the command, and it lies inside the data directory's Profiles /opt/sandbox/Profiles") == true,
                "\(String(describing: e))")
        // The whole install dir writable holds both; the first listed is named.
        let e2 = refusal(try simplePolicy("[filesystem]\nrw = [\"/opt/sandbox\"]\n"), h)
        #expect(e2?.message.contains("holds the data directory's Policies /opt/sandbox/Policies") == true, "\(String(describing: e2))")
    }

    @Test func policyAndProfileFilesInTheWritableDirectoryAreRefused() throws {
        var p = try simplePolicy()
        p.sources = ["/etc/sandbox/base.toml", "/work/proj/p.toml"]
        let e = refusal(p, facts())
        #expect(e?.key == "filesystem.rw[0]")
        #expect(e?.message.hasPrefix("/work/proj is writable by the command, and it holds the policy file /work/proj/p.toml") == true,
                "\(String(describing: e))")
        #expect(e?.message.contains("Keep policies and profiles outside every path a run can write") == true)

        var q = try simplePolicy()
        q.seccomp.profile = SeccompProfile(source: "/work/proj/sub/profile.json", defaultAction: .allow)
        let e2 = refusal(q, facts(files: ["/work/proj/sub": .directory]))
        #expect(e2?.message.contains("holds the seccomp profile /work/proj/sub/profile.json") == true, "\(String(describing: e2))")
    }

    /// No exception for protect: it covers only what exists when the plan is made, so
    /// a `.sandbox/` policy may have been planted by an earlier run (red-team review).
    @Test func aProtectedEntryIsStillRefused() throws {
        var p = try simplePolicy()   // protect = [".git", ".absent"]; /work/proj/.git exists
        p.sources = ["/work/proj/.git/p.toml"]
        #expect(refusal(p, facts())?.message.contains("holds the policy file /work/proj/.git/p.toml") == true)
        p.sources = ["/work/proj/.absent/p.toml"]
        #expect(refusal(p, facts())?.message.contains("holds the policy file /work/proj/.absent/p.toml") == true)
    }

    /// Private tmpfs and read-only binds hold nothing a run could change.
    @Test func tmpfsAndReadOnlyBindsAreNotWritable() throws {
        let h = facts(trusted: [.executable("/tmp/sandbox"), .executable("/usr/bin/sandbox")])
        #expect(refusal(try simplePolicy(), h) == nil)
    }

    @Test func runBaseAndSeccompCacheMustNotBeWritable() throws {
        let h = facts(trusted: [.seccompCache("/run/sandbox/.seccomp-cache")], files: ["/run": .directory])
        let e = refusal(try simplePolicy("[filesystem]\nrw = [\"/run\"]\n"), h)
        #expect(e?.key == "filesystem.rw[1]")
        #expect(e?.message.contains("holds the seccomp cache /run/sandbox/.seccomp-cache") == true, "\(String(describing: e))")
        #expect(e?.message.contains("no policy may make it writable") == true)
        // Without the CLI's list, the run base itself is still trusted.
        let e2 = refusal(try simplePolicy("[filesystem]\nrw = [\"/run\"]\n"), facts(files: ["/run": .directory]))
        #expect(e2?.message.contains("holds the run base /run/sandbox") == true, "\(String(describing: e2))")
    }

    @Test func reservedPathsAreRefusedInEveryList() throws {
        let cases: [(String, String, String)] = [
            ("ro = [\"/sys\"]", "filesystem.ro[", "/sys is /sys, which the sandbox reserves"),
            ("ro = [\"/sys/kernel/security\"]", "filesystem.ro[", "/sys/kernel/security is under /sys"),
            ("rw = [\"/sys/fs/cgroup\"]", "filesystem.rw[", "/sys/fs/cgroup is under /sys"),
            ("unix_sockets = [\"/run/sandbox/x.sock\"]", "filesystem.unix_sockets[0]", "/run/sandbox/x.sock is under /run/sandbox"),
            ("ro = [\"/run/sandbox\"]", "filesystem.ro[", "/run/sandbox is /run/sandbox"),
        ]
        let files: [String: FileKind] = ["/sys": .directory, "/sys/kernel/security": .directory, "/sys/fs/cgroup": .directory,
                                          "/run/sandbox": .directory, "/run/sandbox/x.sock": .other]
        for (entry, key, message) in cases {
            let e = refusal(try simplePolicy("[filesystem]\n\(entry)\n"), facts(files: files))
            #expect(e?.key.hasPrefix(key) == true && e?.message.contains(message) == true, "\(entry): \(String(describing: e))")
            #expect(e?.message.hasSuffix("remove it from the policy") == true, "\(entry): \(String(describing: e))")
        }
    }

    @Test func workingDirectoryUnderAReservedPathIsRefused() throws {
        for cwd in ["/sys/kernel", "/run/sandbox", "/run/sandbox/.seccomp-cache"] {
            let e = refusal(try simplePolicy(), facts(files: [cwd: .directory], cwd: cwd))
            #expect(e?.key == "filesystem.rw[0]", "\(cwd): \(String(describing: e))")
            #expect(e?.message.contains("run sandbox from a project directory") == true, "\(cwd): \(String(describing: e))")
        }
        // The run base as the rootless invoker has it.
        let rootless = facts(runBase: "/run/user/1000/sandbox", files: ["/run/user/1000/sandbox/abc": .directory],
                             cwd: "/run/user/1000/sandbox/abc")
        #expect(refusal(try simplePolicy(), rootless)?.message.contains("is under /run/user/1000/sandbox") == true)
    }

    @Test func aBindReachingAReservedPathThroughASymlinkIsRefused() throws {
        let files: [String: FileKind] = ["/work": .directory, "/work/proj/sysfs": .symlink(target: "/sys"), "/work/proj/sysfs/kernel": .directory,
                                         "/sys": .directory, "/sys/kernel": .directory]
        let e = refusal(try simplePolicy("[filesystem]\nro = [\"{cwd}/sysfs/kernel\"]\n"), facts(files: files))
        #expect(e?.message.hasPrefix("/work/proj/sysfs/kernel (that is /sys/kernel) is under /sys") == true, "\(String(describing: e))")
    }

    /// Symlink loops and dangling links end the resolution instead of hanging.
    @Test func symlinkLoopsTerminate() throws {
        let files: [String: FileKind] = ["/opt": .directory, "/opt/a": .symlink(target: "b"), "/opt/b": .symlink(target: "a")]
        #expect(refusal(try simplePolicy(), facts(trusted: [.executable("/opt/a/sandbox")], files: files)) == nil)
    }
}
