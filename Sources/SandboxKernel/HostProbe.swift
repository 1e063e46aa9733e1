import CSandbox
import Glibc

/// What the running kernel and the invoker look like; the CLI turns this into the
/// planner's `HostFacts`.
public struct HostProbe: Sendable {
    public var arch: String
    public var kernelRelease: String
    public var landlockABI: Int
    public var uid: UInt32
    public var gid: UInt32
    public var cwd: String
    public var home: String
    public var environment: [String: String]

    public static func probe() -> HostProbe {
        var u = utsname()
        uname(&u)
        func field<T>(_ v: T) -> String {
            withUnsafePointer(to: v) { $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) } }
        }
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let cwd = getcwd(&buf, buf.count) != nil ? String(cString: buf) : "/"
        var home = env["HOME"] ?? "/"
        if home.isEmpty || !home.hasPrefix("/") { home = "/" }
        return HostProbe(arch: field(u.machine), kernelRelease: field(u.release),
                         landlockABI: Landlock.probeABI(), uid: getuid(), gid: getgid(),
                         cwd: cwd, home: home, environment: env)
    }

    /// Why unprivileged user namespaces are unavailable, if a sysctl says so.
    public static func userNamespaceBlocker() -> String? {
        func read(_ path: String) -> String? {
            RunDirectory.read(path)?.trimmed
        }
        if read("/proc/sys/kernel/unprivileged_userns_clone") == "0" {
            return "kernel.unprivileged_userns_clone = 0"
        }
        if read("/proc/sys/user/max_user_namespaces") == "0" { return "user.max_user_namespaces = 0" }
        if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" {
            return "kernel.apparmor_restrict_unprivileged_userns = 1"
        }
        return nil
    }
}
