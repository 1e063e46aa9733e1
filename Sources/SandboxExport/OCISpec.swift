/// The part of the OCI runtime specification (runtime-spec 1.0.2, what Debian's runc
/// 1.1 reads) an exported plan fills in: typed values, encoded by `JSONEncoder` with
/// the spec's key names. Fields the export never sets are left out rather than
/// written empty, so a runtime applies its own default only where the plan is silent.
public struct OCISpec: Codable, Sendable, Equatable {
    public var ociVersion = "1.0.2"
    public var process: Process
    public var root: Root
    public var hostname: String
    public var mounts: [Mount]
    public var linux: Linux
    /// `sandbox/not-carried` lists what the plan asks for that this config cannot.
    public var annotations: [String: String]

    public struct Process: Codable, Sendable, Equatable {
        public var terminal = false
        public var user: User
        public var args: [String]
        public var env: [String]
        public var cwd: String
        public var capabilities: Capabilities
        public var rlimits: [Rlimit]
        public var noNewPrivileges = true
    }

    public struct User: Codable, Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        /// Empty: the process has no supplementary groups (runc sets them to exactly this).
        public var additionalGids: [UInt32] = []
    }

    /// Each set holds `CAP_*` names; what no set names is dropped.
    public struct Capabilities: Codable, Sendable, Equatable {
        public var bounding: [String]
        public var effective: [String]
        public var inheritable: [String]
        public var permitted: [String]
        public var ambient: [String]
    }

    public struct Rlimit: Codable, Sendable, Equatable {
        /// `RLIMIT_NOFILE`…
        public var type: String
        public var hard: UInt64
        public var soft: UInt64
    }

    public struct Root: Codable, Sendable, Equatable {
        /// Relative to the bundle.
        public var path: String
        public var readonly: Bool
    }

    public struct Mount: Codable, Sendable, Equatable {
        public var destination: String
        public var type: String
        /// For binds: absolute, or relative to the bundle.
        public var source: String
        public var options: [String]
    }

    public struct Linux: Codable, Sendable, Equatable {
        public var namespaces: [Namespace]
        public var resources: Resources?
        public var seccomp: Seccomp?
        public var maskedPaths: [String]
        public var readonlyPaths: [String]
    }

    public struct Namespace: Codable, Sendable, Equatable {
        /// pid, network, mount, ipc, uts, cgroup, user.
        public var type: String
    }

    public struct Resources: Codable, Sendable, Equatable {
        public var memory: Memory?
        public var cpu: CPU?
        public var pids: Pids?
        public var blockIO: BlockIO?
        public struct Memory: Codable, Sendable, Equatable {
            public var limit: Int64?
            /// Memory plus swap (the v1 meaning; runc subtracts `limit` on cgroup v2).
            public var swap: Int64?
        }
        public struct CPU: Codable, Sendable, Equatable {
            public var quota: Int64?
            public var period: UInt64?
        }
        public struct Pids: Codable, Sendable, Equatable {
            public var limit: Int64
        }
        public struct BlockIO: Codable, Sendable, Equatable {
            /// 10…1000 (blkio's range; runc converts it to io.weight on cgroup v2).
            public var weight: UInt16
        }
    }

    /// The same shape as a Docker/OCI seccomp profile (`SeccompProfileLoader` reads it).
    public struct Seccomp: Codable, Sendable, Equatable {
        public var defaultAction: String
        public var defaultErrnoRet: UInt32?
        public var architectures: [String]
        public var syscalls: [Syscall]
    }

    public struct Syscall: Codable, Sendable, Equatable {
        public var names: [String]
        public var action: String
        public var errnoRet: UInt32?
        public var args: [Arg]?
    }

    public struct Arg: Codable, Sendable, Equatable {
        public var index: UInt32
        public var value: UInt64
        public var valueTwo: UInt64
        public var op: String
    }
}
