internal import TOMLKit

/// Bounds on what loading a policy may cost. A policy file is input from whoever
/// wrote it; each bound below is checked before the work it protects, so a hostile
/// file is refused quickly and in little memory, with a diagnostic naming the file
/// and the bound. Docs/policy-reference.md ("Limits") lists them with their defaults.
public enum PolicyLimits {
    /// Largest policy file, in bytes (1 MiB). Checked before the file is read; at most
    /// this many bytes (plus one) are ever read.
    public static let maxFileBytes = 1 << 20
    /// Largest sum of the policy files of one `extends` graph, in bytes (2 MiB).
    /// (TOMLKit keeps every parsed file in memory until the process exits.)
    public static let maxTotalBytes = 2 << 20
    /// Longest line of a policy file, in bytes.
    public static let maxLineBytes = 64 << 10
    /// Deepest key path: the parts of a table header and of a dotted key, plus each
    /// level of arrays and inline tables (`network.allow[0].ports[0]` is 5 deep).
    public static let maxKeyDepth = 8
    /// Keys in one file: every `key = value` (inline tables included) and every
    /// `[table]` / `[[array]]` header.
    public static let maxKeys = 4096
    /// Values in the policy files of one `extends` graph together: every scalar,
    /// array and inline table, array entries included. (Each costs the parser's tree
    /// memory, which TOMLKit does not give back until the process exits.)
    public static let maxValues = 65_536
    /// Entries in one array, in a file and in a list after the `extends` chain is
    /// merged (`filesystem.ro`, `network.allow`, …), and entries of a merged table
    /// (`env.set`, `network.hosts`, `binary.pin`).
    public static let maxArrayItems = 4096
    /// Longest string, key or value, in UTF-8 bytes as written (between the quotes).
    public static let maxStringBytes = 16 << 10
    /// `extends` levels below the policy that was asked for (the root is level 0).
    public static let maxExtendsDepth = 8
    /// Files in the whole `extends` graph, the root included.
    public static let maxPolicyFiles = 32
    /// Diagnostics reported by one load; the rest are counted in a last line
    /// ("… and N more").
    public static let maxDiagnostics = 50
    /// Longest message and key path of one diagnostic, in characters: a key or value
    /// quoted in a message is cut, so 50 diagnostics stay a few kilobytes.
    public static let maxDiagnosticLength = 1024
    /// Largest seccomp profile (JSON), in bytes (1 MiB).
    public static let maxProfileBytes = 1 << 20
    /// Deepest nesting of arrays and objects in a seccomp profile.
    public static let maxProfileDepth = 32
    /// JSON values (objects, arrays, strings, numbers, …) in a seccomp profile.
    public static let maxProfileValues = 65_536

    /// "1 MiB", "64 KiB", "100 bytes": for messages.
    static func bytes(_ n: Int) -> String {
        if n >= 1 << 20 && n % (1 << 20) == 0 { return "\(n >> 20) MiB" }
        if n >= 1 << 10 && n % (1 << 10) == 0 { return "\(n >> 10) KiB" }
        return "\(n) bytes"
    }

    /// The last diagnostic of a capped list: how many more there were.
    static func moreDiagnostic(file: String, count: Int) -> PolicyDiagnostic {
        PolicyDiagnostic(file: file, message: "… and \(count) more problem\(count == 1 ? "" : "s") not shown (diagnostics limit: the first \(maxDiagnostics) are shown)")
    }

    /// At most `maxDiagnostics` of `diagnostics`, each cut to `maxDiagnosticLength`,
    /// plus one "… and N more" naming `extra` + the ones cut.
    static func capped(_ diagnostics: [PolicyDiagnostic], extra: Int = 0, file: String) -> [PolicyDiagnostic] {
        let cut = max(0, diagnostics.count - maxDiagnostics)
        var kept = diagnostics.prefix(maxDiagnostics).map { d -> PolicyDiagnostic in
            var d = d
            d.message = shortened(d.message)
            d.keyPath = d.keyPath.map(shortened)
            return d
        }
        if cut + extra > 0 { kept.append(moreDiagnostic(file: file, count: cut + extra)) }
        return kept
    }

