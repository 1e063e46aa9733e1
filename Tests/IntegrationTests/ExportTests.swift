import Foundation
import Testing

/// `sandbox export oci|k8s` (Docs/scale-out.md): an exported OCI bundle run by runc
/// denies what `sandbox exec` denies (each enforcement claim with a control: the same
/// bundle with that section taken out lets the act through); the Kubernetes objects
/// of every shipped policy validate against the Kubernetes schemas offline; `explain
/// --target` lists exactly what the exports' annotation says they cannot carry.
@Suite(.serialized) struct ExportTests {
    /// The probe both `sandbox exec` and the runc container run: one `name=value`
    /// line per act.
    static let probe = #"""
        try() { if "$@" 2>/dev/null; then echo ok; else echo denied; fi; }
        echo "ran=yes"
        echo "uid=$(id -u)"
        echo "write-usr=$(try sh -c 'echo x > /usr/.sbx-export-probe')"
        echo "write-workspace=$(try sh -c 'echo x > ./written')"
        echo "write-git=$(try sh -c 'echo x > ./.git/written')"
        echo "write-tmp=$(try sh -c 'echo x > /tmp/written')"
        echo "ptrace=$(/usr/bin/python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); print("ok" if l.ptrace(0, 0, None, None) == 0 else "denied")')"
        echo "kallsyms=$(head -c 64 /proc/kallsyms 2>/dev/null | wc -c)"
        echo "entrypoint-rules=$(try sh -c 'cat /.sandbox/landlock.json > /dev/null')"
        echo "capeff=$(grep '^CapEff' /proc/self/status | tr -d ' \t' | cut -d: -f2)"
        echo "chown=$(try sh -c 'touch /tmp/c && chown 1 /tmp/c')"
        """#

    static var runc: String? {
        ["/usr/sbin/runc", "/usr/bin/runc"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static var kubernetesValidate: String? {
        if let p = ProcessInfo.processInfo.environment["SANDBOX_KUBERNETES_VALIDATE"] { return p }
        let p = Harness.repoRoot + "/.build/k8s-validate/bin/kubernetes-validate"
        return FileManager.default.isExecutableFile(atPath: p) ? p : nil
    }

    static func lines(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { out[String(parts[0])] = String(parts[1]) }
        }
        return out
    }

    /// A workspace holding the probe and a `.git`, readable by the policy's user.
    static func workspace() -> String {
        let w = Harness.tempDir()
        try! FileManager.default.createDirectory(atPath: w + "/.git", withIntermediateDirectories: true)
        try! probe.write(toFile: w + "/probe.sh", atomically: true, encoding: .utf8)
        chmod(w + "/probe.sh", 0o644)
        chmod(w + "/.git", 0o755)
        return w
    }

    /// `runc run` of `bundle` under a state directory of the test's own; the
    /// container (by the id given) and that directory are removed afterwards.
    static func runcRun(_ runc: String, bundle: String) throws -> Harness.Output {
        let state = Harness.tempDir()
        let id = "sbx-export-\(UUID().uuidString.prefix(8).lowercased())"
        defer {
            _ = try? Harness.run(runc, ["--root", state, "delete", "--force", id])
            try? FileManager.default.removeItem(atPath: state)
        }
        return try Harness.run(runc, ["--root", state, "run", "--bundle", bundle, id], timeout: 120)
    }

    static func readJSON(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    @Test(arguments: ["agent", "strict"])
    func ociBundleUnderRuncDeniesWhatExecDenies(policy: String) throws {
        guard Harness.require(Harness.isRoot, "root (runc run)"),
              Harness.require(Self.runc != nil, "runc (Debian's runc package; .ci/run installs it)"),
              let runc = Self.runc else { return }
        let w = Self.workspace()
        let out = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: w); try? FileManager.default.removeItem(atPath: out) }
        let bundle = out + "/bundle"
        let export = try Harness.sandbox(["export", "oci", "--policy", policy, "--bundle", bundle, "--", "/bin/sh", "./probe.sh"], cwd: w)
        #expect(export.status == 0, "export oci: \(export.stderr)")
        let config = try Self.readJSON(bundle + "/config.json")
        let process = config["process"] as! [String: Any]
        let args = process["args"] as! [String]
        #expect(Array(args.prefix(5)) == ["/.sandbox/sandbox", "landlock-exec", "--rules", "/.sandbox/landlock.json", "--"])
        #expect(process["noNewPrivileges"] as? Bool == true)

        // Under `sandbox exec`, the reference.
        let exec = try Harness.exec(policy: policy, ["/bin/sh", "./probe.sh"], cwd: w)
        #expect(exec.status == 0, "exec: \(exec.stderr)")
        let reference = Self.lines(exec.stdout)
        #expect(reference["ran"] == "yes")

        let run = try Self.runcRun(runc, bundle: bundle)
        #expect(run.status == 0, "runc run: \(run.stderr)")
        let got = Self.lines(run.stdout)
        #expect(got == reference, "runc:\n\(run.stdout)\nexec:\n\(exec.stdout)")
        // What each claim is, spelled out (so equal-but-wrong cannot pass).
        #expect(got["ran"] == "yes")
        #expect(got["write-usr"] == "denied")
        #expect(got["write-workspace"] == (policy == "agent" ? "ok" : "denied"))
        #expect(got["write-git"] == "denied")
        #expect(got["write-tmp"] == "ok")
        #expect(got["ptrace"] == "denied")
        #expect(got["kallsyms"] == "0")
        #expect(got["entrypoint-rules"] == "denied")
        #expect(got["capeff"] == "0000000000000000")
        #expect(got["chown"] == "denied")

        // Control: the same bundle without seccomp, masked and read-only paths, the
        // Landlock entrypoint, and with CAP_CHOWN: each act goes through, so each
        // denial above is that section's.
        var open = config
        var linux = open["linux"] as! [String: Any]
        linux["seccomp"] = nil
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
        open["linux"] = linux
        var p = process
        p["args"] = Array(args.dropFirst(5))
        var caps = p["capabilities"] as! [String: Any]
        for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] { caps[set] = ["CAP_CHOWN"] }
        p["capabilities"] = caps
        open["process"] = p
        try JSONSerialization.data(withJSONObject: open).write(to: URL(fileURLWithPath: bundle + "/config.json"))
        let control = try Self.runcRun(runc, bundle: bundle)
        #expect(control.status == 0, "runc run (control): \(control.stderr)")
        let c = Self.lines(control.stdout)
        #expect(c["ran"] == "yes")
        // The bundle's second run: /tmp is still the plan's mode=1777 tmpfs.
        #expect(c["write-tmp"] == "ok")
        #expect(c["ptrace"] == "ok")
        #expect(c["kallsyms"] != "0")
        #expect(c["entrypoint-rules"] == "ok")
        #expect(c["capeff"] != "0000000000000000")
        #expect(c["chown"] == "ok", "control:\n\(control.stdout)")
        if policy == "agent" { #expect(c["write-git"] == "ok") }
    }

    static var shippedPolicies: [String] {
        let dir = Harness.repoRoot + "/Policies"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) }.sorted()
    }

    @Test func k8sObjectsOfEveryShippedPolicyValidate() throws {
        guard Harness.require(Self.kubernetesValidate != nil,
                              "kubernetes-validate (PyPI; .ci/run installs it into .build/k8s-validate)"),
              let validate = Self.kubernetesValidate else { return }
        let w = Self.workspace()
        let out = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: w); try? FileManager.default.removeItem(atPath: out) }
        #expect(Self.shippedPolicies.count >= 4)
        for policy in Self.shippedPolicies {
            let dir = out + "/" + policy
            let export = try Harness.sandbox(["export", "k8s", "--policy", policy, "--image", "registry.example/tools:1", "--dir", dir, "--", "/bin/true"], cwd: w)
            #expect(export.status == 0, "export k8s \(policy): \(export.stderr)")
            let check = try Harness.run(validate, ["--strict", "--no-warn", dir + "/pod.json", dir + "/network-policy.json"])
            #expect(check.status == 0, "\(policy): \(check.stdout)\(check.stderr)")
            let pod = try Self.readJSON(dir + "/pod.json")
            let spec = pod["spec"] as! [String: Any]
            let container = (spec["containers"] as! [[String: Any]])[0]
            let sc = container["securityContext"] as! [String: Any]
            #expect(sc["allowPrivilegeEscalation"] as? Bool == false)
            #expect(sc["readOnlyRootFilesystem"] as? Bool == true)
            #expect((sc["capabilities"] as? [String: Any])?["drop"] as? [String] == ["ALL"])
            let profile = sc["seccompProfile"] as! [String: Any]
            #expect(profile["type"] as? String == "Localhost")
            let name = profile["localhostProfile"] as! String
            #expect(FileManager.default.fileExists(atPath: dir + "/seccomp/" + name), "\(policy): the profile the Pod names")
            // The deadline is the plan's timeout, rounded up to seconds (none without one).
            let plan = try Harness.sandbox(["plan", "--policy", policy, "--", "/bin/true"], cwd: w)
            let planned = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as! [String: Any]
            let timeoutMs = (planned["process"] as! [String: Any])["timeoutMs"] as? Int
            #expect(spec["activeDeadlineSeconds"] as? Int == timeoutMs.map { ($0 + 999) / 1000 }, "\(policy): activeDeadlineSeconds")
            if policy == "agent" { #expect(spec["activeDeadlineSeconds"] as? Int == 600) }
        }
        // The validator is not a rubber stamp: a Pod with a mistyped field and one
        // the API does not have is refused.
        var bad = try Self.readJSON(out + "/agent/pod.json")
        var spec = bad["spec"] as! [String: Any]
        spec["activeDeadlineSeconds"] = "ten minutes"
        spec["landlock"] = true
        bad["spec"] = spec
        try JSONSerialization.data(withJSONObject: bad).write(to: URL(fileURLWithPath: out + "/bad.json"))
        let refused = try Harness.run(validate, ["--strict", "--no-warn", out + "/bad.json"])
        #expect(refused.status != 0, "a broken Pod validated: \(refused.stdout)")
    }

    /// Host rules become a CiliumNetworkPolicy with toFQDNs; Cilium's CRDs are not in
    /// the Kubernetes schemas, so it is checked against the schema shipped in
    /// Docs/schemas (with a broken object as the control).
    @Test func hostRulesBecomeACiliumPolicyThatValidates() throws {
        guard Harness.require(Self.kubernetesValidate != nil, "kubernetes-validate (PyPI)"),
              let validate = Self.kubernetesValidate else { return }
        let w = Self.workspace()
        let out = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: w); try? FileManager.default.removeItem(atPath: out) }
        let policy = Harness.policy("""
            name = "fqdn"
            extends = ["agent"]
            [network]
            mode = "egress"
            allow = [{ host = "pypi.org", ports = [443] }, { host = "*.example.test", ports = [443] },
                     { cidr = "192.0.2.0/24", ports = [8443] }]
            """, in: w)
        let export = try Harness.sandbox(["export", "k8s", "--policy", policy, "--image", "registry.example/tools:1", "--dir", out + "/k", "--", "/bin/true"], cwd: w)
        #expect(export.status == 0, "export k8s: \(export.stderr)")
        let check = try Harness.run(validate, ["--strict", "--no-warn", out + "/k/pod.json", out + "/k/network-policy.json"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let np = try Self.readJSON(out + "/k/network-policy.json")
        let egress = (np["spec"] as! [String: Any])["egress"] as! [[String: Any]]
        #expect(egress.contains { (($0["to"] as? [[String: Any]])?.first?["ipBlock"] as? [String: Any])?["cidr"] as? String == "192.0.2.0/24" })
        let cilium = try Self.readJSON(out + "/k/cilium-network-policy.json")
        let rules = (cilium["spec"] as! [String: Any])["egress"] as! [[String: Any]]
        let fqdns = rules.compactMap { $0["toFQDNs"] as? [[String: String]] }.flatMap { $0 }
        #expect(fqdns.contains(["matchName": "pypi.org"]))
        #expect(fqdns.contains(["matchPattern": "*.example.test"]))

        let schema = Harness.repoRoot + "/Docs/schemas/cilium-network-policy.schema.json"
        func schemaCheck(_ file: String) throws -> Harness.Output {
            try Harness.run("/usr/bin/env", ["python3", "-c", """
                import json, sys, jsonschema
                schema = json.load(open(sys.argv[1]))
                jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))
                """, schema, file])
        }
        let ok = try schemaCheck(out + "/k/cilium-network-policy.json")
        #expect(ok.status == 0, "\(ok.stderr)")
        var bad = cilium
        var spec = bad["spec"] as! [String: Any]
        spec["egress"] = [["toFQDNs": [["matchName": "pypi.org", "matchPattern": "*"]], "toPorts": [["ports": [["port": 443]]]]]]
        bad["spec"] = spec
        try JSONSerialization.data(withJSONObject: bad).write(to: URL(fileURLWithPath: out + "/bad.json"))
        let refused = try schemaCheck(out + "/bad.json")
        #expect(refused.status != 0, "a broken CiliumNetworkPolicy validated")
    }

    /// `explain --target` says exactly what the export's annotation says, for every
    /// shipped policy and both targets; and the list follows the plan.
    @Test func explainTargetListsExactlyTheAnnotation() throws {
        let w = Self.workspace()
        let out = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: w); try? FileManager.default.removeItem(atPath: out) }
        var k8sKeys: [String: [String]] = [:]
        for policy in Self.shippedPolicies {
            let export = try Harness.sandbox(["export", "k8s", "--policy", policy, "--image", "registry.example/tools:1", "--dir", out + "/" + policy, "--", "/bin/true"], cwd: w)
            #expect(export.status == 0, "\(export.stderr)")
            let explain = try Harness.sandbox(["explain", "--policy", policy, "--target", "k8s"], cwd: w)
            #expect(explain.status == 0, "\(explain.stderr)")
            let listed = explain.stdout.split(separator: "\n").map(String.init)
            for file in ["pod.json", "network-policy.json"] {
                let meta = try Self.readJSON(out + "/\(policy)/" + file)["metadata"] as! [String: Any]
                let annotation = (meta["annotations"] as! [String: String])["sandbox/not-carried"]!
                #expect(annotation.split(separator: "\n").map(String.init) == listed, "\(policy) \(file)")
            }
            k8sKeys[policy] = listed.map { String($0.prefix { $0 != ":" }) }
        }
        for policy in ["agent", "strict"] {
            let bundle = out + "/oci-" + policy
            let export = try Harness.sandbox(["export", "oci", "--policy", policy, "--bundle", bundle, "--", "/bin/true"], cwd: w)
            #expect(export.status == 0, "\(export.stderr)")
            let explain = try Harness.sandbox(["explain", "--policy", policy, "--target", "oci"], cwd: w)
            let annotations = try Self.readJSON(bundle + "/config.json")["annotations"] as! [String: String]
            #expect(annotations["sandbox/not-carried"]!.split(separator: "\n").map(String.init)
                    == explain.stdout.split(separator: "\n").map(String.init))
        }
        let agent = k8sKeys["agent"] ?? []
        for key in ["landlock", "filesystem.ro", "filesystem.rw", "filesystem.protect", "in-memory files", "process.rlimits",
                    "resources.pids", "network.mode = none", "result"] {
            #expect(agent.contains(key), "agent's k8s gaps lack \(key): \(agent)")
        }
        // strict writes nowhere on the host: no writable bind to lose.
        #expect(!(k8sKeys["strict"] ?? []).contains("filesystem.rw"))
        #expect((k8sKeys["strict"] ?? []).contains("resources.swap"))
    }
}
