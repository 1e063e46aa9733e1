/// TOML value literals: right, at the edges of what each key accepts, and of every
/// wrong type.
enum Values {
    static let ints = [
        "0", "1", "-1", "7", "8", "9", "63", "64", "65", "255", "256", "1023", "1024", "1025", "4095", "4096", "4097",
        "65535", "65536", "65537", "4194304", "4194305", "10000", "10001", "10000000", "10000001",
        "2147483647", "2147483648", "-2147483649", "4294967294", "4294967295", "4294967296",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
        "99999999999999999999999999", "0x7fffffffffffffff", "0xffffffffffffffff", "0o777", "0b101", "+1", "1_000", "-0", "+0",
        "01", "1__0", "0x", "_1",
    ]
    static let floats = [
        "0.0", "-0.0", "0.01", "0.00999999", "0.009999999999999999", "0.0100000001", "1e-320", "5e-324", "0.000001",
        "1.5", "1024.0", "1024.000001", "1025", "1e308", "1.7976931348623157e308", "1e309", "inf", "-inf", "+inf",
        "nan", "-nan", "+nan", "6.02e23", "1e3", "1E-2", "1.", ".5", "1e", "0.1e-400", "3.14_15",
    ]
    static let sizes = [
        "8MiB", "8388608", "8388607", "8388608B", "7.999999MiB", "8.000001MiB", "1B", "0", "0B", "", "1e3",
        "18446744073709551615", "18446744073709551616", "9223372036854775807", "9223372036854775808",
        "16EiB", "8EiB", "9999999999T", "9999999TiB", "1.5GiB", "-1MiB", " 1MiB", "1MiB ", "1 MiB", "1mib", "1m", "0x10",
        "1.0000000001GiB", "0.0000001B", "1.5B", "nanMiB", "infGiB", "1KB", "1kB", "1K", "1KiBB", "MiB", "1..5MiB", "١MiB",
    ]
    static let durations = [
        "0", "0s", "1ms", "0ms", "500ms", "1", "30s", "1m30s", "1m1m", "1h1m1s1ms", "1d", "99999999999999d",
        "2562047h", "9223372036854775807ms", "9223372036854775808", "1.5s", "-1s", "1h60m", "s", "1 s", " 1s", "1S",
        "1us", "1ns", "1w", "1e3s", "inf", "nan", "",
    ]
    static let paths = [
        "/usr", "/tmp", "/etc", "/home", "{cwd}", "{cwd}/x", "{cwd}/..", "{home}", "{home}/.ssh", "{policy_dir}/p",
        "{uid}", "/run/user/{uid}", "/tmp/{run_id}", "/x/{gid}", "{nope}", "{cwd", "cwd}", "/a/{cwd}", "{cwd}{cwd}",
        "relative", "", "/", "//", "/.", "/..", "/../../etc", "/proc", "/proc/self", "/proc/1/root", "/sys", "/dev",
        "/dev/null", "/dev/shm", "/run/sandbox", "/run", "/a?", "?", "/a??", "!/usr", "!", "!!x", "/a\\nb", "/a\\tb",
        "/ünïcødé", "/a/./b/../c", "~", "$HOME", "/etc/shadow", "/usr/bin/../../etc", "/a\\\\b", "/a b", "/a\\\"b",
        "/\\u202e", "/\\u00ff", "/x/.git", "{cwd}/.git/hooks",
    ]
    static let names = ["agent", "a", "", ".", ".hidden", "a-b_c.d", "Ünï", "a/b", "a b", String(repeating: "n", count: 64),
                        String(repeating: "n", count: 65), "-", "..", "a\\u0001"]
    static let hostnames = ["sandbox", "", "a", "-a", "a-", "a..b", "a.b", String(repeating: "h", count: 63),
                            String(repeating: "h", count: 64), String(repeating: "h", count: 65), "UPPER", "a_b", "1", "ü", "a b"]
    static let envNames = ["PATH", "HOME", "_", "A1", "1A", "", "A=B", "A B", "Ä", "!PATH", "!", "LD_PRELOAD", "A\\u0001"]
    static let syscalls = ["ptrace", "bpf", "read", "execve", "nosuchcall", "", "!ptrace", "!", "PTRACE", "open_by_handle_at",
                           "socketcall", "clone3", "io_uring_setup", "arm_fadvise64_64", "_sysctl", "ptrace ", "123"]
    static let addresses = ["1.1.1.1", "::1", "10.0.0.1", "0.0.0.0", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5",
                            "::", "fe80::1%eth0", "::ffff:1.2.3.4", "1.1.1.1/32", "localhost", "", "01.02.03.04", "1.1.1.1 "]
    static let cidrs = ["0.0.0.0/0", "::/0", "10.0.0.0/8", "1.2.3.4/32", "1.2.3.4/33", "1.2.3.4/-1", "1.2.3.4/", "/8",
                        "140.82.112.0/20", "140.82.112.1/20", "2606:50c0::/32", "::1/128", "::1/129", "1.2.3.4", "x/8", ""]
    static let extendsTargets = ["", ".", "..", "/", "/dev/zero", "/dev/null", "/dev/stdin", "/proc/self/environ", "/etc/passwd",
                                 "nonexistent", "./nonexistent.toml", "base", "../../../../../../etc/hostname", "x.toml",
                                 String(repeating: "a", count: 255), String(repeating: "a", count: 4097), "a/", "-", "~/x.toml",
                                 "{cwd}/x.toml", "ünï", " base", "base ", "BASE", "agent.toml/"]

