internal import TOMLKit

/// One entry of a list key as written: a value to add, `"!value"` to remove an
/// inherited one, or (first, from `{ replace = […] }`) drop everything inherited.
enum ListEdit<T> {
    case add(T)
    case remove(T)
    case clear
}

/// A key whose absence means something ("no limit", "the default"), as written: a
/// value, or `"!"`, which unsets what a base set.
enum Setting<T> {
    case value(T)
    case unset

    var value: T? {
        if case .value(let v) = self { return v }
        return nil
    }
}

/// Where a key was written, for diagnostics the merge finds (a removal that matches
/// no inherited allow rule).
struct KeyLocation {
    var file: String
    var keyPath: String
    var line: Int?
}

/// One entry of `network.allow` as written.
enum AllowEdit {
    /// `allow = { replace = […] }`: the inherited rules are dropped first.
    case clear
    case cidr(AllowRule)
    case host(HostRule)
    /// `"!10.0.0.0/8"`: every rule so far whose cidr is exactly this network, whatever
    /// its ports and protocol.
    case removeCIDR(CIDR, at: KeyLocation)
    /// `"!pypi.org"`, `"!*.example.test"`: every host rule so far with exactly this
    /// pattern (compared lower case, without a trailing dot), whatever its ports.
    case removeHost(HostPattern, at: KeyLocation)
}

/// `seccomp.profile` after resolution: no profile, or an existing file.
enum ProfileRef: Equatable {
    case none
    case file(String)
}

/// One policy file, validated on its own: every key optional, every value already
/// typed. `PolicyLoader` merges layers base-first into a `Policy`.
struct PolicyLayer {
    var file: String
    var absolutePath: String

    var version: Int?
    var name: String?
    var extends: [(target: String, path: TOMLPath)] = []

    var hostname: String?
    var user: UserSpec?
    var group: Setting<UserSpec>?
    var workdir: Setting<PathTemplate>?
    var envPass: [ListEdit<String>] = []
    var envSet: [String: String] = [:]
    var timeoutMs: Setting<UInt64>?
    var graceMs: UInt64?
    var newSession: Bool?
    var hostUID: HostUID?
    var isolation: Isolation?
    var nestedWithout: [ListEdit<NestedGap>] = []

    var ro: [ListEdit<PathTemplate>] = []
    var rw: [ListEdit<PathTemplate>] = []
    var tmpfs: [ListEdit<PathTemplate>] = []
    var protect: [ListEdit<String>] = []
    var mask: [ListEdit<PathTemplate>] = []
    var unixSockets: [ListEdit<PathTemplate>] = []
    var socketScanSkip: [ListEdit<PathTemplate>] = []
    var socketScanLimit: Int?

    var landlockMode: FenceMode?
    var connectTCP: Setting<[ListEdit<UInt16>]>?
    var landlockMinABI: Setting<Int>?
    var bindTCP: Setting<[ListEdit<UInt16>]>?
    var scope: [ListEdit<LandlockScope>] = []

    var seccompProfile: ProfileRef?
    var seccompProfilePath: TOMLPath?
    var deny: [ListEdit<String>] = []
    var socketFamilies: Setting<[ListEdit<SocketFamily>]>?
    var onViolation: ViolationAction?

    var keep: [ListEdit<String>] = []

    var memory: Setting<UInt64>?
    var swap: Setting<UInt64>?
    var pids: Setting<UInt64>?
    var cpu: Setting<Double>?
    var io: Setting<UInt64>?
    var rlimits: [Rlimit: Setting<RlimitValue>] = [:]
    var bestEffort: [ListEdit<String>] = []

    var networkMode: NetworkMode?
    var dns: [ListEdit<IPAddress>] = []
    var allow: [AllowEdit] = []
    var upstreamDNS: [ListEdit<IPAddress>] = []
    var denyResolved: [ListEdit<CIDR>] = []
    var hosts: [String: Setting<IPAddress>] = [:]
    var maxConnections: Int?

    var requireRootOwned: Bool?
    var rejectWritable: Bool?
    var rejectSetuid: Bool?
    var pin: [String: Setting<String>] = [:]

    var auditPath: Setting<PathTemplate>?
    var auditKeyFile: Setting<PathTemplate>?
    /// SHA-256 of the file's bytes as parsed.
    var sha256 = ""
}

/// The schema: every table and the keys it allows. Unknown keys are errors.
enum PolicySchema {
    static let topLevel = ["version", "name", "extends", "process", "filesystem", "landlock", "seccomp",
                           "capabilities", "resources", "network", "binary", "audit"]
    static let process = ["hostname", "user", "group", "workdir", "env", "timeout", "grace", "new_session", "host_uid",
                          "isolation", "nested_without"]
    static let env = ["pass", "set"]
    static let filesystem = ["ro", "rw", "tmpfs", "protect", "mask", "unix_sockets", "socket_scan_skip", "socket_scan_limit"]
    static let landlock = ["mode", "min_abi", "connect_tcp", "bind_tcp", "scope"]
    static let seccomp = ["profile", "deny", "socket_families", "on_violation"]
    static let capabilities = ["keep"]
    static let resources = ["memory", "swap", "pids", "cpu", "io", "rlimits", "best_effort"]
    static let bestEffortNames = ["memory", "swap", "pids", "cpu", "io"]
    static let network = ["mode", "dns", "allow", "hosts", "max_connections", "upstream_dns", "deny_resolved"]
    static let allowRule = ["cidr", "host", "ports", "proto"]
    static let binary = ["require_root_owned", "reject_writable", "reject_setuid", "pin"]
    static let audit = ["path", "key_file"]
    /// rlimits whose value is a byte count, so sizes such as "8MiB" are accepted.
    static let byteRlimits: Set<Rlimit> = [.fsize, .data, .stack, .core, .rss, .memlock, .as, .msgqueue]
    /// PID_MAX_LIMIT on 64-bit Linux: pids.max rejects anything larger.
    static let maxPids: Int = 4_194_304
    /// The smallest `memory` limit (8 MiB).
    static let minMemoryBytes: UInt64 = 8 << 20

