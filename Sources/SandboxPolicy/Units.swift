
/// Sizes (`512MiB`) and durations (`1m30s`) as written in policy files.
///
/// Both parsers return the error message (what is wrong and what is accepted) instead
/// of throwing, so the loader can attach file, key path and line.
public enum ByteSize {
    /// Unit suffixes and their multipliers. `K`/`M`/`G`/`T` are binary, as in
    /// systemd's `MemoryMax=` and cgroup tooling; `KB`… are decimal (SI).
    static let units: [String: UInt64] = [
        "B": 1,
        "K": 1 << 10, "KiB": 1 << 10, "KB": 1_000,
        "M": 1 << 20, "MiB": 1 << 20, "MB": 1_000_000,
        "G": 1 << 30, "GiB": 1 << 30, "GB": 1_000_000_000,
        "T": 1 << 40, "TiB": 1 << 40, "TB": 1_000_000_000_000,
    ]

    /// What the parser accepts, for error messages.
    public static let acceptedForms =
        "an integer number of bytes, or a number with a unit: B, KB, MB, GB, TB (powers of 1000), "
        + "KiB, MiB, GiB, TiB or K, M, G, T (powers of 1024), e.g. 512MiB or 2GiB"

    /// Parses `"512MiB"`, `"1.5GiB"`, `"100MB"`, `"1024"`, `"1024B"`. Zero is allowed here;
    /// callers that need a positive size check it.
    public static func parse(_ text: String) -> Result<UInt64, PolicyValueError> {
        let s = text.trimmingBlanks()
        let fail = { (why: String) -> Result<UInt64, PolicyValueError> in
            .failure("invalid size \"\(text)\": \(why); write \(acceptedForms)")
        }
        var digits = Substring(""), fraction = Substring("")
        var rest = Substring(s)
        digits = rest.prefix(while: { $0.isASCIIDigit })
        rest = rest.dropFirst(digits.count)
        if rest.first == "." {
            rest = rest.dropFirst()
            fraction = rest.prefix(while: { $0.isASCIIDigit })
            rest = rest.dropFirst(fraction.count)
            if fraction.isEmpty { return fail("a digit must follow the decimal point") }
        }
        if digits.isEmpty { return fail("it does not start with a number") }
        let unit = rest.trimmingBlanks()
        let multiplier: UInt64
        if unit.isEmpty {
            multiplier = 1
        } else if let m = units[unit] {
            multiplier = m
        } else {
            return fail("unknown unit \"\(unit)\"")
        }
        guard let whole = UInt64(digits) else { return fail("the number is too large") }
        let (product, overflow) = whole.multipliedReportingOverflow(by: multiplier)
        if overflow { return fail("the number is too large") }
        var total = product
        if !fraction.isEmpty {
            // Exact integer arithmetic: fraction * multiplier / 10^digits.
            guard fraction.count <= 6 else { return fail("at most 6 digits after the decimal point") }
            let scale = (0..<fraction.count).reduce(UInt64(1)) { acc, _ in acc * 10 }
            let part = UInt64(fraction)! * multiplier
            guard part % scale == 0 else { return fail("it is not a whole number of bytes") }
            let (sum, o2) = total.addingReportingOverflow(part / scale)
            if o2 { return fail("the number is too large") }
            total = sum
        }
        return .success(total)
    }
}

