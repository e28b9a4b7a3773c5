// A streaming (pull) reader for big JSON files such as the 33 MB Gemma
// tokenizer.json: values are read in place, without building a tree, and the
// line number is tracked as whitespace is skipped. Strict RFC 8259 like
// common/json (valid UTF-8, escapes, depth <= 256, numbers < 128 characters),
// so any value can also be handed to json_parse() for a tree of a small part.
#ifndef GK_DATA_TOKENIZER_JSON_H
#define GK_DATA_TOKENIZER_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/json.h"

typedef struct {
    const char *text; // [len]
    size_t len, pos;
    int line;         // 1-based line of text[pos]
    const char *name; // the file, for messages
    gk_err *err;
    char *buf;        // decoded strings that had escapes
    size_t buf_cap;
} tj_reader;

void tj_init(tj_reader *r, const char *text, size_t len, const char *name, gk_err *err);
void tj_free(tj_reader *r);

// Sets err to "name:line: <message>" (the line of the next value) and returns -1.
int tj_fail(tj_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Rewrites the "name:LINE: what" error in r->err as "name:(LINE + shift): context: what"
// (context NULL: none), keeping the file name first. Returns -1.
int tj_rewrap(tj_reader *r, int shift, const char *context);

// The next non-space byte, or -1 at the end (nothing is consumed).
int tj_peek(tj_reader *r);

// Containers: tj_open(r, '[') then `bool first = true; while ((rc = tj_next(r, ']', &first)) == 1) {...}`;
// tj_next returns 1 for another element, 0 at the closing bracket, -1 on error.
int tj_open(tj_reader *r, char open);
int tj_next(tj_reader *r, char close, bool *first);
// An object member's key and the ':' after it.
int tj_key(tj_reader *r, const char **key, size_t *len);

// Scalars. A string is valid until the next string is read (it may point into the text).
int tj_string(tj_reader *r, const char **s, size_t *len);
int tj_integer(tj_reader *r, long long *value); // an integer without fraction or exponent
int tj_null(tj_reader *r, bool *is_null);       // consumes `null` when it is next

// Validates and skips one value; *start/*end give its bytes and *line its first line.
int tj_skip(tj_reader *r, size_t *start, size_t *end, int *line);

// Skips one value and parses it into a tree; the tree's lines are relative to
// *line (absolute line = *line + v->line - 1).
int tj_tree(tj_reader *r, json_doc *doc, int *line);

#endif
