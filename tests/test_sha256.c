// SHA-256 against the FIPS 180-4 / NIST example vectors, with the CPU's SHA
// extensions (when it has them) and with the portable code.
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

// Each check once with the portable code, once with the SHA extensions (skipped without them).
static void portable(test_case *tc, void (*check)(test_case *)) {
    sha256_set_hardware(0);
    check(tc);
}

static void extensions(test_case *tc, void (*check)(test_case *)) {
    if (sha256_set_hardware(1)) check(tc);
    else SKIP(tc, "this CPU has no SHA extensions");
}

static void vectors_portable(test_case *tc) { portable(tc, vectors); }
static void million_a_portable(test_case *tc) { portable(tc, million_a); }
static void incremental_portable(test_case *tc) { portable(tc, incremental); }
static void vectors_extensions(test_case *tc) { extensions(tc, vectors); }
static void million_a_extensions(test_case *tc) { extensions(tc, million_a); }
static void incremental_extensions(test_case *tc) { extensions(tc, incremental); }

int main(void) {
    test_run("fips_180_vectors", vectors_portable);
    test_run("one_million_a", million_a_portable);
    test_run("incremental_updates", incremental_portable);
    test_run("fips_180_vectors_sha_extensions", vectors_extensions);
    test_run("one_million_a_sha_extensions", million_a_extensions);
    test_run("incremental_updates_sha_extensions", incremental_extensions);
    return test_main_result();
}
