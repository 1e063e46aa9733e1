/// Every key of the policy language and the kind of value it takes
/// (Docs/policy-reference.md), so values can be made right, almost right and wrong.
enum PolicySchema {
    enum Kind {
        case int(ClosedRange<Int>)
        case float
        case bool
        case size
        case duration
        case path
        case paths
        case names([String])      // an array of strings from this set
        case relNames             // protect: relative names
        case oneOf([String])      // a string from this set
        case userOrID
        case ports
        case stringTable          // name → string
        case rlimits
        case allowRules
        case hostname
        case name
        case syscalls
        case pins
        case hosts
        case addresses
        case envNames
    }

    struct Key {
        var table: String   // "" for the top level
        var name: String
        var kind: Kind
    }

    static let keys: [Key] = [
        Key(table: "", name: "version", kind: .int(1...1)),
        Key(table: "", name: "name", kind: .name),
        Key(table: "process", name: "hostname", kind: .hostname),
        Key(table: "process", name: "user", kind: .userOrID),
        Key(table: "process", name: "group", kind: .userOrID),
        Key(table: "process", name: "workdir", kind: .path),
        Key(table: "process", name: "env.pass", kind: .envNames),
        Key(table: "process", name: "env.set", kind: .stringTable),
        Key(table: "process", name: "timeout", kind: .duration),
        Key(table: "process", name: "grace", kind: .duration),
        Key(table: "process", name: "new_session", kind: .bool),
        Key(table: "process", name: "host_uid", kind: .oneOf(["own", "invoker"])),
        Key(table: "filesystem", name: "ro", kind: .paths),
        Key(table: "filesystem", name: "rw", kind: .paths),
        Key(table: "filesystem", name: "tmpfs", kind: .paths),
        Key(table: "filesystem", name: "protect", kind: .relNames),
        Key(table: "filesystem", name: "mask", kind: .paths),
        Key(table: "filesystem", name: "unix_sockets", kind: .paths),
        Key(table: "filesystem", name: "socket_scan_skip", kind: .paths),
        Key(table: "filesystem", name: "socket_scan_limit", kind: .int(0...10_000_000)),
        Key(table: "landlock", name: "mode", kind: .oneOf(["enforce", "best-effort", "off"])),
        Key(table: "landlock", name: "min_abi", kind: .int(1...64)),
        Key(table: "landlock", name: "connect_tcp", kind: .ports),
        Key(table: "landlock", name: "bind_tcp", kind: .ports),
        Key(table: "landlock", name: "scope", kind: .names(["abstract-unix-socket", "signal"])),
        Key(table: "seccomp", name: "profile", kind: .oneOf(["none", "default"])),
        Key(table: "seccomp", name: "deny", kind: .syscalls),
        Key(table: "seccomp", name: "socket_families", kind: .names(["unix", "inet", "inet6", "netlink", "packet", "vsock", "bluetooth", "can", "alg", "xdp"])),
        Key(table: "seccomp", name: "on_violation", kind: .oneOf(["errno", "kill", "log", "notify"])),
        Key(table: "capabilities", name: "keep", kind: .names(["net_bind_service", "CAP_NET_BIND_SERVICE", "sys_admin", "CAP_SYS_PTRACE", "net_admin", "net_raw", "chown", "dac_override", "setuid", "cap_setgid", "KILL"])),
        Key(table: "resources", name: "memory", kind: .size),
        Key(table: "resources", name: "swap", kind: .size),
        Key(table: "resources", name: "pids", kind: .int(1...4_194_304)),
        Key(table: "resources", name: "cpu", kind: .float),
        Key(table: "resources", name: "io", kind: .int(1...10_000)),
        Key(table: "resources", name: "rlimits", kind: .rlimits),
        Key(table: "resources", name: "best_effort", kind: .names(["memory", "swap", "pids", "cpu", "io"])),
        Key(table: "network", name: "mode", kind: .oneOf(["none", "loopback", "egress"])),
        Key(table: "network", name: "dns", kind: .addresses),
        Key(table: "network", name: "allow", kind: .allowRules),
        Key(table: "network", name: "hosts", kind: .hosts),
        Key(table: "network", name: "max_connections", kind: .int(1...65_536)),
        Key(table: "binary", name: "require_root_owned", kind: .bool),
        Key(table: "binary", name: "reject_writable", kind: .bool),
        Key(table: "binary", name: "reject_setuid", kind: .bool),
        Key(table: "binary", name: "pin", kind: .pins),
        Key(table: "audit", name: "path", kind: .path),
    ]

    static let tables = ["process", "filesystem", "landlock", "seccomp", "capabilities", "resources", "network", "binary", "audit"]
}

/// A policy as tables of (key, value literal), rendered in one of TOML's styles.
struct PolicyDocument {
    var top: [(String, String)] = []
    var tables: [(name: String, entries: [(String, String)])] = []
    var extendsList: [String]? = nil

    mutating func set(_ table: String, _ key: String, _ literal: String) {
        if table.isEmpty {
            top.removeAll { $0.0 == key }
            top.append((key, literal))
            return
        }
        if let i = tables.firstIndex(where: { $0.name == table }) {
            tables[i].entries.removeAll { $0.0 == key }
            tables[i].entries.append((key, literal))
        } else {
            tables.append((table, [(key, literal)]))
        }
    }

    /// Some keys of the schema, each with a value that is right, at an edge or (when
    /// `wrongTypes`) of another type.
    static func random(_ r: inout FuzzRandom, wrongTypes: Bool) -> PolicyDocument {
        var doc = PolicyDocument()
        let count = r.skewed(max: PolicySchema.keys.count)
        for _ in 0..<count {
            let key = r.pick(PolicySchema.keys)
            let literal = wrongTypes && r.oneIn(3) ? Values.wrongType(for: key.kind, &r) : Values.value(for: key.kind, &r)
            doc.set(key.table, key.name, literal)
        }
        if r.oneIn(10) {
            // Unknown keys and tables, near-misses of real ones.
            doc.set(r.pick(PolicySchema.tables + ["", "proces", "Process", "network.allow", "x"]),
                    r.pick(["unknown", "memroy", "Mode", "ro ", "\"quoted key\"", "'lit'", "a.b.c", "env", "set", "allow"]),
                    Values.anyValue(&r))
        }
        return doc
    }

    func render(_ r: inout FuzzRandom) -> String {
        var out = ""
        if let list = extendsList {
            var rr = r
            let items = list.map { Values.quoted($0, &rr) }
            r = rr
            out += "extends = " + (list.count == 1 && r.oneIn(2) ? items[0] : "[" + items.joined(separator: ", ") + "]") + "\n"
        }
        for (k, v) in top { out += "\(k) = \(v)\n" }
        let style = r.below(4)
        for t in tables {
            switch style {
            case 0, 1:   // [table] sections
                out += "\n[\(t.name)]\n"
                for (k, v) in t.entries { out += "\(k) = \(v)\n" }
            case 2:      // dotted keys at the top level
                for (k, v) in t.entries { out += "\(t.name).\(k) = \(v)\n" }
            default:     // one inline table (newlines inside are invalid TOML 1.0: also worth a try)
                guard !t.entries.contains(where: { $0.0.contains(".") }) || r.oneIn(2) else {
                    out += "\n[\(t.name)]\n"
                    for (k, v) in t.entries { out += "\(k) = \(v)\n" }
                    continue
                }
                out += "\(t.name) = { " + t.entries.map { "\($0.0) = \($0.1)" }.joined(separator: ", ") + " }\n"
            }
        }
        return out
    }
}
