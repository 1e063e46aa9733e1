import Foundation
import Testing

/// A run's cgroups nest inside the invoker's own (cgroup v1), so a limit the invoker
/// is under still bounds the run: a policy's larger memory limit does not let a
/// command escape a CI job's smaller one. And gc removes a killed run's cgroups from
/// where they were recorded, wherever that is.
@Suite(.serialized) struct NestingTests {
    static let memoryMount = "/sys/fs/cgroup/memory"

    static func ready() -> Bool {
        Harness.require(Harness.isRoot, "root")
            && Harness.require(FileManager.default.fileExists(atPath: "\(memoryMount)/memory.limit_in_bytes"),
                               "a cgroup v1 memory hierarchy (this host's layout)")
    }

    /// Runs `body` with a memory cgroup of our own (limit `limitMiB`) that a shell
    /// joins before exec'ing `sandbox`; removed afterwards.
    func withOuterCgroup(limitMiB: Int, _ body: (String) throws -> Void) throws {
        let outer = "\(Self.memoryMount)/sbxtest-outer-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: outer, withIntermediateDirectories: false)
        defer { rmdir(outer) }
        try String(limitMiB << 20).write(toFile: "\(outer)/memory.limit_in_bytes", atomically: false, encoding: .utf8)
        if FileManager.default.fileExists(atPath: "\(outer)/memory.memsw.limit_in_bytes") {
            try? String(limitMiB << 20).write(toFile: "\(outer)/memory.memsw.limit_in_bytes", atomically: false, encoding: .utf8)
        }
        try body(outer)
    }

    @Test func invokerLimitStillBoundsTheRun() throws {
        guard Self.ready() else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "nest"
            extends = ["\(Harness.repoRoot)/Policies/base.toml"]
            [filesystem]
            rw = ["{cwd}"]
            [resources]
            memory = "1GiB"
            """, in: dir)
        let alloc = "b = []\nfor i in range(40):\n    b.append(bytearray(8 << 20))\nprint('allocated', len(b) * 8, flush=True)\n"
        try withOuterCgroup(limitMiB: 96) { outer in
            // The shell puts itself ("0") into our outer cgroup, then becomes sandbox.
            let out = try Harness.run("/bin/sh", ["-c", "echo 0 > \(outer)/cgroup.procs && exec \"$0\" \"$@\"",
                                                  Harness.binary, "exec", "--policy", policy, "--", "python3", "-c", alloc],
                                      cwd: dir)
            #expect(out.status == 137, "a 1 GiB policy escaped the invoker's 96 MiB: \(out.status) \(out.stdout) \(out.stderr)")
            #expect(!out.stdout.contains("allocated 320"))
        }
    }

    @Test func gcRemovesNestedCgroupsOfAKilledRun() throws {
        guard Self.ready() else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "nest-gc"
            extends = ["\(Harness.repoRoot)/Policies/base.toml"]
            [filesystem]
            rw = ["{cwd}"]
            [resources]
            memory = "128MiB"
            """, in: dir)
        try withOuterCgroup(limitMiB: 512) { outer in
            let sup = Process()
            sup.executableURL = URL(fileURLWithPath: "/bin/sh")
            sup.arguments = ["-c", "echo 0 > \(outer)/cgroup.procs && exec \"$0\" \"$@\"",
                             Harness.binary, "exec", "--policy", policy, "--", "sh", "-c", "touch up; sleep 30"]
            sup.currentDirectoryURL = URL(fileURLWithPath: dir)
            try sup.run()
            var waited = 0
            while !FileManager.default.fileExists(atPath: "\(dir)/up") && waited < 100 { usleep(50_000); waited += 1 }
            let nested = ((try? FileManager.default.contentsOfDirectory(atPath: outer)) ?? []).filter { $0.hasPrefix("sandbox-") }
            #expect(nested.count == 1, "the run's memory cgroup is not inside the invoker's: \(nested)")
            Harness.gcLock.lock()
            defer { Harness.gcLock.unlock() }
            kill(sup.processIdentifier, SIGKILL) // our own child (sh exec'd into sandbox)
            sup.waitUntilExit()
            usleep(500_000)
            #expect(try Harness.sandbox(["gc"]).status == 0)
            let left = ((try? FileManager.default.contentsOfDirectory(atPath: outer)) ?? []).filter { $0.hasPrefix("sandbox-") }
            #expect(left.isEmpty, "gc left the nested cgroup: \(left)")
        }
    }
}
