// Walking the lines of a text in memory (JSONL files): each line without its
// '\n', numbered from 1, blank lines (spaces, tabs, '\r') skipped.
#ifndef GK_LINES_H
#define GK_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct {
    const char *at, *stop; // the rest of the text
    size_t line;           // number of the line last returned
} line_iter;

static inline line_iter lines_of(const char *text, size_t len) { return (line_iter){text, text + len, 0}; }

// The next line that is not blank: [*begin, *end); false at the end of the text.
static inline bool next_line(line_iter *it, const char **begin, const char **end) {
    while (it->at < it->stop) {
        const char *p = it->at, *e = memchr(p, '\n', (size_t)(it->stop - p));
        if (!e) e = it->stop;
        it->at = e + 1;
        it->line++;
        const char *q = p;
        while (q < e && strchr(" \t\r", *q)) q++;
        if (q == e) continue;
        *begin = p;
        *end = e;
        return true;
    }
    return false;
}

#endif
