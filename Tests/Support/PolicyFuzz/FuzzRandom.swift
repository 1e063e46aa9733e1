/// The fuzzer's only source of randomness: SplitMix64, so a seed and a case number
/// give the same input on every machine and every run (a failure is replayed with
/// `policy-fuzz replay --seed S --case N`).
public struct FuzzRandom: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The generator of case `index` of run `seed`: independent of every other case,
    /// so a case is replayed without generating the ones before it.
    public init(seed: UInt64, case index: Int) {
        var mix = FuzzRandom(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15))
        state = mix.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 0..<n (n > 0).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// True with probability 1/n.
    public mutating func oneIn(_ n: Int) -> Bool { below(n) == 0 }

    public mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// A size skewed towards small values but reaching `max`: most inputs stay cheap,
    /// some go to the bounds.
    public mutating func skewed(max: Int) -> Int {
        let bits = below(Int.bitWidth - max.leadingZeroBitCount + 1)
        return bits == 0 ? 0 : min(max, below(1 << bits))
    }
}
