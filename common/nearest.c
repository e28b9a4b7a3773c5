#include "common/nearest.h"

#include <stddef.h>
#include <string.h>

// Levenshtein distance; a `b` of 128 bytes or more is as far as can be.
static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b), row[128];
    if (m >= 128) return (size_t)-1;
    for (size_t j = 0; j <= m; j++) row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[m];
}

int nearest_word(const char *word, const char *const *words, int n_words) {
    int best = -1;
    size_t best_d = (size_t)-1;
    for (int i = 0; i < n_words; i++) {
        size_t d = edit_distance(word, words[i]);
        if (d < best_d) best_d = d, best = i;
    }
    return best;
}
