import Foundation

/// Runs a program with a time bound, its output in files (a pipe could fill and block
/// it), and says how it ended. Only the process it started is ever signalled.
public enum Subprocess {
    public enum End: Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
    }

    public struct Result {
        public var end: End
        public var stdout: String
        public var stderr: String
    }

    public static func run(_ exe: String, _ args: [String], environment: [String: String],
                           outputDir: String, timeoutSeconds: Double) throws -> Result {
        let out = outputDir + "/stdout", err = outputDir + "/stderr"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([exe] + args).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, envp)
        guard rc == 0 else { throw FuzzError("posix_spawn \(exe): \(String(cString: strerror(rc)))") }

        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutSeconds * 1e9)
        var status: Int32 = 0
        var end: End?
        while end == nil {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                let sig = status & 0x7F
                end = sig == 0 ? .exited((status >> 8) & 0xFF) : .signalled(sig)
            } else if r < 0 && errno != EINTR {
                throw FuzzError("waitpid \(pid): \(String(cString: strerror(errno)))")
            } else if DispatchTime.now().uptimeNanoseconds > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                end = .timedOut
            } else {
                usleep(1_000)
            }
        }
        let read = { (p: String) in String(decoding: FileManager.default.contents(atPath: p) ?? Data(), as: UTF8.self) }
        return Result(end: end!, stdout: read(out), stderr: read(err))
    }
}
