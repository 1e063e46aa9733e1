import Foundation
import Testing

/// Issue 14, acceptance 1: many `sandbox exec` runs at once, of mixed kinds — `true`,
/// exit codes, python3, a timeout, an OOM kill under a memory limit, egress to a
/// test host this test makes in a network namespace of its own — each checked by
/// its exit status and result JSON; then the census: nothing of any run is left.
///
/// Short form in the normal test run; `Scripts/reliability.sh` runs 2 000 runs, 16
/// at a time. Needs root; fails unless SANDBOX_TESTS_ALLOW_SKIP=1 otherwise.
@Suite(.serialized) struct LoadTests {
    enum Job: CustomStringConvertible {
        case succeed
        case exit(Int32)
        case python(Int32)
        case timeout
        case oom
        case egress

        var description: String {
            switch self {
            case .succeed: return "true"
            case .exit(let c): return "exit \(c)"
            case .python(let c): return "python3 exit \(c)"
            case .timeout: return "timeout"
            case .oom: return "oom"
            case .egress: return "egress"
            }
        }

        /// Run `i`'s job: every kind in every stretch of 40 runs.
        static func of(_ i: Int) -> Job {
            let code = Int32(1 + i % 120)
            if i % 40 == 7 { return .timeout }
            if i % 20 == 3 { return .oom }
            if i % 8 == 1 { return .egress }
            switch i % 4 {
            case 0: return .python(code)
            case 2: return .exit(code)
            default: return .succeed
            }
        }
    }

    /// The policies of the mix, written outside the runs' working directory.
    struct Policies {
        var agent: String, timeout: String, oom: String, egress: String

        init(ws: String, host: EgressTests.RemoteHost) {
            agent = "agent"
            timeout = Harness.policy("""
                name = "load-timeout"
                extends = ["agent"]
                [process]
                timeout = "1s"
                grace = "1s"
                """, in: ws, name: "load-timeout.toml")
            oom = Harness.policy("""
                name = "load-oom"
                extends = ["agent"]
                [resources]
                memory = "48MiB"
                """, in: ws, name: "load-oom.toml")
            egress = Reliability.egressPolicy(in: ws, host: host, name: "load-egress")
        }
    }

    /// One TCP connect to the test host: prints its answer, exit 0 when it is the
    /// expected one.
    static let connect = """
        import socket, sys
        s = socket.create_connection((sys.argv[1], 8080), timeout=5)
        answer = s.recv(64).decode().strip()
        print(answer)
        sys.exit(0 if answer == "hello-8080" else 3)
        """

    static func command(_ job: Job, policies: Policies, host: EgressTests.RemoteHost, token: String) -> (String, [String]) {
        switch job {
        case .succeed: return (policies.agent, ["true", token])
        case .exit(let c): return (policies.agent, ["sh", "-c", "exit \(c)", token])
        case .python(let c): return (policies.agent, ["python3", "-c", "import sys; print(sum(range(1000))); sys.exit(\(c))", token])
        // python, not `sleep`: the token stays in the argv of what runs.
        case .timeout: return (policies.timeout, ["python3", "-c", "import time; time.sleep(30)", token])
        case .oom: return (policies.oom, ["python3", "-c", "b = b'x' * (256 << 20); print(len(b))", token])
        case .egress: return (policies.egress, ["python3", "-c", connect, host.address, token])
        }
    }

    /// What is wrong with a run's outcome (empty: right).
    static func check(_ job: Job, _ out: Harness.Output) -> [String] {
        var wrong: [String] = []
        guard let r = out.result else { return ["no result (status \(out.status)): \(out.stderr.prefix(300))"] }
        let exitCode = r["exitCode"] as? Int ?? -1
        let timedOut = r["timedOut"] as? Bool ?? false
        if let e = r["error"] as? [String: Any] { wrong.append("error: \(e["message"] as? String ?? "\(e)")") }
        if (r["runId"] as? String ?? "").isEmpty { wrong.append("no runId") }
        if Int(out.status) != exitCode { wrong.append("status \(out.status) but result exitCode \(exitCode)") }
        let expected: Int
        switch job {
        case .succeed: expected = 0
        case .exit(let c): expected = Int(c)
        case .python(let c):
            expected = Int(c)
            if out.stdout != "499500\n" { wrong.append("stdout \(out.stdout.debugDescription)") }
        case .timeout:
            // 143: SIGTERM at the timeout; 137 only if SIGKILL came after the grace.
            expected = exitCode == 137 ? 137 : 143
            if !timedOut { wrong.append("not timedOut") }
        case .oom:
            expected = 137
            let resources = r["resources"] as? [String: Any]
            if resources?["oomKilled"] as? Bool != true { wrong.append("oomKilled \(String(describing: resources?["oomKilled"]))") }
        case .egress:
            expected = 0
            if out.stdout != "hello-8080\n" { wrong.append("stdout \(out.stdout.debugDescription) stderr \(out.stderr.prefix(200))") }
        }
        if exitCode != expected { wrong.append("exit \(exitCode), expected \(expected)") }
        if case .timeout = job {} else if timedOut { wrong.append("timedOut") }
        return wrong
    }

