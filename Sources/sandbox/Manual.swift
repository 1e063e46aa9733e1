import ArgumentParser
import FoundationEssentials

/// `sandbox completions bash|zsh|fish`: ArgumentParser's script for the command tree
/// (subcommands, flags; `--policy` completes the names `sandbox policies` lists, asked
/// of the installed binary at completion time).
struct Completions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "completions",
        abstract: "Print a shell completion script: subcommands, flags and policy names.",
        discussion: """
            bash: sandbox completions bash > /etc/bash_completion.d/sandbox; \
            zsh: sandbox completions zsh > "${fpath[1]}/_sandbox"; \
            fish: sandbox completions fish > ~/.config/fish/completions/sandbox.fish
            """)

    @Argument(help: "The shell: bash, zsh or fish.")
    var shell: CompletionShell

    func run() throws {
        print(Sandbox.completionScript(for: shell))
    }
}

extension CompletionShell: @retroactive ExpressibleByArgument {}

/// `sandbox man`: the manual page (man(7) roff) rendered from the same command
/// definitions as `--help` and the completions (ArgumentParser's description of the
/// tree), so it cannot fall behind the binary: `sandbox man | man -l -`.
struct Man: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "man",
        abstract: "Print the manual page (roff): sandbox man | man -l -, or install it as man1/sandbox.1.")

    func run() throws {
        print(try ManualPage.render(Sandbox._dumpHelp()), terminator: "")
    }
}

/// Renders ArgumentParser's tool description (`--experimental-dump-help`, version 0)
/// as a man(7) page: NAME, SYNOPSIS, DESCRIPTION, then each command with its
/// options and arguments.
enum ManualPage {
    struct Tool: Decodable { var command: Command }
    struct Command: Decodable {
        var commandName: String
        var abstract: String?
        var discussion: String?
        var shouldDisplay: Bool?
        var subcommands: [Command]?
        var arguments: [Argument]?
    }
    struct Argument: Decodable {
        struct Name: Decodable { var kind: String; var name: String }
        var kind: String   // positional, option, flag
        var shouldDisplay: Bool
        var isOptional: Bool
        var isRepeating: Bool
        var names: [Name]?
        var valueName: String?
        var defaultValue: String?
        var abstract: String?
        var discussion: String?
    }

    static func render(_ json: String) throws -> String {
        let tool = try JSONDecoder().decode(Tool.self, from: Data(json.utf8))
        let root = tool.command
        var out = [".TH SANDBOX 1 \"\" \"sandbox \(SandboxVersion.release)\" \"User Commands\"",
                   ".SH NAME", "sandbox \\- \(escape(root.abstract ?? ""))",
                   ".SH SYNOPSIS", ".B sandbox", ".I command", "[options] [arguments]",
                   ".SH DESCRIPTION"]
        out += paragraphs(root.discussion)
        out += options(root, path: [])
        out.append(".SH COMMANDS")
        for sub in root.subcommands ?? [] where sub.shouldDisplay ?? true {
            out += command(sub, path: ["sandbox"])
        }
        out += [".SH SEE ALSO", "The repository's README.md and Docs/ (policy reference, result fields, architecture)."]
        return out.joined(separator: "\n") + "\n"
    }

    static func command(_ c: Command, path: [String]) -> [String] {
        let here = path + [c.commandName]
        var out = [".SS \(escape(here.joined(separator: " ")))", ".B \(escape(here.joined(separator: " ")))"]
        out += shown(c, path: here).map(synopsis)
        out.append(".br")
        if let a = c.abstract { out += [".PP", escape(a)] }
        out += paragraphs(c.discussion)
        out += options(c, path: here)
        for sub in c.subcommands ?? [] where sub.shouldDisplay ?? true { out += command(sub, path: here) }
        return out
    }

    /// The root's `--version` and `--help` are listed once, not under every command.
    static func shown(_ c: Command, path: [String]) -> [Argument] {
        (c.arguments ?? []).filter { a in
            a.shouldDisplay && (path.isEmpty || !(a.names ?? []).contains { ["version", "help"].contains($0.name) })
        }
    }

    static func options(_ c: Command, path: [String]) -> [String] {
        var out: [String] = []
        for a in shown(c, path: path) {
            out += [".TP", synopsis(a).replacing("[", with: "").replacing("]", with: "")]
            var text = a.abstract ?? ""
            if let d = a.defaultValue, !d.isEmpty { text += " (default: \(d))" }
            out.append(escape(text))
            out += paragraphs(a.discussion)
        }
        return out
    }

    /// `[--policy <policy>]`, `<command> ...`, as the usage line writes it.
    static func synopsis(_ a: Argument) -> String {
        let value = "<\(a.valueName ?? "value")>"
        var text: String
        switch a.kind {
        case "positional": text = value
        default:
            let names = (a.names ?? []).map { ($0.kind == "short" ? "-" : "--") + $0.name }.joined(separator: ", ")
            text = a.kind == "option" ? "\(names) \(value)" : names
        }
        if a.isRepeating { text += " ..." }
        if a.isOptional { text = "[\(text)]" }
        return escape(text)
    }

    static func paragraphs(_ text: String?) -> [String] {
        guard let text, !text.isEmpty else { return [] }
        return text.split(separator: "\n", omittingEmptySubsequences: true).flatMap { [".PP", escape(String($0))] }
    }

    /// Text as roff reads it literally: backslashes as `\e`, hyphens as `\-`, other
    /// than ASCII as `\[uXXXX]`, and a line that would start with a control character
    /// (`.`, `'`) guarded.
    static func escape(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\\": out += "\\e"
            case "-": out += "\\-"
            case _ where u.value > 0x7e:
                let hex = String(u.value, radix: 16, uppercase: true)   // %04X
                out += "\\[u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex + "]"
            default: out.unicodeScalars.append(u)
            }
        }
        if out.hasPrefix(".") || out.hasPrefix("'") { out = "\\&" + out }
        return out
    }
}
