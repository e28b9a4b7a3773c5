// "Did you mean" suggestions: the word of a list closest to a misspelt one,
// by edit distance (unknown flags, unknown run-config keys).
#ifndef GK_NEAREST_H
#define GK_NEAREST_H

// Index of the string in `words` closest to `word` by edit distance (or -1).
int nearest_word(const char *word, const char *const *words, int n_words);

#endif
