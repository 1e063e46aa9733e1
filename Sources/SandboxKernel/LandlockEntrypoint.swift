#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import SandboxVocabulary

/// `sandbox landlock-exec`: the entrypoint of an exported OCI bundle
/// (Docs/scale-out.md). The runtime has built the container (mounts, namespaces,
/// capabilities, no_new_privs, seccomp); this adds the plan's Landlock ruleset,
/// which no runtime field carries, with the executor's own ``LandlockRuleset``, and
/// execs the command. Inside the container every rule's path is the path the plan
/// names (binds sit at their destinations), so each is opened there.
public enum LandlockEntrypoint {
    /// Restricts the calling process to `spec` (every rule by its path inside; a
    /// path that is absent — an optional bind the host lacked — grants nothing) and
    /// execs `argv` (found in `PATH` like execvp). Returns only by throwing.
    public static func exec(_ spec: LandlockSpec, argv: [String]) throws -> Never {
        guard let command = argv.first else {
            throw KernelError(operation: "landlock-exec", subject: "command", detail: "no command given")
        }
        var present = spec
        present.rules = spec.rules.compactMap { rule in
            var st = stat()
            guard lstat(rule.path, &st) == 0 else { return nil }
            return LandlockSpec.PathRule(path: rule.path, hostPath: rule.path, access: rule.access)
        }
        let ruleset = try LandlockRuleset(spec: present)
        guard sbx_fence_landlock_restrict_self(ruleset.fd) == 0 else {
            throw KernelError(operation: "landlock_restrict_self", subject: "ABI \(ruleset.abi)", errno: errno)
        }
        ruleset.close()
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        execvp(command, &cArgs)
        let err = errno
        throw KernelError(operation: "execvp", subject: command, errno: err)
    }
}