    /// `text`, or its first `maxDiagnosticLength` characters and how many were cut.
    static func shortened(_ text: String) -> String {
        guard text.utf8.count > maxDiagnosticLength else { return text }
        let head = text.prefix(maxDiagnosticLength)
        return head + "…[\(text.utf8.count - head.utf8.count) more bytes]"
    }
}

// MARK: - Before the parser

/// A linear scan of a policy file's raw bytes, run before the TOML parser sees them:
/// not every shape of input costs the parser, or what follows it, linear time and
/// stack (toml++ recurses once per part of a dotted key and overflows the stack at
/// 40 000; the source index cost time quadratic in a key's parts, 90 s and 2 GB for
/// 20 000), so every bound that can be checked on the text is checked here first.
///
/// It follows just enough TOML to tell keys from values: comments, the four kinds of
/// strings, table headers, dotted keys, arrays and inline tables. On text that is not
/// TOML it stops and reports nothing, leaving the syntax error to the parser (which
/// stops at the first error, before anything this scan did not look at).
struct PolicyPrescan {
    /// Which bound was exceeded, and where.
    struct Finding: Error, Equatable {
        var line: Int
        var message: String
    }

    enum Outcome: Equatable {
        /// A bound is exceeded.
        case exceeded(Finding)
        /// The whole text was scanned and is within every bound; it holds `values` values.
        case complete(values: Int)
        /// The scan stopped at text that is not TOML (as far as it can tell): within
        /// the bounds up to there; the parser will report the error, or, if it
        /// accepts the text, `TOMLBounds` checks the tree.
        case stopped
    }

    /// - Parameter valueLimit: the values this file may hold: what is left of
    ///   `PolicyLimits.maxValues` after the files read before it.
    static func check(_ bytes: [UInt8], valueLimit: Int = PolicyLimits.maxValues) -> Outcome {
        bytes.withUnsafeBufferPointer { buffer in
            if let f = checkLines(buffer) { return .exceeded(f) }
            var scan = PolicyPrescan(buffer, valueLimit: valueLimit)
            do {
                try scan.run()
            } catch let f as Finding {
                return .exceeded(f)
            } catch {
                // The scan follows TOML closely but not exactly: should the parser read
                // on past where it stopped, it must still meet nothing that aborts it.
                if let f = scan.parserAbortAfterStop() { return .exceeded(f) }
                return .stopped
            }
            return .complete(values: scan.values)
        }
    }

    static func tooManyValues(valueLimit: Int) -> String {
        valueLimit >= PolicyLimits.maxValues
            ? "value count limit exceeded: the file has more than \(PolicyLimits.maxValues) values"
            : "value count limit exceeded: the policy files of the extends graph have more than \(PolicyLimits.maxValues) values together"
    }

    /// NUL bytes and line length, in one pass.
    static func checkLines(_ b: UnsafeBufferPointer<UInt8>) -> Finding? {
        var line = 1
        var lineStart = 0
        for i in 0..<b.count {
            let c = b[i]
            if c == 0x0A {
                if i - lineStart > PolicyLimits.maxLineBytes { return lineTooLong(line) }
                line += 1
                lineStart = i + 1
            } else if c == 0 {
                return Finding(line: line, message: "the file contains a NUL byte; policy files are UTF-8 text")
            } else if c == 0x5C, i + 5 < b.count, b[i + 1] == 0x75 || b[i + 1] == 0x55,
                      Self.isZeroEscape(b, from: i + 2, digits: b[i + 1] == 0x75 ? 4 : 8) {
                // TOML's \u0000 / \U00000000: a NUL inside a value, which the C side of
                // the sandbox (environment, paths) would silently cut short.
                return Finding(line: line, message: "the file writes a NUL character (\\u0000); no policy value may contain one (the command would see the value cut short there)")
            }
        }
        if b.count - lineStart > PolicyLimits.maxLineBytes { return lineTooLong(line) }
        return nil
    }

