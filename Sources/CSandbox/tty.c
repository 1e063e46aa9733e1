/* See sandbox_tty.h. Runs in the supervisor after a run. */
#include "sandbox_tty.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>

int sbx_tty_get(int fd, struct sbx_tty_state *s) {
    memset(s, 0, sizeof *s);
    s->ldisc = -1;
    int ld;
    if (ioctl(fd, TIOCGETD, &ld) == 0) s->ldisc = ld;
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0) {
        s->rows = ws.ws_row; s->cols = ws.ws_col; s->xpixel = ws.ws_xpixel; s->ypixel = ws.ws_ypixel;
        s->has_winsize = 1;
    }
    return s->ldisc < 0 && !s->has_winsize ? -errno : 0;
}

void sbx_tty_put(int fd, const struct sbx_tty_state *s) {
    int ld;
    if (s->ldisc >= 0 && ioctl(fd, TIOCGETD, &ld) == 0 && ld != s->ldisc) {
        int want = s->ldisc;
        ioctl(fd, TIOCSETD, &want);
    }
    tcflow(fd, TCOON);
    tcflow(fd, TCION);
    ioctl(fd, TIOCNXCL);
    if (s->has_winsize) {
        struct winsize now, ws = { s->rows, s->cols, s->xpixel, s->ypixel };
        if (ioctl(fd, TIOCGWINSZ, &now) != 0 || memcmp(&now, &ws, sizeof ws) != 0) ioctl(fd, TIOCSWINSZ, &ws);
    }
}
