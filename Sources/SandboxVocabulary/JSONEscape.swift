/// RFC 8259's two-character escapes, for the JSON readers written by hand
/// (`SandboxKernel.JSONTree`, the seccomp profile reader in `SandboxPolicy`): the
/// byte `\` followed by `escape` stands for, or nil when `escape` is `u` (four hex
/// digits follow) or not an escape at all.
public enum JSONEscape {
    public static func byte(for escape: UInt8) -> UInt8? {
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): escape
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        default: nil
        }
    }
}