public enum PolicyDuration {
    static let units: [(String, UInt64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]

    public static let acceptedForms =
        "an integer number of seconds, or numbers with units ms, s, m, h, d written together, "
        + "e.g. \"30s\", \"5m\", \"1h\", \"500ms\", \"1m30s\""

    /// Parses `"30s"`, `"1m30s"`, `"500ms"`, `"30"` (seconds) into milliseconds. Zero is
    /// allowed here; callers that need a positive duration check it.
    public static func parseMilliseconds(_ text: String) -> Result<UInt64, PolicyValueError> {
        let s = text.trimmingBlanks()
        let fail = { (why: String) -> Result<UInt64, PolicyValueError> in
            .failure("invalid duration \"\(text)\": \(why); write \(acceptedForms)")
        }
        if s.isEmpty { return fail("it is empty") }
        if s.allSatisfy(\.isASCIIDigit) {
            guard let secs = UInt64(s) else { return fail("the number is too large") }
            let (ms, o) = secs.multipliedReportingOverflow(by: 1_000)
            return o ? fail("the number is too large") : .success(ms)
        }
        var rest = Substring(s)
        var total: UInt64 = 0
        var seen = Set<String>()
        while !rest.isEmpty {
            let digits = rest.prefix(while: \.isASCIIDigit)
            if digits.isEmpty { return fail("expected a number at \"\(rest)\"") }
            rest = rest.dropFirst(digits.count)
            let letters = rest.prefix(while: \.isASCIILetter)
            rest = rest.dropFirst(letters.count)
            guard let mult = units.first(where: { $0.0 == String(letters) })?.1 else {
                if letters.isEmpty { return fail("\"\(digits)\" has no unit") }
                return fail("unknown unit \"\(letters)\"")
            }
            if !seen.insert(String(letters)).inserted { return fail("unit \"\(letters)\" appears twice") }
            guard let n = UInt64(digits) else { return fail("the number is too large") }
            let (p, o1) = n.multipliedReportingOverflow(by: mult)
            let (t, o2) = total.addingReportingOverflow(p)
            if o1 || o2 { return fail("the number is too large") }
            total = t
        }
        return .success(total)
    }

    /// `90_000` → `"1m30s"`: the shortest form `parseMilliseconds` reads back.
    public static func format(milliseconds ms: UInt64) -> String {
        if ms == 0 { return "0s" }
        var rest = ms, out = ""
        for (unit, mult) in units.reversed() where rest >= mult {
            out += "\(rest / mult)\(unit)"
            rest %= mult
        }
        return out
    }
}

extension ByteSize {
    /// `2147483648` → `"2GiB"`; exact binary units only, else bytes.
    public static func format(bytes: UInt64) -> String {
        for (unit, mult) in [("TiB", UInt64(1) << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where bytes >= mult && bytes % mult == 0 {
            return "\(bytes / mult)\(unit)"
        }
        return "\(bytes)B"
    }
}

/// Why a single value is invalid: what is wrong and what is accepted. The loader
/// wraps it into a `PolicyDiagnostic` with file, key path and line.
public struct PolicyValueError: Error, Sendable, Equatable, CustomStringConvertible, ExpressibleByStringInterpolation {
    public var message: String
    public init(_ message: String) { self.message = message }
    public init(stringLiteral value: String) { self.message = value }
    public init(stringInterpolation: DefaultStringInterpolation) { self.message = String(stringInterpolation: stringInterpolation) }
    public var description: String { message }
}

extension StringProtocol {
    /// What Foundation's `trimmingCharacters(in: .whitespaces)` gives — the scalars of
    /// general category Zs, the tab and (as its tables have it) U+200B removed from both
    /// ends; with `newlines`, what `.whitespacesAndNewlines` gives (also U+000A–U+000D,
    /// U+0085 and categories Zl and Zp). BlankTrimmingTests compares them — without
    /// Foundation, which the binary does not link (its ICU cost every run's start-up).
    public func trimmingBlanks(newlines: Bool = false) -> String {
        // Text that starts and ends with an ASCII byte that is not blank (what policy
        // values almost always are) has nothing to trim: no Unicode property lookup,
        // no rebuilt string (both were a measurable part of a cold run's policy load).
        func asciiBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || (newlines && (0x0A...0x0D).contains(b)) }
        if let f = unicodeScalars.first, let l = unicodeScalars.last, f.isASCII, l.isASCII,
           !asciiBlank(UInt8(f.value)), !asciiBlank(UInt8(l.value)) { return String(self) }
        func blank(_ u: Unicode.Scalar) -> Bool {
            if u == "\t" || u == "\u{200B}" || u.properties.generalCategory == .spaceSeparator { return true }
            guard newlines else { return false }
            let category = u.properties.generalCategory
            return (0x0A...0x0D).contains(u.value) || u == "\u{85}" || category == .lineSeparator || category == .paragraphSeparator
        }
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !blank($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !blank($0) })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