    /// Keys holding a list: `{ replace = […] }` replaces what a base listed.
    static let lists: Set<String> = [
        "process.env.pass", "filesystem.ro", "filesystem.rw", "filesystem.tmpfs", "filesystem.protect",
        "filesystem.mask", "filesystem.unix_sockets", "filesystem.socket_scan_skip", "landlock.connect_tcp",
        "landlock.bind_tcp", "landlock.scope", "seccomp.deny", "seccomp.socket_families", "capabilities.keep",
        "resources.best_effort", "network.dns", "network.allow", "network.upstream_dns", "network.deny_resolved",
    ]
    /// Keys whose absence means something (no limit, no restriction, the default
    /// derived from another key): `"!"` unsets what a base set. Every other scalar
    /// always has a value, so `"!"` there is an error.
    static let unsettable: Set<String> = [
        "process.group", "process.workdir", "process.timeout", "landlock.min_abi", "landlock.connect_tcp",
        "landlock.bind_tcp", "seccomp.profile", "seccomp.socket_families", "resources.memory", "resources.swap",
        "resources.pids", "resources.cpu", "resources.io", "audit.path", "audit.key_file",
    ]
    /// Tables merged key by key: a key set to `"!"` is removed (`env.set` excepted: `"!"`
    /// is a value a variable may hold).
    static let tables: Set<String> = ["process.env", "process.env.set", "resources.rlimits", "network.hosts", "binary.pin"]
}

/// Validates one parsed file into a `PolicyLayer`, collecting every diagnostic.
final class LayerReader {
    let file: String
    let policyDir: String
    /// Built on the first diagnostic: a valid file never pays for it.
    private lazy var index: SourceIndex? = makeIndex()
    private let makeIndex: () -> SourceIndex?
    let profileDirs: [String]
    private(set) var diagnostics: [PolicyDiagnostic] = []
    /// Diagnostics past `PolicyLimits.maxDiagnostics`: counted, not kept.
    private(set) var omitted = 0

    init(file: String, policyDir: String, index: @escaping @autoclosure () -> SourceIndex?, profileDirs: [String]) {
        self.file = file; self.policyDir = policyDir; self.makeIndex = index; self.profileDirs = profileDirs
    }

    func error(_ path: TOMLPath, _ message: String) {
        guard diagnostics.count < PolicyLimits.maxDiagnostics else { omitted += 1; return }
        let keyPath = path.components.isEmpty ? nil : path.description
        diagnostics.append(PolicyDiagnostic(file: file, keyPath: keyPath, line: index?.line(for: path), message: message))
    }

    // MARK: - The whole file

    func read(_ root: TOMLTable, absolutePath: String) -> PolicyLayer {
        var layer = PolicyLayer(file: file, absolutePath: absolutePath)
        let top = TOMLPath.root
        checkKeys(root, at: top, allowed: PolicySchema.topLevel, noun: "top-level key", place: nil)
        checkMarkers(root, at: top, allowed: ["version", "name", "extends"])

        if let v = integer(root, "version", at: top) {
            if v != 1 {
                error(top.key("version"), "version \(v) is not supported; only version = 1 is")
            } else {
                layer.version = 1
            }
        }
        if let n = string(root, "name", at: top) {
            if isPolicyName(n) {
                layer.name = n
            } else {
                error(top.key("name"), "invalid name \"\(n)\"; use letters, digits, \".\", \"_\" and \"-\" (at most 64)")
            }
        }
        if let value = root["extends"] {
            let path = top.key("extends")
            if value.type == .string, let s = value.string {
                layer.extends = [(s, path)]
            } else if let items = stringList(value, at: path, what: "list policy names or paths, e.g. [\"base\"]") {
                layer.extends = items.map { ($0.0, $0.1) }
            }
            for (target, p) in layer.extends where target.isEmpty {
                error(p, "empty extends entry; write a policy name such as \"base\" or a path such as \"./base.toml\"")
            }
            layer.extends.removeAll { $0.target.isEmpty }
        }

        if let t = section(root, "process", at: top, allowed: PolicySchema.process) { readProcess(t, at: top.key("process"), into: &layer) }
        if let t = section(root, "filesystem", at: top, allowed: PolicySchema.filesystem) { readFilesystem(t, at: top.key("filesystem"), into: &layer) }
        if let t = section(root, "landlock", at: top, allowed: PolicySchema.landlock) { readLandlock(t, at: top.key("landlock"), into: &layer) }
        if let t = section(root, "seccomp", at: top, allowed: PolicySchema.seccomp) { readSeccomp(t, at: top.key("seccomp"), into: &layer) }
        if let t = section(root, "capabilities", at: top, allowed: PolicySchema.capabilities) { readCapabilities(t, at: top.key("capabilities"), into: &layer) }
        if let t = section(root, "resources", at: top, allowed: PolicySchema.resources) { readResources(t, at: top.key("resources"), into: &layer) }
        if let t = section(root, "network", at: top, allowed: PolicySchema.network) { readNetwork(t, at: top.key("network"), into: &layer) }
        if let t = section(root, "binary", at: top, allowed: PolicySchema.binary) { readBinary(t, at: top.key("binary"), into: &layer) }
        if let t = section(root, "audit", at: top, allowed: PolicySchema.audit) {
            let p = top.key("audit")
            layer.auditPath = setting(t, "path") { string(t, "path", at: p).flatMap { path($0, at: p.key("path"), allowOptional: false) } }
            layer.auditKeyFile = setting(t, "key_file") {
                string(t, "key_file", at: p).flatMap { path($0, at: p.key("key_file"), allowOptional: false) }
            }
        }
        return layer
    }

    // MARK: - Tables

