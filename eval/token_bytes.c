#include "eval/token_bytes.h"

#include <stdlib.h>
#include <string.h>

static int is_byte_token(const char *s, size_t len) { // "<0xHH>"
    return len == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && strchr("0123456789ABCDEFabcdef", s[3]) &&
           strchr("0123456789ABCDEFabcdef", s[4]) && s[3] && s[4];
}

int token_byte_lengths(const tokenizer *t, int32_t vocab, uint32_t **out, gk_err *err) {
    uint32_t *n = gk_calloc(vocab > 0 ? (size_t)vocab : 1, sizeof *n, err);
    if (!n) return -1;
    int32_t have = tokenizer_vocab_size(t);
    for (int32_t id = 0; id < vocab && id < have; id++) {
        size_t len;
        const char *s = tokenizer_token_text(t, id, &len);
        if (!s) continue; // an id the tokenizer.json leaves unassigned
        if (is_byte_token(s, len)) {
            n[id] = 1;
            continue;
        }
        char *text;
        size_t text_len;
        gk_err ignored;
        if (tokenizer_decode(t, &id, 1, true, &text, &text_len, &ignored) == 0) {
            n[id] = (uint32_t)text_len;
            free(text);
        }
    }
    *out = n;
    return 0;
}
