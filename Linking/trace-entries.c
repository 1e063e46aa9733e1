// Which functions of a program run, in the order they first run: a one-shot int3 at
// the entry of every function listed, restored at its first hit. Used by
// order-text.sh to lay the functions a run touches next to each other (issue 16:
// fewer text pages faulted in, a smaller resident set). A build tool; nothing here
// ships.
//
//   trace-entries FUNCTIONS OUT PROGRAM ARGV0 ARGS…
//
// FUNCTIONS: hex link-time addresses of function entries, one a line, sorted.
// OUT: one line per first hit, "P ADDR" in the traced program, "C ADDR" in a process
// it forked (the sandbox's child before its execve); a process is let go at execve.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t *entries;
static unsigned char *original;
static char *seen;
static size_t count;

static long find(uint64_t address) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (entries[mid] < address) lo = mid + 1; else hi = mid;
    }
    return lo < count && entries[lo] == address ? (long)lo : -1;
}

static int poke(pid_t pid, uint64_t address, unsigned char byte) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = pwrite(fd, &byte, 1, (off_t)address);
    close(fd);
    return n == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: trace-entries FUNCTIONS OUT PROGRAM ARGV0 ARGS...\n");
        return 2;
    }
    FILE *list = fopen(argv[1], "r");
    if (!list) { perror(argv[1]); return 1; }
    size_t capacity = 1 << 16;
    entries = malloc(capacity * sizeof *entries);
    unsigned long long value;
    while (fscanf(list, "%llx", &value) == 1) {
        if (count == capacity) entries = realloc(entries, (capacity *= 2) * sizeof *entries);
        entries[count++] = value;
    }
    fclose(list);
    original = malloc(count);
    seen = calloc(count, 1);
    FILE *out = fopen(argv[2], "w");
    if (!out) { perror(argv[2]); return 1; }

    pid_t root = fork();
    if (root == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execv(argv[3], argv + 4);
        _exit(127);
    }
    int status;
    if (waitpid(root, &status, 0) < 0 || !WIFSTOPPED(status)) { fprintf(stderr, "exec failed\n"); return 1; }

    // The executable's load base: the first mapping of the program's own file.
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/exe", root);
    char exe[4096];
    ssize_t len = readlink(path, exe, sizeof exe - 1);
    if (len < 0) { perror("readlink"); return 1; }
    exe[len] = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", root);
    FILE *maps = fopen(path, "r");
    uint64_t base = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long start, offset;
        char name[4096] = "";
        if (sscanf(line, "%lx-%*x %*s %lx %*s %*s %4095s", &start, &offset, name) == 3 && strcmp(name, exe) == 0) {
            base = start - offset;
            break;
        }
    }
    fclose(maps);
    if (!base) { fprintf(stderr, "no mapping of %s\n", exe); return 1; }

    snprintf(path, sizeof path, "/proc/%d/mem", root);
    int mem = open(path, O_RDWR | O_CLOEXEC);
    unsigned char trap = 0xcc;
    for (size_t i = 0; i < count; i++) {
        if (pread(mem, &original[i], 1, (off_t)(base + entries[i])) != 1 ||
            pwrite(mem, &trap, 1, (off_t)(base + entries[i])) != 1) {
            fprintf(stderr, "cannot set a breakpoint at %lx: %s\n", (unsigned long)entries[i], strerror(errno));
            return 1;
        }
    }
    close(mem);
    ptrace(PTRACE_SETOPTIONS, root, 0,
           PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT, root, 0, 0);

    long hits = 0;
    int rootStatus = 0;
    for (;;) {
        pid_t pid = waitpid(-1, &status, __WALL);
        if (pid < 0) break;
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (pid == root) rootStatus = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            continue;
        }
        int signal = WSTOPSIG(status), event = status >> 16;
        if (event == PTRACE_EVENT_EXEC) { ptrace(PTRACE_DETACH, pid, 0, 0); continue; }
        if (event || signal == SIGSTOP) { ptrace(PTRACE_CONT, pid, 0, 0); continue; }
        if (signal == SIGTRAP) {
            struct user_regs_struct regs;
            ptrace(PTRACE_GETREGS, pid, 0, &regs);
            long i = find(regs.rip - 1 - base);
            if (i >= 0) {
                poke(pid, base + entries[i], original[i]);
                regs.rip -= 1;
                ptrace(PTRACE_SETREGS, pid, 0, &regs);
                if (!seen[i]) {
                    seen[i] = 1;
                    hits++;
                    fprintf(out, "%c %lx\n", pid == root ? 'P' : 'C', (unsigned long)entries[i]);
                }
                ptrace(PTRACE_CONT, pid, 0, 0);
                continue;
            }
        }
        ptrace(PTRACE_CONT, pid, 0, signal);
    }
    fclose(out);
    fprintf(stderr, "trace-entries: %zu functions, %ld run, exit %d\n", count, hits, rootStatus);
    return 0;
}
