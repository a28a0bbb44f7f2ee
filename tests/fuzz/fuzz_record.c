/* fuzz_record.c: libFuzzer harness of the resume-record reader (the blob of a .state
 * checkpoint: options, RNG, history, moving average), through cn_record_parse_check. */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int st = cn_record_parse_check(data, size);
    if (st != CN_OK && st != CN_EFORMAT && st != CN_ENOMEM)
        abort();
    return 0;
}
