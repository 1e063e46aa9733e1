import Foundation
import Testing
@testable import SandboxPolicy

/// Issue 4, acceptance 4: every kind of bad input names the file, the key path (and
/// the line when known) and says what is allowed.
struct BadInput: Sendable, CustomTestStringConvertible {
    var label: String
    var toml: String
    /// nil: the diagnostic must have no key path (e.g. a syntax error).
    var keyPath: String?
    var fragments: [String]
    var line: Int? = nil
    /// Name of the file the diagnostic must name; the policy under test is "p.toml".
    var file: String = "p.toml"
    var testDescription: String { label }
}

let badInputs: [BadInput] = [
    BadInput(label: "malformed TOML",
             toml: "version = 1\n[process\nhostname = \"x\"\n",
             keyPath: nil, fragments: ["malformed TOML"], line: 2),
    BadInput(label: "unknown top-level key",
             toml: "version = 1\ncolour = \"blue\"\n",
             keyPath: "colour", fragments: ["unknown top-level key \"colour\"", "allowed:", "filesystem"], line: 2),
    BadInput(label: "unknown table",
             toml: "[proces]\nhostname = \"x\"\n",
             keyPath: "proces", fragments: ["unknown top-level key \"proces\"", "did you mean \"process\"?"], line: 1),
    BadInput(label: "unknown key in a table",
             toml: "[resources]\nmemroy = \"1GiB\"\n",
             keyPath: "resources.memroy", fragments: ["unknown key \"memroy\" in [resources]", "did you mean \"memory\"?", "pids"], line: 2),
    BadInput(label: "unknown key inside [[network.allow]]",
             toml: """
             [network]
             mode = "egress"

             [[network.allow]]
             cidr = "10.0.0.0/8"
             ports = [443]

             [[network.allow]]
             cidr = "10.1.0.0/16"
             ports = [443]
             prot = "tcp"
             """,
             keyPath: "network.allow[1].prot",
             fragments: ["unknown key \"prot\" in an allow rule", "did you mean \"proto\"?", "cidr, host, ports, proto"], line: 11),
    BadInput(label: "unknown key inside an inline allow rule",
             toml: "[network]\nmode = \"egress\"\nallow = [{ cidr = \"10.0.0.0/8\", port = [443] }]\n",
             keyPath: "network.allow[0].port", fragments: ["did you mean \"ports\"?"], line: 3),
    BadInput(label: "wrong type",
             toml: "[process]\nnew_session = \"yes\"\n",
             keyPath: "process.new_session", fragments: ["expected a boolean (true or false), found a string"], line: 2),
    BadInput(label: "wrong type for a table",
             toml: "process = 3\n",
             keyPath: "process", fragments: ["expected a table, found an integer"], line: 1),
    BadInput(label: "wrong type in a list",
             toml: "[filesystem]\nro = [\"/usr\", 7]\n",
             keyPath: "filesystem.ro[1]", fragments: ["expected a string, found an integer"], line: 2),
    BadInput(label: "memory = \"2XB\"",
             toml: "[resources]\nmemory = \"2XB\"\n",
             keyPath: "resources.memory", fragments: ["invalid size \"2XB\"", "unknown unit \"XB\"", "MiB", "GB"], line: 2),
    BadInput(label: "memory = 0",
             toml: "[resources]\nmemory = 0\n",
             keyPath: "resources.memory", fragments: ["more than 0 bytes"]),
    BadInput(label: "pids = 0",
             toml: "[resources]\npids = 0\n",
             keyPath: "resources.pids", fragments: ["must be at least 1"], line: 2),
    BadInput(label: "cpu = -1",
             toml: "[resources]\ncpu = -1\n",
             keyPath: "resources.cpu", fragments: ["cpu = -1", "from 0.01", "to 1024"], line: 2),
    BadInput(label: "io weight out of range",
             toml: "[resources]\nio = 20000\n",
             keyPath: "resources.io", fragments: ["1…10000"]),
    BadInput(label: "timeout = \"forever\"",
             toml: "[process]\ntimeout = \"forever\"\n",
             keyPath: "process.timeout", fragments: ["invalid duration \"forever\"", "\"30s\"", "\"1m30s\""], line: 2),
    BadInput(label: "timeout = 0",
             toml: "[process]\ntimeout = 0\n",
             keyPath: "process.timeout", fragments: ["must be positive"]),
    BadInput(label: "CIDR 300.1.1.1/33",
             toml: "[network]\nmode = \"egress\"\nallow = [\n  { cidr = \"300.1.1.1/33\", ports = [443] },\n]\n",
             keyPath: "network.allow[0].cidr", fragments: ["invalid CIDR \"300.1.1.1/33\"", "not an IPv4 or IPv6 address", "140.82.112.0/20"], line: 4),
    BadInput(label: "CIDR prefix too long",
             toml: "[network]\nmode = \"egress\"\nallow = [{ cidr = \"10.0.0.0/33\", ports = [443] }]\n",
             keyPath: "network.allow[0].cidr", fragments: ["prefix length must be 0…32"]),
    BadInput(label: "CIDR host bits",
             toml: "[network]\nmode = \"egress\"\nallow = [{ cidr = \"10.0.0.1/8\", ports = [443] }]\n",
             keyPath: "network.allow[0].cidr", fragments: ["bits are set after the prefix"]),
    BadInput(label: "port 0",
             toml: "[network]\nmode = \"egress\"\n[[network.allow]]\ncidr = \"10.0.0.0/8\"\nports = [0]\n",
             keyPath: "network.allow[0].ports[0]", fragments: ["port 0 is out of range", "1…65535"], line: 5),
    BadInput(label: "port 70000",
             toml: "[landlock]\nconnect_tcp = [443, 70000]\n",
             keyPath: "landlock.connect_tcp[1]", fragments: ["port 70000 is out of range", "1…65535"], line: 2),
    BadInput(label: "allow rule without ports",
             toml: "[network]\nmode = \"egress\"\nallow = [{ cidr = \"10.0.0.0/8\" }]\n",
             keyPath: "network.allow[0]", fragments: ["missing ports"]),
    BadInput(label: "relative path",
             toml: "[filesystem]\nro = [\"/usr\", \"usr/lib\"]\n",
             keyPath: "filesystem.ro[1]", fragments: ["\"usr/lib\" must be absolute (start with / or {cwd}, {home}, {policy_dir})"], line: 2),
    BadInput(label: "relative path in a multi-line list",
             toml: "[filesystem]\nro = [\n  \"/usr\",  # comment, with a comma\n  \"/a,b\", [\"x\"],\n  \"lib\",\n]\n",
             keyPath: "filesystem.ro[3]", fragments: ["must be absolute"], line: 5),
    BadInput(label: "relative workdir",
             toml: "[process]\nworkdir = \"src\"\n",
             keyPath: "process.workdir", fragments: ["must be absolute"]),
    BadInput(label: "unknown template",
             toml: "[filesystem]\nrw = [\"{tmp}/x\"]\n",
             keyPath: "filesystem.rw[0]", fragments: ["unknown template \"{tmp}\"", "{cwd}, {home}, {uid}, {gid}, {run_id}, {policy_dir}"]),
    BadInput(label: "dot-dot component",
             toml: "[filesystem]\nrw = [\"{cwd}/../x\"]\n",
             keyPath: "filesystem.rw[0]", fragments: ["\"..\""]),
    BadInput(label: "protect must be a relative name",
             toml: "[filesystem]\nprotect = [\"/etc\"]\n",
             keyPath: "filesystem.protect[0]", fragments: ["must be relative", ".git"]),
    BadInput(label: "unknown capability",
             toml: "[capabilities]\nkeep = [\"net_bind_service\", \"CAP_FLY\"]\n",
             keyPath: "capabilities.keep[1]", fragments: ["unknown capability \"CAP_FLY\"", "net_bind_service"], line: 2),
    BadInput(label: "unknown syscall",
             toml: "[seccomp]\ndeny = [\"ptrace\", \"foo\"]\n",
             keyPath: "seccomp.deny[1]", fragments: ["unknown syscall \"foo\""], line: 2),
    BadInput(label: "unknown seccomp action",
             toml: "[seccomp]\non_violation = \"explode\"\n",
             keyPath: "seccomp.on_violation", fragments: ["unknown value \"explode\"", "\"errno\", \"kill\", \"log\", \"notify\""], line: 2),
    BadInput(label: "unknown socket family",
             toml: "[seccomp]\nsocket_families = [\"unix\", \"ipx\"]\n",
             keyPath: "seccomp.socket_families[1]", fragments: ["unknown value \"ipx\"", "\"inet6\""]),
    BadInput(label: "missing profile by name",
             toml: "[seccomp]\nprofile = \"nosuch\"\n",
             keyPath: "seccomp.profile", fragments: ["seccomp profile \"nosuch\" not found", "profiles/nosuch.json"], line: 2),
    BadInput(label: "missing profile file",
             toml: "[seccomp]\nprofile = \"./nosuch.json\"\n",
             keyPath: "seccomp.profile", fragments: ["seccomp profile file not found", "/nosuch.json"], line: 2),
    BadInput(label: "missing extends target by name",
             toml: "extends = [\"nosuch\"]\n",
             keyPath: "extends[0]", fragments: ["no policy named \"nosuch\"", "nosuch.toml"], line: 1),
    BadInput(label: "missing extends target by path",
             toml: "extends = [\"../elsewhere/base.toml\"]\n",
             keyPath: "extends[0]", fragments: ["not found", "elsewhere/base.toml"], line: 1),
    BadInput(label: "version = 2",
             toml: "version = 2\n",
             keyPath: "version", fragments: ["version 2 is not supported", "only version = 1"], line: 1),
    BadInput(label: "user out of range",
             toml: "[process]\nuser = -1\n",
             keyPath: "process.user", fragments: ["0…4294967294", "\"invoker\""]),
    BadInput(label: "bad hostname",
             toml: "[process]\nhostname = \"my_box\"\n",
             keyPath: "process.hostname", fragments: ["invalid hostname", "RFC 1123"]),
    BadInput(label: "bad env name",
             toml: "[process]\nenv.pass = [\"PATH\", \"1BAD\"]\n",
             keyPath: "process.env.pass[1]", fragments: ["invalid variable name \"1BAD\""], line: 2),
    BadInput(label: "unknown rlimit",
             toml: "[resources]\nrlimits = { nofiles = 10 }\n",
             keyPath: "resources.rlimits.nofiles", fragments: ["unknown rlimit \"nofiles\"", "did you mean \"nofile\"?"], line: 2),
    BadInput(label: "bad rlimit value",
             toml: "[resources]\nrlimits = { nofile = \"lots\" }\n",
             keyPath: "resources.rlimits.nofile", fragments: ["\"unlimited\""]),
    BadInput(label: "bad pin digest",
             toml: "[binary]\npin = { \"/usr/bin/python3\" = \"md5:abc\" }\n",
             keyPath: "binary.pin.\"/usr/bin/python3\"", fragments: ["sha256:", "64 hex digits"], line: 2),
    BadInput(label: "unknown landlock mode",
             toml: "[landlock]\nmode = \"maybe\"\n",
             keyPath: "landlock.mode", fragments: ["\"enforce\", \"best-effort\", \"off\""]),
    BadInput(label: "allow without egress (merged check)",
             toml: "[network]\nmode = \"none\"\nallow = [{ cidr = \"10.0.0.0/8\", ports = [443] }]\n",
             keyPath: "network.allow", fragments: ["need network.mode = \"egress\""]),
    BadInput(label: "same path read-only and writable (merged check)",
             toml: "[filesystem]\nro = [\"/srv\"]\nrw = [\"/srv\"]\n",
             keyPath: "filesystem.rw", fragments: ["both filesystem.ro and filesystem.rw", "\"!/srv\""]),
]

