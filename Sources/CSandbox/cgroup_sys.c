#define _GNU_SOURCE
#include "sandbox_cgroup_sys.h"
#include "kernel_abi.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int sbx_cg_pidfd_open(int pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}