    static func value(for kind: PolicySchema.Kind, _ r: inout FuzzRandom) -> String {
        switch kind {
        case .int(let range):
            if r.oneIn(2) {
                let pick = [range.lowerBound, range.upperBound, range.lowerBound - 1, range.upperBound + 1,
                            range.lowerBound + r.below(max(1, min(range.count, 1 << 20)))]
                return String(r.pick(pick))
            }
            return r.pick(ints)
        case .float: return r.pick(floats + ints)
        case .bool: return r.pick(["true", "false"])
        case .size: return r.oneIn(4) ? r.pick(ints) : quoted(r.pick(sizes), &r)
        case .duration: return r.oneIn(5) ? r.pick(ints) : quoted(r.pick(durations), &r)
        case .path: return quoted(r.pick(paths), &r)
        case .paths: return array((0..<r.skewed(max: 12)).map { _ in quoted(r.pick(paths), &r) })
        case .names(let set): return array((0..<r.skewed(max: 8)).map { _ in quoted(r.oneIn(8) ? r.pick(names + ["!" + r.pick(set)]) : r.pick(set), &r) })
        case .relNames: return array((0..<r.skewed(max: 6)).map { _ in quoted(r.pick([".git", ".sandbox", ".github/workflows", "/abs", "..", "../x", "", ".", "a//b", "!.git", "x?"]), &r) })
        case .oneOf(let set): return quoted(r.oneIn(6) ? r.pick(names + set.map { $0.uppercased() }) : r.pick(set), &r)
        case .userOrID: return r.oneIn(2) ? r.pick(ints) : quoted(r.pick(["invoker", "root", "0", "nobody", ""]), &r)
        case .ports: return array((0..<r.skewed(max: 8)).map { _ in r.pick(["0", "1", "22", "443", "65535", "65536", "-1", "\"443\"", "80.0"]) })
        case .stringTable:
            return table((0..<r.skewed(max: 6)).map { _ in (key(r.pick(envNames), &r), quoted(r.pick(paths + names + ["", "a=b", "x\\u0001y", "\\u00e9"]), &r)) })
        case .rlimits:
            let limits = ["core", "nofile", "nproc", "fsize", "stack", "as", "data", "memlock", "cpu", "rss", "msgqueue", "rtprio", "sigpending", "bogus", ""]
            return table((0..<r.skewed(max: 6)).map { _ in
                (key(r.pick(limits), &r), r.oneIn(2) ? r.pick(ints) : quoted(r.pick(sizes + ["unlimited", "infinity"]), &r))
            })
        case .allowRules:
            let rules = (0..<r.skewed(max: 6)).map { _ -> String in
                var parts: [(String, String)] = []
                if !r.oneIn(6) { parts.append(("cidr", quoted(r.pick(cidrs), &r))) }
                if r.oneIn(2) { parts.append(("ports", value(for: .ports, &r))) }
                if r.oneIn(2) { parts.append(("proto", quoted(r.pick(["tcp", "udp", "icmp", "TCP", "", "any"]), &r))) }
                if r.oneIn(8) { parts.append(("extra", "1")) }
                return table(parts)
            }
            return array(rules)
        case .hostname: return quoted(r.pick(hostnames), &r)
        case .name: return quoted(r.pick(names), &r)
        case .syscalls: return array((0..<r.skewed(max: 10)).map { _ in quoted(r.pick(syscalls), &r) })
        case .pins:
            let digests = ["sha256:" + String(repeating: "a", count: 64), "sha256:" + String(repeating: "A", count: 64),
                           "sha256:" + String(repeating: "a", count: 63), "sha1:abc", "", "sha256:", "sha256:" + String(repeating: "g", count: 64)]
            return table((0..<r.skewed(max: 4)).map { _ in (key(r.pick(paths), &r), quoted(r.pick(digests), &r)) })
        case .hosts:
            return table((0..<r.skewed(max: 4)).map { _ in (key(r.pick(hostnames + ["localhost", "a.example"]), &r), quoted(r.pick(addresses), &r)) })
        case .addresses: return array((0..<r.skewed(max: 5)).map { _ in quoted(r.pick(addresses), &r) })
        case .envNames: return array((0..<r.skewed(max: 8)).map { _ in quoted(r.pick(envNames), &r) })
        }
    }

