/* fuzz_manifest.c: libFuzzer harness of the dataset sidecar's reader (sim_manifest_parse,
 * the JSON of dataset.json). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sim_manifest m;
    char err[SIM_ERRLEN];
    int st = sim_manifest_parse((const char *)data, size, "fuzz", &m, err);
    if (st == SIM_OK) {
        if (m.nfiles < 1 || m.nfiles > SIM_MANIFEST_MAX_FILES || !m.run_id[0])
            abort();
        for (int k = 0; k < m.nfiles; k++)
            if (!m.file[k].name[0] || strchr(m.file[k].name, '/') || m.file[k].bytes < 0 ||
                sim_manifest_find(&m, m.file[k].name) != &m.file[k])
                abort();
    } else if (st != SIM_EFORMAT || strncmp(err, "fuzz: ", 6) != 0) {
        abort();
    }
    return 0;
}
