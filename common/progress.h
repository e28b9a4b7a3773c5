// A progress line on stderr: rewritten in place on a terminal, plain lines at
// most every `interval` seconds otherwise (logs stay readable).
#ifndef GK_PROGRESS_H
#define GK_PROGRESS_H

#include <stdbool.h>

typedef struct {
    bool tty;
    double interval, last;
    int width; // length of the last line written on a terminal
} progress;

void progress_init(progress *p, double interval);
// Shows the line (printf-style) if due, or always when force is set.
void progress_show(progress *p, bool force, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Ends an in-place line so that other output starts on a fresh line.
void progress_done(progress *p);
// "1h02m", "3m20s", "45s"
const char *format_duration(double seconds, char buf[32]);

#endif
