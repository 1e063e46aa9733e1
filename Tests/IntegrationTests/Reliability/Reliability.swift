import Foundation

/// What the reliability suites (LoadTests, FaultTests, ChurnTests) share: their size
/// and their runs. The normal test run uses the short form; `Scripts/reliability.sh`
/// sets SANDBOX_RELIABILITY=full for the figures of Docs/reliability.md (issue 14
/// acceptance). Each number can also be set on its own.
enum Reliability {
    static let environment = ProcessInfo.processInfo.environment
    static let full = environment["SANDBOX_RELIABILITY"] == "full"

    static func setting(_ name: String, short: Int, full long: Int) -> Int {
        environment[name].flatMap(Int.init) ?? (full ? long : short)
    }

    /// Load: runs, and how many at once.
    static let loadRuns = setting("SANDBOX_LOAD_RUNS", short: 64, full: 2000)
    // Short: fewer at once, so the timing tests running beside it keep their CPU.
    static let loadParallel = setting("SANDBOX_LOAD_PARALLEL", short: 4, full: 16)
    /// Faults: supervisors killed, and how many of them within 10 ms of set-up.
    static let faultKills = setting("SANDBOX_FAULT_KILLS", short: 40, full: 300)
    /// Churn: the long run's length, and the short runs that come and go meanwhile.
    static let churnSeconds = setting("SANDBOX_CHURN_SECONDS", short: 8, full: 30)
    static let churnRuns = setting("SANDBOX_CHURN_RUNS", short: 16, full: 60)

    /// A token for the argv of every run a suite starts: it finds the suite's run
    /// directories (state.json), supervisors and command processes.
    static func newToken(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.lowercased().prefix(8))"
    }

    /// What each suite starts from: the gc lock held (gc is host-wide: no other suite
    /// leaves a stale run while the census runs), a workspace, and a test host of
    /// its own listening on 8080. `close()` undoes it in reverse order.
    final class Stage {
        let ws: String
        let host: EgressTests.RemoteHost

        init() throws {
            Harness.gcLock.lock()
            let ws = Harness.tempDir()
            do {
                let host = try EgressTests.RemoteHost()
                do { try host.listen([8080], lifetime: 3600) } catch { host.cleanUp(); throw error }
                self.ws = ws; self.host = host
            } catch {
                try? FileManager.default.removeItem(atPath: ws)
                Harness.gcLock.unlock()
                throw error
            }
        }

        func close() {
            host.cleanUp()
            try? FileManager.default.removeItem(atPath: ws)
            Harness.gcLock.unlock()
        }
    }

    /// An agent run (a cgroup: the agent policy limits memory, pids and cpu) with an
    /// egress network that may reach `host`:8080 only.
    static func egressPolicy(in ws: String, host: EgressTests.RemoteHost, name: String) -> String {
        Harness.policy("""
            name = "\(name)"
            extends = ["agent"]
            [process]
            env.set = { PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" }
            [network]
            mode = "egress"
            dns = ["\(host.address)"]
            allow = [{ cidr = "\(host.address)/32", ports = [8080], proto = "tcp" }]
            """, in: ws, name: "\(name).toml")
    }

    /// `sandbox exec` started (not waited for) in `cwd`, writing its result to
    /// `resultFile`; output goes to /dev/null unless `capture`.
    static func start(policy: String, _ argv: [String], cwd: String, resultFile: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.binary)
        p.arguments = ["exec", "--policy", policy, "--result", resultFile, "--"] + argv
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Ends processes of the command tree that outlived their run — found by the
    /// token only this suite put in their argv, so they are this test's own — and
    /// returns them as the report names them.
    static func endSurvivors(_ census: Census, token: String) -> [String] {
        census.survivors(token: token).map { pid in
            let what = "pid \(pid): \(census.processes[pid]?.argv.prefix(120) ?? "")"
            kill(pid, SIGKILL)
            return what
        }
    }
}
