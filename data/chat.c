#include "data/chat.h"

#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"

int chat_role_parse(const char *name, size_t len, chat_role *role, gk_err *err) {
    static const struct {
        const char *name;
        chat_role role;
    } roles[] = {{"user", ROLE_USER}, {"assistant", ROLE_MODEL}, {"model", ROLE_MODEL}, {"system", ROLE_SYSTEM}};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        if (strlen(roles[i].name) == len && !memcmp(roles[i].name, name, len)) {
            *role = roles[i].role;
            return 0;
        }
    }
    return gk_fail(err, GK_EINPUT, "unknown role \"%.*s\" (user, assistant, model or system)", (int)(len > 40 ? 40 : len),
                   name);
}

// Length of the whitespace character at s (Python's str.isspace), or 0.
static size_t space_at(const unsigned char *s, size_t avail) {
    if (avail >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x20))) return 1;
    if (avail >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (avail < 3) return 0;
    unsigned cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    if ((s[0] & 0xF0) != 0xE0 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    bool space = cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
                 cp == 0x205F || cp == 0x3000;
    return space ? 3 : 0;
}

// Length of the whitespace character ending at s[end-1], or 0.
static size_t space_before(const unsigned char *s, size_t end) {
    for (size_t k = 1; k <= 3 && k <= end; k++) {
        size_t n = space_at(s + end - k, k);
        if (n == k) return k;
    }
    return 0;
}

const char *unicode_strip(const char *s, size_t len, size_t *out_len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t begin = 0, end = len, n;
    while (begin < end && (n = space_at(u + begin, end - begin))) begin += n;
    while (end > begin && (n = space_before(u, end)) && end - n >= begin) end -= n;
    *out_len = end - begin;
    return s + begin;
}

static void append_turn(strbuf *sb, const char *role, const char *prefix, size_t prefix_len, const chat_message *m,
                        text_span *trained) {
    sb_puts(sb, "<start_of_turn>");
    sb_puts(sb, role);
    sb_puts(sb, "\n");
    if (prefix_len) sb_append(sb, prefix, prefix_len);
    size_t n;
    const char *content = unicode_strip(m->content, m->len, &n);
    size_t begin = sb->len;
    sb_append(sb, content, n);
    sb_puts(sb, "<end_of_turn>");
    if (trained) *trained = (text_span){begin, sb->len};
    sb_puts(sb, "\n");
}

int chat_render(const chat_message *m, size_t n, bool add_generation_prompt, chat_rendered *out, gk_err *err) {
    memset(out, 0, sizeof *out);
    size_t first = n > 0 && m[0].role == ROLE_SYSTEM ? 1 : 0;
    if (first == n) return gk_fail(err, GK_EINPUT, "a conversation needs at least one user message");
    for (size_t i = first; i < n; i++) {
        chat_role want = (i - first) % 2 == 0 ? ROLE_USER : ROLE_MODEL;
        if (m[i].role != want)
            return gk_fail(err, GK_EINPUT, "message %zu is a %s turn: roles must alternate user/assistant, starting with "
                           "user (a system message may only come first)", i + 1,
                           m[i].role == ROLE_SYSTEM ? "system" : m[i].role == ROLE_USER ? "user" : "model");
    }
    strbuf prefix = {0}, sb = {0};
    if (first) {
        sb_append(&prefix, m[0].content, m[0].len); // the system text is not trimmed, as in the template
        sb_puts(&prefix, "\n\n");
    }
    out->trained = calloc(n ? n : 1, sizeof *out->trained);
    for (size_t i = first; i < n && out->trained; i++) {
        bool model = m[i].role == ROLE_MODEL;
        append_turn(&sb, model ? "model" : "user", i == first ? prefix.data : "", i == first ? prefix.len : 0, &m[i],
                    model ? &out->trained[out->n_trained++] : NULL);
    }
    if (add_generation_prompt) sb_puts(&sb, "<start_of_turn>model\n");
    sb_free(&prefix);
    if (sb.failed || !out->trained) {
        sb_free(&sb);
        chat_rendered_free(out);
        return gk_fail(err, GK_ENOMEM, "out of memory rendering a conversation");
    }
    out->text = sb.data;
    out->len = sb.len;
    return 0;
}

void chat_rendered_free(chat_rendered *r) {
    free(r->text);
    free(r->trained);
    memset(r, 0, sizeof *r);
}

void chat_loss_mask(const size_t *offsets, size_t n_tokens, const chat_rendered *r, uint8_t *mask) {
    size_t s = 0;
    for (size_t i = 0; i < n_tokens; i++) { // tokens and spans both run left to right
        size_t begin = offsets[2 * i], end = offsets[2 * i + 1];
        while (s < r->n_trained && r->trained[s].end <= begin) s++;
        mask[i] = s < r->n_trained && begin >= r->trained[s].begin && end <= r->trained[s].end;
    }
}
