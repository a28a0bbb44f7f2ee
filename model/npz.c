/* npz.c: NumPy .npz archives (a zip of .npy images, as np.savez and np.savez_compressed write
 * them): a reader that checks every bound before it allocates, and an atomic writer. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "internal.h"
#include "npz.h"
#include "sim.h"

#define SIG_LOCAL 0x04034b50u   /* local file header */
#define SIG_CENTRAL 0x02014b50u /* central directory header */
#define SIG_EOCD 0x06054b50u    /* end of central directory */
#define SIG_EOCD64 0x06064b50u  /* zip64 end of central directory */
#define SIG_LOC64 0x07064b50u   /* zip64 end of central directory locator */
#define LOCAL_BYTES 30
#define CENTRAL_BYTES 46
#define EOCD_BYTES 22
#define EOCD64_BYTES 56
#define LOC64_BYTES 20
#define MAX_COMMENT 65535        /* a zip comment's length field is 16 bits */
#define METHOD_STORED 0
#define METHOD_DEFLATED 8
#define DOS_DATE_1980 0x0021     /* 1980-01-01, the date zipfile gives np.savez's entries */

/* Little-endian reads from a byte buffer. */
static uint32_t rd16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* One entry as the central directory describes it. */
struct zentry {
    char name[CN_NPZ_NAME_MAX + 5]; /* with ".npy" */
    uint32_t method, crc, flags;
    uint64_t csize, usize, local; /* compressed and uncompressed sizes, local header offset */
    uint64_t data, end;           /* the entry's data [data, end) in the file */
};

/* Free an archive. */
void cn_npz_free(struct cn_npz *z)
{
    if (!z)
        return;
    for (int k = 0; k < z->count; k++)
        sim_npy_free(&z->entry[k].arr);
    free(z->entry);
    memset(z, 0, sizeof *z);
}

/* The entry called name (without ".npy"), or NULL. */
const struct cn_npz_entry *cn_npz_find(const struct cn_npz *z, const char *name)
{
    for (int k = 0; k < z->count; k++)
        if (strcmp(z->entry[k].name, name) == 0)
            return &z->entry[k];
    return NULL;
}

/* The zip64 extended information of a central directory entry: the fields that hold
 * 0xFFFFFFFF in the header follow in order usize, csize, local offset. */
static int zip64_extra(const unsigned char *ex, size_t len, struct zentry *e, int need_u,
                       int need_c, int need_o)
{
    size_t k = 0;
    while (k + 4 <= len) {
        uint32_t id = rd16(ex + k), sz = rd16(ex + k + 2);
        if (k + 4 + sz > len)
            return -1;
        if (id == 1) {
            const unsigned char *p = ex + k + 4;
            size_t need = 8 * (size_t)(need_u + need_c + need_o);
            if (sz < need)
                return -1;
            if (need_u)
                e->usize = rd64(p), p += 8;
            if (need_c)
                e->csize = rd64(p), p += 8;
            if (need_o)
                e->local = rd64(p);
            return 0;
        }
        k += 4 + sz;
    }
    return need_u || need_c || need_o ? -1 : 0;
}

/* Order of entries by their offset in the file. */
static int cmp_local(const void *a, const void *b)
{
    const struct zentry *x = a, *y = b;
    return (x->local > y->local) - (x->local < y->local);
}