    private func readProcess(_ t: TOMLTable, at p: TOMLPath, into layer: inout PolicyLayer) {
        if let h = string(t, "hostname", at: p) {
            if let why = Validate.hostname(h, maxLength: 64) {
                error(p.key("hostname"), "invalid hostname \"\(h)\": \(why)")
            } else {
                layer.hostname = h
            }
        }
        layer.user = userSpec(t, "user", at: p)
        layer.group = setting(t, "group") { userSpec(t, "group", at: p) }
        layer.workdir = setting(t, "workdir") { string(t, "workdir", at: p).flatMap { path($0, at: p.key("workdir"), allowOptional: false) } }
        if let env = section(t, "env", at: p, allowed: PolicySchema.env) {
            let ep = p.key("env")
            layer.envPass = edits(env, "pass", at: ep) { name, path in
                if Validate.isEnvName(name) { return name }
                self.error(path, "invalid variable name \"\(name)\"; names match [A-Za-z_][A-Za-z0-9_]*")
                return nil
            }
            if let set = table(env, "set", at: ep) {
                let sp = ep.key("set")
                for key in set.keys.sorted() {
                    let kp = sp.key(key)
                    guard Validate.isEnvName(key) else {
                        error(kp, "invalid variable name \"\(key)\"; names match [A-Za-z_][A-Za-z0-9_]*")
                        continue
                    }
                    guard let value = set[key], expect(value, .string, at: kp), let s = value.string else { continue }
                    if s.contains("\0") { error(kp, "value contains a NUL character"); continue }
                    layer.envSet[key] = s
                }
            }
        }
        layer.timeoutMs = setting(t, "timeout") { duration(t, "timeout", at: p) }
        layer.graceMs = duration(t, "grace", at: p)
        layer.newSession = bool(t, "new_session", at: p)
        layer.hostUID = enumValue(t, "host_uid", at: p, HostUID.self)
        layer.isolation = enumValue(t, "isolation", at: p, Isolation.self)
        layer.nestedWithout = edits(t, "nested_without", at: p) { s, kp in self.parseEnum(s, at: kp, NestedGap.self) }
    }

    private func readFilesystem(_ t: TOMLTable, at p: TOMLPath, into layer: inout PolicyLayer) {
        let paths = { (key: String) -> [ListEdit<PathTemplate>] in
            self.edits(t, key, at: p) { s, kp in self.path(s, at: kp, allowOptional: true) }
        }
        let binds = { (key: String) -> [ListEdit<PathTemplate>] in
            self.edits(t, key, at: p, table: self.bindElsewhere) { s, kp in self.path(s, at: kp, allowOptional: true) }
        }
        layer.ro = binds("ro")
        layer.rw = binds("rw")
        layer.tmpfs = paths("tmpfs")
        layer.mask = paths("mask")
        layer.unixSockets = paths("unix_sockets")
        layer.socketScanSkip = paths("socket_scan_skip")
        if let n = integer(t, "socket_scan_limit", at: p) {
            let range = FilesystemPolicy.socketScanLimitRange
            if range.contains(n) {
                layer.socketScanLimit = n
            } else {
                error(p.key("socket_scan_limit"), "socket_scan_limit = \(n) is out of range; use \(range.lowerBound)…\(range.upperBound) (directory entries the search for unix sockets under ro binds may read)")
            }
        }
        layer.protect = edits(t, "protect", at: p) { s, kp in
            switch PathTemplates.parseName(s) {
            case .success(let n): return n
            case .failure(let why): self.error(kp, why.message); return nil
            }
        }
    }

    /// `{ src = "{cwd}", dst = "/workspace" }`: the source mounted at another path.
    /// The destination is a fixed path inside the sandbox (no templates, no `?`).
    private func bindElsewhere(_ t: TOMLTable, at kp: TOMLPath) -> PathTemplate? {
        checkKeys(t, at: kp, allowed: ["src", "dst"], noun: "key", place: "in a bind { src = …, dst = … }")
        guard t["src"] != nil, t["dst"] != nil else {
            error(kp, "a bind written as a table needs src (the host path) and dst (where it appears inside), e.g. { src = \"{cwd}\", dst = \"/workspace\" }")
            return nil
        }
        guard let s = string(t, "src", at: kp), let d = string(t, "dst", at: kp),
              let source = path(s, at: kp.key("src"), allowOptional: true),
              let dest = path(d, at: kp.key("dst"), allowOptional: false) else { return nil }
        if dest.raw.contains("{") {
            error(kp.key("dst"), "dst is a path inside the sandbox, the same wherever it runs: write it without templates, e.g. \"/workspace\"")
            return nil
        }
        if dest.raw == "/" {
            error(kp.key("dst"), "dst = \"/\" would cover the sandbox's own root; name a directory such as \"/workspace\"")
            return nil
        }
        return PathTemplate(source.raw, optional: source.optional, destination: dest.raw)
    }

    private func readLandlock(_ t: TOMLTable, at p: TOMLPath, into layer: inout PolicyLayer) {
        layer.landlockMode = enumValue(t, "mode", at: p, FenceMode.self)
        layer.landlockMinABI = setting(t, "min_abi") { () -> Int? in
            guard let n = integer(t, "min_abi", at: p) else { return nil }
            if n < 1 || n > 64 { error(p.key("min_abi"), "must be a Landlock ABI version from 1 to 64 (got \(n))"); return nil }
            return n
        }
        layer.connectTCP = setting(t, "connect_tcp") { portEdits(t, "connect_tcp", at: p) }
        layer.bindTCP = setting(t, "bind_tcp") { portEdits(t, "bind_tcp", at: p) }
        layer.scope = edits(t, "scope", at: p) { s, kp in self.parseEnum(s, at: kp, LandlockScope.self) }
    }

    private func readSeccomp(_ t: TOMLTable, at p: TOMLPath, into layer: inout PolicyLayer) {
        if let s = string(t, "profile", at: p) {
            // "!" unsets an inherited profile, as "none" does.
            layer.seccompProfile = s == "!" ? ProfileRef.none : profile(s, at: p.key("profile"))
            layer.seccompProfilePath = p.key("profile")
        }
        layer.deny = edits(t, "deny", at: p) { name, kp in
            if SyscallTable.isKnown(name) { return name }
            self.error(kp, "unknown syscall \"\(name)\"; write a Linux syscall name as in syscalls(2), e.g. \"ptrace\" or \"io_uring_setup\"")
            return nil
        }
        if t["socket_families"] != nil {
            layer.socketFamilies = setting(t, "socket_families") {
                edits(t, "socket_families", at: p) { s, kp in self.parseEnum(s, at: kp, SocketFamily.self) }
            }
        }
        layer.onViolation = enumValue(t, "on_violation", at: p, ViolationAction.self)
    }

    private func readCapabilities(_ t: TOMLTable, at p: TOMLPath, into layer: inout PolicyLayer) {
        layer.keep = edits(t, "keep", at: p) { name, kp in
            if let canonical = CapabilityTable.canonicalName(name) { return canonical }
            self.error(kp, "unknown capability \"\(name)\"; write a name from capabilities(7), e.g. \"net_bind_service\" or \"CAP_NET_BIND_SERVICE\"")
            return nil
        }
    }

