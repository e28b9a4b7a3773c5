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

// The first line is due one interval after init (0.2 s on a terminal), so that a
// command that fails at once prints its error and nothing else.
void progress_init(progress *p, double interval);
// Shows the line (printf-style) if due, or always when force is set.
void progress_show(progress *p, bool force, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Ends an in-place line so that other output starts on a fresh line.
void progress_done(progress *p);
// After a failure: erases an in-place line, so that the error stands alone.
void progress_clear(progress *p);
// "1h02m", "3m20s", "45s"
const char *format_duration(double seconds, char buf[32]);

#endif