/* Find and check the end records: the central directory's offset, size and entry count. */
static int find_directory(const unsigned char *b, uint64_t size, const char *path,
                          uint64_t *cd_off, uint64_t *cd_size, uint64_t *count,
                          char err[CN_ERRLEN])
{
    if (size < EOCD_BYTES)
        return cn_fail(err, CN_EFORMAT, "%s: not a .npz archive (%" PRIu64 " bytes, shorter "
                       "than a zip's end record)", path, size);
    /* The end record is the last thing in the file, followed only by its comment. */
    uint64_t lo = size > EOCD_BYTES + MAX_COMMENT ? size - EOCD_BYTES - MAX_COMMENT : 0;
    uint64_t at = UINT64_MAX;
    for (uint64_t k = size - EOCD_BYTES + 1; k-- > lo;)
        if (rd32(b + k) == SIG_EOCD && k + EOCD_BYTES + rd16(b + k + 20) == size) {
            at = k;
            break;
        }
    if (at == UINT64_MAX)
        return cn_fail(err, CN_EFORMAT, "%s: not a .npz archive, or truncated (no zip end of "
                       "central directory record)", path);
    const unsigned char *e = b + at;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0 || rd16(e + 8) != rd16(e + 10))
        return cn_fail(err, CN_EFORMAT, "%s: multi-volume zip archives are not supported", path);
    *count = rd16(e + 10);
    *cd_size = rd32(e + 12);
    *cd_off = rd32(e + 16);
    if (*count == 0xFFFF || *cd_size == 0xFFFFFFFFu || *cd_off == 0xFFFFFFFFu) {
        /* zip64: the locator sits just before the end record and points at the zip64 one. */
        if (at < LOC64_BYTES || rd32(b + at - LOC64_BYTES) != SIG_LOC64)
            return cn_fail(err, CN_EFORMAT, "%s: zip64 end record missing", path);
        uint64_t r = rd64(b + at - LOC64_BYTES + 8);
        if (r > at - LOC64_BYTES || at - LOC64_BYTES - r < EOCD64_BYTES || rd32(b + r) != SIG_EOCD64)
            return cn_fail(err, CN_EFORMAT, "%s: bad zip64 end record offset", path);
        *count = rd64(b + r + 32);
        *cd_size = rd64(b + r + 40);
        *cd_off = rd64(b + r + 48);
        at = r;
    }
    if (*cd_off > at || *cd_size > at - *cd_off)
        return cn_fail(err, CN_EFORMAT, "%s: central directory (offset %" PRIu64 ", %" PRIu64
                       " bytes) lies outside the file: truncated or corrupt", path, *cd_off,
                       *cd_size);
    if (*count > CN_NPZ_MAX_ENTRIES || *count > *cd_size / CENTRAL_BYTES)
        return cn_fail(err, CN_EFORMAT, "%s: %" PRIu64 " entries in a central directory of %" PRIu64
                       " bytes (at most %d entries are read)", path, *count, *cd_size,
                       CN_NPZ_MAX_ENTRIES);
    return CN_OK;
}

