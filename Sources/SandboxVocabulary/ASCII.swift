extension Character {
    /// `0`–`9` only. For an ASCII character this is what `isASCII && isNumber` says,
    /// read from its byte: `isNumber` and `isLetter` look the character up in the
    /// runtime's Unicode tables, whose first use in a process costs page faults on
    /// every run's start-up (policy values, sizes, durations, digests are ASCII).
    public var isASCIIDigit: Bool { asciiValue.map { (0x30...0x39).contains($0) } ?? false }

    /// `A`–`Z` and `a`–`z` only: for an ASCII character, `isLetter`. Where a check
    /// took `isLetter` or `isNumber` without `isASCII` (the BPF cache's file name, the
    /// kernel release's numbers), these are stricter: any other character is neither.
    public var isASCIILetter: Bool { asciiValue.map { (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) } ?? false }
}