    static func isZeroEscape(_ b: UnsafeBufferPointer<UInt8>, from start: Int, digits: Int) -> Bool {
        guard start + digits <= b.count else { return false }
        return (start..<(start + digits)).allSatisfy { b[$0] == 0x30 }
    }

    private static func lineTooLong(_ line: Int) -> Finding {
        Finding(line: line, message: "line length limit exceeded: the line is longer than \(PolicyLimits.bytes(PolicyLimits.maxLineBytes))")
    }

    // MARK: the structural pass

    private struct NotTOML: Error {}

    private enum State {
        case lineStart   // a key or a header may start (top level)
        case key         // a key may start (inside an inline table)
        case value       // a value must start
        case afterValue  // `,`, a closing bracket, or the end of the line
    }

    private struct Frame {
        var isArray: Bool
        /// Depth of the key path of this array or table itself.
        var depth: Int
        var items = 0
    }

    private let b: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var line = 1
    private var state = State.lineStart
    private var stack: [Frame] = []
    private var headerDepth = 0
    private var valueDepth = 0
    private var keys = 0
    private(set) var values = 0
    private let valueLimit: Int

    private init(_ b: UnsafeBufferPointer<UInt8>, valueLimit: Int) { self.b = b; self.valueLimit = valueLimit }

    private func peek(_ offset: Int = 0) -> UInt8? {
        i + offset < b.count ? b[i + offset] : nil
    }

    private func exceeded(_ message: String) -> Finding { Finding(line: line, message: message) }

    private mutating func run() throws {
        // A UTF-8 byte order mark, which the parser skips.
        if b.count >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF { i = 3 }
        while i < b.count {
            let c = b[i]
            switch c {
            case 0x20, 0x09, 0x0D:
                i += 1
            case 0x0A:
                i += 1
                line += 1
                if stack.isEmpty {
                    // A value or header ends at the end of its line.
                    if state == .value { throw NotTOML() }
                    state = .lineStart
                }
            case UInt8(ascii: "#"):
                while i < b.count, b[i] != 0x0A { i += 1 }
            default:
                try token(c)
            }
        }
    }

    private mutating func token(_ c: UInt8) throws {
        switch state {
        case .lineStart:
            if c == UInt8(ascii: "[") {
                try header()
            } else {
                try keyValue(base: headerDepth)
            }
        case .key:
            if c == UInt8(ascii: "}") {   // `{}` or a trailing comma
                try close(array: false)
            } else {
                try keyValue(base: stack.last!.depth)
            }
        case .value:
            try value(c)
        case .afterValue:
            guard let top = stack.last else { throw NotTOML() }
            switch c {
            case UInt8(ascii: ","):
                i += 1
                if top.isArray {
                    state = .value
                    valueDepth = top.depth + 1
                } else {
                    state = .key
                }
            case UInt8(ascii: "]"): try close(array: true)
            case UInt8(ascii: "}"): try close(array: false)
            default: throw NotTOML()
            }
        }
    }

    /// `[a.b]` or `[[a.b]]`.
    private mutating func header() throws {
        let isArray = peek(1) == UInt8(ascii: "[")
        i += isArray ? 2 : 1
        try headerKeyStart(isArray: isArray)
        let parts = try dottedKey()
        headerDepth = parts + (isArray ? 1 : 0)
        if headerDepth > PolicyLimits.maxKeyDepth { throw depthExceeded() }
        try countKey()
        skipBlanks()
        guard peek() == UInt8(ascii: "]") else { throw NotTOML() }
        i += 1
        if isArray {
            guard peek() == UInt8(ascii: "]") else { throw NotTOML() }
            i += 1
        }
        state = .afterValue
    }

