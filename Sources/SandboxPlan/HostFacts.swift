import SandboxPolicy

/// What the compiler needs to know about the machine and the invocation. The CLI
/// probes these (SandboxKernel) and passes them in; tests construct them by hand, so
/// compiling never depends on the machine the tests run on.
public struct HostFacts: Sendable {
    /// `x86_64` or `aarch64` (uname machine).
    public var arch: String
    /// Kernel release, e.g. `6.18.4`.
    public var kernelRelease: String
    /// Highest Landlock ABI the kernel supports; 0 if Landlock is unavailable.
    public var landlockABI: Int
    public var invokerUID: UInt32
    public var invokerGID: UInt32
    public var cwd: String
    public var home: String
    /// The invoker's environment; only `env.pass` names are read from it.
    public var environment: [String: String]
    /// Looks at host paths (lstat/readlink); faked in tests.
    public var files: any FileInspector

    public init(arch: String, kernelRelease: String, landlockABI: Int, invokerUID: UInt32,
                invokerGID: UInt32, cwd: String, home: String, environment: [String: String],
                files: any FileInspector) {
        self.arch = arch; self.kernelRelease = kernelRelease; self.landlockABI = landlockABI
        self.invokerUID = invokerUID; self.invokerGID = invokerGID; self.cwd = cwd
        self.home = home; self.environment = environment; self.files = files
    }
}

public enum FileKind: Sendable, Equatable {
    case directory
    case file
    case symlink(target: String)
    case other
}

/// Read-only view of host paths used while compiling.
public protocol FileInspector: Sendable {
    /// lstat semantics: a symlink is reported as such, not followed. nil = absent.
    func kind(of path: String) -> FileKind?
}

/// A problem that makes a policy impossible to run on this host or with this
/// invocation (the policy itself already parsed).
public struct PlanError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The policy key or plan area at fault, e.g. `landlock.mode`.
    public var key: String
    public var message: String
    public init(key: String, message: String) { self.key = key; self.message = message }
    public var description: String { "\(key): \(message)" }
}
