import Foundation
import PolicyFuzz
import SandboxPolicy

// policy-fuzz: the long form of the policy fuzzer (Docs/reliability.md).
//
//   policy-fuzz run [--seconds N | --cases N] [--seed S] [--cli-every K] [--bound SECONDS] [--out DIR]
//       A supervisor: runs the cases in worker processes (in-process load + plan, for
//       throughput), so a crash or a hang ends one worker, is recorded with its case and
//       the run goes on. Every K-th case also goes through the built `sandbox` binary.
//   policy-fuzz replay --seed S --case N [--keep DIR]
//       Generates one case, runs it, prints the outcome (and keeps its files in DIR).
//   policy-fuzz worker …   (started by `run`)

func parseArguments(_ all: [String]) -> (command: String, options: [String: String]) {
    let words = Array(all.dropFirst())
    guard let first = words.first else { usage() }
    var pairs: [(String, String)] = []
    var i = 1
    while i < words.count {
        guard words[i].hasPrefix("--"), i + 1 < words.count else { usage() }
        pairs.append((String(words[i].dropFirst(2)), words[i + 1]))
        i += 2
    }
    return (first, Dictionary(pairs, uniquingKeysWith: { _, last in last }))
}

func usage() -> Never {
    FileHandle.standardError.write(Data("""
        usage: policy-fuzz run [--seconds N | --cases N] [--seed S] [--cli-every K] [--bound SECONDS] [--out DIR] [--sandbox EXE]
               policy-fuzz replay --seed S --case N [--keep DIR]

        """.utf8))
    exit(2)
}

func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        if n <= 0 { if errno == EINTR { continue }; exit(3) }
        off += n
    }
}

/// One line, whatever the text holds.
func oneLine(_ s: String) -> String {
    String(s.map { $0 == "\n" || $0 == "\r" ? "⏎" : $0 }.prefix(1500))
}

let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
guard let data = DataDirectory.locate() else {
    FileHandle.standardError.write(Data("policy-fuzz: no data directory (Policies/, Profiles/); set SANDBOX_DATA_DIR\n".utf8))
    exit(2)
}
let generator = PolicyGenerator(shipped: FuzzDriver.shippedPolicies(data))
let invocation = parseArguments(CommandLine.arguments)
let command = invocation.command
let options = invocation.options
let seed: UInt64 = options["seed"].flatMap { UInt64($0) } ?? UInt64(DispatchTime.now().uptimeNanoseconds ^ UInt64(getpid()) << 32)

switch command {
case "worker":
    // Protocol, one line each: "S i" started, "D i result micros strategy" done,
    // "F i kind text" a finding.
    guard let from = options["from"].flatMap(Int.init), let count = options["count"].flatMap(Int.init),
          let work = options["work"] else { usage() }
    let cliEvery = options["cli-every"].flatMap(Int.init) ?? 0
    let driver = FuzzDriver(workDir: work, data: data)
    let cli = CLIProbe(sandbox: options["sandbox"] ?? (executable as NSString).deletingLastPathComponent + "/sandbox",
                       data: data, outputDir: work)
    var spent = (generate: 0.0, write: 0.0, run: 0.0)
    func clock() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    for i in from..<(from + count) {
        say("S \(i)")
        let t0 = clock()
        let c = generator.generate(seed: seed, index: i)
        let t1 = clock()
        do { try driver.write(c) } catch { say("F \(i) harness \(oneLine("\(error)"))"); continue }
        let t2 = clock()
        let outcome = driver.run(c)
        spent.generate += t1 - t0; spent.write += t2 - t1; spent.run += clock() - t2
        if i == from + count - 1 || i % 100 == 99 {
            say("T \(i) \(spent.generate) \(spent.write) \(spent.run)")
            spent = (0, 0, 0)
        }
        for f in outcome.findings { say("F \(i) pipeline \(oneLine(f))") }
        if cliEvery > 0 && i % cliEvery == 0 {
            for v in cli.probe(c, caseDir: driver.caseDir, inProcess: outcome) {
                switch v {
                case .fine: break
                case .crash(let t): say("F \(i) cli-crash \(oneLine(t))")
                case .hang(let t): say("F \(i) cli-hang \(oneLine(t))")
                case .unclear(let t): say("F \(i) cli-unclear \(oneLine(t))")
                }
            }
            say("C \(i)")
        }
        say("D \(i) \(outcome.result) \(Int(outcome.seconds * 1e6)) \(c.strategy.split(separator: " ").first ?? "")")
    }
    exit(0)

case "replay":
    guard let index = options["case"].flatMap(Int.init) else { usage() }
    let dir = options["keep"] ?? NSTemporaryDirectory() + "policy-fuzz-replay-\(getpid())"
    let driver = FuzzDriver(workDir: dir, data: data)
    let c = generator.generate(seed: seed, index: index)
    try driver.write(c)
    print("seed \(seed) case \(index): \(c.strategy); files in \(driver.caseDir)")
    let outcome = driver.run(c)
    print("result: \(outcome.result) in \(String(format: "%.3f", outcome.seconds)) s")
    print(outcome.detail.prefix(4000))
    for f in outcome.findings { print("FINDING: \(f)") }
    if options["keep"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    exit(outcome.findings.isEmpty ? 0 : 1)

case "run":
    let seconds = options["seconds"].flatMap(Double.init) ?? (options["cases"] == nil ? 60 : .infinity)
    let maxCases = options["cases"].flatMap(Int.init) ?? Int.max
    let cliEvery = options["cli-every"].flatMap(Int.init) ?? 50
    let bound = options["bound"].flatMap(Double.init) ?? 10
    let batch = options["batch"].flatMap(Int.init) ?? 5000
    // Each case is written to disk and removed again: on a tmpfs that costs next to
    // nothing, on a disk it costs more than the case itself.
    let scratch = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory()
    let out = options["out"] ?? scratch + "policy-fuzz-\(getpid())"
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    say("policy fuzz: seed \(seed), \(seconds.isFinite ? "\(Int(seconds)) s" : "\(maxCases) cases"), CLI every \(cliEvery), bound \(bound) s, findings in \(out)")
    let supervisor = Supervisor(seed: seed, generator: generator, data: data, out: out, bound: bound)
    let start = DispatchTime.now().uptimeNanoseconds
    var next = 0
    while next < maxCases && Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds {
        let remaining = seconds - Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        next = try supervisor.runWorker(executable: executable, from: next, count: min(batch, maxCases - next),
                                        cliEvery: cliEvery, sandbox: options["sandbox"], deadline: remaining)
    }
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    supervisor.report(elapsed: elapsed)
    exit(supervisor.crashes + supervisor.hangs + supervisor.findingCount == 0 ? 0 : 1)

default:
    usage()
}