/* Parse the central directory into e[count], each entry's local header checked. */
static int read_directory(const unsigned char *b, uint64_t size, uint64_t cd_off,
                          uint64_t cd_size, int count, struct zentry *e, const char *path,
                          char err[CN_ERRLEN])
{
    uint64_t p = cd_off, cd_end = cd_off + cd_size, total = 0;
    for (int k = 0; k < count; k++) {
        if (cd_end - p < CENTRAL_BYTES || rd32(b + p) != SIG_CENTRAL)
            return cn_fail(err, CN_EFORMAT, "%s: central directory entry %d is malformed", path, k);
        const unsigned char *h = b + p;
        uint32_t nlen = rd16(h + 28), xlen = rd16(h + 30), clen = rd16(h + 32);
        if (cd_end - p - CENTRAL_BYTES < (uint64_t)nlen + xlen + clen)
            return cn_fail(err, CN_EFORMAT, "%s: central directory entry %d runs past the "
                           "directory", path, k);
        if (nlen == 0 || nlen >= sizeof e[k].name)
            return cn_fail(err, CN_EFORMAT, "%s: entry %d has a name of %u bytes (1..%d allowed)",
                           path, k, nlen, (int)sizeof e[k].name - 1);
        memcpy(e[k].name, h + CENTRAL_BYTES, nlen);
        e[k].name[nlen] = '\0';
        if (memchr(e[k].name, '\0', nlen))
            return cn_fail(err, CN_EFORMAT, "%s: entry %d has a NUL byte in its name", path, k);
        e[k].flags = rd16(h + 8);
        e[k].method = rd16(h + 10);
        e[k].crc = rd32(h + 16);
        e[k].csize = rd32(h + 20);
        e[k].usize = rd32(h + 24);
        e[k].local = rd32(h + 42);
        if (zip64_extra(h + CENTRAL_BYTES + nlen, xlen, &e[k], e[k].usize == 0xFFFFFFFFu,
                        e[k].csize == 0xFFFFFFFFu, e[k].local == 0xFFFFFFFFu) != 0)
            return cn_fail(err, CN_EFORMAT, "%s: entry '%s': malformed zip64 extra field", path,
                           e[k].name);
        p += CENTRAL_BYTES + (uint64_t)nlen + xlen + clen;
        if (e[k].flags & 1)
            return cn_fail(err, CN_EFORMAT, "%s: entry '%s' is encrypted", path, e[k].name);
        if (e[k].method != METHOD_STORED && e[k].method != METHOD_DEFLATED)
            return cn_fail(err, CN_EFORMAT, "%s: entry '%s' uses compression method %u (only "
                           "stored and deflated, as np.savez and np.savez_compressed write, are "
                           "read)", path, e[k].name, e[k].method);
        /* Sizes before any allocation: a header may claim anything. */
        if (e[k].usize > CN_NPZ_MAX_ENTRY_BYTES)
            return cn_fail(err, CN_EFORMAT, "%s: entry '%s' claims %" PRIu64 " bytes uncompressed "
                           "(at most %lld are read)", path, e[k].name, e[k].usize,
                           (long long)CN_NPZ_MAX_ENTRY_BYTES);
        total += e[k].usize;
        if (total > CN_NPZ_MAX_TOTAL_BYTES)
            return cn_fail(err, CN_EFORMAT, "%s: entries claim more than %lld bytes uncompressed "
                           "in all", path, (long long)CN_NPZ_MAX_TOTAL_BYTES);
        if (e[k].method == METHOD_STORED && e[k].csize != e[k].usize)
            return cn_fail(err, CN_EFORMAT, "%s: stored entry '%s' has %" PRIu64 " bytes, but "
                           "claims %" PRIu64 " uncompressed", path, e[k].name, e[k].csize,
                           e[k].usize);
        /* The local header repeats the name; its own extra field may differ in length. */
        uint64_t lo = e[k].local;
        if (lo >= cd_off || cd_off - lo < LOCAL_BYTES || rd32(b + lo) != SIG_LOCAL)
            return cn_fail(err, CN_EFORMAT, "%s: entry '%s': no local header at offset %" PRIu64,
                           path, e[k].name, lo);
        uint32_t ln = rd16(b + lo + 26), lx = rd16(b + lo + 28);
        uint64_t data = lo + LOCAL_BYTES + ln + lx;
        if (data > cd_off || ln != nlen || memcmp(b + lo + LOCAL_BYTES, e[k].name, nlen) != 0)
            return cn_fail(err, CN_EFORMAT, "%s: entry '%s': local header does not match the "
                           "central directory", path, e[k].name);
        if (e[k].csize > cd_off - data)
            return cn_fail(err, CN_EFORMAT, "%s: entry '%s' (%" PRIu64 " bytes) runs past the "
                           "end of the data: truncated or corrupt", path, e[k].name, e[k].csize);
        e[k].data = data;
        e[k].end = data + e[k].csize;
    }
    (void)size;
    /* Entries must not share bytes (overlapping entries are the classic zip bomb). */
    qsort(e, (size_t)count, sizeof *e, cmp_local);
    for (int k = 1; k < count; k++)
        if (e[k].local < e[k - 1].end)
            return cn_fail(err, CN_EFORMAT, "%s: entries '%s' and '%s' overlap", path,
                           e[k - 1].name, e[k].name);
    return CN_OK;
}

