/// Policy texts at, just past and far past each bound of `PolicyLimits`, in shapes
/// that cost a parser: nesting, long keys and values, many keys, values and lines.
enum HostileShapes {
    /// A count at the edge of `limit`: one below, at, one above, or far above.
    static func around(_ limit: Int, _ r: inout FuzzRandom, far: Int) -> Int {
        r.pick([limit - 1, limit, limit + 1, limit + 1 + r.below(far)])
    }

    static func random(_ r: inout FuzzRandom) -> (String, String) {
        switch r.below(16) {
        case 0:
            let n = around(8, &r, far: 30_000)
            let key = (0..<n).map { _ in r.pick(["a", "process", "x"]) }.joined(separator: ".")
            return ("\(key) = 1\n", "dotted-key parts=\(n)")
        case 1:
            let n = around(8, &r, far: 30_000)
            return ("a = " + String(repeating: "[", count: n) + String(repeating: "]", count: n) + "\n", "nested-arrays \(n)")
        case 2:
            let n = around(8, &r, far: 20_000)
            return ("a = " + String(repeating: "{b = ", count: n) + "1" + String(repeating: "}", count: n) + "\n", "nested-inline \(n)")
        case 3:
            let n = around(8, &r, far: 20_000)
            let open = r.oneIn(2) ? "[[" : "["
            return (open + Array(repeating: "a", count: n).joined(separator: ".") + (open == "[[" ? "]]" : "]") + "\n", "deep-header \(n)")
        case 4:
            let n = around(4096, &r, far: 30_000)
            let perLine = 200
            var lines: [String] = []
            var i = 0
            while i < n { lines.append(Array(repeating: "\"/x\(i)\"", count: min(perLine, n - i)).joined(separator: ",")); i += perLine }
            return ("[filesystem]\nro = [\n" + lines.joined(separator: ",\n") + "\n]\n", "array-items \(n)")
        case 5:
            let n = around(16 << 10, &r, far: 40_000)
            let where_ = r.below(3)
            let s = String(repeating: r.pick(["a", "é", "/"]), count: n)
            switch where_ {
            case 0: return ("[process]\nhostname = \"\(s)\"\n", "long-value \(n)")
            case 1: return ("[process.env.set]\n\"\(s)\" = \"x\"\n", "long-key \(n)")
            default: return ("[process]\nworkdir = \"\"\"\n" + (0..<(n / 1000 + 1)).map { _ in String(repeating: "w", count: 1000) }.joined(separator: "\n") + "\"\"\"\n", "long-multiline \(n)")
            }
        case 6:
            let n = around(4096, &r, far: 20_000)
            return ("[process.env.set]\n" + (0..<n).map { "K\($0) = \"v\"" }.joined(separator: "\n") + "\n", "keys \(n)")
        case 7:
            let n = around(65_536, &r, far: 100_000)
            let arrays = (n + 3999) / 4000
            var out = ""
            for a in 0..<arrays {
                let m = min(4000, n - a * 4000)
                out += "k\(a) = [" + (0..<m).map { _ in "1" }.joined(separator: ",\n") + "]\n"
            }
            return (out, "values \(n)")
        case 8:
            let n = around(1 << 20, &r, far: 1 << 20)
            let line = String(repeating: "#", count: 1023) + "\n"
            var s = String(repeating: line, count: n / 1024)
            s += String(repeating: "#", count: n % 1024)
            return (s, "file-bytes \(n)")
        case 9:
            let n = around(64 << 10, &r, far: 200_000)
            return ("# " + String(repeating: "x", count: max(0, n - 2)) + "\nversion = 1\n", "line-bytes \(n)")
        case 10:
            let n = 1 + r.skewed(max: 5_000)
            return ("[filesystem]\nro = [" + (0..<n).map { _ in "\"relative\(r.below(100))\"" }.joined(separator: ",") + "]\n", "diagnostics \(n)")
        case 11:
            let n = 2 + r.skewed(max: 2_000)
            let line = r.pick(["version = 1\n", "[process]\n", "[[network.allow]]\ncidr = \"1.1.1.1/32\"\n", "name = \"x\"\n", "[process.env]\nset = {}\n"])
            return (String(repeating: line, count: n), "duplicates \(n)")
        case 12:
            let n = r.skewed(max: 4_200)
            return ("[network]\nmode = \"egress\"\n" + (0..<n).map { "[[network.allow]]\ncidr = \"10.\($0 / 65536 % 256).\($0 / 256 % 256).\($0 % 256)/32\"\nports = [\(1 + $0 % 65535)]" }.joined(separator: "\n") + "\n", "allow-rules \(n)")
        case 13:
            let n = around(4096, &r, far: 10_000)
            return ((0..<n).map { "[t\($0)]" }.joined(separator: "\n") + "\n", "tables \(n)")
        case 14:
            let n = r.skewed(max: 20_000)
            return ("a = [" + String(repeating: ",", count: n) + "]\n", "commas \(n)")
        default:
            let n = around(8, &r, far: 1000)
            // Arrays of inline tables of arrays…: depth counted across both kinds.
            var s = "1"
            for i in 0..<n { s = i % 2 == 0 ? "[\(s)]" : "{k = \(s)}" }
            return ("[network]\nallow = \(s)\n", "mixed-nesting \(n)")
        }
    }
}
