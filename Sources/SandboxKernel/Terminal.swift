#if canImport(Glibc)
import Glibc
#endif
import CSandbox

/// The attributes (termios) of the terminals on stdin, stdout and stderr, saved
/// before a run and put back after it: the command inherits those descriptors, and
/// without a controlling terminal (`new_session`) it can still switch echo off or the
/// line discipline to raw mode (`TCSETS`), which would outlive the run on the
/// invoker's terminal.
///
/// With them: the line discipline (`TIOCSETD` to N_NULL leaves a dead terminal), the
/// window size, and always flow on (`tcflow` TCOON/TCION: a stopped output would block
/// the next writer) and exclusive mode off (`TIOCNXCL`).
///
/// Whether this process may set the terminal's modes is decided from the state
/// saved before the run: when the terminal is not its controlling terminal (no job
/// control applies, e.g. a pty a harness made), or this process group was in the
/// foreground then. A command that made its own group the foreground one (with
/// `new_session = false`) does not get to keep it: the saved foreground group is put
/// back first. A run in the background of an interactive shell leaves the modes to
/// the foreground job. A supervisor killed with SIGKILL restores nothing.
public struct TerminalModes {
    private struct Saved {
        var fd: Int32
        var modes: termios
        var other: sbx_tty_state
        /// The foreground process group then; -1 when it is not our controlling terminal.
        var foreground: pid_t
    }
    private var saved: [Saved] = []

    /// Nothing saved: `restore()` does nothing.
    public init() {}

    /// Saves the attributes of each distinct terminal among `fds` (by device).
    public static func save(_ fds: [Int32] = [0, 1, 2]) -> TerminalModes {
        var out = TerminalModes()
        var seen: [dev_t] = []
        for fd in fds where isatty(fd) == 1 {
            var st = stat()
            guard fstat(fd, &st) == 0, !seen.contains(st.st_rdev) else { continue }
            var t = termios()
            guard tcgetattr(fd, &t) == 0 else { continue }
            seen.append(st.st_rdev)
            var other = sbx_tty_state()
            _ = sbx_tty_get(fd, &other)
            out.saved.append(Saved(fd: fd, modes: t, other: other, foreground: tcgetpgrp(fd)))
        }
        return out
    }

    public var isEmpty: Bool { saved.isEmpty }

    /// Puts back every saved terminal's attributes that differ now; returns how many
    /// were restored.
    @discardableResult
    public func restore() -> Int {
        var restored = 0
        for s in saved {
            // Job control: a background process group of this terminal (when the run
            // started) leaves its modes to the foreground one.
            if s.foreground >= 0 && s.foreground != getpgrp() { continue }
            // Blocked, so neither tcsetpgrp nor tcsetattr can stop us.
            var ttou = sigset_t(), old = sigset_t()
            sigemptyset(&ttou)
            sigaddset(&ttou, SIGTTOU)
            pthread_sigmask(SIG_BLOCK, &ttou, &old)
            defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
            if s.foreground >= 0, tcgetpgrp(s.fd) != s.foreground { _ = tcsetpgrp(s.fd, s.foreground) }
            var other = s.other
            sbx_tty_put(s.fd, &other)
            var now = termios()
            guard tcgetattr(s.fd, &now) == 0 else { continue }
            if Self.same(now, s.modes) { continue }
            var modes = s.modes
            if tcsetattr(s.fd, TCSANOW, &modes) == 0 { restored += 1 }
        }
        return restored
    }

    private static func same(_ a: termios, _ b: termios) -> Bool {
        guard a.c_iflag == b.c_iflag, a.c_oflag == b.c_oflag, a.c_cflag == b.c_cflag, a.c_lflag == b.c_lflag,
              a.c_line == b.c_line, a.c_ispeed == b.c_ispeed, a.c_ospeed == b.c_ospeed else { return false }
        return withUnsafeBytes(of: a.c_cc) { x in withUnsafeBytes(of: b.c_cc) { y in x.elementsEqual(y) } }
    }
}