    /// The parser (toml++ 3.4) reads a table header's key without checking its first
    /// character and aborts the process (an assertion; in a build without assertions it
    /// is undefined behaviour) when it is not one a key can start with: `[=]`, `[é]`,
    /// `[#`, `[` at the end of a line. Such a header is reported here, before the
    /// parser sees it. (A `[` or `]` is left to the parser, which reports it.)
    private mutating func headerKeyStart(isArray: Bool) throws {
        skipBlanks()
        guard let c = peek() else { return }
        if PolicyPrescan.isASCIIBareKey(c) || c == UInt8(ascii: "\"") || c == UInt8(ascii: "'")
            || c == UInt8(ascii: "]") || (c == UInt8(ascii: "[") && !isArray) {
            return
        }
        let found: String
        switch c {
        case 0x0A, 0x0D: found = "the end of the line"
        case 0x21...0x7E: found = "\"\(Character(Unicode.Scalar(c)))\""
        case 0x80...: found = "a non-ASCII character (a bare key is ASCII: quote the key)"
        default: found = "the control character 0x" + String(c, radix: 16, uppercase: true)
        }
        throw Finding(line: line, message: "malformed TOML: a table header must start with a key (letters, digits, \"_\" and \"-\", or a quoted key), found \(found)")
    }

    /// The parser (toml++ 3.4) also aborts on a `}` where an array entry should start
    /// (`[}]`, `[1, }]`): it asserts that a value never starts with a character that
    /// ends one, and only `]` and `,` are checked before.
    static func braceInArray(line: Int) -> Finding {
        Finding(line: line, message: "malformed TOML: \"}\" where an array entry or the closing \"]\" should be")
    }

