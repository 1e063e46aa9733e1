/*
 * Terminal state besides termios that a command holding the caller's terminal can
 * change and that would outlive the run: the line discipline, output/input flow,
 * exclusive mode, the window size. ioctl is variadic, so Swift calls these.
 */
#ifndef SANDBOX_TTY_H
#define SANDBOX_TTY_H

#include <sys/types.h>

struct sbx_tty_state {
    int ldisc;              /* TIOCGETD; -1 if unknown */
    unsigned short rows, cols, xpixel, ypixel;
    int has_winsize;
};

/* Reads the line discipline and window size of `fd`. 0 or -errno. */
int sbx_tty_get(int fd, struct sbx_tty_state *state);

/* Puts them back (where they differ), and always: output and input flow on
 * (TCOON, TCION) and exclusive mode off (TIOCNXCL). */
void sbx_tty_put(int fd, const struct sbx_tty_state *state);

#endif