/* The uncompressed bytes of one entry into out (usize bytes, allocated), CRC checked. */
static int extract(const unsigned char *b, const struct zentry *e, const char *path,
                   unsigned char **out, char err[CN_ERRLEN])
{
    unsigned char *u = malloc(e->usize ? (size_t)e->usize : 1);
    if (!u)
        return cn_fail(err, CN_ENOMEM, "%s: out of memory for entry '%s' (%" PRIu64 " bytes)",
                       path, e->name, e->usize);
    if (e->method == METHOD_STORED) {
        memcpy(u, b + e->data, (size_t)e->usize);
    } else {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
            free(u);
            return cn_fail(err, CN_ENOMEM, "%s: cannot start zlib", path);
        }
        /* zlib counts in uInt: the size limits keep every entry below 4 GiB */
        zs.next_in = (unsigned char *)(b + e->data);
        zs.avail_in = (uInt)e->csize;
        zs.next_out = u;
        zs.avail_out = (uInt)e->usize;
        int zr = inflate(&zs, Z_FINISH);
        /* one more byte of room tells "more than declared" from "exactly" */
        unsigned char extra;
        int more = 0;
        if ((zr == Z_BUF_ERROR || zr == Z_OK) && zs.avail_out == 0) {
            zs.next_out = &extra;
            zs.avail_out = 1;
            zr = inflate(&zs, Z_FINISH);
            more = zs.avail_out == 0;
        }
        uint64_t got = zs.total_out;
        inflateEnd(&zs);
        if (more || (zr == Z_STREAM_END && got > e->usize)) {
            free(u);
            return cn_fail(err, CN_EFORMAT, "%s: entry '%s' inflates to more than the %" PRIu64
                           " bytes its header declares", path, e->name, e->usize);
        }
        if (zr != Z_STREAM_END || got != e->usize) {
            free(u);
            return cn_fail(err, CN_EFORMAT, "%s: entry '%s': deflate data %s (%" PRIu64 " of %"
                           PRIu64 " bytes)", path, e->name,
                           zr == Z_DATA_ERROR ? "is corrupt" : "ends early", got, e->usize);
        }
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t k = 0; k < e->usize;) { /* crc32 takes a uInt length */
        uInt c = e->usize - k > (1u << 30) ? 1u << 30 : (uInt)(e->usize - k);
        crc = crc32(crc, u + k, c);
        k += c;
    }
    if ((uint32_t)crc != e->crc) {
        free(u);
        return cn_fail(err, CN_EFORMAT, "%s: entry '%s' is corrupt (CRC-32 mismatch)", path,
                       e->name);
    }
    *out = u;
    return CN_OK;
}