@Suite struct PolicyDiagnosticsTests {
    @Test(arguments: badInputs)
    func badInputIsReported(_ c: BadInput) throws {
        let scratch = PolicyScratch()
        let path = scratch.write("p.toml", c.toml)
        let found = scratch.diagnostics("p.toml")
        let expectedFile = c.file == "p.toml" ? path : scratch.dir + "/" + c.file
        let match = found.first { d in
            d.file == expectedFile && d.keyPath == c.keyPath && c.fragments.allSatisfy { d.message.contains($0) }
        }
        #expect(match != nil, "no diagnostic at \(c.keyPath ?? "<none>") with \(c.fragments); got:\n\(found.map(\.description).joined(separator: "\n"))")
        if let match, let line = c.line {
            #expect(match.line == line, "\(match)")
        }
    }

    /// Issue 14 item 3: inputs that were accepted and then failed (or were cut) at run
    /// time are refused by `check`, naming the key.
    @Test func valuesThatCannotWorkAreRefused() {
        let scratch = PolicyScratch()
        _ = scratch.write("nul.toml", "version = 1\n[process]\nenv.set = { X = \"a\\u0000b\" }\n")
        #expect(scratch.diagnostics("nul.toml").contains { $0.message.contains("NUL character") }, "\(scratch.diagnostics("nul.toml"))")
        _ = scratch.write("mem.toml", "version = 1\n[resources]\nmemory = \"1B\"\n")
        #expect(scratch.diagnostics("mem.toml").contains { $0.keyPath == "resources.memory" && $0.message.contains("minimum of 8MiB") })
        _ = scratch.write("cpu.toml", "version = 1\n[resources]\ncpu = 0.000001\n")
        #expect(scratch.diagnostics("cpu.toml").contains { $0.keyPath == "resources.cpu" && $0.message.contains("0.01") })
        // Controls: the smallest accepted values load.
        _ = scratch.write("ok.toml", "version = 1\n[resources]\nmemory = \"8MiB\"\ncpu = 0.01\n[process]\nenv.set = { X = \"a\\u0041b\" }\n")
        #expect(scratch.diagnostics("ok.toml").isEmpty, "\(scratch.diagnostics("ok.toml"))")
    }