    /// A value of another type than `kind` takes.
    static func wrongType(for kind: PolicySchema.Kind, _ r: inout FuzzRandom) -> String {
        for _ in 0..<8 {
            let v = anyValue(&r)
            switch kind {
            case .int, .float: if v.first.map({ $0.isNumber || $0 == "-" }) == true { continue }
            case .bool: if v == "true" || v == "false" { continue }
            case .paths, .names, .relNames, .ports, .syscalls, .addresses, .envNames, .allowRules: if v.hasPrefix("[") { continue }
            case .stringTable, .rlimits, .pins, .hosts: if v.hasPrefix("{") { continue }
            default: if v.hasPrefix("\"") || v.hasPrefix("'") { continue }
            }
            return v
        }
        return "1979-05-27T07:32:00Z"
    }

    /// Any TOML value: every type, nested a little.
    static func anyValue(_ r: inout FuzzRandom, depth: Int = 0) -> String {
        switch r.below(depth > 2 ? 8 : 10) {
        case 0: return r.pick(ints)
        case 1: return r.pick(floats)
        case 2: return r.pick(["true", "false"])
        case 3: return quoted(r.pick(paths + sizes + names), &r)
        case 4: return r.pick(["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "1979-05-27T07:32:00.999999-07:00", "1979-05-27 07:32:00"])
        case 5: return "[]"
        case 6: return "{}"
        case 7: return quoted(r.pick(["", "x", "\\u00e9", "\\U0001F600"]), &r)
        case 8: return array((0..<r.below(4)).map { _ in anyValue(&r, depth: depth + 1) })
        default: return table((0..<r.below(3)).map { _ in (key(r.pick(["a", "cidr", "ports", "x y", ""]), &r), anyValue(&r, depth: depth + 1)) })
        }
    }

    /// A TOML string literal for `text` (which may hold TOML escapes): basic, literal or
    /// multi-line.
    static func quoted(_ text: String, _ r: inout FuzzRandom) -> String {
        switch r.below(10) {
        case 0 where !text.contains("'") && !text.contains("\\"): return "'\(text)'"
        case 1 where !text.contains("\\"): return "'''\(text)'''"
        case 2: return "\"\"\"\(text)\"\"\""
        default: return "\"\(text)\""
        }
    }

    static func key(_ text: String, _ r: inout FuzzRandom) -> String {
        let bare = !text.isEmpty && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || $0 == 0x2D }
        return bare && r.oneIn(2) ? text : "\"\(text)\""
    }

    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }

    static func table(_ entries: [(String, String)]) -> String {
        "{ " + entries.map { "\($0.0) = \($0.1)" }.joined(separator: ", ") + " }"
    }
}