/* Read a whole .npz (see internal.h). */
int cn_npz_read(const char *path, struct cn_npz *z, char err[CN_ERRLEN])
{
    memset(z, 0, sizeof *z);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return cn_fail(err, CN_EIO, "cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return cn_fail(err, CN_EIO, "%s is %s, not a .npz file", path,
                       S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file");
    if ((uint64_t)sb.st_size > CN_NPZ_MAX_TOTAL_BYTES + (1u << 20))
        return cn_fail(err, CN_EFORMAT, "%s: %lld bytes, more than any network this program "
                       "holds", path, (long long)sb.st_size);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cn_fail(err, CN_EIO, "cannot open %s: %s", path, strerror(errno));
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char *b = malloc(size ? (size_t)size : 1);
    struct zentry *e = NULL;
    int st = CN_OK;
    if (!b) {
        st = cn_fail(err, CN_ENOMEM, "out of memory reading %s", path);
        goto done;
    }
    if (fread(b, 1, (size_t)size, f) != (size_t)size) {
        st = cn_fail(err, CN_EIO, "cannot read %s%s%s", path, ferror(f) ? ": " : " (it shrank)",
                     ferror(f) ? strerror(errno) : "");
        goto done;
    }
    uint64_t cd_off = 0, cd_size = 0, count = 0;
    if ((st = find_directory(b, size, path, &cd_off, &cd_size, &count, err)) != CN_OK)
        goto done;
    e = calloc(count ? (size_t)count : 1, sizeof *e);
    z->entry = calloc(count ? (size_t)count : 1, sizeof *z->entry);
    if (!e || !z->entry) {
        st = cn_fail(err, CN_ENOMEM, "out of memory reading %s", path);
        goto done;
    }
    if ((st = read_directory(b, size, cd_off, cd_size, (int)count, e, path, err)) != CN_OK)
        goto done;
    for (int k = 0; k < (int)count; k++) {
        size_t nl = strlen(e[k].name);
        if (nl < 5 || strcmp(e[k].name + nl - 4, ".npy") != 0) {
            st = cn_fail(err, CN_EFORMAT, "%s: entry '%s' is not a .npy array", path, e[k].name);
            goto done;
        }
        struct cn_npz_entry *ze = &z->entry[k];
        memcpy(ze->name, e[k].name, nl - 4);
        ze->name[nl - 4] = '\0';
        for (int j = 0; j < k; j++)
            if (strcmp(z->entry[j].name, ze->name) == 0) {
                st = cn_fail(err, CN_EFORMAT, "%s: array '%s' appears twice", path, ze->name);
                goto done;
            }
        unsigned char *u = NULL;
        if ((st = extract(b, &e[k], path, &u, err)) != CN_OK)
            goto done;
        char what[CN_NPZ_NAME_MAX + 1200], serr[SIM_ERRLEN];
        snprintf(what, sizeof what, "%s: array '%s'", path, ze->name);
        int sst = sim_npy_parse(u, (size_t)e[k].usize, what, &ze->arr, serr);
        free(u);
        if (sst != SIM_OK) {
            st = cn_fail(err, sst == SIM_ENOMEM ? CN_ENOMEM : CN_EFORMAT, "%s", serr);
            goto done;
        }
        z->count = k + 1;
    }
done:
    if (st != CN_OK)
        cn_npz_free(z);
    free(e);
    free(b);
    fclose(f);
    return st;
}

/* ---------------------------------------------------------------- writer */

static void wr16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void wr32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

/* The .npy image of one float32 array: header then little-endian data. */
static int npy_image(const struct cn_npz_array *a, unsigned char **out, size_t *len,
                     char err[CN_ERRLEN])
{
    char hdr[1024];
    size_t hl = sim_npy_header(hdr, sizeof hdr, SIM_NPY_F4, a->ndim, a->shape);
    if (hl == 0)
        return cn_fail(err, CN_EARG, "array '%s': shape does not fit a .npy header", a->name);
    size_t count = 1;
    for (int d = 0; d < a->ndim; d++)
        count *= (size_t)a->shape[d];
    if (count * 4 > CN_NPZ_MAX_ENTRY_BYTES)
        return cn_fail(err, CN_EARG, "array '%s' is too large for an .npz entry", a->name);
    unsigned char *b = malloc(hl + count * 4);
    if (!b)
        return cn_fail(err, CN_ENOMEM, "out of memory");
    memcpy(b, hdr, hl);
    for (size_t k = 0; k < count; k++) {
        uint32_t u;
        memcpy(&u, a->data + k, 4);
        wr32(b + hl + 4 * k, u);
    }
    *out = b;
    *len = hl + count * 4;
    return CN_OK;
}

/* Raw deflate of len bytes (level 6, as zipfile's default) into a new buffer. */
static int deflate_raw(const unsigned char *in, size_t len, unsigned char **out, size_t *olen,
                       char err[CN_ERRLEN])
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return cn_fail(err, CN_ENOMEM, "cannot start zlib");
    uLong cap = deflateBound(&zs, (uLong)len);
    unsigned char *b = malloc(cap ? cap : 1);
    if (!b) {
        deflateEnd(&zs);
        return cn_fail(err, CN_ENOMEM, "out of memory");
    }
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = b;
    zs.avail_out = (uInt)cap;
    int zr = deflate(&zs, Z_FINISH);
    *olen = zs.total_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END) {
        free(b);
        return cn_fail(err, CN_ENOMEM, "zlib deflate failed (%d)", zr);
    }
    *out = b;
    return CN_OK;
}

