// The pipeline parts of a tokenizer.json: normalizer (Replace, Prepend,
// Sequence), pre_tokenizer (Split with a String pattern), decoder (Replace,
// ByteFallback, Fuse, Sequence) and post_processor (TemplateProcessing); any
// other type is rejected with a message naming the field and the type.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer/tokenizer_hf.h"

int hf_fail_line(const char *file, gk_err *err, int line, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gk_fail(err, GK_EINPUT, "%s:%d: %s", file, line, msg);
}


static const char *type_of(const json_value *v) {
    const json_value *t = json_get(v, "type");
    return t && t->type == JSON_STRING ? t->string : NULL;
}

// A {"String": "..."} pattern.
static int string_pattern(hf_parse *L, const json_value *v, int base, const char *what, hf_step *step) {
    const json_value *p = json_get(v, "pattern"), *s = p ? json_get(p, "String") : NULL;
    if (p && p->type == JSON_OBJECT && json_get(p, "Regex"))
        return hf_fail_line(L->t->name, L->err, base + p->line - 1, "%s with a Regex pattern is not supported (only String)", what);
    if (!s || s->type != JSON_STRING || p->count != 1)
        return hf_fail_line(L->t->name, L->err, base + (p ? p->line : v->line) - 1, "%s needs a pattern {\"String\": \"...\"}", what);
    if (!s->length) return hf_fail_line(L->t->name, L->err, base + p->line - 1, "%s has an empty pattern", what);
    step->pattern_len = s->length;
    return (step->pattern = hf_dup_bytes(s->string, s->length, L->err)) ? 0 : -1;
}

static int string_field(hf_parse *L, const json_value *v, const char *key, int base, const char *what, char **out,
                        size_t *len) {
    const json_value *s = json_get(v, key);
    if (!s || s->type != JSON_STRING) return hf_fail_line(L->t->name, L->err, base + v->line - 1, "%s needs a string \"%s\"", what, key);
    *len = s->length;
    return (*out = hf_dup_bytes(s->string, s->length, L->err)) ? 0 : -1;
}

static int push_step(hf_parse *L, hf_step **steps, size_t *n, hf_step s) {
    hf_step *g = realloc(*steps, (*n + 1) * sizeof *g);
    if (!g) {
        free(s.pattern);
        free(s.content);
        return gk_fail(L->err, GK_ENOMEM, "out of memory");
    }
    g[(*n)++] = s;
    *steps = g;
    return 0;
}

int hf_read_normalizer(hf_parse *L, const json_value *v, int base, int depth) {
    const char *type = type_of(v);
    hf_model *m = L->m;
    if (type && !strcmp(type, "Sequence") && depth < 8) {
        const json_value *list = json_get(v, "normalizers");
        if (!list || list->type != JSON_ARRAY)
            return hf_fail_line(L->t->name, L->err, base + v->line - 1, "normalizer Sequence needs a list \"normalizers\"");
        for (size_t i = 0; i < list->count; i++)
            if (hf_read_normalizer(L, list->items[i], base, depth + 1)) return -1;
        return 0;
    }
    hf_step s = {0};
    if (type && !strcmp(type, "Replace")) {
        s.op = HF_NORM_REPLACE;
        if (string_pattern(L, v, base, "normalizer Replace", &s) ||
            string_field(L, v, "content", base, "normalizer Replace", &s.content, &s.content_len)) {
            free(s.pattern);
            return -1;
        }
    } else if (type && !strcmp(type, "Prepend")) {
        s.op = HF_NORM_PREPEND;
        if (string_field(L, v, "prepend", base, "normalizer Prepend", &s.content, &s.content_len)) return -1;
    } else {
        return hf_fail_line(L->t->name, L->err, base + v->line - 1, "normalizer type %s is not supported (supported: Replace, Prepend, Sequence)",
                         type ? type : "(none)");
    }
    return push_step(L, &m->norm, &m->n_norm, s);
}

