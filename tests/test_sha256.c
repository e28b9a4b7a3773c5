// SHA-256 against the FIPS 180-4 / NIST example vectors.
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "tests/check.h"

const char *test_program = "test_sha256";

static void vectors(test_case *tc) {
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char hex[65];
        sha256_hex(v[i].msg, strlen(v[i].msg), hex);
        CHECK(tc, !strcmp(hex, v[i].hex), "sha256(\"%s\") = %s, expected %s", v[i].msg, hex, v[i].hex);
    }
}

static void million_a(test_case *tc) {
    size_t n = 1000000;
    char *a = malloc(n), hex[65];
    memset(a, 'a', n);
    sha256_hex(a, n, hex);
    free(a);
    CHECK(tc, !strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "got %s", hex);
}

// Feeding the message in uneven pieces gives the same digest (block-boundary handling).
static void incremental(test_case *tc) {
    unsigned char msg[1000], one[32], parts[32];
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (unsigned char)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof msg; len += 13) {
        sha256_ctx c;
        sha256_init(&c);
        sha256_update(&c, msg, len);
        sha256_final(&c, one);
        sha256_init(&c);
        for (size_t at = 0, step = 1; at < len; at += step, step = step * 3 % 67 + 1)
            sha256_update(&c, msg + at, step < len - at ? step : len - at);
        sha256_final(&c, parts);
        CHECK(tc, !memcmp(one, parts, 32), "length %zu: pieces differ from one update", len);
    }
}

int main(void) {
    test_run("fips_180_vectors", vectors);
    test_run("one_million_a", million_a);
    test_run("incremental_updates", incremental);
    return test_main_result();
}
