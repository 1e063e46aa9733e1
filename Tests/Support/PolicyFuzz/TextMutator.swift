/// Byte- and line-level mutations of a policy's text, with a dictionary of TOML
/// tokens so the results stay near the grammar (a random byte flip is almost always
/// just a syntax error).
enum TextMutator {
    static let tokens: [String] = [
        "[", "]", "{", "}", "=", "\"", "'", "'''", "\"\"\"", "\n", ".", ",", "#", "[[", "]]", " = ", "\\",
        "\\u0000", "\\U00000000", "\\uD800", "\\uDFFF", "\\U0010FFFF", "\\U00110000", "\\x41", "\\e", "\\", "\\u00",
        "1e999", "nan", "inf", "-0", "0x", "9223372036854775808", "-9223372036854775809", "1979-05-27T07:32:00Z",
        "true", "!", "?", "{cwd}", "{policy_dir}", "{home}", "{run_id}", "{", "}", "..", "/", "!/usr",
        "extends", "version", "name", "process", "filesystem", "resources", "network", "seccomp", "landlock",
        "memory", "cpu", "pids", "allow", "env.set", "env.pass", "rlimits", "profile", "\"\" = 1", "a.b.c = 1",
        "[process]\n", "[[network.allow]]\n", "[process.env]\n", "[filesystem]\nro = []\n", "\nextends = \"base\"\n",
        "\nextends = \"policy\"\n", "\nextends = \"./policy.toml\"\n", "\n[process]\n", "\r", "\t", "\u{0B}", "\u{0C}",
        "\u{7F}", "\u{1B}[2J", "\u{200B}", "\u{FEFF}", "\u{202E}",
    ]

    static func mutate(_ b: inout [UInt8], _ r: inout FuzzRandom, corpus: [(name: String, text: String)]) {
        let at = r.below(b.count + 1)
        switch r.below(12) {
        case 0:   // flip a byte
            if !b.isEmpty { b[r.below(b.count)] ^= UInt8(1 << r.below(8)) }
        case 1:   // insert a random byte
            b.insert(UInt8(truncatingIfNeeded: r.next()), at: at)
        case 2:   // delete a span
            if !b.isEmpty { let n = min(b.count - at, 1 + r.skewed(max: 64)); b.removeSubrange(at..<(at + n)) }
        case 3:   // duplicate a span
            if at < b.count { let n = min(b.count - at, 1 + r.skewed(max: 200)); b.insert(contentsOf: b[at..<(at + n)], at: at) }
        case 4, 5, 6:   // insert a token
            b.insert(contentsOf: Array(r.pick(tokens).utf8), at: at)
        case 7:   // truncate
            b.removeSubrange(at...)
        case 8:   // line edits: duplicate (duplicate keys and tables), delete or swap
            var lines = b.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            guard lines.count > 1 else { return }
            let i = r.below(lines.count), j = r.below(lines.count)
            switch r.below(3) {
            case 0: lines.insert(lines[i], at: j)
            case 1: lines.remove(at: i)
            default: lines.swapAt(i, j)
            }
            b = Array(lines.joined(separator: [0x0A]))
        case 9:   // replace the value of a `key = value` line with any value
            var lines = b.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            let candidates = lines.indices.filter { lines[$0].contains(0x3D) }
            guard !candidates.isEmpty else { return }
            let i = r.pick(candidates)
            let eq = lines[i].firstIndex(of: 0x3D)!
            lines[i] = Array(lines[i][...eq]) + Array((" " + Values.anyValue(&r)).utf8)
            b = Array(lines.joined(separator: [0x0A]))
        case 10:  // a line from another shipped policy
            let other = r.pick(corpus).text.split(separator: "\n")
            guard !other.isEmpty else { return }
            b.insert(contentsOf: Array((String(r.pick(other)) + "\n").utf8), at: at)
        default:  // a hostile encoding
            b.insert(contentsOf: r.pick(Encodings.hostile), at: at)
        }
    }
}

/// Byte sequences no policy file should contain, and some that are valid but odd.
enum Encodings {
    static let hostile: [[UInt8]] = [
        [0x00], [0xFF], [0xFE], [0xC0, 0x80], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
        [0xF4, 0x90, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98],
        [0x80], [0xBF], [0xEF, 0xBB, 0xBF], [0xEF, 0xBF, 0xBF], [0xF0, 0x9F, 0x98, 0x80], [0xE2, 0x80, 0xAE],
        [0x0D], [0x1B], [0x08], [0x7F], [0x22, 0x00, 0x22], [0x5C, 0x00],
    ]
}
