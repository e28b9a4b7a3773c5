#include "common/checksum.h"

#include <string.h>

#include "common/file.h"
#include "common/rng.h"

// Four independent lanes of multiply-rotate over 8-byte words, then mixed:
// a few GB/s on one core.
uint64_t checksum_bytes(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t lane[4] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull, 0x082EFA98EC4E6C89ull};
    const uint64_t k = 0x9E3779B97F4A7C15ull;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        for (int j = 0; j < 4; j++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * j, 8);
            lane[j] = ((lane[j] ^ w) * k);
            lane[j] = (lane[j] << 29) | (lane[j] >> 35);
        }
    }
    uint64_t h = hash64(lane[0]) ^ hash64(lane[1] + 1) ^ hash64(lane[2] + 2) ^ hash64(lane[3] + 3);
    for (; i < len; i++) h = hash64(h ^ p[i]);
    return hash64(h ^ (uint64_t)len);
}

int checksum_file(const char *path, uint64_t *sum, uint64_t *size, gk_err *err) {
    file_map map;
    if (file_map_open(path, &map, err)) return -1;
    *sum = checksum_bytes(map.data, map.size);
    *size = map.size;
    file_map_close(&map);
    return 0;
}