    @Test func malformedTOMLHasLineAndColumn() {
        let scratch = PolicyScratch()
        scratch.write("p.toml", "version = 1\n\nname = = \"x\"\n")
        let d = scratch.diagnostics("p.toml")
        #expect(d.count == 1)
        #expect(d.first?.line == 3)
        #expect(d.first?.column != nil)
        #expect(d.first?.description.hasPrefix(scratch.dir + "/p.toml:3:") == true)
    }

    @Test func everyProblemInEveryFileIsReportedAtOnce() {
        let scratch = PolicyScratch()
        scratch.write("base.toml", """
            [resources]
            pids = 0
            [seccomp]
            deny = ["nosuchcall"]
            """)
        scratch.write("p.toml", """
            extends = ["base", "missing"]
            [resources]
            memory = "2XB"
            cpu = -1
            [network]
            mode = "sometimes"
            """)
        let d = scratch.diagnostics("p.toml")
        let keys = Set(d.map { "\(($0.file as NSString).lastPathComponent) \($0.keyPath ?? "")" })
        #expect(keys == ["p.toml extends[1]", "p.toml resources.memory", "p.toml resources.cpu",
                         "p.toml network.mode", "base.toml resources.pids", "base.toml seccomp.deny[0]"],
                "\(d)")
        // Each file's diagnostics follow its text.
        let pLines = d.filter { $0.file.hasSuffix("/p.toml") }.compactMap(\.line)
        #expect(pLines == pLines.sorted())
    }

    @Test func diagnosticDescriptionNamesFileLineAndKey() {
        let d = PolicyDiagnostic(file: "a.toml", keyPath: "resources.pids", line: 4, message: "must be at least 1")
        #expect(d.description == "a.toml:4: resources.pids: must be at least 1")
    }

    @Test func missingFile() {
        let scratch = PolicyScratch()
        let d = scratch.diagnostics("absent.toml")
        #expect(d.count == 1)
        #expect(d.first?.message.contains("no such file") == true)
    }
}
