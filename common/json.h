// A strict JSON (RFC 8259) reader into an arena-backed tree.
// Used for config.json, safetensors headers, shard indices and tokenizer.json.
// Strings are validated UTF-8; nesting depth is bounded; errors name line:column.
#ifndef GK_JSON_H
#define GK_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    int line;            // 1-based line where the value starts
    bool boolean;        // JSON_BOOL
    bool is_integer;     // JSON_NUMBER written without fraction/exponent and fits in int64
    long long integer;   // valid when is_integer
    double number;       // JSON_NUMBER
    const char *string;  // JSON_STRING: NUL-terminated (may also contain NULs, see length)
    size_t length;       // JSON_STRING byte length
    size_t count;        // JSON_ARRAY / JSON_OBJECT element count
    json_value **items;  // elements, or object values in file order
    const char **keys;   // object keys in file order (NULL for arrays)
    size_t *key_lengths; // object key byte lengths
};

typedef struct json_arena_block json_arena_block;
typedef struct {
    json_value *root;
    json_arena_block *blocks;
} json_doc;

// Parses text[0..len) (need not be NUL-terminated). `source` names the input in errors.
int json_parse(const char *text, size_t len, const char *source, json_doc *doc, gk_err *err);
void json_free(json_doc *doc);

// Object member lookup; the last of duplicated keys wins (as in Python's json).
const json_value *json_get(const json_value *object, const char *key);
// Returns the first key that occurs twice in `object`, or NULL.
const char *json_duplicate_key(const json_value *object);

const char *json_type_name(json_type type);

// Decodes the escape after a backslash at text[*pos] into out (UTF-8, n bytes: \uXXXX with
// surrogate pairs, or one of \" \\ \/ \b \f \n \r \t) and moves *pos past it; NULL, or what is
// wrong with *bad at the offending character (for readers that lex JSON themselves).
const char *json_decode_escape(const char *text, size_t len, size_t *pos, char out[4], size_t *n, size_t *bad);

#endif