    /// The parser (toml++ 3.4) reads `1979-05-27 0` followed by a blank, `,`, `]`, `}`
    /// or `#` as the start of a date-time with a space, and then aborts (the same
    /// `parse_value` assertion). `at`: where a value starts. Its test, as the parser's:
    /// ten characters but `_` of digits and `-`, with `-` 5th and 8th, then one space,
    /// one digit and a character that ends a value (any non-ASCII one counted too).
    static func dateSpaceDigitAborts(_ b: UnsafeBufferPointer<UInt8>, at start: Int) -> Bool {
        func endsValue(_ c: UInt8) -> Bool {
            c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0B || c == 0x0C || c == 0x0D || c >= 0x80
                || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") || c == UInt8(ascii: ",") || c == UInt8(ascii: "#")
        }
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        var chars: [UInt8] = []
        var k = start
        while k < b.count, !(endsValue(b[k]) && b[k] < 0x80) {
            if b[k] != UInt8(ascii: "_") {
                guard chars.count < 10 else { return false }
                chars.append(b[k])
            }
            k += 1
        }
        guard chars.count == 10, isDigit(chars[0]), chars[4] == UInt8(ascii: "-"), chars[7] == UInt8(ascii: "-"),
              chars.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: "-") }) else { return false }
        return k + 2 < b.count && b[k] == 0x20 && isDigit(b[k + 1]) && endsValue(b[k + 2])
    }

    static func dateSpaceDigit(line: Int) -> Finding {
        Finding(line: line, message: "malformed TOML: a date, a space and one digit (\"1979-05-27 0\"); write a date-time as 1979-05-27T07:32:00 or 1979-05-27 07:32:00")
    }

    /// After the scan stopped, should the parser read on: the first of what would abort
    /// it from the line the scan stopped on — a table header without a key
    /// (`headerKeyStart`), or a `}` where an array entry should start — judged from the
    /// text alone, in one pass (brackets opened before that line are not known).
    func parserAbortAfterStop() -> Finding? {
        var lineNumber = line
        var j = i
        while j > 0 && b[j - 1] != 0x0A { j -= 1 }
        var atLineStart = true
        var open: [Bool] = []           // true: `[`, false: `{`
        var entryDue = false            // after `[` or `,` in an array: an entry or `]`
        while j < b.count {
            let c = b[j]
            switch c {
            case 0x0A:
                lineNumber += 1; atLineStart = true; j += 1; continue
            case 0x20, 0x09, 0x0D:
                j += 1; continue
            case UInt8(ascii: "#"):
                while j < b.count && b[j] != 0x0A { j += 1 }
                continue
            case UInt8(ascii: "}"):
                if entryDue { return PolicyPrescan.braceInArray(line: lineNumber) }
                if open.last == false { open.removeLast() }
            case UInt8(ascii: "["):
                if atLineStart && open.isEmpty {
                    var probe = PolicyPrescan(b, valueLimit: valueLimit)
                    probe.line = lineNumber
                    let isArray = j + 1 < b.count && b[j + 1] == UInt8(ascii: "[")
                    probe.i = j + (isArray ? 2 : 1)
                    do { try probe.headerKeyStart(isArray: isArray) } catch let f as Finding { return f } catch {}
                }
                open.append(true)
                entryDue = true
                atLineStart = false
                j += 1
                continue
            case UInt8(ascii: "]"):
                if open.last == true { open.removeLast() }
            case UInt8(ascii: "{"):
                open.append(false)
            case UInt8(ascii: ","):
                if open.last == true { entryDue = true; atLineStart = false; j += 1; continue }
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                // Past the string (one line, or three quotes to three quotes).
                let triple = j + 2 < b.count && b[j + 1] == c && b[j + 2] == c
                j += triple ? 3 : 1
                while j < b.count {
                    if c == UInt8(ascii: "\"") && b[j] == UInt8(ascii: "\\") { j += 2; continue }
                    if b[j] == 0x0A { if !triple { break }; lineNumber += 1 }
                    if b[j] == c && (!triple || (j + 2 < b.count && b[j + 1] == c && b[j + 2] == c)) {
                        j += triple ? 3 : 1
                        break
                    }
                    j += 1
                }
                entryDue = false
                atLineStart = false
                continue
            case 0x30...0x39:
                // A digit where a value could start (after no letter, digit or sign).
                let before = j > 0 ? b[j - 1] : 0x20
                if !PolicyPrescan.isASCIIBareKey(before) && before != UInt8(ascii: "+") && before != UInt8(ascii: ".")
                    && before != UInt8(ascii: ":") && PolicyPrescan.dateSpaceDigitAborts(b, at: j) {
                    return PolicyPrescan.dateSpaceDigit(line: lineNumber)
                }
            default:
                break
            }
            entryDue = false
            atLineStart = false
            j += 1
        }
        return nil
    }

    static func isASCIIBareKey(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }

    /// `a.b.c = ` up to the value.
    private mutating func keyValue(base: Int) throws {
        let parts = try dottedKey()
        if base + parts > PolicyLimits.maxKeyDepth { throw depthExceeded() }
        try countKey()
        skipBlanks()
        guard peek() == UInt8(ascii: "=") else { throw NotTOML() }
        i += 1
        state = .value
        valueDepth = base + parts
    }

    private mutating func countKey() throws {
        keys += 1
        if keys > PolicyLimits.maxKeys {
            throw exceeded("key count limit exceeded: the file has more than \(PolicyLimits.maxKeys) keys")
        }
    }

    private func depthExceeded() -> Finding {
        exceeded("key depth limit exceeded: a key is nested more than \(PolicyLimits.maxKeyDepth) levels deep (table header, dotted key parts and nested arrays and inline tables together)")
    }

    /// The parts of a dotted key; stops counting as soon as the depth bound is passed.
    private mutating func dottedKey() throws -> Int {
        var parts = 0
        while true {
            skipBlanks()
            guard let c = peek() else { throw NotTOML() }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                try string(c, multilineAllowed: false)
            } else {
                let start = i
                while let k = peek(), PolicyPrescan.isBareKey(k) { i += 1 }
                if i == start { throw NotTOML() }
                if i - start > PolicyLimits.maxStringBytes {
                    throw exceeded("string length limit exceeded: a key is longer than \(PolicyLimits.bytes(PolicyLimits.maxStringBytes))")
                }
            }
            parts += 1
            if parts > PolicyLimits.maxKeyDepth { throw depthExceeded() }
            skipBlanks()
            if peek() == UInt8(ascii: ".") { i += 1; continue }
            return parts
        }
    }

    private mutating func value(_ c: UInt8) throws {
        if c == UInt8(ascii: "}"), stack.last?.isArray == true { throw PolicyPrescan.braceInArray(line: line) }
        if var top = stack.last, top.isArray {
            if c == UInt8(ascii: "]") { try close(array: true); return }   // `[]` or a trailing comma
            top.items += 1
            stack[stack.count - 1] = top
            if top.items > PolicyLimits.maxArrayItems {
                throw exceeded("array length limit exceeded: an array has more than \(PolicyLimits.maxArrayItems) entries")
            }
        }
        values += 1
        if values > valueLimit { throw exceeded(PolicyPrescan.tooManyValues(valueLimit: valueLimit)) }
        if valueDepth > PolicyLimits.maxKeyDepth { throw depthExceeded() }
        switch c {
        case UInt8(ascii: "["):
            i += 1
            stack.append(Frame(isArray: true, depth: valueDepth))
            state = .value
            valueDepth += 1
        case UInt8(ascii: "{"):
            i += 1
            stack.append(Frame(isArray: false, depth: valueDepth))
            state = .key
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            try string(c, multilineAllowed: true)
            state = .afterValue
        default:
            // A number, boolean or date: up to what can end a value. (A date may hold a
            // space; a value cannot hold a quote or a bracket.)
            if PolicyPrescan.dateSpaceDigitAborts(b, at: i) { throw PolicyPrescan.dateSpaceDigit(line: line) }
            let start = i
            while let v = peek(), !PolicyPrescan.endsScalar(v) { i += 1 }
            if i == start { throw NotTOML() }
            state = .afterValue
        }
    }

    private mutating func close(array: Bool) throws {
        guard let top = stack.last, top.isArray == array else { throw NotTOML() }
        i += 1
        stack.removeLast()
        state = .afterValue
    }

    private mutating func skipBlanks() {
        while let c = peek(), c == 0x20 || c == 0x09 { i += 1 }
    }

    /// Skips a string of any of the four kinds, counting the lines it spans.
    private mutating func string(_ quote: UInt8, multilineAllowed: Bool) throws {
        let basic = quote == UInt8(ascii: "\"")
        let startLine = line
        func measure(_ start: Int, _ end: Int) throws {
            if end - start > PolicyLimits.maxStringBytes {
                throw Finding(line: startLine, message: "string length limit exceeded: a string is longer than \(PolicyLimits.bytes(PolicyLimits.maxStringBytes))")
            }
        }
        if multilineAllowed, peek(1) == quote, peek(2) == quote {
            i += 3
            let start = i
            while i < b.count {
                let c = b[i]
                if c == 0x0A { line += 1; i += 1; continue }
                if basic && c == UInt8(ascii: "\\") {
                    if peek(1) == 0x0A { line += 1 }   // a line-ending backslash
                    i += 2
                    continue
                }
                if c == quote, peek(1) == quote, peek(2) == quote {
                    let end = i
                    i += 3
                    // Up to two more quotes belong to the content (`""""` ends with one `"` in it).
                    var extra = 0
                    while extra < 2, peek() == quote { i += 1; extra += 1 }
                    try measure(start, end + extra)
                    return
                }
                i += 1
            }
            throw NotTOML()
        }
        i += 1
        let start = i
        while i < b.count {
            let c = b[i]
            if c == 0x0A { throw NotTOML() }
            if basic && c == UInt8(ascii: "\\") { i += 2; continue }
            i += 1
            if c == quote { try measure(start, i - 1); return }
        }
        throw NotTOML()
    }

    static func isBareKey(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c >= 0x80
    }

    static func endsScalar(_ c: UInt8) -> Bool {
        c == UInt8(ascii: ",") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") || c == UInt8(ascii: "#")
            || c == 0x0A || c == UInt8(ascii: "[") || c == UInt8(ascii: "{")
            || c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") || c == UInt8(ascii: "=")
    }
}

