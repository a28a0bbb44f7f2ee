/* npz.h: NumPy .npz archives for the model library (not installed): a bounded reader of the
 * zip files np.savez / np.savez_compressed write and an atomic writer of float32 arrays. */
#ifndef CN_NPZ_H
#define CN_NPZ_H

#include "clofnet.h"
#include "sim.h"

#define CN_NPZ_NAME_MAX 250 /* longest array name read or written (state_dict keys are ~30) */
/* Most entries an archive may list: the largest config (CN_MAX_LAYERS layers) has
 * CN_MAX_TENSORS = 310 tensors; more than 4096 is no network's state_dict. */
#define CN_NPZ_MAX_ENTRIES 4096
/* Largest uncompressed entry: the largest tensor of the largest config (MLP_edge 1 at
 * CN_MAX_HIDDEN 1024, 1024 x 2561) is 21 MB in float64; 256 MiB leaves room and keeps every
 * entry far below zlib's 4 GiB counters. */
#define CN_NPZ_MAX_ENTRY_BYTES (256LL << 20)
/* Largest total uncompressed: the largest config's ~154 million parameters are 1.23 GB in
 * float64. A header claiming more is refused before anything is allocated. */
#define CN_NPZ_MAX_TOTAL_BYTES (2LL << 30)

/* One array of an archive: its name without ".npy" and its data (as doubles). */
struct cn_npz_entry {
    char name[CN_NPZ_NAME_MAX + 1];
    struct sim_npy arr;
};

struct cn_npz {
    int count;
    struct cn_npz_entry *entry;
};

/* Read every array of path. Stored and deflated entries; every size, offset and count is
 * checked against the file and the limits above before allocating, a deflated entry may not
 * inflate past its declared size, entries may not overlap, CRC-32s are checked, and each
 * entry must be a valid .npy ('<f4' or '<f8', C order). CN_OK, or CN_EIO / CN_EFORMAT /
 * CN_ENOMEM with one message naming the problem (z is then empty). */
int cn_npz_read(const char *path, struct cn_npz *z, char err[CN_ERRLEN]);
void cn_npz_free(struct cn_npz *z);
/* The array called name (without ".npy"), or NULL. */
const struct cn_npz_entry *cn_npz_find(const struct cn_npz *z, const char *name);

/* One float32 array to write. */
struct cn_npz_array {
    const char *name; /* without ".npy" */
    int ndim;
    int64_t shape[SIM_NPY_MAXDIM];
    const float *data; /* product of shape values, C order */
};

/* Write count arrays as path, '<f4' .npy entries in the given order, stored (np.savez) or,
 * with compress, deflated (np.savez_compressed); dated 1980-01-01 as zipfile dates them, so
 * the bytes depend only on the arrays. Through sim_atomic: path never holds a partial file. */
int cn_npz_write(const char *path, const struct cn_npz_array *arr, int count, int compress,
                 char err[CN_ERRLEN]);

#endif