    private func readResources(_ t: TOMLTable, at p: TOMLPath, into layer: inout PolicyLayer) {
        layer.memory = setting(t, "memory") { () -> UInt64? in
            guard let m = size(t, "memory", at: p, allowZero: false) else { return nil }
            // Below this no command starts (the loader, libc and a shell need more): every
            // run would be OOM-killed, which a check should say instead.
            if m < PolicySchema.minMemoryBytes {
                error(p.key("memory"), "memory = \(m) bytes is below the minimum of 8MiB a sandboxed command needs to start")
                return nil
            }
            return m
        }
        layer.swap = setting(t, "swap") { size(t, "swap", at: p, allowZero: true) }
        layer.pids = setting(t, "pids") { () -> UInt64? in
            guard let n = integer(t, "pids", at: p) else { return nil }
            if n < 1 {
                error(p.key("pids"), "pids = \(n) must be at least 1 (the number of processes and threads allowed, up to \(PolicySchema.maxPids))")
            } else if n > PolicySchema.maxPids {
                error(p.key("pids"), "pids = \(n) is above the kernel's limit; use 1…\(PolicySchema.maxPids)")
            } else {
                return UInt64(n)
            }
            return nil
        }
        if let v = t["cpu"], isUnsetMarker(v) {
            layer.cpu = .unset
        } else if let v = t["cpu"] {
            let kp = p.key("cpu")
            let number: Double? = v.type == .int ? v.int.map(Double.init) : v.type == .double ? v.double : nil
            if let c = number {
                if c.isFinite, c >= 0.01, c <= 1024 {
                    layer.cpu = .value(c)
                } else {
                    error(kp, "cpu = \(formatNumber(c)) is out of range; give the number of cores from 0.01 (the kernel's smallest quota, 1 ms per 100 ms) to 1024, e.g. 1.5")
                }
            } else {
                error(kp, "expected a number of cores (e.g. 2 or 1.5), found \(describe(v.type))")
            }
        }
        layer.io = setting(t, "io") { () -> UInt64? in
            guard let n = integer(t, "io", at: p) else { return nil }
            if n < 1 || n > 10_000 {
                error(p.key("io"), "io = \(n) is out of range; the cgroup io weight is 1…10000 (default 100)")
                return nil
            }
            return UInt64(n)
        }
        if let limits = table(t, "rlimits", at: p) {
            let rp = p.key("rlimits")
            for key in limits.keys.sorted() {
                let kp = rp.key(key)
                guard let which = Rlimit(rawValue: key) else {
                    unknownKey(key, at: kp, allowed: Rlimit.allCases.map(\.rawValue), noun: "rlimit", place: nil)
                    continue
                }
                guard let value = limits[key] else { continue }
                if isUnsetMarker(value) {
                    layer.rlimits[which] = .unset
                } else if let v = rlimitValue(value, which, at: kp) {
                    layer.rlimits[which] = .value(v)
                }
            }
        }
        layer.bestEffort = edits(t, "best_effort", at: p) { s, kp in
            if PolicySchema.bestEffortNames.contains(s) { return s }
            self.error(kp, "unknown limit \"\(s)\"; allowed: \(PolicySchema.bestEffortNames.map { "\"\($0)\"" }.joinedText(separator: ", "))")
            return nil
        }
    }

    private func readNetwork(_ t: TOMLTable, at p: TOMLPath, into layer: inout PolicyLayer) {
        layer.networkMode = enumValue(t, "mode", at: p, NetworkMode.self)
        layer.dns = edits(t, "dns", at: p) { s, kp in
            if let a = IPAddress(s) { return a }
            self.error(kp, "invalid IP address \"\(s)\"; write an IPv4 (\"10.203.0.1\") or IPv6 (\"fd00::1\") address")
            return nil
        }
        if let value = t["allow"] { layer.allow = allowEdits(value, at: p.key("allow")) }
        layer.upstreamDNS = edits(t, "upstream_dns", at: p) { s, kp in
            if let a = IPAddress(s) { return a }
            self.error(kp, "invalid IP address \"\(s)\"; write the address of a resolver the host can reach, such as \"192.0.2.53\"")
            return nil
        }
        layer.denyResolved = edits(t, "deny_resolved", at: p) { s, kp in self.parseCIDR(s, at: kp) }
        if let hosts = table(t, "hosts", at: p) {
            let hp = p.key("hosts")
            for name in hosts.keys.sorted() {
                let kp = hp.key(name)
                if let why = Validate.hostname(name, maxLength: 253) {
                    error(kp, "invalid host name \"\(name)\": \(why)")
                    continue
                }
                guard let value = hosts[name], expect(value, .string, at: kp), let s = value.string else { continue }
                if s == "!" { layer.hosts[name] = .unset; continue }
                guard let address = IPAddress(s) else {
                    error(kp, "invalid IP address \"\(s)\"; write an IPv4 or IPv6 address, or \"!\" to remove an inherited entry")
                    continue
                }
                layer.hosts[name] = .value(address)
            }
        }
        if let n = integer(t, "max_connections", at: p) {
            let range = NetworkPolicy.maxConnectionsRange
            if range.contains(n) {
                layer.maxConnections = n
            } else {
                error(p.key("max_connections"), "max_connections = \(n) is out of range; use \(range.lowerBound)…\(range.upperBound) (connections the run may have open at once)")
            }
        }
    }

    /// `network.allow`: rules to add (tables), `"!CIDR"` / `"!HOST"` to remove inherited
    /// ones, or `{ replace = […] }`.
    private func allowEdits(_ value: TOMLValueConvertible, at ap: TOMLPath) -> [AllowEdit] {
        let what = "write rules such as [{ cidr = \"192.0.2.0/24\", ports = [443] }]; an entry \"!192.0.2.0/24\" or \"!pypi.org\" removes inherited rules, and { replace = […] } replaces them"
        guard let list = listValue(value, at: ap, what: what) else { return [] }
        var out: [AllowEdit] = list.replace ? [.clear] : []
        for i in 0..<list.items.count {
            let item = list.items[i]
            let kp = list.path.index(i)
            if item.type == .string, let s = item.string {
                guard s.hasPrefix("!") else {
                    error(kp, "expected an allow rule { cidr = …, ports = […] } or { host = …, ports = […] }, found a string; \"!X\" removes inherited rules")
                    continue
                }
                guard let rest = removal(s, at: kp, replacing: list.replace) else { continue }
                if rest.contains("/") {
                    if let c = parseCIDR(rest, at: kp) { out.append(.removeCIDR(c, at: location(kp))) }
                } else if let host = HostPattern(rest) {
                    out.append(.removeHost(host, at: location(kp)))
                } else {
                    error(kp, "\"\(s)\" names no rule: write \"!\" and the cidr of inherited rules as written there (\"!151.101.0.0/16\"), or their host (\"!pypi.org\", \"!*.example.test\")")
                }
                continue
            }
            switch allowRule(item, at: kp) {
            case .cidr(let rule): out.append(.cidr(rule))
            case .host(let rule): out.append(.host(rule))
            case nil: break
            }
        }
        return out
    }

    /// `connect_tcp`, `bind_tcp`: port numbers to add, `"!PORT"` to remove an inherited
    /// one, or `{ replace = […] }`.
    private func portEdits(_ t: TOMLTable, _ key: String, at p: TOMLPath) -> [ListEdit<UInt16>]? {
        guard let v = t[key] else { return nil }
        let what = "write port numbers such as [443]; an entry \"!443\" removes an inherited port, and { replace = [443] } replaces the list"
        guard let list = listValue(v, at: p.key(key), what: what) else { return nil }
        var out: [ListEdit<UInt16>] = list.replace ? [.clear] : []
        var ok = true
        for i in 0..<list.items.count {
            let item = list.items[i]
            let ip = list.path.index(i)
            var number = item.type == .int ? item.int : nil
            var remove = false
            if item.type == .string, let s = item.string {
                guard let rest = removal(s, at: ip, replacing: list.replace) else {
                    if !s.hasPrefix("!") { error(ip, "expected a port number 1…65535, found a string; \"!PORT\" removes an inherited port") }
                    ok = false
                    continue
                }
                number = Int(rest)
                remove = true
                if number == nil { error(ip, "\"\(s)\": write \"!\" and a port number, e.g. \"!443\""); ok = false; continue }
            }
            guard let port = port(number, found: item.type, at: ip) else { ok = false; continue }
            out.append(remove ? .remove(port) : .add(port))
        }
        return ok ? out : nil
    }

    private enum ParsedAllowRule { case cidr(AllowRule), host(HostRule) }

    /// `{ cidr = …, ports = […] }` or `{ host = …, ports = […] }` (exactly one of the two).
    private func allowRule(_ value: TOMLValueConvertible, at p: TOMLPath) -> ParsedAllowRule? {
        guard expect(value, .table, at: p), let t = value.table else { return nil }
        checkKeys(t, at: p, allowed: PolicySchema.allowRule, noun: "key", place: "in an allow rule")
        var ok = true
        var cidr: CIDR?
        var host: HostPattern?
        if t["cidr"] != nil && t["host"] != nil {
            error(p, "an allow rule names either cidr or host, not both; write two rules")
            ok = false
        }
        if let s = string(t, "cidr", at: p) {
            cidr = parseCIDR(s, at: p.key("cidr"))
        } else if let s = string(t, "host", at: p) {
            if let why = HostPattern.problem(s) {
                error(p.key("host"), "invalid host \"\(s)\": \(why)")
            } else {
                host = HostPattern(s)
            }
        } else if t["cidr"] == nil && t["host"] == nil {
            error(p, "missing cidr or host; each allow rule needs cidr = \"ADDRESS/PREFIX\" or host = \"NAME\" (or \"*.NAME\"), and ports = [PORT, …]")
        }
        var portList: [UInt16]?
        if t["ports"] != nil {
            portList = ports(t, "ports", at: p)
            if let list = portList, list.isEmpty {
                error(p.key("ports"), "empty ports list; list the destination ports (1…65535) this rule allows")
                ok = false
            }
        } else {
            error(p, "missing ports; each allow rule needs ports = [PORT, …] (1…65535)")
        }
        let proto = enumValue(t, "proto", at: p, IPProtocolName.self)
        if t["proto"] != nil && proto == nil { ok = false }
        guard ok, let portList else { return nil }
        if let host {
            // QUIC carries its server name encrypted: a name rule never opens it, so
            // clients fall back to TCP, whose ClientHello can be checked (Docs/network.md).
            if proto == .udp && portList.contains(443) {
                error(p.key("ports"), "udp port 443 (QUIC) is not opened by a host rule; clients fall back to TCP 443 (list it with proto = \"tcp\"), or open QUIC with a cidr rule")
                return nil
            }
            return .host(HostRule(host: host, ports: portList, proto: proto ?? .tcp))
        }
        guard let cidr else { return nil }
        return .cidr(AllowRule(cidr: cidr, ports: portList, proto: proto ?? .tcp))
    }

    private func readBinary(_ t: TOMLTable, at p: TOMLPath, into layer: inout PolicyLayer) {
        layer.requireRootOwned = bool(t, "require_root_owned", at: p)
        layer.rejectWritable = bool(t, "reject_writable", at: p)
        layer.rejectSetuid = bool(t, "reject_setuid", at: p)
        if let pins = table(t, "pin", at: p) {
            let pp = p.key("pin")
            for key in pins.keys.sorted() {
                let kp = pp.key(key)
                guard key.hasPrefix("/"), !key.contains("{"), !key.contains("\0"),
                      !key.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
                    error(kp, "pin keys are absolute paths of executables without templates or \"..\", e.g. \"/usr/bin/python3\"")
                    continue
                }
                guard let value = pins[key], expect(value, .string, at: kp), let s = value.string else { continue }
                if s == "!" { layer.pin[Paths.normalize(key)] = .unset; continue }
                let digest = s.lowercased()
                let hex = digest.dropFirst("sha256:".count)
                guard digest.hasPrefix("sha256:"), hex.count == 64,
                      hex.allSatisfy({ $0.isHexDigit && $0.isASCII }) else {
                    error(kp, "invalid digest \"\(s)\"; write \"sha256:\" followed by 64 hex digits (as printed by sha256sum)")
                    continue
                }
                layer.pin[Paths.normalize(key)] = .value(digest)
            }
        }
    }

    // MARK: - Values

    private func userSpec(_ t: TOMLTable, _ key: String, at p: TOMLPath) -> UserSpec? {
        guard let v = t[key] else { return nil }
        let kp = p.key(key)
        let allowed = "a numeric id 0…4294967294 or \"invoker\""
        if v.type == .string, let s = v.string {
            if s == "invoker" { return .invoker }
            error(kp, "invalid \(key) \"\(s)\"; write \(allowed) (names are not looked up)")
            return nil
        }
        if v.type == .int, let n = v.int {
            // 4294967295 is (uid_t)-1, which setresuid reads as "unchanged".
            if n >= 0 && n <= 4_294_967_294 { return .id(UInt32(n)) }
            error(kp, "\(key) = \(n) is out of range; write \(allowed)")
            return nil
        }
        error(kp, "expected \(allowed), found \(describe(v.type))")
        return nil
    }

    func path(_ s: String, at kp: TOMLPath, allowOptional: Bool) -> PathTemplate? {
        switch PathTemplates.parse(s, policyDir: policyDir, allowOptional: allowOptional) {
        case .success(let t): return t
        case .failure(let why): error(kp, why.message); return nil
        }
    }

    private func duration(_ t: TOMLTable, _ key: String, at p: TOMLPath) -> UInt64? {
        guard let v = t[key] else { return nil }
        let kp = p.key(key)
        var ms: UInt64?
        switch v.type {
        case .int:
            let n = v.int ?? 0
            if n <= 0 { error(kp, "\(key) = \(n) must be positive; write \(PolicyDuration.acceptedForms)"); return nil }
            ms = UInt64(n).multipliedReportingOverflow(by: 1000).overflow ? nil : UInt64(n) * 1000
            if ms == nil { error(kp, "\(key) = \(n) is too large") }
        case .string:
            switch PolicyDuration.parseMilliseconds(v.string ?? "") {
            case .success(let value):
                if value == 0 { error(kp, "\(key) must be positive; write \(PolicyDuration.acceptedForms)"); return nil }
                ms = value
            case .failure(let why):
                error(kp, why.message)
            }
        default:
            error(kp, "expected a duration, found \(describe(v.type)); write \(PolicyDuration.acceptedForms)")
        }
        return ms
    }

    private func size(_ t: TOMLTable, _ key: String, at p: TOMLPath, allowZero: Bool) -> UInt64? {
        guard let v = t[key] else { return nil }
        let kp = p.key(key)
        guard let bytes = sizeValue(v, at: kp) else { return nil }
        if bytes == 0 && !allowZero {
            error(kp, "\(key) must be more than 0 bytes; write \(ByteSize.acceptedForms)")
            return nil
        }
        return bytes
    }

    private func sizeValue(_ v: TOMLValueConvertible, at kp: TOMLPath) -> UInt64? {
        switch v.type {
        case .int:
            let n = v.int ?? 0
            if n < 0 { error(kp, "a size cannot be negative (\(n)); write \(ByteSize.acceptedForms)"); return nil }
            return UInt64(n)
        case .string:
            switch ByteSize.parse(v.string ?? "") {
            case .success(let b): return b
            case .failure(let why): error(kp, why.message); return nil
            }
        default:
            error(kp, "expected a size, found \(describe(v.type)); write \(ByteSize.acceptedForms)")
            return nil
        }
    }

    private func rlimitValue(_ v: TOMLValueConvertible, _ which: Rlimit, at kp: TOMLPath) -> RlimitValue? {
        let isBytes = PolicySchema.byteRlimits.contains(which)
        let allowed = isBytes
            ? "a non-negative number of bytes, a size such as \"8MiB\", or \"unlimited\""
            : "a non-negative integer or \"unlimited\""
        if v.type == .string, v.string == "unlimited" { return .unlimited }
        if v.type == .int, let n = v.int {
            if n >= 0 { return .value(UInt64(n)) }
            error(kp, "\(which.rawValue) = \(n) cannot be negative; write \(allowed)")
            return nil
        }
        if v.type == .string, isBytes, let s = v.string {
            switch ByteSize.parse(s) {
            case .success(let b): return .value(b)
            case .failure(let why): error(kp, why.message + ", or \"unlimited\""); return nil
            }
        }
        if v.type == .string, let s = v.string {
            error(kp, "invalid value \"\(s)\"; write \(allowed)")
        } else {
            error(kp, "expected \(allowed), found \(describe(v.type))")
        }
        return nil
    }

    /// One port number of a list (`number` nil: the item was no integer, of type
    /// `found`), or nil after saying why at `ip`.
    private func port(_ number: Int?, found: TOMLType, at ip: TOMLPath) -> UInt16? {
        guard let n = number else {
            error(ip, "expected a port number 1…65535, found \(describe(found))")
            return nil
        }
        guard n >= 1 && n <= 65_535 else {
            error(ip, "port \(n) is out of range; ports are 1…65535")
            return nil
        }
        return UInt16(n)
    }

    private func ports(_ t: TOMLTable, _ key: String, at p: TOMLPath) -> [UInt16]? {
        guard let v = t[key] else { return nil }
        let kp = p.key(key)
        guard expect(v, .array, at: kp), let items = v.array else { return nil }
        var out: [UInt16] = []
        var ok = true
        for i in 0..<items.count {
            let item = items[i]
            let ip = kp.index(i)
            guard let port = port(item.type == .int ? item.int : nil, found: item.type, at: ip) else { ok = false; continue }
            if !out.contains(port) { out.append(port) }
        }
        return ok ? out : nil
    }

    private func profile(_ s: String, at kp: TOMLPath) -> ProfileRef? {
        let forms = "write \"none\", the name of a profile in Profiles/seccomp (e.g. \"default\"), or a path to an OCI seccomp JSON file"
        if s == "none" { return ProfileRef.none }
        if s.isEmpty { error(kp, "empty profile; \(forms)"); return nil }
        if s.contains("/") || s.hasSuffix(".json") {
            var text = s
            if text.hasPrefix("{policy_dir}") { text = policyDir + "/" + text.dropFirst("{policy_dir}".count) }
            if text.contains("{") || text.contains("}") {
                error(kp, "\"\(s)\": only {policy_dir} may be used in a profile path (the profile is read when the policy is loaded)")
                return nil
            }
            let resolved = Paths.join(policyDir, text)
            switch PolicyFile.kind(resolved) {
            case .regular:
                return .file(resolved)
            case .missing:
                error(kp, "seccomp profile file not found: \(resolved); \(forms)")
            case let other:
                // A FIFO would block the loader, /dev/zero never ends: only a regular file is read.
                error(kp, "seccomp profile \(resolved) is \(PolicyFile.describe(other) ?? "not a regular file"), not a regular JSON file; \(forms)")
            }
            return nil
        }
        guard isPolicyName(s) else {
            error(kp, "invalid profile name \"\(s)\"; \(forms)")
            return nil
        }
        let candidates = profileDirs.map { Paths.join($0, s + ".json") }
        if let found = candidates.first(where: { PolicyFile.kind($0) == .regular }) { return .file(found) }
        if let special = candidates.first(where: { if case .special = PolicyFile.kind($0) { return true } else { return false } }) {
            error(kp, "seccomp profile \"\(s)\" is \(PolicyFile.describe(PolicyFile.kind(special)) ?? "not a regular file") (\(special)), not a regular JSON file; \(forms)")
            return nil
        }
        if candidates.isEmpty {
            error(kp, "seccomp profile \"\(s)\" not found: no data directory with Profiles/seccomp was found (set SANDBOX_DATA_DIR); \(forms)")
        } else {
            error(kp, "seccomp profile \"\(s)\" not found; looked for \(candidates.joinedText(separator: ", ")); \(forms)")
        }
        return nil
    }

    private func parseCIDR(_ s: String, at kp: TOMLPath) -> CIDR? {
        let example = "write an IPv4 or IPv6 network such as \"140.82.112.0/20\" or \"2606:50c0::/32\""
        switch CIDR.parse(s) {
        case .success(let c):
            return c
        case .failure(let why):
            let address = s.split(separator: "/", omittingEmptySubsequences: false).first.map(String.init) ?? s
            let reason: String
            switch why {
            case .malformed: reason = "more than one \"/\""
            case .badAddress: reason = "\"\(address)\" is not an IPv4 or IPv6 address"
            case .badPrefix:
                let width = IPAddress(address)?.bitWidth ?? 32
                reason = "the prefix length must be 0…\(width)"
            case .hostBitsSet: reason = "bits are set after the prefix (the address must be the network's first address)"
            }
            error(kp, "invalid CIDR \"\(s)\": \(reason); \(example)")
            return nil
        }
    }

    // MARK: - Generic readers

    /// A sub-table of `t` (with its unknown keys reported), or nil if absent or not a table.
    func section(_ t: TOMLTable, _ key: String, at p: TOMLPath, allowed: [String]) -> TOMLTable? {
        guard let sub = table(t, key, at: p) else { return nil }
        checkKeys(sub, at: p.key(key), allowed: allowed, noun: "key", place: "in [\(p.key(key))]")
        checkMarkers(sub, at: p.key(key), allowed: allowed)
        return sub
    }

    /// `"!"` and `{ replace = […] }` where the key takes neither: reported, and the key
    /// dropped from `t`, so its reader does not also say "expected a size".
    func checkMarkers(_ t: TOMLTable, at p: TOMLPath, allowed: [String]) {
        for key in t.keys.sorted() where allowed.contains(key) {
            guard let v = t[key] else { continue }
            let kp = p.key(key)
            let name = kp.description
            if PolicySchema.tables.contains(name) { continue }
            if v.type == .table, let inner = v.table, inner.contains(key: "replace"), !PolicySchema.lists.contains(name) {
                error(kp, "{ replace = […] } replaces an inherited list, and \(name) is not a list; write its value (\(PolicySchema.unsettable.contains(name) ? "or \"!\" to unset an inherited one" : "it cannot be unset"))")
                t.remove(at: key)
            } else if isUnsetMarker(v), !PolicySchema.unsettable.contains(name) {
                if PolicySchema.lists.contains(name) {
                    error(kp, "\"!\" unsets a scalar; \(name) is a list: write \(key) = { replace = [] } to drop every inherited entry, or \"!X\" entries to remove one")
                } else {
                    error(kp, "\(name) cannot be unset: it always has a value (its default when no file sets it); write the value this policy needs")
                }
                t.remove(at: key)
            }
        }
    }

    func isUnsetMarker(_ v: TOMLValueConvertible) -> Bool {
        v.type == .string && v.string == "!"
    }

    /// `key = "!"` (unset what a base set) as `.unset`; otherwise the value `read` finds.
    func setting<T>(_ t: TOMLTable, _ key: String, read: () -> T?) -> Setting<T>? {
        if let v = t[key], isUnsetMarker(v) { return .unset }
        return read().map { .value($0) }
    }

    /// Where `path` is written, for diagnostics the merge makes.
    func location(_ path: TOMLPath) -> KeyLocation {
        KeyLocation(file: file, keyPath: path.description, line: index?.line(for: path))
    }

    func table(_ t: TOMLTable, _ key: String, at p: TOMLPath) -> TOMLTable? {
        guard let v = t[key], expect(v, .table, at: p.key(key)) else { return nil }
        return v.table
    }

    func checkKeys(_ t: TOMLTable, at p: TOMLPath, allowed: [String], noun: String, place: String?) {
        for key in t.keys.sorted() where !allowed.contains(key) {
            unknownKey(key, at: p.key(key), allowed: allowed, noun: noun, place: place)
        }
    }

    func unknownKey(_ key: String, at kp: TOMLPath, allowed: [String], noun: String, place: String?) {
        // Past the diagnostics limit only the count matters: skip the spelling search.
        guard diagnostics.count < PolicyLimits.maxDiagnostics else { omitted += 1; return }
        var message = "unknown \(noun) \"\(key)\""
        if let place { message += " " + place }
        if let guess = Validate.closest(to: key, in: allowed) { message += " (did you mean \"\(guess)\"?)" }
        message += "; allowed: \(allowed.joinedText(separator: ", "))"
        error(kp, message)
    }

    @discardableResult
    func expect(_ v: TOMLValueConvertible, _ type: TOMLType, at kp: TOMLPath) -> Bool {
        if v.type == type { return true }
        error(kp, "expected \(describe(type)), found \(describe(v.type))")
        return false
    }

    func string(_ t: TOMLTable, _ key: String, at p: TOMLPath) -> String? {
        guard let v = t[key], expect(v, .string, at: p.key(key)) else { return nil }
        return v.string
    }

    func bool(_ t: TOMLTable, _ key: String, at p: TOMLPath) -> Bool? {
        guard let v = t[key], expect(v, .bool, at: p.key(key)) else { return nil }
        return v.bool
    }

    func integer(_ t: TOMLTable, _ key: String, at p: TOMLPath) -> Int? {
        guard let v = t[key], expect(v, .int, at: p.key(key)) else { return nil }
        return v.int
    }

    func enumValue<E: RawRepresentable & CaseIterable>(_ t: TOMLTable, _ key: String, at p: TOMLPath, _: E.Type) -> E? where E.RawValue == String {
        guard let s = string(t, key, at: p) else { return nil }
        return parseEnum(s, at: p.key(key), E.self)
    }

    func parseEnum<E: RawRepresentable & CaseIterable>(_ s: String, at kp: TOMLPath, _: E.Type) -> E? where E.RawValue == String {
        if let e = E(rawValue: s) { return e }
        let allowed = E.allCases.map { "\"\($0.rawValue)\"" }.joinedText(separator: ", ")
        error(kp, "unknown value \"\(s)\"; allowed: \(allowed)")
        return nil
    }

    /// The strings of an array, each with its key path; wrong-typed items are reported.
    func stringList(_ v: TOMLValueConvertible, at kp: TOMLPath, what: String) -> [(String, TOMLPath)]? {
        guard v.type == .array, let items = v.array else {
            error(kp, "expected an array of strings, found \(describe(v.type)); \(what)")
            return nil
        }
        var out: [(String, TOMLPath)] = []
        for i in 0..<items.count {
            let item = items[i]
            if item.type == .string, let s = item.string {
                out.append((s, kp.index(i)))
            } else {
                error(kp.index(i), "expected a string, found \(describe(item.type))")
            }
        }
        return out
    }

    /// The array a list key holds, written `[…]` or `{ replace = […] }` (then the
    /// inherited list is dropped first), with the key path of its items; nil
    /// (reported) when it is neither.
    func listValue(_ v: TOMLValueConvertible, at kp: TOMLPath, what: String) -> (items: TOMLArray, path: TOMLPath, replace: Bool)? {
        if v.type == .array, let items = v.array { return (items, kp, false) }
        if v.type == .table, let t = v.table {
            checkKeys(t, at: kp, allowed: ["replace"], noun: "key", place: "in { replace = […] }")
            guard let r = t["replace"] else {
                error(kp, "expected an array or { replace = […] }; \(what)")
                return nil
            }
            let rp = kp.key("replace")
            guard r.type == .array, let items = r.array else {
                error(rp, "expected an array, found \(describe(r.type)); \(what)")
                return nil
            }
            return (items, rp, true)
        }
        error(kp, "expected an array, found \(describe(v.type)); \(what)")
        return nil
    }

    /// A list key whose items may be `"!X"` to remove an inherited `X`, or which may be
    /// `{ replace = […] }` to replace the inherited list.
    /// - Parameter table: reads an entry written as a table (`ro`, `rw`: a bind with a
    ///   destination); nil: only strings.
    func edits<T>(_ t: TOMLTable, _ key: String, at p: TOMLPath, table: ((TOMLTable, TOMLPath) -> T?)? = nil,
                  parse: (String, TOMLPath) -> T?) -> [ListEdit<T>] {
        guard let v = t[key] else { return [] }
        let what = "write a list such as [\"a\", \"b\"]; an entry \"!X\" removes an inherited X, and { replace = [\"a\"] } replaces the inherited list"
        guard let list = listValue(v, at: p.key(key), what: what) else { return [] }
        var out: [ListEdit<T>] = list.replace ? [.clear] : []
        for i in 0..<list.items.count {
            let item = list.items[i]
            let kp = list.path.index(i)
            if let table, item.type == .table, let entry = item.table {
                if let value = table(entry, kp) { out.append(.add(value)) }
                continue
            }
            guard item.type == .string, let s = item.string else {
                error(kp, "expected a string, found \(describe(item.type))")
                continue
            }
            if let rest = removal(s, at: kp, replacing: list.replace) {
                if let value = parse(rest, kp) { out.append(.remove(value)) }
            } else if !s.hasPrefix("!"), let value = parse(s, kp) {
                out.append(.add(value))
            }
        }
        return out
    }

    /// What `"!X"` removes (`X`); nil for an entry that adds, and for a removal that
    /// is an error (reported): `"!"` alone, or any inside `{ replace = […] }`, where
    /// nothing inherited is left to remove.
    func removal(_ s: String, at kp: TOMLPath, replacing: Bool) -> String? {
        guard s.hasPrefix("!") else { return nil }
        let rest = String(s.dropFirst())
        if rest.isEmpty {
            error(kp, "\"!\" alone removes nothing; write \"!X\" to remove an inherited X")
            return nil
        }
        if replacing {
            error(kp, "\"\(s)\" inside { replace = […] } removes nothing: the inherited entries are dropped already; list only what this policy keeps")
            return nil
        }
        return rest
    }

    func describe(_ type: TOMLType) -> String {
        switch type {
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a floating-point number"
        case .bool: return "a boolean (true or false)"
        case .table: return "a table"
        case .array: return "an array"
        case .date: return "a date"
        case .time: return "a time"
        case .dateTime: return "a date-time"
        }
    }

    private func formatNumber(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }

    private func isPolicyName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s.first != "." && s.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == "-" || $0 == "."
        }
    }
}