// MARK: - After the parser

/// The bounds checked again on the parsed tree, for text the scan stopped on but the
/// parser accepted: key depth (a table header and the dotted keys under it add up),
/// keys (here: every key of every table), values, array entries and string lengths
/// (here: decoded). Each bound is reported once, at the first key path past it.
struct TOMLBounds {
    private(set) var findings: [(path: TOMLPath, message: String)] = []
    private var keys = 0
    private var values = 0
    private let valueLimit: Int
    private var reported = Set<String>()

    /// - Parameter valueLimit: as for `PolicyPrescan.check`.
    static func check(_ root: TOMLTable, valueLimit: Int = PolicyLimits.maxValues)
        -> (findings: [(path: TOMLPath, message: String)], values: Int) {
        var bounds = TOMLBounds(valueLimit: valueLimit)
        bounds.walk(table: root, at: .root)
        return (bounds.findings, bounds.values)
    }

    private init(valueLimit: Int) { self.valueLimit = valueLimit }

    private mutating func report(_ bound: String, _ path: TOMLPath, _ message: String) {
        if reported.insert(bound).inserted { findings.append((path, message)) }
    }

    private mutating func walk(table: TOMLTable, at path: TOMLPath) {
        for key in table.keys {
            let kp = path.key(key)
            keys += 1
            if keys > PolicyLimits.maxKeys {
                report("keys", kp, "key count limit exceeded: the file has more than \(PolicyLimits.maxKeys) keys")
                return
            }
            if key.utf8.count > PolicyLimits.maxStringBytes {
                report("string", path, "string length limit exceeded: a key is longer than \(PolicyLimits.bytes(PolicyLimits.maxStringBytes))")
                continue
            }
            if let value = table[key] { walk(value: value, at: kp) }
        }
    }

