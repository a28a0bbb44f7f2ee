/* fuzz_ckpt.c: libFuzzer harness of the checkpoint reader (cn_ckpt_load, with its resume
 * blob). The harness's test hook for the CRC: the last 4 bytes of every input are replaced by
 * the CRC-32 of the rest before loading, so that random changes reach the header and array
 * checks instead of stopping at the checksum. */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *b = malloc(size ? size : 1);
    if (!b)
        return 0;
    memcpy(b, data, size);
    if (size >= 4) {
        uint32_t crc = cn_crc32(0, b, size - 4);
        for (int k = 0; k < 4; k++)
            b[size - 4 + k] = (unsigned char)(crc >> (8 * k));
    }
    const char *path = fuzz_file(b, size);
    free(b);
    struct cn_state s;
    struct cn_meta meta;
    int has_opt = 0;
    void *blob = NULL;
    size_t blen = 0;
    char err[CN_ERRLEN];
    int st = cn_ckpt_load(path, NULL, &s, &meta, &has_opt, &blob, &blen, err);
    if (st == CN_OK) {
        /* a loaded state is usable: its resume record parses or is refused, never crashes */
        if (blob)
            cn_record_parse_check(blob, blen);
        free(blob);
        cn_state_free(&s);
    } else if (!err[0] || blob) {
        abort(); /* a refusal says why and hands nothing out */
    }
    return 0;
}