int hf_read_pre_tokenizer(hf_parse *L, const json_value *v, int base, int depth) {
    hf_model *m = L->m;
    const char *type = type_of(v);
    static const char *const behaviors[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    if (type && !strcmp(type, "Sequence")) {
        const json_value *list = json_get(v, "pretokenizers");
        if (list && list->type == JSON_ARRAY && list->count == 1 && depth < 8)
            return hf_read_pre_tokenizer(L, list->items[0], base, depth + 1);
        return hf_fail_line(L->t->name, L->err, base + v->line - 1, "pre_tokenizer Sequence is supported only with one Split");
    }
    if (!type || strcmp(type, "Split"))
        return hf_fail_line(L->t->name, L->err, base + v->line - 1, "pre_tokenizer type %s is not supported (supported: Split, null)",
                         type ? type : "(none)");
    const json_value *b = json_get(v, "behavior"), *inv = json_get(v, "invert");
    int which = -1;
    for (int i = 0; b && b->type == JSON_STRING && i < 5; i++)
        if (!strcmp(b->string, behaviors[i])) which = i;
    if (which < 0)
        return hf_fail_line(L->t->name, L->err, base + v->line - 1, "pre_tokenizer Split behavior %s is not one of Removed, Isolated, "
                         "MergedWithPrevious, MergedWithNext, Contiguous",
                         b && b->type == JSON_STRING ? b->string : "(missing)");
    if (inv && inv->type != JSON_BOOL) return hf_fail_line(L->t->name, L->err, base + inv->line - 1, "pre_tokenizer Split invert must be a boolean");
    if (string_pattern(L, v, base, "pre_tokenizer Split", &m->split_pattern)) return -1;
    m->split = true;
    m->split_behavior = (hf_split_behavior)which;
    m->split_invert = inv && inv->boolean;
    return 0;
}

int hf_read_decoder(hf_parse *L, const json_value *v, int base, int depth) {
    hf_model *m = L->m;
    const char *type = type_of(v);
    hf_step s = {0};
    if (type && !strcmp(type, "Sequence") && depth < 8) {
        const json_value *list = json_get(v, "decoders");
        if (!list || list->type != JSON_ARRAY)
            return hf_fail_line(L->t->name, L->err, base + v->line - 1, "decoder Sequence needs a list \"decoders\"");
        for (size_t i = 0; i < list->count; i++)
            if (hf_read_decoder(L, list->items[i], base, depth + 1)) return -1;
        return 0;
    }
    if (type && !strcmp(type, "Replace")) {
        s.op = HF_DEC_REPLACE;
        if (string_pattern(L, v, base, "decoder Replace", &s) ||
            string_field(L, v, "content", base, "decoder Replace", &s.content, &s.content_len)) {
            free(s.pattern);
            return -1;
        }
    } else if (type && !strcmp(type, "ByteFallback")) {
        s.op = HF_DEC_BYTE_FALLBACK;
    } else if (type && !strcmp(type, "Fuse")) {
        s.op = HF_DEC_FUSE;
    } else {
        return hf_fail_line(L->t->name, L->err, base + v->line - 1,
                         "decoder type %s is not supported (supported: Replace, ByteFallback, Fuse, Sequence)",
                         type ? type : "(none)");
    }
    return push_step(L, &m->dec, &m->n_dec, s);
}

static int check_id(hf_parse *L, long long id, int line, const char *what) {
    if (id < 0 || id >= L->t->vocab_size || !L->t->assigned[id])
        return hf_fail_line(L->t->name, L->err, line, "%s: id %lld is not in the vocabulary", what, id);
    return 0;
}

int hf_read_post_processor(hf_parse *L, const json_value *v, int base, int depth) {
    (void)depth;
    hf_model *m = L->m;
    const char *type = type_of(v);
    if (!type || strcmp(type, "TemplateProcessing"))
        return hf_fail_line(L->t->name, L->err, base + v->line - 1, "post_processor type %s is not supported (supported: TemplateProcessing, null)",
                         type ? type : "(none)");
    const json_value *single = json_get(v, "single"), *specials = json_get(v, "special_tokens");
    if (!single || single->type != JSON_ARRAY)
        return hf_fail_line(L->t->name, L->err, base + v->line - 1, "post_processor TemplateProcessing needs a list \"single\"");
    size_t n_seq = 0;
    for (size_t i = 0; i < single->count; i++) {
        const json_value *item = single->items[i], *sp = json_get(item, "SpecialToken"), *sq = json_get(item, "Sequence");
        int line = base + item->line - 1;
        if (sq) {
            const json_value *id = json_get(sq, "id");
            if (!id || id->type != JSON_STRING || strcmp(id->string, "A"))
                return hf_fail_line(L->t->name, L->err, line, "post_processor single template: only the sequence $A is supported");
            n_seq++;
            continue;
        }
        const json_value *name = sp ? json_get(sp, "id") : NULL, *tok = NULL, *ids = NULL;
        if (!name || name->type != JSON_STRING)
            return hf_fail_line(L->t->name, L->err, line, "post_processor single template item must be a SpecialToken or a Sequence");
        if (specials) tok = json_get(specials, name->string);
        if (tok) ids = json_get(tok, "ids");
        if (!ids || ids->type != JSON_ARRAY)
            return hf_fail_line(L->t->name, L->err, line, "post_processor: special token \"%s\" has no ids in special_tokens", name->string);
        for (size_t k = 0; k < ids->count; k++) {
            const json_value *x = ids->items[k];
            if (x->type != JSON_NUMBER || !x->is_integer) return hf_fail_line(L->t->name, L->err, line, "post_processor: ids must be integers");
            if (check_id(L, x->integer, line, "post_processor special token")) return -1;
            int32_t **list = n_seq ? &m->tmpl_after : &m->tmpl_before;
            size_t *count = n_seq ? &m->n_after : &m->n_before;
            int32_t *g = realloc(*list, (*count + 1) * sizeof *g);
            if (!g) return gk_fail(L->err, GK_ENOMEM, "out of memory");
            g[(*count)++] = (int32_t)x->integer;
            *list = g;
        }
    }
    if (n_seq != 1) return hf_fail_line(L->t->name, L->err, base + single->line - 1, "post_processor single template must contain $A once");
    m->has_template = true;
    return 0;
}
