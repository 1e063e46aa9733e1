import Foundation
import Testing
@testable import SandboxPolicy

/// Inputs the policy fuzzer found (Docs/reliability.md), each kept as a regression
/// test: before its fix, each one crashed the process, hung, or was refused without
/// saying where or why.
@Suite struct FuzzFindingsTests {
    /// The diagnostics of loading `text`.
    private func diagnostics(_ text: String) -> [PolicyDiagnostic] {
        let s = PolicyScratch()
        s.write("found.toml", text)
        return s.diagnostics("found.toml")
    }

    /// A table header whose key starts with a character no key starts with aborted the
    /// process inside the TOML parser (toml++'s `parse_key` assertion, SIGABRT: `sandbox
    /// check` died with no message). Seed 11 case 1582 found `[# comment\nprocess]`.
    @Test(arguments: ["[# comment\nprocess]\n", "[=]\n", "[é]\n", "[[é]]\n", "[ é]\n", "[,]\n", "[{]\n", "[.a]\n",
                      "[[#]]\n", "[ \n", "[\r]\n", "[\u{7F}]\n", "[\u{01}]\n", "[+]\n", "[\\]\n", "[[ =]]\n",
                      "version = 1 # x\n[[ é]]\n", "[process]\nhostname = \"a\"\n[=\n",
                      // Seed 20261201 case 11808: a BOM (which stopped the scan before the
                      // parser, which skips it) and, lines later, `[` + U+202E.
                      "\u{FEFF}# comment\nversion = 1\n[\u{202E}network]\n",
                      // After text the scan takes for not TOML, judged line by line.
                      "a = 1 1\n[=]\n"])
    func tableHeaderWithoutAKeyIsRefused(_ text: String) {
        let d = diagnostics(text)
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.message.hasPrefix("malformed TOML: a table header must start with a key") == true, "\(d)")
        #expect(d.first?.line != nil && d.first?.file.hasSuffix("found.toml") == true, "\(d)")
    }

    /// A `}` where an array entry should start aborted the parser too (toml++'s
    /// `parse_value` assertion). Seed 20261201 case 47717: `extends = [}"base"]`.
    @Test(arguments: ["extends = [}\"base\"]\n", "a = [}]\n", "a = [1,}]\n", "a = [\n}]\n", "a = [[}]]\n",
                      "a = [{}, }]\n", "a = {b = [}]}\n", "a = [ #c\n}]\n", "[network]\nallow = [ { cidr = \"1.1.1.1/32\" }, }]\n",
                      // After text the scan takes for not TOML, judged on the text alone.
                      "a = 1 1\nb = [}]\n", "a = 1 1\nb = [1,\n  }]\n", "a = 1 1\nb = \"[\" \nc = [ \"x\", }]\n"])
    func braceWhereAnArrayEntryShouldBeIsRefused(_ text: String) {
        let d = diagnostics(text)
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.message == "malformed TOML: \"}\" where an array entry or the closing \"]\" should be", "\(d)")
        #expect(d.first?.line != nil, "\(d)")
    }

    /// A date, a space and one digit aborted the parser as well (it takes it for the
    /// start of a date-time with a space). Seed 20261202 case 109706:
    /// `seccomp.on_violation = 1979-05-27 0 07:32:00`.
    @Test(arguments: ["seccomp.on_violation = 1979-05-27 0 07:32:00\n", "a = 1979-05-27 0\n", "a = [19_79-05-27 0]\n",
                      "a = 1979-05-27 0#\n", "a = 1979-05-27 0,\n", "a = {b = 1979-05-27 0}\n", "a = 1979-05-27 0\u{A0}\n",
                      "a = 1979--5-27 0 \n", "a = 1 1\nb = 1979-05-27 1 \n"])
    func dateSpaceDigitIsRefused(_ text: String) {
        let d = diagnostics(text)
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.message.hasPrefix("malformed TOML: a date, a space and one digit") == true, "\(d)")
    }

    /// Dates and date-times the parser reads are as before.
    @Test func datesTheParserReadsAreUntouched() {
        for text in ["a = 1979-05-27 07:32:00\n", "a = 1979-05-27\n", "a = 1979-05-27 07\n", "a = [1979-05-27, 1]\n",
                     "a = \"1979-05-27 0 \"\n", "a = 1979-05-27 0"] {
            let d = diagnostics(text)
            #expect(!d.contains { $0.message.contains("a date, a space and one digit") }, "\(text): \(d)")
        }
    }

    /// Arrays of inline tables, and a `}` the parser checks itself, are as before.
    @Test func bracesTheParserHandlesAreUntouched() throws {
        let s = PolicyScratch()
        s.write("ok.toml", "[network]\nmode = \"egress\"\nallow = [\n  { cidr = \"1.1.1.1/32\", ports = [443] },\n  {cidr=\"1.0.0.1/32\",ports=[53]},\n]\n")
        #expect(try s.load("ok.toml").network.allow.count == 2)
        for text in ["a = {b = }\n", "a = [1 }\n", "a = }\n", "a = {b = 1, }\n"] {
            let d = diagnostics(text)
            #expect(d.count == 1 && d.first?.message.hasPrefix("malformed TOML: Error while parsing") == true, "\(text): \(d)")
        }
    }

    /// Headers the parser does check itself are still reported by it, with its words.
    @Test(arguments: ["[]\n", "[[]]\n", "[ [a]]\n", "[a.#]\n", "[\"a\".=]\n"])
    func otherBadHeadersAreTheParsersToReport(_ text: String) {
        let d = diagnostics(text)
        #expect(d.count == 1 && d.first?.message.hasPrefix("malformed TOML: Error while parsing") == true, "\(d)")
    }

    /// Valid headers are untouched.
    @Test func validHeadersStillLoad() throws {
        let s = PolicyScratch()
        s.write("ok.toml", "[ process ]\nhostname = \"a\"\n[\"filesystem\"]\nro = []\n[ 'landlock' ]\nmode = \"off\"\n[[network.allow]]\ncidr = \"1.1.1.1/32\"\nports = [443]\n[network]\nmode = \"egress\"\n")
        let p = try s.load("ok.toml")
        #expect(p.process.hostname == "a" && p.network.allow.count == 1)
    }

    /// `extends = ["{policy_dir}/base.toml"]` said only "no file …/{policy_dir}/base.toml":
    /// templates are not expanded in extends, and the message now says so.
    @Test func templateInExtendsIsExplained() {
        let d = diagnostics("extends = [\"{policy_dir}/base.toml\"]\n")
        #expect(d.count == 1 && d.first?.keyPath == "extends[0]", "\(d)")
        #expect(d.first?.message.contains("extends takes no templates such as {policy_dir}") == true, "\(d)")
    }
}
