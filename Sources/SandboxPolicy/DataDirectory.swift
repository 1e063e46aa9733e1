import Foundation

/// Where the shipped `Policies/` and `Profiles/` live.
///
/// Found, in order: `$SANDBOX_DATA_DIR`; the nearest ancestor of the running
/// executable's real path that holds both `Policies` and `Profiles` (so
/// `.build/debug/sandbox` inside a checkout finds the checkout); `<exe dir>/../share/sandbox`
/// (an installed layout such as `/usr/local/bin` + `/usr/local/share/sandbox`).
public struct DataDirectory: Sendable, Equatable {
    public let root: String

    public init(root: String) { self.root = root }

    public var policies: String { root == "/" ? "/Policies" : root + "/Policies" }
    public var profiles: String { root == "/" ? "/Profiles" : root + "/Profiles" }
    /// `<profiles>/seccomp`: where `seccomp.profile = "NAME"` looks for `NAME.json`.
    public var seccompProfiles: String { profiles + "/seccomp" }

    public static func locate() -> DataDirectory? {
        locate(environment: ProcessInfo.processInfo.environment, executablePath: executablePath())
    }

    /// The search with its inputs made explicit, for tests.
    static func locate(environment: [String: String], executablePath: String?) -> DataDirectory? {
        if let dir = environment["SANDBOX_DATA_DIR"], !dir.isEmpty {
            return DataDirectory(root: Paths.absolute(dir))
        }
        guard let exe = executablePath else { return nil }
        let exeDir = Paths.dirname(exe)
        var dir = exeDir
        while true {
            let candidate = DataDirectory(root: dir)
            if Paths.isDirectory(candidate.policies) && Paths.isDirectory(candidate.profiles) {
                return candidate
            }
            if dir == "/" { break }
            dir = Paths.dirname(dir)
        }
        let share = Paths.join(exeDir, "../share/sandbox")
        if Paths.isDirectory(share) { return DataDirectory(root: share) }
        return nil
    }

    /// The running executable with symlinks resolved: `/proc/self/exe`, else argv[0].
    static func executablePath() -> String? {
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
           target.hasPrefix("/") {
            return Paths.normalize(target)
        }
        guard let arg0 = CommandLine.arguments.first, !arg0.isEmpty else { return nil }
        var path = arg0
        if !path.contains("/") {
            // Found through PATH.
            let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            guard let dir = dirs.first(where: { Paths.isFile(String($0) + "/" + arg0) }) else { return nil }
            path = String(dir) + "/" + arg0
        }
        return Paths.identity(Paths.absolute(path))
    }
}
