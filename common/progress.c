#include "common/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "common/timer.h"

void progress_init(progress *p, double interval) {
    p->tty = isatty(STDERR_FILENO);
    p->interval = interval;
    p->last = now_seconds();
    p->width = 0;
}

void progress_show(progress *p, bool force, const char *fmt, ...) {
    double now = now_seconds();
    if (!force && now - p->last < (p->tty ? 0.2 : p->interval)) return;
    p->last = now;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (p->tty) {
        fprintf(stderr, "\r%s%*s", line, p->width > n ? p->width - n : 0, "");
        p->width = n;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

void progress_done(progress *p) {
    if (p->tty && p->width) fputc('\n', stderr);
    p->width = 0;
}

void progress_clear(progress *p) {
    if (p->tty && p->width) fprintf(stderr, "\r%*s\r", p->width, "");
    fflush(stderr);
    p->width = 0;
}

const char *format_duration(double s, char buf[32]) {
    if (s < 0 || s != s) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, 32, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, 32, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, 32, "%lds", t);
    return buf;
}
