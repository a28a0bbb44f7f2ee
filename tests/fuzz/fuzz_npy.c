/* fuzz_npy.c: libFuzzer harness of the .npy reader (sim_npy_read, sim_npy_read_header): any
 * bytes must give SIM_OK with a consistent array, or an error with a message; never a crash,
 * a leak or undefined behaviour. */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    char err[SIM_ERRLEN];
    struct sim_npy a;
    unsigned char digest[32];
    int st = sim_npy_read_hashed(path, &a, digest, err);
    if (st == SIM_OK) {
        size_t count = 1;
        for (int k = 0; k < a.ndim; k++)
            count *= (size_t)a.shape[k];
        if (count != a.count || !a.data)
            abort(); /* the array must be what its header says */
        volatile double sink = a.count ? a.data[a.count - 1] : 0; /* every value readable */
        (void)sink;
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    sim_npy_free(&a);
    struct sim_npy h;
    int sh = sim_npy_read_header(path, &h, err);
    if ((sh == SIM_OK) != (st == SIM_OK) && st != SIM_ENOMEM && sh != SIM_ENOMEM)
        abort(); /* the header reader accepts exactly what the reader accepts */
    return 0;
}
