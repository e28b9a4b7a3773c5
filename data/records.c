#include "data/records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"

typedef struct {
    const char *file;
    size_t line;
    gk_err *err;
} where;

static int bad(const where *w, const char *what, const char *detail) {
    return gk_fail(w->err, GK_EINPUT, "%s:%zu: %s%s", w->file, w->line, what, detail ? detail : "");
}

// A list of {"type": "text", "text": ...} items: each trimmed, then joined (as the template does).
static int join_items(const json_value *items, strbuf *joined, size_t *begin, size_t *len, const where *w) {
    *begin = joined->len;
    for (size_t i = 0; i < items->count; i++) {
        const json_value *it = items->items[i], *type = json_get(it, "type"), *text = json_get(it, "text");
        if (!type || type->type != JSON_STRING || !text || text->type != JSON_STRING)
            return bad(w, "content items must be {\"type\": \"text\", \"text\": ...}", NULL);
        if (strcmp(type->string, "text")) return bad(w, "unsupported content item type: ", type->string);
        size_t n;
        const char *s = unicode_strip(text->string, text->length, &n);
        sb_append(joined, s, n);
    }
    *len = joined->len - *begin;
    return 0;
}

static int read_messages(const json_value *list, record *r, const where *w) {
    if (list->type != JSON_ARRAY || list->count == 0) return bad(w, "messages must be a non-empty array", NULL);
    r->messages = calloc(list->count, sizeof *r->messages);
    size_t *joined_at = calloc(list->count, sizeof *joined_at); // offsets: the buffer moves while it grows
    strbuf joined = {0};
    int rc = r->messages && joined_at ? 0 : gk_fail(w->err, GK_ENOMEM, "out of memory");
    for (size_t i = 0; i < list->count && rc == 0; i++) {
        const json_value *m = list->items[i], *role = json_get(m, "role"), *content = json_get(m, "content");
        chat_message *out = &r->messages[i];
        if (!role || role->type != JSON_STRING || !content) {
            rc = bad(w, "each message needs a string \"role\" and a \"content\"", NULL);
        } else if (chat_role_parse(role->string, role->length, &out->role, w->err)) {
            rc = gk_wrap(w->err, "%s:%zu: message %zu", w->file, w->line, i + 1);
        } else if (content->type == JSON_STRING) {
            out->content = content->string;
            out->len = content->length;
            joined_at[i] = (size_t)-1;
        } else if (content->type == JSON_ARRAY) {
            rc = join_items(content, &joined, &joined_at[i], &out->len, w);
        } else {
            rc = bad(w, "message content must be a string or a list of text items", NULL);
        }
    }
    if (rc == 0 && joined.failed) rc = gk_fail(w->err, GK_ENOMEM, "out of memory");
    r->joined = joined.data;
    for (size_t i = 0; i < list->count && rc == 0; i++)
        if (joined_at[i] != (size_t)-1) r->messages[i].content = r->joined + joined_at[i];
    free(joined_at);
    r->n_messages = list->count;
    return rc;
}

int record_parse(const char *line, size_t len, const char *file, size_t line_no, record *r, gk_err *err) {
    memset(r, 0, sizeof *r);
    char source[512];
    snprintf(source, sizeof source, "%s:%zu", file, line_no);
    if (json_parse(line, len, source, &r->doc, err)) return -1;
    where w = {file, line_no, err};
    const json_value *root = r->doc.root, *v;
    int rc;
    if (root->type != JSON_OBJECT) {
        rc = bad(&w, "expected a JSON object", NULL);
    } else if ((v = json_get(root, "messages")) || (v = json_get(root, "conversation"))) {
        r->kind = RECORD_CHAT;
        rc = read_messages(v, r, &w);
    } else if ((v = json_get(root, "text")) || (v = json_get(root, "prompt"))) {
        bool prompt = !json_get(root, "text");
        if (v->type != JSON_STRING) {
            rc = bad(&w, prompt ? "\"prompt\" must be a string" : "\"text\" must be a string", NULL);
        } else if (prompt) {
            r->kind = RECORD_CHAT;
            r->messages = calloc(1, sizeof *r->messages);
            rc = r->messages ? 0 : gk_fail(err, GK_ENOMEM, "out of memory");
            if (rc == 0) r->messages[0] = (chat_message){ROLE_USER, v->string, v->length}, r->n_messages = 1;
        } else {
            r->kind = RECORD_TEXT;
            r->text = v->string;
            r->text_len = v->length;
            rc = 0;
        }
    } else {
        rc = bad(&w, "expected a \"text\", \"messages\", \"conversation\" or \"prompt\" field", NULL);
    }
    if (rc) record_free(r);
    return rc;
}

void record_free(record *r) {
    json_free(&r->doc);
    free(r->messages);
    free(r->joined);
    memset(r, 0, sizeof *r);
}