    /// Descriptors of each live supervisor of this suite, sampled while the load
    /// runs: the largest count seen (a supervisor holds a fixed set per run).
    final class FDSampler: @unchecked Sendable { // `max` guarded by lock
        let lock = NSLock()
        var max = 0
        var samples = 0
        var stop = false

        func run(token: String) {
            while true {
                lock.lock(); let done = stop; lock.unlock()
                if done { return }
                for (pid, p) in Census.processTable() where p.argv.contains(token) && p.argv.contains(" exec --policy ") {
                    let n = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
                    lock.lock(); max = Swift.max(max, n); samples += 1; lock.unlock()
                }
                usleep(200_000)
            }
        }
    }

    @Test func mixedRunsInParallelAreRightAndLeaveNothing() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let stage = try Reliability.Stage()
        defer { stage.close() }
        let ws = stage.ws, host = stage.host
        let policies = Policies(ws: ws, host: host)
        let token = Reliability.newToken("load")
        let before = Census.take()

        let total = Reliability.loadRuns, parallel = Reliability.loadParallel
        final class Results: @unchecked Sendable { // guarded by lock
            let lock = NSLock()
            var next = 0
            var wrong: [String] = []
            var kinds: [String: Int] = [:]
            var ids: Set<String> = []
        }
        let results = Results()
        let sampler = FDSampler()
        Thread { sampler.run(token: token) }.start()
        let started = Date()
        let group = DispatchGroup()
        for _ in 0..<parallel {
            group.enter()
            Thread {
                defer { group.leave() }
                while true {
                    results.lock.lock()
                    let i = results.next
                    results.next += 1
                    results.lock.unlock()
                    guard i < total else { return }
                    let job = Job.of(i)
                    let (policy, argv) = Self.command(job, policies: policies, host: host, token: token)
                    let wrong: [String]
                    var runId: String?
                    do {
                        let out = try Harness.exec(policy: policy, argv, cwd: ws, timeout: 60)
                        runId = out.result?["runId"] as? String
                        wrong = Self.check(job, out)
                    } catch {
                        wrong = ["\(error)"]
                    }
                    results.lock.lock()
                    if let runId { results.ids.insert(runId) }
                    results.kinds["\(job)".split(separator: " ").first.map(String.init) ?? "", default: 0] += 1
                    if !wrong.isEmpty { results.wrong.append("#\(i) \(job): " + wrong.joined(separator: "; ")) }
                    results.lock.unlock()
                }
            }.start()
        }
        let ended = group.wait(timeout: .now() + .seconds(max(300, total / 2))) == .success
        let seconds = Date().timeIntervalSince(started)
        sampler.lock.lock(); sampler.stop = true; sampler.lock.unlock()
        #expect(ended, "runs still going after the deadline")

        host.cleanUp()
        results.lock.lock(); let ours = results.ids; results.lock.unlock()
        let (after, leaks) = Census.settle(since: before, token: token, ours: ours, ownHosts: [host.netns])
        let survivors = Reliability.endSurvivors(after, token: token)
        results.lock.lock()
        let wrong = results.wrong
        let kinds = results.kinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        results.lock.unlock()
        print("LoadTests: \(total) runs, \(parallel) at a time, in \(String(format: "%.1f", seconds)) s (\(kinds)); "
              + "\(wrong.count) wrong, \(leaks.count) leaked, \(survivors.count) survivors; "
              + "supervisor descriptors at most \(sampler.max) (\(sampler.samples) samples); census after: \(after.summary)")
        #expect(wrong.isEmpty, "\(wrong.count) of \(total) runs wrong:\n\(wrong.prefix(30).joined(separator: "\n"))")
        #expect(leaks.isEmpty, "left behind:\n\(leaks.prefix(40).map(\.description).joined(separator: "\n"))")
        #expect(survivors.isEmpty, "command processes outlived their runs: \(survivors)")
        // A supervisor's descriptors are a fixed set per run (pipes, pidfd, signalfd,
        // lock, cgroup, netns…), far below this; a per-event leak would pass it.
        #expect(sampler.samples > 0 && sampler.max <= 64, "supervisor descriptors: at most \(sampler.max) in \(sampler.samples) samples")
    }
}
