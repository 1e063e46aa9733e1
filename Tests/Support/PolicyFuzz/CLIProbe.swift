import Foundation
import SandboxPolicy

/// Runs a case through the built `sandbox` binary, as a user would: `sandbox check
/// FILE` and `sandbox plan --policy FILE -- /bin/true`, each with a time bound. Each
/// must exit 0 or 125 — never die of a signal, never hang — and a 125 must name the
/// file; `check` must agree with the in-process loader.
public struct CLIProbe {
    public let sandbox: String
    public let data: DataDirectory
    /// Where the subprocesses' output files go.
    public let outputDir: String
    public var timeoutSeconds: Double = 20

    public init(sandbox: String, data: DataDirectory, outputDir: String) {
        self.sandbox = sandbox; self.data = data; self.outputDir = outputDir
    }

    public enum Verdict { case fine, crash(String), hang(String), unclear(String) }

    public func probe(_ c: FuzzCase, caseDir: String, inProcess: FuzzDriver.Outcome) -> [Verdict] {
        let root = caseDir + "/" + c.root
        let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
                   "SANDBOX_POLICY_PATH": caseDir, "SANDBOX_DATA_DIR": data.root]
        var verdicts: [Verdict] = []
        for args in [["check", root], ["plan", "--policy", root, "--", "/bin/true"]] {
            let what = "sandbox " + args.joined(separator: " ")
            let result: Subprocess.Result
            do {
                result = try Subprocess.run(sandbox, args, environment: env, outputDir: outputDir, timeoutSeconds: timeoutSeconds)
            } catch {
                verdicts.append(.unclear("\(what): \(error)"))
                continue
            }
            switch result.end {
            case .signalled(let sig):
                verdicts.append(.crash("\(what): killed by signal \(sig): \(result.stderr.suffix(2000))"))
            case .timedOut:
                verdicts.append(.hang("\(what): still running after \(timeoutSeconds) s"))
            case .exited(0):
                // `check` may not accept what the loader refused (the CLI's profile
                // search path lacks the case's profiles/ directory: skip those).
                if args[0] == "check", inProcess.result == .refused, !c.files.contains(where: { $0.path.hasPrefix("profiles/") }) {
                    verdicts.append(.unclear("\(what): exit 0, but the loader refused it: \(inProcess.detail.prefix(500))"))
                }
            case .exited(125):
                if result.stderr.isEmpty {
                    verdicts.append(.unclear("\(what): exit 125 with nothing on stderr"))
                } else if args[0] == "check" && !result.stderr.contains(caseDir) && !namesAReferencedFile(result.stderr, c) {
                    verdicts.append(.unclear("\(what): exit 125 without naming the file: \(result.stderr.prefix(500))"))
                } else if args[0] == "check", inProcess.result != .refused, !c.files.contains(where: { $0.path.hasPrefix("profiles/") }) {
                    verdicts.append(.unclear("\(what): exit 125, but the loader accepted it: \(result.stderr.prefix(500))"))
                }
                for problem in Invariants.unclear(result.stderr) { verdicts.append(.unclear("\(what): \(problem): \(result.stderr.prefix(500))")) }
            case .exited(let code):
                verdicts.append(.unclear("\(what): exit \(code) (expected 0 or 125): \(result.stderr.prefix(500))"))
            }
        }
        return verdicts.isEmpty ? [.fine] : verdicts
    }

    /// Whether the first diagnostic is about a file the case's policy names (an
    /// `extends` target or a seccomp profile outside the case, such as /etc/passwd):
    /// then it names that file, and the line in it.
    private func namesAReferencedFile(_ stderr: String, _ c: FuzzCase) -> Bool {
        guard let file = stderr.split(separator: ":").first, file.hasPrefix("/") else { return false }
        return c.files.contains { f in
            if case .bytes(let b) = f.content { return String(decoding: b, as: UTF8.self).contains(file) }
            return false
        }
    }
}
