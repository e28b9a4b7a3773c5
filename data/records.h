// One JSONL record of training or prompt data:
//   {"text": "..."}                                   plain text
//   {"messages": [{"role": ..., "content": ...}, ...]} a conversation
//   {"conversation": [...]}                           LMSYS-Chat-1M, the same shape
//   {"prompt": "..."}                                 one user message (for generation)
// Content is a string or a list of {"type": "text", "text": ...} items.
#ifndef GK_RECORDS_H
#define GK_RECORDS_H

#include <stddef.h>

#include "common/json.h"
#include "data/chat.h"

typedef enum { RECORD_TEXT, RECORD_CHAT } record_kind;

typedef struct {
    record_kind kind;
    const char *text;       // RECORD_TEXT
    size_t text_len;
    chat_message *messages; // RECORD_CHAT ("prompt" becomes one user message)
    size_t n_messages;
    json_doc doc;           // owns the strings
    char *joined;           // contents joined from lists of text items
} record;

// Parses one line; errors read "<file>:<line>: <what is wrong>".
int record_parse(const char *line, size_t len, const char *file, size_t line_no, record *r, gk_err *err);
void record_free(record *r);

#endif