/* Write arrays as an .npz (see internal.h). */
int cn_npz_write(const char *path, const struct cn_npz_array *arr, int count, int compress,
                 char err[CN_ERRLEN])
{
    if (count < 0 || count > CN_NPZ_MAX_ENTRIES)
        return cn_fail(err, CN_EARG, "%d arrays (0..%d can be written)", count,
                       CN_NPZ_MAX_ENTRIES);
    unsigned char *cd = malloc((size_t)(count ? count : 1) * (CENTRAL_BYTES + CN_NPZ_NAME_MAX + 4));
    if (!cd)
        return cn_fail(err, CN_ENOMEM, "out of memory");
    struct sim_atomic at;
    char serr[SIM_ERRLEN];
    int sst = sim_atomic_open(&at, path, serr);
    if (sst != SIM_OK) {
        free(cd);
        return cn_fail(err, sst == SIM_EARG ? CN_EARG : CN_EIO, "cannot write %s", serr);
    }
    uint64_t off = 0;
    size_t cdl = 0;
    int st = CN_OK;
    for (int k = 0; k < count && st == CN_OK; k++) {
        char name[CN_NPZ_NAME_MAX + 5];
        size_t nl = strlen(arr[k].name);
        if (nl == 0 || nl > CN_NPZ_NAME_MAX) {
            st = cn_fail(err, CN_EARG, "array name '%s' must have 1..%d bytes", arr[k].name,
                         CN_NPZ_NAME_MAX);
            break;
        }
        snprintf(name, sizeof name, "%s.npy", arr[k].name);
        nl += 4;
        unsigned char *img = NULL, *packed = NULL;
        size_t il = 0, pl = 0;
        if ((st = npy_image(&arr[k], &img, &il, err)) != CN_OK)
            break;
        if (compress && (st = deflate_raw(img, il, &packed, &pl, err)) != CN_OK) {
            free(img);
            break;
        }
        const unsigned char *data = compress ? packed : img;
        size_t dl = compress ? pl : il;
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), img, (uInt)il);
        if (off + LOCAL_BYTES + nl + dl > 0xFFFFFFFFu) {
            free(img);
            free(packed);
            st = cn_fail(err, CN_EARG, "%s: archive would exceed 4 GiB", path);
            break;
        }
        unsigned char lh[LOCAL_BYTES];
        wr32(lh, SIG_LOCAL);
        wr16(lh + 4, 20); /* version needed: 2.0 (deflate) */
        wr16(lh + 6, 0);
        wr16(lh + 8, compress ? METHOD_DEFLATED : METHOD_STORED);
        wr16(lh + 10, 0);
        wr16(lh + 12, DOS_DATE_1980);
        wr32(lh + 14, crc);
        wr32(lh + 18, (uint32_t)dl);
        wr32(lh + 22, (uint32_t)il);
        wr16(lh + 26, (uint32_t)nl);
        wr16(lh + 28, 0);
        unsigned char *c = cd + cdl;
        wr32(c, SIG_CENTRAL);
        wr16(c + 4, 20);
        memcpy(c + 6, lh + 4, 26); /* version needed .. name length, as in the local header */
        wr16(c + 32, 0);           /* comment length */
        wr16(c + 34, 0);           /* disk */
        wr16(c + 36, 0);           /* internal attributes */
        wr32(c + 38, 0600u << 16); /* external: rw------- as a Unix mode */
        wr32(c + 42, (uint32_t)off);
        memcpy(c + CENTRAL_BYTES, name, nl);
        cdl += CENTRAL_BYTES + nl;
        sim_atomic_write(&at, lh, sizeof lh);
        sim_atomic_write(&at, name, nl);
        sim_atomic_write(&at, data, dl);
        off += LOCAL_BYTES + nl + dl;
        free(img);
        free(packed);
    }
    if (st == CN_OK && off + cdl > 0xFFFFFFFFu)
        st = cn_fail(err, CN_EARG, "%s: archive would exceed 4 GiB", path);
    if (st != CN_OK) {
        sim_atomic_abort(&at);
        free(cd);
        return st;
    }
    unsigned char eocd[EOCD_BYTES];
    memset(eocd, 0, sizeof eocd);
    wr32(eocd, SIG_EOCD);
    wr16(eocd + 8, (uint32_t)count);
    wr16(eocd + 10, (uint32_t)count);
    wr32(eocd + 12, (uint32_t)cdl);
    wr32(eocd + 16, (uint32_t)off);
    sim_atomic_write(&at, cd, cdl);
    sim_atomic_write(&at, eocd, sizeof eocd);
    free(cd);
    /* a failed write is kept in the writer: the commit reports it and removes the temporary */
    if (sim_atomic_commit(&at, serr) != SIM_OK)
        return cn_fail(err, CN_EIO, "cannot write %s", serr);
    return CN_OK;
}
