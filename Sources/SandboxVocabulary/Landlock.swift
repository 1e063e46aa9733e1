/// A Landlock filesystem access right (`LANDLOCK_ACCESS_FS_*` from
/// include/uapi/linux/landlock.h), with its bit and the ABI that introduced it.
/// Cases are in bit order; the raw value is the name policies and plans use.
public enum LandlockAccess: String, Sendable, Hashable, CaseIterable, Codable {
    case execute = "execute"
    case writeFile = "write_file"
    case readFile = "read_file"
    case readDir = "read_dir"
    case removeDir = "remove_dir"
    case removeFile = "remove_file"
    case makeChar = "make_char"
    case makeDir = "make_dir"
    case makeReg = "make_reg"
    case makeSock = "make_sock"
    case makeFifo = "make_fifo"
    case makeBlock = "make_block"
    case makeSym = "make_sym"
    case refer = "refer"
    case truncate = "truncate"
    case ioctlDev = "ioctl_dev"

    public var bit: UInt64 {
        switch self {
        case .execute: 1 << 0; case .writeFile: 1 << 1; case .readFile: 1 << 2; case .readDir: 1 << 3
        case .removeDir: 1 << 4; case .removeFile: 1 << 5; case .makeChar: 1 << 6; case .makeDir: 1 << 7
        case .makeReg: 1 << 8; case .makeSock: 1 << 9; case .makeFifo: 1 << 10; case .makeBlock: 1 << 11
        case .makeSym: 1 << 12; case .refer: 1 << 13; case .truncate: 1 << 14; case .ioctlDev: 1 << 15
        }
    }

    /// The Landlock ABI that introduced the right.
    public var abi: Int {
        switch self {
        case .refer: 2
        case .truncate: 3
        case .ioctlDev: 5
        default: 1
        }
    }

    /// Whether the right may be granted on a file that is not a directory (the
    /// kernel's `ACCESS_FILE`): a rule on such a file with any other right fails
    /// with EINVAL.
    public var appliesToFiles: Bool {
        switch self {
        case .execute, .writeFile, .readFile, .truncate, .ioctlDev: true
        default: false
        }
    }

    /// Every right the kernel handles at `abi`, in bit order.
    public static func all(abi: Int) -> [LandlockAccess] { allCases.filter { $0.abi <= abi } }

    /// The mask of `rights`.
    public static func mask(_ rights: [LandlockAccess]) -> UInt64 { rights.reduce(0) { $0 | $1.bit } }

    /// The rights in `bits`, in bit order.
    public static func rights(in bits: UInt64) -> [LandlockAccess] { allCases.filter { bits & $0.bit != 0 } }

    /// The highest ABI this code knows. ABI 7 (Linux 6.15) adds audit-logging flags
    /// for `landlock_restrict_self`, no new rights; rulesets are the same as ABI 6.
    public static let knownABI = 7
}

/// `LANDLOCK_SCOPE_*` (ABI 6), by the names a policy's `landlock.scope` uses.
public enum LandlockScope: String, Sendable, Hashable, CaseIterable, Codable {
    case abstractUnixSocket = "abstract-unix-socket"
    case signal

    public var bit: UInt64 {
        switch self {
        case .abstractUnixSocket: 1 << 0
        case .signal: 1 << 1
        }
    }

    public var abi: Int { 6 }
}
