import FoundationEssentials
import Glibc

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

    public static func locate() -> DataDirectory? { search().found }

    /// The search: the data directory found, and every place it looked at on the way,
    /// in order, the one found included (all of them when none is found). What later
    /// runs trust is each of those places, not only the one found: a `Policies` and
    /// `Profiles` made at any of them, where none was, is the data directory of every
    /// later run (red team, session 46: a run whose working directory was
    /// `<exe dir>/../share` made `sandbox/Policies/agent.toml` there, and the next
    /// `--policy agent` anywhere loaded it).
    static func search() -> (found: DataDirectory?, looked: [DataDirectory]) {
        search(environment: Environment.only("SANDBOX_DATA_DIR"), executablePath: executablePath())
    }

    /// Every place a search looks at, with `$SANDBOX_DATA_DIR` and without it: a run
    /// of a supervisor given the variable could otherwise make the data directory of
    /// every later run that is not (red team, session 46).
    public static func placesLaterRunsTrust() -> [DataDirectory] {
        let exe = executablePath()
        let environment = Environment.only("SANDBOX_DATA_DIR")
        var out = search(environment: environment, executablePath: exe).looked
        guard environment["SANDBOX_DATA_DIR"]?.isEmpty == false else { return out }   // that was the default search
        for d in search(environment: [:], executablePath: exe).looked where !out.contains(d) { out.append(d) }
        return out
    }

    /// ``locate()`` with its inputs made explicit, for tests.
    static func locate(environment: [String: String], executablePath: String?) -> DataDirectory? {
        search(environment: environment, executablePath: executablePath).found
    }

    static func search(environment: [String: String], executablePath: String?) -> (found: DataDirectory?, looked: [DataDirectory]) {
        if let dir = environment["SANDBOX_DATA_DIR"], !dir.isEmpty {
            let data = DataDirectory(root: Paths.absolute(dir))
            return (data, [data])
        }
        guard let exe = executablePath else { return (nil, []) }
        let exeDir = Paths.dirname(exe)
        var looked: [DataDirectory] = []
        var dir = exeDir
        while true {
            let candidate = DataDirectory(root: dir)
            looked.append(candidate)
            if Paths.isDirectory(candidate.policies) && Paths.isDirectory(candidate.profiles) {
                return (candidate, looked)
            }
            if dir == "/" { break }
            dir = Paths.dirname(dir)
        }
        let share = DataDirectory(root: Paths.join(exeDir, "../share/sandbox"))
        looked.append(share)
        return (Paths.isDirectory(share.root) ? share : nil, looked)
    }

    /// The running executable with symlinks resolved: `/proc/self/exe`, else argv[0].
    static func executablePath() -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0, buf[0] == CChar(UInt8(ascii: "/")) {
            return Paths.normalize(String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        guard let arg0 = CommandLine.arguments.first, !arg0.isEmpty else { return nil }
        var path = arg0
        if !path.contains("/") {
            // Found through PATH.
            let dirs = (Environment.only("PATH")["PATH"] ?? "").split(separator: ":")
            guard let dir = dirs.first(where: { Paths.isFile(String($0) + "/" + arg0) }) else { return nil }
            path = String(dir) + "/" + arg0
        }
        return Paths.identity(Paths.absolute(path))
    }
}

/// Single environment variables, read with getenv: building Foundation's whole
/// `ProcessInfo.environment` dictionary was a measurable part of every run's start-up.
enum Environment {
    /// `[name: value]` when `name` is set, else empty (the form the searches take).
    static func only(_ name: String) -> [String: String] {
        guard let v = getenv(name) else { return [:] }
        return [name: String(cString: v)]
    }
}
