/// The shipped policies (`Policies/*.toml`) and seccomp profiles
/// (`Profiles/seccomp/*.json`), compiled into the binary (`ShippedFiles`, generated
/// from the repository's files at build time by the EmbedShippedFiles plugin).
///
/// A built-in file has a path of its own spelling, `builtin:Policies/agent.toml`:
/// never a host path (it does not start with `/`), so the loader, the plan's
/// `policy.sources` and the seccomp profile's `source` say which file came from the
/// binary and which from a directory. They are the last entries of the search paths
/// (`PolicyLoader.defaultSearchPath`): a data directory or `SANDBOX_POLICY_PATH`
/// adds policies and overrides these by name, and `extends = ["builtin:Policies/agent.toml"]`
/// names the built-in one past any override. Nothing on the host is read for them:
/// `PolicyFile` answers these paths from memory.
public enum BuiltIn {
    /// How every built-in path begins.
    public static let scheme = "builtin:"
    /// The directory of the built-in policies, an entry of the policy search path.
    public static let policies = scheme + "Policies"
    /// The directory of the built-in seccomp profiles, an entry of the profile search path.
    public static let seccompProfiles = scheme + "Profiles/seccomp"

    public static func isBuiltIn(_ path: String) -> Bool { path.hasPrefix(scheme) }

    /// The exact bytes of the built-in file at `path`, or nil when there is none.
    public static func contents(of path: String) -> [UInt8]? {
        guard isBuiltIn(path) else { return nil }
        return ShippedFiles.files[String(path.dropFirst(scheme.count))].map { Array($0.utf8) }
    }

    /// The built-in files directly in `directory` (`BuiltIn.policies`), as paths, sorted.
    public static func files(in directory: String) -> [String] {
        guard isBuiltIn(directory) else { return [] }
        let prefix = String(directory.dropFirst(scheme.count)) + "/"
        return ShippedFiles.files.keys
            .filter { $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains("/") }
            .sorted().map { scheme + $0 }
    }

    /// Whether `path` is a built-in directory holding at least one file.
    static func isDirectory(_ path: String) -> Bool { !files(in: path).isEmpty }

    /// `path` joined to the built-in directory `dir`; it stays a built-in path even
    /// when `..` climbs above the files (then it names nothing), so a relative name
    /// in a built-in policy never reaches the host's working directory.
    static func join(_ dir: String, _ path: String) -> String {
        let base = String(dir.dropFirst(scheme.count))
        return scheme + Paths.normalize(base.isEmpty ? path : base + "/" + path)
    }
}
