/// Seccomp profiles (OCI JSON) that are malformed, hostile or at the edges: wrong
/// types for every field, bad JSON, deep nesting, numbers beyond every range.
enum ProfileShapes {
    static let actions = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                          "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_BOGUS", "", "allow"]
    static let numbers = ["0", "1", "-1", "6", "7", "255", "4095", "4096", "65535", "65536", "2147483647", "4294967295",
                          "4294967296", "9223372036854775807", "9223372036854775808", "18446744073709551615",
                          "18446744073709551616", "-9223372036854775809", "1e400", "-1e400", "1.5", "1e2", "0.0", "-0",
                          "01", "1E+2", "99999999999999999999999999999999"]
    static let ops = ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT", "SCMP_CMP_GE",
                      "SCMP_CMP_MASKED_EQ", "SCMP_CMP_BOGUS", ""]
    static let arches = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_NATIVE",
                         "SCMP_ARCH_MIPS", "SCMP_ARCH_BOGUS", ""]
    static let syscalls = ["read", "write", "ptrace", "execve", "nosuchcall", "", "READ", "socketcall", "clone3",
                           "\\u0000", "\\ud800", "a\\u0000b", String(repeating: "s", count: 5000)]

    static func random(_ r: inout FuzzRandom) -> ([UInt8], String) {
        switch r.below(6) {
        case 0:
            return (Array(structured(&r).utf8), "structured")
        case 1:
            var b = Array(structured(&r).utf8)
            for _ in 0..<(1 + r.below(3)) { mutate(&b, &r) }
            return (b, "mutated")
        case 2:
            let n = HostileShapes.around(32, &r, far: 100_000)
            let open = r.pick(["[", "{\"a\":", "{\"syscalls\":["])
            let close = open == "[" ? "]" : open == "{\"a\":" ? "}" : "]}"
            return (Array((String(repeating: open, count: n) + "1" + String(repeating: close, count: n)).utf8), "depth \(n)")
        case 3:
            let n = HostileShapes.around(65_536, &r, far: 300_000)
            return (Array(("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[" + Array(repeating: "\"read\"", count: n).joined(separator: ",") + "],\"action\":\"SCMP_ACT_ALLOW\"}]}").utf8), "values \(n)")
        case 4:
            let n = HostileShapes.around(1 << 20, &r, far: 1 << 20)
            return (Array(("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"comment\":\"" + String(repeating: "c", count: max(0, n - 50)) + "\"}").utf8), "bytes \(n)")
        default:
            return (Array(r.pick(["", "null", "[]", "{}", "1", "\"x\"", "{", "{\"defaultAction\":", "{\"defaultAction\":\"SCMP_ACT_ALLOW\",}",
                                  "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}{}", "\u{FEFF}{\"defaultAction\":\"SCMP_ACT_ALLOW\"}",
                                  "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"defaultAction\":\"SCMP_ACT_ERRNO\"}",
                                  "{'defaultAction':'SCMP_ACT_ALLOW'}", "{\"defaultAction\":\"SCMP_ACT_ALLOW\" /* c */}",
                                  "{\"defaultAction\":\"\\ud800\"}", "{\"defaultAction\":NaN}", "{\"defaultAction\":Infinity}",
                                  "{\"syscalls\":null}", "{\"syscalls\":[null]}", "{\"syscalls\":[{}]}"]).utf8), "literal")
        }
    }

    /// A profile built from its fields, each right, at an edge or of a wrong type.
    static func structured(_ r: inout FuzzRandom) -> String {
        var fields: [String] = []
        if !r.oneIn(8) { fields.append("\"defaultAction\": " + (r.oneIn(6) ? any(&r) : str(r.pick(actions)))) }
        if r.oneIn(3) { fields.append("\"defaultErrnoRet\": " + (r.oneIn(6) ? any(&r) : r.pick(numbers))) }
        if r.oneIn(2) { fields.append("\"architectures\": " + (r.oneIn(6) ? any(&r) : "[" + (0..<r.below(4)).map { _ in str(r.pick(arches)) }.joined(separator: ",") + "]")) }
        if r.oneIn(6) { fields.append("\"archMap\": " + (r.oneIn(3) ? any(&r) : "[{\"architecture\":\(str(r.pick(arches))),\"subArchitectures\":[\(str(r.pick(arches)))]}]")) }
        if r.oneIn(6) { fields.append("\"flags\": " + (r.oneIn(3) ? any(&r) : "[\(str(r.pick(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "BOGUS"])))]")) }
        if r.oneIn(8) { fields.append("\"listenerPath\": " + str(r.pick(["/run/x.sock", "", "relative"]))) }
        if r.oneIn(8) { fields.append("\"\(r.pick(["unknownField", "DefaultAction", "syscall", ""]))\": " + any(&r)) }
        if !r.oneIn(5) {
            let rules = (0..<r.skewed(max: 12)).map { _ -> String in
                if r.oneIn(10) { return any(&r) }
                var rule: [String] = []
                if r.oneIn(2) {
                    rule.append("\"names\": " + (r.oneIn(8) ? any(&r) : "[" + (0..<r.skewed(max: 6)).map { _ in str(r.pick(syscalls)) }.joined(separator: ",") + "]"))
                } else {
                    rule.append("\"name\": " + (r.oneIn(8) ? any(&r) : str(r.pick(syscalls))))
                }
                if !r.oneIn(6) { rule.append("\"action\": " + (r.oneIn(8) ? any(&r) : str(r.pick(actions)))) }
                if r.oneIn(3) { rule.append("\"errnoRet\": " + (r.oneIn(6) ? any(&r) : r.pick(numbers))) }
                if r.oneIn(3) {
                    let args = (0..<r.skewed(max: 8)).map { _ -> String in
                        if r.oneIn(10) { return any(&r) }
                        var a: [String] = []
                        if !r.oneIn(6) { a.append("\"index\": " + r.pick(numbers)) }
                        if !r.oneIn(6) { a.append("\"value\": " + r.pick(numbers)) }
                        if r.oneIn(2) { a.append("\"valueTwo\": " + r.pick(numbers)) }
                        if !r.oneIn(6) { a.append("\"op\": " + (r.oneIn(8) ? any(&r) : str(r.pick(ops)))) }
                        return "{" + a.joined(separator: ",") + "}"
                    }
                    rule.append("\"args\": [" + args.joined(separator: ",") + "]")
                }
                if r.oneIn(5) {
                    let which = r.pick(["includes", "excludes"])
                    rule.append("\"\(which)\": " + (r.oneIn(4) ? any(&r) : "{\"caps\":[\(str(r.pick(["CAP_SYS_ADMIN", "CAP_BOGUS", ""])))],\"arches\":[\(str(r.pick(arches)))],\"minKernel\":\(str(r.pick(["4.8", "6.18", "x", "", "99999999999.1"])))}"))
                }
                if r.oneIn(6) { rule.append("\"comment\": " + any(&r)) }
                return "{" + rule.joined(separator: ", ") + "}"
            }
            fields.append("\"syscalls\": [" + rules.joined(separator: ",\n") + "]")
        }
        return "{\n" + fields.joined(separator: ",\n") + "\n}\n"
    }

    static func any(_ r: inout FuzzRandom) -> String {
        r.pick(["null", "true", "false", "0", "-1", "1e400", "\"\"", "\"x\"", "[]", "{}", "[1]", "{\"a\":1}",
                "18446744073709551616", "[\"SCMP_ACT_ALLOW\"]", "\"\\u0000\"", "\"\\ud800\""])
    }

    static func str(_ s: String) -> String { "\"" + s + "\"" }

    static func mutate(_ b: inout [UInt8], _ r: inout FuzzRandom) {
        let at = r.below(b.count + 1)
        switch r.below(5) {
        case 0: if !b.isEmpty { b.remove(at: min(at, b.count - 1)) }
        case 1: b.insert(contentsOf: Array(r.pick(["{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "null", "1e999", "-", "."]).utf8), at: at)
        case 2: b.removeSubrange(at...)
        case 3: b.insert(contentsOf: r.pick(Encodings.hostile), at: at)
        default: if !b.isEmpty { b[r.below(b.count)] = UInt8(truncatingIfNeeded: r.next()) }
        }
    }
}
