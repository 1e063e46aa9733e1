import Foundation
import Testing

/// Issue 18, acceptance 1: the built binary copied alone to an empty directory on
/// PATH — no data directory, no repository around it, run from a directory outside
/// the repository — runs a shipped policy, lists the policies and says its version;
/// `plan` says where each policy file came from.
@Suite(.serialized) struct StandaloneBinaryTests {
    /// The names of the repository's `Policies/*.toml`, sorted: what the binary has built in.
    static let shippedNames: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: Harness.repoRoot + "/Policies")) ?? [])
        .filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) }.sorted()

    /// A copy of the binary in a fresh directory, and a fresh working directory.
    final class Copy {
        let bin = Harness.tempDir()
        let work = Harness.tempDir()
        init() throws {
            try Harness.copyExecutable(Harness.binary, to: bin + "/sandbox")
        }
        deinit {
            try? FileManager.default.removeItem(atPath: bin)
            try? FileManager.default.removeItem(atPath: work)
        }

        /// `sandbox ARGS` found through PATH, from the working directory, with no
        /// SANDBOX_DATA_DIR or SANDBOX_POLICY_PATH (empty counts as unset).
        func run(_ args: [String], env: [String: String] = [:]) throws -> Harness.Output {
            var environment = ["PATH": "\(bin):/usr/local/bin:/usr/bin:/bin", "SANDBOX_DATA_DIR": "", "SANDBOX_POLICY_PATH": ""]
            for (k, v) in env { environment[k] = v }
            // ETXTBSY: a process another test forked while the copy was open for
            // writing holds that descriptor until it execs (the kernel refuses to
            // exec a file open for writing); it is gone within moments. Only that
            // error is retried.
            for _ in 0..<100 {
                let out = try Harness.run("/usr/bin/env", ["sandbox"] + args, cwd: work, env: environment)
                guard out.status == 126, out.stderr.contains("Text file busy") else { return out }
                usleep(20_000)
            }
            return try Harness.run("/usr/bin/env", ["sandbox"] + args, cwd: work, env: environment)
        }
    }

    @Test func theCopiedBinaryRunsAShippedPolicy() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let c = try Copy()
        #expect(!FileManager.default.fileExists(atPath: c.bin + "/Policies"))
        let out = try c.run(["exec", "--policy", "agent", "--", "python3", "-c", "print(1)"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "1\n", "\(out.stdout)\(out.stderr)")
    }

    @Test func policiesListsTheBuiltInOnesAndWhatOverridesThem() throws {
        let c = try Copy()
        let out = try c.run(["policies"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(!Self.shippedNames.isEmpty)
        for name in Self.shippedNames {
            #expect(out.stdout.split(separator: "\n").contains { $0.hasPrefix(name + " ") && $0.contains("builtin:Policies/\(name).toml") },
                    "\(name) missing: \(out.stdout)")
        }
        // A directory in SANDBOX_POLICY_PATH adds a policy and overrides one.
        let dir = Harness.policyDir(for: c.work)
        _ = Harness.policy("# strict — my stricter strict\nextends = [\"builtin:Policies/strict.toml\"]\n", in: c.work, name: "strict.toml")
        _ = Harness.policy("# mine — a policy of my own\nextends = [\"agent\"]\n", in: c.work, name: "mine.toml")
        let over = try c.run(["policies"], env: ["SANDBOX_POLICY_PATH": dir])
        let lines = over.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("strict ") && $0.contains(dir + "/strict.toml") && $0.contains("my stricter strict") }, "\(over.stdout)")
        #expect(lines.contains { $0.contains("overrides builtin:Policies/strict.toml") }, "\(over.stdout)")
        #expect(lines.contains { $0.hasPrefix("mine ") && $0.contains("agent") }, "\(over.stdout)")
        // plan says where each file of the chain came from.
        let plan = try c.run(["plan", "--policy", "strict"], env: ["SANDBOX_POLICY_PATH": dir])
        #expect(plan.status == 0, "\(plan.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any]
        let sources = (json?["policy"] as? [String: Any])?["sources"] as? [String]
        #expect(sources == ["builtin:Policies/base.toml", "builtin:Policies/strict.toml", dir + "/strict.toml"], "\(plan.stdout)")
        let builtIn = try c.run(["plan", "--policy", "agent"])
        let agent = try JSONSerialization.jsonObject(with: Data(builtIn.stdout.utf8)) as? [String: Any]
        #expect((agent?["policy"] as? [String: Any])?["sources"] as? [String] == ["builtin:Policies/base.toml", "builtin:Policies/agent.toml"],
                "\(builtIn.stdout)")
    }

    @Test func versionNamesTheRevisionItWasBuiltFrom() throws {
        let c = try Copy()
        let out = try c.run(["--version"])
        #expect(out.status == 0, "\(out.stderr)")
        // A commit of the checkout the tests run in (the binary was built from it; HEAD
        // may have moved on since the build), or "unknown" when this is no git checkout.
        let line = out.stdout.trimmingCharacters(in: .newlines)
        let git = try Harness.run("/usr/bin/env", ["git", "-C", Harness.repoRoot, "rev-parse", "--verify", "-q", "HEAD"])
        guard git.status == 0 else {
            #expect(line == "sandbox 0.1.0 (git unknown)", "\(line)")
            return
        }
        let prefix = "sandbox 0.1.0 (git ", suffix = ")"
        #expect(line.hasPrefix(prefix) && line.hasSuffix(suffix), "\(line)")
        var rev = String(line.dropFirst(prefix.count).dropLast(suffix.count))
        if rev.hasSuffix("-dirty") { rev.removeLast("-dirty".count) }
        #expect(rev.count == 40 && rev.allSatisfy(\.isHexDigit), "\(line)")
        let commit = try Harness.run("/usr/bin/env", ["git", "-C", Harness.repoRoot, "cat-file", "-e", rev + "^{commit}"])
        #expect(commit.status == 0, "\(rev) is no commit of this repository: \(commit.stderr)")
    }

    @Test func completionsOfferSubcommandsFlagsAndPolicyNames() throws {
        let c = try Copy()
        for shell in ["bash", "zsh", "fish"] {
            let out = try c.run(["completions", shell])
            #expect(out.status == 0, "\(shell): \(out.stderr)")
            // Subcommands, and options (fish spells them 'policy=', the others --policy).
            for word in ["policies", "explain", "completions", "policy", "result-fd"] {
                #expect(out.stdout.contains(word), "\(shell) completion lacks \(word)")
            }
        }
        // What the scripts call for `--policy`: the names `sandbox policies` lists.
        let names = try c.run(["---completion", "exec", "--", "--policy", "3", "0", "sandbox", "exec", "--policy", ""])
        #expect(names.stdout.split(separator: "\n").map(String.init) == Self.shippedNames, "\(names.stdout)\(names.stderr)")
        #expect(try c.run(["completions", "tcsh"]).status == 125)
    }

    /// The man page covers every command and option the parser knows, and groff
    /// reads it without a warning.
    @Test func theManualPageCoversEveryCommandAndRendersCleanly() throws {
        let c = try Copy()
        let page = try c.run(["man"])
        #expect(page.status == 0, "\(page.stderr)")
        let dump = try c.run(["--experimental-dump-help"])
        let tool = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any]
        func walk(_ command: [String: Any], _ path: [String]) {
            let here = path + [command["commandName"] as? String ?? "?"]
            if here.count > 1 {
                #expect(page.stdout.contains(".SS " + here.joined(separator: " ").replacingOccurrences(of: "-", with: "\\-")),
                        "no section for \(here.joined(separator: " "))")
            }
            for a in command["arguments"] as? [[String: Any]] ?? [] where a["shouldDisplay"] as? Bool ?? true {
                for n in a["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" {
                    let flag = "\\-\\-" + (n["name"] as? String ?? "").replacingOccurrences(of: "-", with: "\\-")
                    #expect(page.stdout.contains(flag), "\(here.joined(separator: " ")): \(flag) missing")
                }
            }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] { walk(sub, here) }
        }
        walk(try #require(tool?["command"] as? [String: Any]), [])
        let file = c.work + "/sandbox.1"
        try page.stdout.write(toFile: file, atomically: true, encoding: .utf8)
        let groff = try Harness.run("/usr/bin/env", ["groff", "-man", "-Tutf8", "-ww", "-z", file])
        #expect(groff.status == 0 && groff.stderr.isEmpty, "groff: \(groff.stderr)")
    }
}