    private mutating func walk(value: TOMLValueConvertible, at path: TOMLPath) {
        // Values as the scan counts them: scalars, arrays and inline tables, not the
        // tables of `[headers]` and dotted keys.
        if value.type != .table || value.table?.inline == true { values += 1 }
        if values > valueLimit {
            report("values", path, PolicyPrescan.tooManyValues(valueLimit: valueLimit))
            return
        }
        if path.components.count > PolicyLimits.maxKeyDepth {
            report("depth", path, "key depth limit exceeded: a key is nested more than \(PolicyLimits.maxKeyDepth) levels deep (table header, dotted key parts and nested arrays and inline tables together)")
            return
        }
        switch value.type {
        case .table:
            if let t = value.table { walk(table: t, at: path) }
        case .array:
            guard let items = value.array else { return }
            let count = items.count
            if count > PolicyLimits.maxArrayItems {
                report("array", path, "array length limit exceeded: \(count) entries, more than \(PolicyLimits.maxArrayItems)")
                return
            }
            for i in 0..<count { walk(value: items[i], at: path.index(i)) }
        case .string:
            if let s = value.string, s.utf8.count > PolicyLimits.maxStringBytes {
                report("string", path, "string length limit exceeded: \(s.utf8.count) bytes, more than \(PolicyLimits.bytes(PolicyLimits.maxStringBytes))")
            }
        default:
            break
        }
    }
}
