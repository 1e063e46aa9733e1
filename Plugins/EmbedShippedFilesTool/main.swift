import Foundation

// embed-shipped-files OUTPUT ROOT FILE…: writes OUTPUT, a Swift source holding each
// FILE (relative to ROOT) as a string literal of its exact bytes (EmbedShippedFiles).
// A file that is not UTF-8 fails the build: policies and profiles are UTF-8 text.

let args = CommandLine.arguments
guard args.count >= 3 else {
    FileHandle.standardError.write(Data("usage: embed-shipped-files OUTPUT ROOT FILE…\n".utf8))
    exit(2)
}
let output = args[1], root = args[2]

/// A Swift string literal whose value is exactly `text`.
func literal(_ text: String) -> String {
    var out = "\""
    for u in text.unicodeScalars {
        switch u {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if u.value < 0x20 || u.value == 0x7f { out += "\\u{\(String(u.value, radix: 16))}" } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

var source = """
    // Generated at build time by the EmbedShippedFiles plugin from the repository's
    // Policies/ and Profiles/seccomp/; do not edit (edit those files).

    enum ShippedFiles {
        /// Path relative to the repository → the file's text, byte for byte.
        static let files: [String: String] = [

    """
for file in args[3...] {
    guard let data = FileManager.default.contents(atPath: root + "/" + file) else {
        FileHandle.standardError.write(Data("embed-shipped-files: cannot read \(root)/\(file)\n".utf8))
        exit(1)
    }
    guard let text = String(data: data, encoding: .utf8), Array(text.utf8) == Array(data) else {
        FileHandle.standardError.write(Data("embed-shipped-files: \(file) is not UTF-8 text\n".utf8))
        exit(1)
    }
    source += "        \(literal(file)): \(literal(text)),\n"
}
if args.count == 3 { source += "        :\n" }
source += "    ]\n}\n"
do { try Data(source.utf8).write(to: URL(fileURLWithPath: output), options: .atomic) } catch {
    FileHandle.standardError.write(Data("embed-shipped-files: cannot write \(output): \(error)\n".utf8))
    exit(1)
}
