import Foundation
import Glibc
import Testing

/// What the sandbox's reaper (the nested subreaper, the namespaced PID 1) keeps for
/// itself and what it hands to the command (red team 5 of nested isolation):
/// - the policy's rlimits are the payload's, never the nested reaper's (A: a command
///   that kept the reaper busy made `rlimits.cpu` SIGKILL it, and its daemons
///   outlived the run);
/// - the command's processes are the OOM killer's first choice (oom_score_adj 1000),
///   the supervisor and the nested reaper are not (B: a command of small processes made
///   the OOM killer take the supervisor, then the reaper, before it swept);
/// - a reaper killed from outside before it reported the command's status is the
///   sandbox's failure (125, error step "reaper"), not the command's `signal 9`.
///
/// The red team's attacks themselves need thousands of processes or a memory cgroup
/// under pressure for tens of seconds (their reproductions are in its report); these
/// tests read the kernel's own view of each process (`/proc/PID/limits`,
/// `oom_score_adj`) of a live run, and kill its reaper for real.
@Suite(.serialized) struct ReaperTests {
    /// Runs `sandbox exec` in the background under `isolation` with `rlimits.cpu = 97`
    /// and a `sleep`, reads the supervisor's, the reaper's and the payload's limits and
    /// OOM scores, then SIGKILLs the reaper (our own process, by pid, while it lives)
    /// and waits. Returns the `key=value` lines and the result.
    static func probeAndKillReaper(isolation: String, launcher: String = "") throws -> (facts: [String: String], result: [String: Any]?, status: Int32) {
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "reaper-\(isolation)"
            extends = ["\(Harness.repoRoot)/Policies/base.toml"]
            [process]
            isolation = "\(isolation)"
            [filesystem]
            rw = ["{cwd}"]
            [resources]
            rlimits = { cpu = 97 }
            """, in: dir)
        let results = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: results) }
        let resultFile = results + "/result.json"
        let script = """
            cpu() { awk '/^Max cpu time/ {print $4}' /proc/$1/limits; }
            kids() { cat /proc/$1/task/*/children 2>/dev/null | tr ' ' '\\n' | grep . | head -1; }
            \(launcher) '\(Harness.binary)' exec --policy '\(policy)' --result '\(resultFile)' -- sleep 30 & sup=$!
            reaper=; payload=
            for i in $(seq 400); do
              reaper=$(kids $sup); [ -n "$reaper" ] && payload=$(kids $reaper)
              [ -n "$payload" ] && [ "$(cat /proc/$payload/comm 2>/dev/null)" = sleep ] && break
              sleep 0.025
            done
            echo "reaper_comm=$(cat /proc/$reaper/comm)"
            echo "reaper_cpu=$(cpu $reaper)"
            echo "reaper_sigign=$(awk '/^SigIgn/ {print $2}' /proc/$reaper/status)"
            echo "payload_cpu=$(cpu $payload)"
            echo "supervisor_oom=$(cat /proc/$sup/oom_score_adj)"
            echo "reaper_oom=$(cat /proc/$reaper/oom_score_adj)"
            echo "payload_oom=$(cat /proc/$payload/oom_score_adj)"
            kill -9 "$reaper"
            wait $sup; echo "status=$?"
            sleep 0.2
            # Dead or a zombie (reparented to the host's init, which reaps it in its time).
            state=$(sed 's/.*) //' /proc/$payload/stat 2>/dev/null | cut -c1)
            if [ -n "$state" ] && [ "$state" != Z ]; then echo payload=alive; kill -9 $payload; else echo payload=gone; fi
            """
        let out = try Harness.run("/bin/sh", ["-c", script], cwd: dir, timeout: 60)
        var facts: [String: String] = [:]
        for line in out.stdout.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1).map(String.init)
            if kv.count == 2 { facts[kv[0]] = kv[1] }
        }
        let result = FileManager.default.contents(atPath: resultFile).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        if let data = FileManager.default.contents(atPath: resultFile) { Harness.keepSample(data, kind: .runResult) }
        return (facts, result, out.status)
    }

    /// A served result comes before the sandbox init's own exit (the reaper writes
    /// the command's status once it has killed and reaped the rest of the run), so
    /// nothing of the run may be alive when it comes: a daemon the command left, which
    /// ignores SIGTERM and keeps appending to a file, has stopped for good by the time
    /// the client has its result. Control (`SANDBOX_TEST_STATUS_BEFORE_SWEEP`): a
    /// reaper that writes the status first and leaves the daemon to its own exit 0.5 s
    /// later lets the daemon write after the result. With limits (a cgroup) and
    /// without: the reaper's report carries the run's CPU time, so a run without a
    /// cgroup is answered from it too.
    @Test(arguments: ["agent", "no limits"])
    func aServedResultComesOnlyOnceEveryProcessOfTheRunIsGone(_ which: String) throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let policyDir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: policyDir) }
        // agent's directory and session, without its [resources]: no run cgroup.
        let policy = which == "agent" ? "agent" : Harness.policy("""
            name = "no-limits"
            extends = ["base"]
            [process]
            workdir = "{cwd}"
            new_session = true
            [filesystem]
            rw = ["{cwd}"]
            """, in: policyDir, name: "no-limits.toml")
        func grewAfterTheResult(control: Bool) throws -> Bool {
            let served = try ServeTests.Served(builtAhead: 0,
                                               environment: control ? ["SANDBOX_TEST_STATUS_BEFORE_SWEEP": "1"] : [:])
            defer { served.stop() }
            try #require(served.ready, "sandbox serve did not start")
            let ws = Harness.tempDir()
            defer { try? FileManager.default.removeItem(atPath: ws) }
            // Its stdio away from the client's pipes, which the client reads to EOF.
            let daemon = "(trap '' TERM HUP INT; while :; do echo x >> tick; done) </dev/null >/dev/null 2>&1 & sleep 0.2"
            func size() -> Int { ((try? FileManager.default.attributesOfItem(atPath: ws + "/tick"))?[.size] as? Int) ?? -1 }
            // The reply is the moment: the client's pipes reach EOF only once the
            // server lets its copies go, after the teardown.
            let client = try ServeTests.Client(served.socket)
            defer { client.close() }
            let stdio = ServeTests.Stdio(stdin: nil)
            client.send(ServeTests.request(id: "one", policy: policy, argv: ["sh", "-c", daemon], cwd: ws), fds: stdio.fds)
            stdio.closeSent()
            let reply = client.reply()
            let atResult = size()
            usleep(300_000)
            let later = size()
            _ = stdio.output()
            #expect(reply?["exitCode"] as? Int == 0, "\(reply ?? [:])")
            #expect(reply?["cpuSource"] as? String == (which == "agent" ? "cgroup" : "rusage"), "\(reply ?? [:])")
            #expect(atResult > 0, "the daemon never wrote")
            return later != atResult
        }
        #expect(try grewAfterTheResult(control: true), "control: the daemon did not outlive the result")
        #expect(try grewAfterTheResult(control: false) == false, "a process of the run wrote after its result")
    }

    @Test func theNestedReaperKeepsNeitherTheLimitsNorTheOOMPreferenceOfTheCommand() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        // Started under an inherited CPU limit (an invoker's `prlimit --cpu=200:300`):
        // the reaper lifts its soft limit to the hard one and ignores SIGXCPU (red
        // team 6, G4); only the invoker's hard limit bounds it. The command keeps the
        // policy's.
        let (facts, result, _) = try Self.probeAndKillReaper(isolation: "nested", launcher: "prlimit --cpu=200:300")
        #expect(facts["reaper_comm"] == "sandbox-init", "\(facts)")
        #expect(facts["reaper_cpu"] == "300", "the reaper kept its soft CPU limit: \(facts)")
        let ignored = UInt64(facts["reaper_sigign"] ?? "", radix: 16) ?? 0
        #expect(ignored & (1 << (UInt64(SIGXCPU) - 1)) != 0, "the reaper does not ignore SIGXCPU: \(facts)")
        // The control: the command has the policy's limit and the OOM preference.
        #expect(facts["payload_cpu"] == "97", "the payload lacks rlimits.cpu: \(facts)")
        #expect(facts["payload_oom"] == "1000", "\(facts)")
        // The fence: the reaper has neither.
        #expect(facts["reaper_cpu"] != "97", "the nested reaper has the command's rlimits.cpu: \(facts)")
        #expect(facts["reaper_oom"] == facts["supervisor_oom"] && facts["reaper_oom"] != "1000", "\(facts)")

        // Killed from outside, the reaper's end is the sandbox's failure, and the
        // payload dies with it (its PDEATHSIG).
        #expect(facts["status"] == "125", "\(facts)")
        #expect(facts["payload"] == "gone", "\(facts)")
        let error = result?["error"] as? [String: Any]
        #expect(error?["step"] as? String == "reaper", "\(result ?? [:])")
        #expect((error?["message"] as? String ?? "").contains("killed by signal 9"), "\(error ?? [:])")
    }

    /// Namespaced: the init keeps the limits (its death ends the PID namespace, and the
    /// run with it) and shares the command's OOM preference; killed from outside, the
    /// result says so instead of reporting the command's signal 9.
    @Test func aKilledSandboxInitIsTheSandboxsFailureNotTheCommandsSignal() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let (facts, result, _) = try Self.probeAndKillReaper(isolation: "namespaces")
        #expect(facts["payload_cpu"] == "97", "\(facts)")
        #expect(facts["payload_oom"] == "1000" && facts["reaper_oom"] == "1000", "\(facts)")
        #expect(facts["supervisor_oom"] != "1000", "\(facts)")
        #expect(facts["status"] == "125", "\(facts)")
        #expect(facts["payload"] == "gone", "\(facts)")
        let error = result?["error"] as? [String: Any]
        #expect(error?["step"] as? String == "reaper", "\(result ?? [:])")
        #expect((error?["message"] as? String ?? "").contains("PID namespace ended every process"), "\(error ?? [:])")
    }
}