enum Validate {
    /// RFC 1123 host name; nil when valid, else why not.
    static func hostname(_ s: String, maxLength: Int) -> String? {
        if s.isEmpty { return "it is empty" }
        if s.utf8.count > maxLength { return "longer than \(maxLength) characters" }
        for label in s.split(separator: ".", omittingEmptySubsequences: false) {
            if label.isEmpty { return "empty label; labels are separated by single dots" }
            if label.utf8.count > 63 { return "label \"\(label)\" is longer than 63 characters" }
            if label.first == "-" || label.last == "-" { return "label \"\(label)\" starts or ends with \"-\"" }
            if !label.unicodeScalars.allSatisfy({
                ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-"
            }) {
                return "use letters, digits and \"-\" in dot-separated labels (RFC 1123)"
            }
        }
        return nil
    }

    static func isEnvName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || (first >= "a" && first <= "z") || (first >= "A" && first <= "Z") else {
            return false
        }
        return s.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_"
        }
    }

    /// The allowed word nearest to a misspelt one, if it is close enough to be a typo.
    static func closest(to word: String, in candidates: [String]) -> String? {
        let w = Array(word.lowercased())
        var best: (String, Int)? = nil
        for c in candidates {
            let d = distance(w, Array(c.lowercased()))
            if d <= max(1, min(w.count, c.count) / 3), best == nil || d < best!.1 { best = (c, d) }
        }
        return best?.0
    }

    private static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
