/* errno_name.c — see sandbox_errno.h. */
#define _GNU_SOURCE
#include "sandbox_errno.h"

#include <string.h>

const char *sbx_errno_name(int err) {
    return strerrorname_np(err);
}
