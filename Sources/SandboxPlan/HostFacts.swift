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
    /// What later runs rely on (the `sandbox` executable, the data directory, the
    /// seccomp cache): no writable bind may hold one (`TrustCheck.swift`).
    public var trusted: [TrustedPath] = []
    /// Where run directories live (`/run/sandbox`): reserved, and trusted too.
    public var runBase: String? = nil
    /// Device and inode of the invoker's working directory itself (fstat of "."), not
    /// of the path `cwd`, which may have been renamed since.
    public var cwdIdentity: FileIdentity? = nil
    /// What an egress `allow` rule must not open by being broad (`NetworkRules`): the
    /// host's own addresses (`ADDRESS`), and networks wholly the host's (`ADDRESS/LEN`:
    /// the sandbox bridge's subnet, where the gateway and other runs are). A rule
    /// naming exactly one of the host's addresses (a /32 or /128) still opens it; no
    /// rule opens another address of such a network. The CLI fills it with
    /// `HostAddresses.egressProtected()`; a harness should do the same.
    public var hostAddresses: [String] = []
    /// Why `hostAddresses` could not be read whole (a netlink error, or a dump still
    /// interrupted by changes after its retries); nil when it was. An egress plan is
    /// then refused: without them a broad allow rule could open the host.
    public var hostAddressesError: String? = nil
    /// The host's resolvers (`nameserver` lines of its /etc/resolv.conf): the DNS
    /// stub's upstream when the policy names none (`network.upstream_dns`).
    public var hostResolvers: [String] = []
    /// Whether the invoker can make a run's namespaces here: probed (by `RunSteps.plan`)
    /// only for a policy that accepts either isolation (`namespaces-or-nested`).
    public var namespaces: NamespaceCheck = .notProbed

    public init(arch: String, kernelRelease: String, landlockABI: Int, invokerUID: UInt32,
                invokerGID: UInt32, cwd: String, home: String, environment: [String: String],
                files: any FileInspector) {
        self.arch = arch; self.kernelRelease = kernelRelease; self.landlockABI = landlockABI
        self.invokerUID = invokerUID; self.invokerGID = invokerGID; self.cwd = cwd
        self.home = home; self.environment = environment; self.files = files
    }
}

/// What the probe found about making a run's namespaces (`HostFacts.namespaces`).
public enum NamespaceCheck: Sendable, Equatable {
    case notProbed
    case available
    /// Why not: the call, the namespaces and the errnos that refused them.
    case blocked(NamespaceRefusal)
}

public enum FileKind: Sendable, Equatable {
    case directory
    case file
    case symlink(target: String)
    case other
}

/// A file's identity on the host: what a later open must find again.
public struct FileIdentity: Codable, Sendable, Equatable, CustomStringConvertible {
    public var device: UInt64
    public var inode: UInt64
    public init(device: UInt64, inode: UInt64) { self.device = device; self.inode = inode }
    public var description: String { "device \(device) inode \(inode)" }
}

/// Read-only view of host paths used while compiling.
public protocol FileInspector: Sendable {
    /// lstat semantics: a symlink is reported as such, not followed. nil = absent.
    func kind(of path: String) -> FileKind?
    /// lstat's device and inode; nil when absent or unknown (fakes in tests).
    func identity(of path: String) -> FileIdentity?
    /// The text of a small regular file (a repository's `.git/config`), read without
    /// following a symlink and at most `maxBytes`; nil when absent, not a regular
    /// file or larger.
    func contents(of path: String, maxBytes: Int) -> String?
    /// The bytes of a regular file (a repository's `.git/index`), read as `contents`
    /// reads; nil when absent, not a regular file, larger, or not readable by this
    /// inspector (fakes in tests).
    func bytes(of path: String, maxBytes: Int) -> [UInt8]?
    /// lstat's link count; nil when absent or unknown (fakes in tests).
    func linkCount(of path: String) -> Int?
    /// The unix sockets at or beneath `roots` (absolute paths without symlinks), as a
    /// recursive bind of each shows them: submounts included, no symlink followed,
    /// nothing at or beneath a `skipping` path (a root itself is never skipped).
    /// Reads at most `limit` directory entries in all. nil: this inspector cannot
    /// list directories (the planner then says so in `notApplied`). `SocketScan.swift`.
    func unixSockets(under roots: [String], skipping: Set<String>, limit: Int) -> SocketSearch?
    /// Where the path lives whatever mount shows it: its filesystem's device and the
    /// path below that filesystem's root (from the host's mount table); nil when
    /// unknown. Two names for one place (bind-mount aliases) have the same location.
    func location(of path: String) -> (device: String, path: String)?
    /// ``location(of:)`` of a path already resolved: absolute, every component
    /// present and none a symlink (as `CanonicalPaths` found it), so not resolved
    /// again (realpath(3) is a readlink per component: most of the trust check's
    /// system calls).
    func location(ofResolved path: String) -> (device: String, path: String)?
    /// The names in a directory (not `.` and `..`; a name that is not UTF-8 decoded
    /// with U+FFFD), without following a symlink at `path`; nil when it is not a
    /// directory that can be listed, or this inspector cannot list.
    func directoryEntries(of path: String) -> [String]?
}

extension FileInspector {
    public func identity(of path: String) -> FileIdentity? { nil }
    public func contents(of path: String, maxBytes: Int) -> String? { nil }
    public func bytes(of path: String, maxBytes: Int) -> [UInt8]? { nil }
    public func linkCount(of path: String) -> Int? { nil }
    public func unixSockets(under roots: [String], skipping: Set<String>, limit: Int) -> SocketSearch? { nil }
    public func location(of path: String) -> (device: String, path: String)? { nil }
    public func location(ofResolved path: String) -> (device: String, path: String)? { location(of: path) }
    public func directoryEntries(of path: String) -> [String]? { nil }
}

/// What `FileInspector.unixSockets` found.
public struct SocketSearch: Sendable, Equatable {
    /// Absolute paths of the sockets found.
    public var sockets: [String]
    /// Directory entries read.
    public var entries: Int
    /// Set when the search could not see everything: the root it was in and why
    /// (the limit, a directory that can be passed through but not listed, …).
    public var incompleteRoot: String?
    public var incompleteReason: String?

    public init(sockets: [String], entries: Int, incompleteRoot: String? = nil, incompleteReason: String? = nil) {
        self.sockets = sockets; self.entries = entries
        self.incompleteRoot = incompleteRoot; self.incompleteReason = incompleteReason
    }
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
