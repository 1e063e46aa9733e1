import Foundation
import SandboxExecutor
import SandboxPlan
import Testing

/// Docs/schemas/run-result.schema.json and audit-record.schema.json against real
/// output: one result of each kind a caller meets (ok, 125 with an error object, a
/// seccomp violation listed and one that killed, a timeout, an egress run with
/// refused destinations, a `[binary]` refusal 126, a run with a cgroup, a refusal
/// made in-process) and an audit log, validated by Scripts/validate-schemas.py. Each
/// sample is first checked to BE what it stands for, so the set cannot shrink to
/// trivial results unnoticed; the validator's own controls (an unknown field, a
/// missing `runId`) show it is checking. Scripts/test.sh validates everything else
/// the suite produces the same way.
@Suite struct SchemaTests {
    @Test func representativeResultsAndAuditRecordsMatchTheSchemas() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let samples = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: samples) }
        var kept: [String] = []
        func keep(_ name: String, _ out: Harness.Output, _ check: ([String: Any]) -> Bool) throws {
            guard let result = out.result, let bytes = out.resultBytes else { Issue.record("\(name): no result: \(out.stderr)"); return }
            #expect(check(result), "\(name) is not the kind of result it stands for: \(result)")
            try bytes.write(to: URL(fileURLWithPath: "\(samples)/\(name).json"))
            kept.append(name)
        }
        let agent = "\(Harness.repoRoot)/Policies/agent.toml"

        // ok, with a cgroup (agent limits memory, pids, cpu) and a host uid of its own.
        let ok = try Harness.exec(policy: "agent", ["true"], cwd: dir)
        try keep("ok", ok) {
            $0["exitCode"] as? Int == 0 && $0["error"] == nil && $0["resources"] is [String: Any] && $0["hostUID"] != nil
        }

        // 125 with an error object carrying errno: a required bind source is missing.
        let missing = Harness.policy("""
            name = "schema-missing"
            extends = ["\(agent)"]
            [filesystem]
            ro = ["\(dir)/no-such-dir"]
            """, in: dir, name: "missing.toml")
        let setup = try Harness.exec(policy: missing, ["true"], cwd: dir)
        try keep("setup-error", setup) {
            let e = $0["error"] as? [String: Any]
            return $0["exitCode"] as? Int == 125 && e?["errnoName"] as? String == "ENOENT" && e?["subject"] != nil
        }

        // 125, the policy does not load.
        let invalid = try Harness.exec(policy: "\(dir)/absent.toml", ["true"], cwd: dir)
        try keep("policy-error", invalid) {
            ($0["error"] as? [String: Any])?["kind"] as? String == "policy" && $0["planDigest"] as? String == ""
        }

        // A violation recorded (notify) and one that killed the run.
        let ptrace = "import ctypes; ctypes.CDLL(None).syscall(101, 16, 1, 0, 0)"
        for (mode, check) in [("notify", { (r: [String: Any]) in
                                   (r["violations"] as? [[String: Any]])?.first?["syscall"] as? String == "ptrace" }),
                               ("kill", { (r: [String: Any]) in
                                   (r["error"] as? [String: Any])?["kind"] as? String == "violation" && r["signal"] as? Int == 31 })] {
            let policy = Harness.policy("""
                name = "schema-\(mode)"
                extends = ["\(agent)"]
                [seccomp]
                on_violation = "\(mode)"
                """, in: dir, name: "\(mode).toml")
            let out = try Harness.exec(policy: policy, ["python3", "-c", ptrace], cwd: dir)
            try keep("violation-\(mode)", out, check)
        }

        // A timeout.
        let slow = Harness.policy("""
            name = "schema-timeout"
            extends = ["\(agent)"]
            [process]
            timeout = "1s"
            grace = "1s"
            """, in: dir, name: "timeout.toml")
        let timeout = try Harness.exec(policy: slow, ["sleep", "30"], cwd: dir)
        try keep("timeout", timeout) { $0["timedOut"] as? Bool == true && $0["signal"] != nil }

        // [binary] refuses a wrong pin: 126, and the checked file is named.
        let pinned = Harness.policy("""
            name = "schema-pin"
            extends = ["\(agent)"]
            [binary]
            pin = { "/usr/bin/true" = "sha256:\(String(repeating: "0", count: 64))" }
            """, in: dir, name: "pin.toml")
        let refused = try Harness.exec(policy: pinned, ["/usr/bin/true"], cwd: dir)
        try keep("binary-refused", refused) {
            let binary = $0["binary"] as? [String: Any]
            return $0["exitCode"] as? Int == 126 && binary?["sha256"] != nil && binary?["fence"] != nil
        }

        // An egress run with refused destinations (a test host in its own namespace:
        // 8080 allowed, 8081 refused by the run's firewall).
        let host = try EgressTests.RemoteHost()
        defer { host.cleanUp() }
        try host.listen([8080])
        let probe = EgressTests.writeProbe(in: dir)
        let egress = EgressTests.egressPolicy(in: dir, allow: host.address, dns: host.address)
        let net = try Harness.exec(policy: egress, ["python3", probe, "tcp:\(host.address):8080", "tcp:\(host.address):8081"],
                                   cwd: dir, timeout: 90)
        try keep("egress", net) { !(($0["egressDenied"] as? [[String: Any]]) ?? []).isEmpty }

        // Made in-process, as a harness gets it: a refusal before anything ran.
        let inProcess = RunResult.refused(runId: "schematest", policy: "p", argv: ["x"],
                                          error: ExecError(kind: .plan, step: "compile", subject: "landlock.mode",
                                                           message: "policy p: landlock.mode: refused"))
        try Data(try CanonicalJSON.encode(inProcess)).write(to: URL(fileURLWithPath: "\(samples)/in-process.json"))
        kept.append("in-process")

        // An audit log with a start, a denial and an end.
        let logDir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: logDir) }
        let audited = Harness.policy("""
            name = "schema-audit"
            extends = ["\(agent)"]
            [seccomp]
            on_violation = "notify"
            [audit]
            path = "\(logDir)/audit.jsonl"
            """, in: dir, name: "audit.toml")
        _ = try Harness.exec(policy: audited, ["python3", "-c", ptrace], cwd: dir)
        let log = (try? String(contentsOfFile: "\(logDir)/audit.jsonl", encoding: .utf8)) ?? ""
        for type in ["genesis", "run_start", "denial", "run_end"] {
            #expect(log.contains("\"type\":\"\(type)\""), "the audit log has no \(type) record: \(log)")
        }
        try log.write(toFile: "\(samples)/audit.jsonl", atomically: true, encoding: .utf8)
        Harness.keepSample(Data(log.utf8), kind: .auditLog)

        #expect(kept.count == 9)
        let out = try Harness.validateSchemas(["--min-results", String(kept.count), "--min-audit", "1", samples])
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("\(kept.count) run results, 1 audit logs"), "\(out.stdout)")
    }

    /// The validator fails what the schema does not document, and an empty
    /// collection: a schema or collection that lost its teeth is caught.
    @Test func undocumentedFieldsAndEmptyCollectionsFail() throws {
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = RunResult.refused(runId: "schematest", policy: "p", argv: ["x"],
                                       error: ExecError(kind: .policy, step: "load", message: "no such policy"))
        let good = try CanonicalJSON.encode(result)
        try Data(good).write(to: URL(fileURLWithPath: "\(dir)/good.json"))
        #expect(try Harness.validateSchemas(["--min-results", "1", "\(dir)/good.json"]).status == 0)

        var object = try JSONSerialization.jsonObject(with: Data(good)) as! [String: Any]
        object["undocumented"] = true
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: "\(dir)/extra.json"))
        let extra = try Harness.validateSchemas(["\(dir)/extra.json"])
        #expect(extra.status == 1 && extra.stdout.contains("undocumented"), "\(extra.stdout)\(extra.stderr)")

        var nested = try JSONSerialization.jsonObject(with: Data(good)) as! [String: Any]
        var error = nested["error"] as! [String: Any]
        error["hint"] = "x"
        nested["error"] = error
        try JSONSerialization.data(withJSONObject: nested).write(to: URL(fileURLWithPath: "\(dir)/nested.json"))
        #expect(try Harness.validateSchemas(["\(dir)/nested.json"]).status == 1)

        let empty = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let none = try Harness.validateSchemas(["--min-results", "1", empty])
        #expect(none.status == 1 && none.stdout.contains("expected at least 1 run results, found 0"), "\(none.stdout)")
    }
}
