/* npy.c: NumPy .npy file I/O for the sim library (float64/float32, C order), status names and
 * dataset file names. Writes are atomic, through sim_atomic (atomic.c). */
#include "sim.h"
#include "sim_internal.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The data block is copied between memory and file as raw bytes, which is only
 * the .npy '<f8' / '<f4' layout on a little-endian IEEE-754 host. */
#if !defined(__BYTE_ORDER__) || !defined(__ORDER_LITTLE_ENDIAN__) || \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif
_Static_assert(sizeof(double) == 8 && DBL_MANT_DIG == 53, "double must be IEEE-754 binary64");
_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24, "float must be IEEE-754 binary32");

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* NumPy >= 1.24 pads magic + version + length + dict to a multiple of this. */
#define NPY_ALIGN 64
/* NumPy leaves room after the dict so the first axis can grow in place to this many digits. */
#define NPY_GROWTH_AXIS_MAX_DIGITS 21
/* Our headers are ~130 bytes; NumPy itself refuses headers over 10000 bytes by
 * default. A larger cap keeps odd but honest files readable while refusing to
 * allocate gigabytes on a corrupt length field. */
#define NPY_MAX_HEADER (1u << 20)
/* Values converted per block between float32 and double, so conversion needs no full-size copy. */
#define NPY_CONV_BLOCK 65536
/* Longest descr string kept for messages. */
#define NPY_DESCR_MAX 64

/* Short name of a status code. */
const char *sim_strerror(int status)
{
    switch (status) {
    case SIM_OK: return "ok";
    case SIM_EARG: return "invalid argument";
    case SIM_ENOMEM: return "out of memory";
    case SIM_EIO: return "I/O error";
    case SIM_EFORMAT: return "bad file format";
    case SIM_EEXIST: return "file exists";
    default: return "unknown error";
    }
}


/* Quote up to max bytes of s for a message, escaping what a terminal would mangle. */
static void quote_text(char *out, size_t outlen, const char *s, size_t n, size_t max)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < max && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        }
    }
    if (n > max && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

/* ---------------------------------------------------------------- header parsing */

/* State of the header dict parser: the text, a cursor, and what was found. */
struct hdr {
    const char *s;
    size_t n, pos;
    char *msg; /* detail for "malformed header: ..." or a format complaint, MSGLEN bytes */
    int seen_descr, seen_fortran, seen_shape;
    char descr[NPY_DESCR_MAX + 1];
    size_t descr_len; /* full length, may exceed what descr holds */
    int fortran;
    int ndim;
    int64_t shape[SIM_NPY_MAXDIM];
};
#define MSGLEN 256

/* Whitespace as Python's tokenizer skips it between tokens of a literal. */
static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Move the cursor past whitespace. */
static void skip_ws(struct hdr *h)
{
    while (h->pos < h->n && is_ws(h->s[h->pos]))
        h->pos++;
}

/* Record "malformed header: <what>, found "<text at cursor>" at offset N"; returns -1. */
static int malformed(struct hdr *h, const char *what)
{
    char q[64];
    if (h->pos >= h->n) {
        snprintf(h->msg, MSGLEN, "malformed header: %s, found end of header", what);
    } else {
        quote_text(q, sizeof q, h->s + h->pos, h->n - h->pos, 16);
        snprintf(h->msg, MSGLEN, "malformed header: %s, found \"%s\" at offset %zu", what, q,
                 h->pos);
    }
    return -1;
}

/* A quoted Python string without escapes (all that .npy headers contain): start and length. */
static int parse_string(struct hdr *h, const char **str, size_t *len, const char *what)
{
    if (h->pos >= h->n || (h->s[h->pos] != '\'' && h->s[h->pos] != '"'))
        return malformed(h, what);
    char quote = h->s[h->pos];
    size_t start = h->pos + 1, i = start;
    while (i < h->n && h->s[i] != quote) {
        if (h->s[i] == '\\' || h->s[i] == '\n' || h->s[i] == '\0')
            return malformed(h, "unsupported character in string");
        i++;
    }
    if (i >= h->n)
        return malformed(h, "unterminated string");
    *str = h->s + start;
    *len = i - start;
    h->pos = i + 1;
    return 0;
}

/* A Python identifier at the cursor (True, False, ...): its length, 0 if none. */
static size_t ident_len(const struct hdr *h)
{
    size_t i = h->pos;
    while (i < h->n && ((h->s[i] >= 'a' && h->s[i] <= 'z') || (h->s[i] >= 'A' && h->s[i] <= 'Z') ||
                        (h->s[i] >= '0' && h->s[i] <= '9') || h->s[i] == '_'))
        i++;
    return i - h->pos;
}

/* One shape entry: optional sign, decimal digits, optional Python 2 'L' suffix. */
static int parse_dim(struct hdr *h, int64_t *out)
{
    size_t start = h->pos;
    int neg = 0;
    if (h->pos < h->n && (h->s[h->pos] == '-' || h->s[h->pos] == '+')) {
        neg = h->s[h->pos] == '-';
        h->pos++;
        skip_ws(h);
    }
    if (h->pos >= h->n || h->s[h->pos] < '0' || h->s[h->pos] > '9') {
        h->pos = start;
        return malformed(h, "expected an integer in shape");
    }
    uint64_t v = 0;
    int big = 0;
    while (h->pos < h->n && h->s[h->pos] >= '0' && h->s[h->pos] <= '9') {
        unsigned d = (unsigned)(h->s[h->pos] - '0');
        if (v > (UINT64_MAX - d) / 10)
            big = 1;
        else
            v = v * 10 + d;
        h->pos++;
    }
    if (h->pos < h->n && (h->s[h->pos] == 'L' || h->s[h->pos] == 'l'))
        h->pos++;
    if (ident_len(h) > 0 || (h->pos < h->n && h->s[h->pos] == '.')) {
        h->pos = start;
        return malformed(h, "expected an integer in shape");
    }
    if (neg && (v != 0 || big)) {
        char q[64];
        quote_text(q, sizeof q, h->s + start, h->pos - start, 30);
        snprintf(h->msg, MSGLEN, "shape has a negative dimension %s", q);
        return -1;
    }
    if (big || v > (uint64_t)INT64_MAX) {
        char q[64];
        quote_text(q, sizeof q, h->s + start, h->pos - start, 30);
        snprintf(h->msg, MSGLEN, "shape dimension %s is too large", q);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* A shape tuple: (), (5,), (2, 3), (2, 3,). A parenthesised lone integer is not a tuple. */
static int parse_shape(struct hdr *h)
{
    if (h->pos >= h->n || h->s[h->pos] != '(')
        return malformed(h, "shape must be a tuple");
    h->pos++;
    int count = 0, trailing_comma = 0;
    for (;;) {
        skip_ws(h);
        if (h->pos < h->n && h->s[h->pos] == ')') {
            if (count == 1 && !trailing_comma)
                return malformed(h, "shape (n) is not a tuple; a 1-tuple is written (n,)");
            h->pos++;
            break;
        }
        if (count > 0 && !trailing_comma)
            return malformed(h, "expected ',' or ')' in shape");
        int64_t d;
        if (parse_dim(h, &d) != 0)
            return -1;
        if (count >= SIM_NPY_MAXDIM) {
            /* Count the rest for the message; stop at the first thing that is not a dim. */
            int total = count + 1;
            for (;;) {
                skip_ws(h);
                if (h->pos >= h->n || h->s[h->pos] != ',')
                    break;
                h->pos++;
                skip_ws(h);
                if (h->pos >= h->n || h->s[h->pos] == ')' || parse_dim(h, &d) != 0)
                    break;
                total++;
            }
            snprintf(h->msg, MSGLEN, "shape has %d%s dimensions; at most %d are supported", total,
                     h->pos < h->n && h->s[h->pos] == ')' ? "" : " or more", SIM_NPY_MAXDIM);
            return -1;
        }
        h->shape[count++] = d;
        skip_ws(h);
        trailing_comma = 0;
        if (h->pos < h->n && h->s[h->pos] == ',') {
            h->pos++;
            trailing_comma = 1;
        }
    }
    h->ndim = count;
    return 0;
}

/* The header dict: keys 'descr', 'fortran_order', 'shape', each once, in any order. */
static int parse_header(struct hdr *h)
{
    skip_ws(h);
    if (h->pos >= h->n || h->s[h->pos] != '{')
        return malformed(h, "expected '{'");
    h->pos++;
    for (;;) {
        skip_ws(h);
        if (h->pos < h->n && h->s[h->pos] == '}') {
            h->pos++;
            break;
        }
        const char *key;
        size_t klen;
        size_t key_pos = h->pos;
        if (parse_string(h, &key, &klen, "expected a quoted key or '}'") != 0)
            return -1;
        int *seen;
        if (klen == 5 && memcmp(key, "descr", 5) == 0)
            seen = &h->seen_descr;
        else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0)
            seen = &h->seen_fortran;
        else if (klen == 5 && memcmp(key, "shape", 5) == 0)
            seen = &h->seen_shape;
        else {
            char q[64];
            quote_text(q, sizeof q, key, klen, 30);
            snprintf(h->msg, MSGLEN, "malformed header: unexpected key '%s'", q);
            return -1;
        }
        if (*seen) {
            char q[64];
            quote_text(q, sizeof q, key, klen, 30);
            snprintf(h->msg, MSGLEN, "malformed header: duplicate key '%s' at offset %zu", q,
                     key_pos);
            return -1;
        }
        *seen = 1;
        skip_ws(h);
        if (h->pos >= h->n || h->s[h->pos] != ':') {
            char what[96], q[40];
            quote_text(q, sizeof q, key, klen, 20);
            snprintf(what, sizeof what, "expected ':' after key '%s'", q);
            return malformed(h, what);
        }
        h->pos++;
        skip_ws(h);
        if (seen == &h->seen_descr) {
            if (h->pos < h->n && (h->s[h->pos] == '[' || h->s[h->pos] == '{')) {
                snprintf(h->msg, MSGLEN,
                         "structured dtype is not supported; expected '<f8' or '<f4'");
                return -1;
            }
            const char *d;
            size_t dlen;
            if (parse_string(h, &d, &dlen, "descr must be a quoted dtype string") != 0)
                return -1;
            h->descr_len = dlen;
            size_t keep = dlen < NPY_DESCR_MAX ? dlen : NPY_DESCR_MAX;
            memcpy(h->descr, d, keep);
            h->descr[keep] = '\0';
        } else if (seen == &h->seen_fortran) {
            size_t len = ident_len(h);
            if (len == 4 && memcmp(h->s + h->pos, "True", 4) == 0)
                h->fortran = 1;
            else if (len == 5 && memcmp(h->s + h->pos, "False", 5) == 0)
                h->fortran = 0;
            else
                return malformed(h, "fortran_order must be True or False");
            h->pos += len;
        } else {
            if (parse_shape(h) != 0)
                return -1;
        }
        skip_ws(h);
        if (h->pos < h->n && h->s[h->pos] == ',') {
            h->pos++;
            continue;
        }
        if (h->pos < h->n && h->s[h->pos] == '}') {
            h->pos++;
            break;
        }
        return malformed(h, "expected ',' or '}'");
    }
    skip_ws(h);
    if (h->pos < h->n)
        return malformed(h, "unexpected text after '}'");
    const char *missing = !h->seen_descr     ? "descr"
                          : !h->seen_fortran ? "fortran_order"
                          : !h->seen_shape   ? "shape"
                                             : NULL;
    if (missing) {
        snprintf(h->msg, MSGLEN, "malformed header: missing key '%s'", missing);
        return -1;
    }
    return 0;
}

/* Map the descr string to a supported dtype, or explain why it is not supported. */
static int check_descr(const struct hdr *h, int *dtype, char *msg)
{
    if (strcmp(h->descr, "<f8") == 0) {
        *dtype = SIM_NPY_F8;
        return 0;
    }
    if (strcmp(h->descr, "<f4") == 0) {
        *dtype = SIM_NPY_F4;
        return 0;
    }
    char q[80];
    quote_text(q, sizeof q, h->descr, h->descr_len, NPY_DESCR_MAX);
    const char *why = "";
    if (h->descr_len == 3 && h->descr[0] == '>' && h->descr[1] == 'f')
        why = " (big-endian)";
    snprintf(msg, MSGLEN, "dtype '%s'%s is not supported; expected '<f8' or '<f4'", q, why);
    return -1;
}

/* ---------------------------------------------------------------- reading */

/* Free an array from sim_npy_read and zero it, so a second free is harmless. */
void sim_npy_free(struct sim_npy *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* fread that tells how many bytes arrived, feeding them to the digest if there is one; sets
 * *err_no on a read error. */
static size_t read_bytes(FILE *f, void *buf, size_t n, int *err_no, struct sim_sha256 *hc)
{
    errno = 0;
    size_t got = fread(buf, 1, n, f);
    if (got < n && ferror(f))
        *err_no = errno ? errno : EIO;
    if (hc)
        sim_sha256_update(hc, buf, got);
    return got;
}

/* Read a .npy file; see sim.h. */
int sim_npy_read(const char *path, struct sim_npy *out, char err[SIM_ERRLEN])
{
    return sim_npy_read_hashed(path, out, NULL, err);
}

static int read_impl(const char *path, const void *mem, size_t mem_len, struct sim_npy *out,
                     unsigned char sha256[32], int header_only, char err[SIM_ERRLEN]);

/* Read a .npy file and digest its bytes; see sim.h. */
int sim_npy_read_hashed(const char *path, struct sim_npy *out, unsigned char sha256[32],
                        char err[SIM_ERRLEN])
{
    return read_impl(path, NULL, 0, out, sha256, 0, err);
}

/* Read a .npy file's header and check its size; see sim.h. */
int sim_npy_read_header(const char *path, struct sim_npy *out, char err[SIM_ERRLEN])
{
    return read_impl(path, NULL, 0, out, NULL, 1, err);
}

/* Parse a .npy image held in memory; see sim.h. */
int sim_npy_parse(const void *buf, size_t len, const char *name, struct sim_npy *out,
                  char err[SIM_ERRLEN])
{
    if (!buf && len > 0)
        return sim_fail_path(err, SIM_EARG, name, "no buffer given");
    return read_impl(name ? name : "(memory)", buf, len, out, NULL, 0, err);
}

/* The reader: the whole file, or (header_only) the header and the file's size against it. With
 * mem, the "file" is the mem_len bytes at mem (read through fmemopen) and path only names it. */
static int read_impl(const char *path, const void *mem, size_t mem_len, struct sim_npy *out,
                     unsigned char sha256[32], int header_only, char err[SIM_ERRLEN])
{
    struct sim_sha256 hash, *hc = sha256 ? &hash : NULL;
    if (hc)
        sim_sha256_init(hc);
    if (err)
        err[0] = '\0';
    if (!out)
        return sim_fail_path(err, SIM_EARG, path, "no output array given");
    memset(out, 0, sizeof *out);
    if (!path)
        return sim_fail_path(err, SIM_EARG, path, "no path given");

    /* fmemopen refuses an empty buffer: an empty image is the empty file it stands for. */
    static const char empty[1] = {0};
    FILE *f = mem ? fmemopen((void *)(mem_len ? mem : empty), mem_len ? mem_len : 1, "rb")
                  : fopen(path, "rb");
    if (!f)
        return sim_fail_path(err, SIM_EIO, path, "cannot open: %s", strerror(errno));

    int st = SIM_OK, rerr = 0;
    char *hbuf = NULL;
    float *fbuf = NULL;
    double *data = NULL;
    struct stat sb;
    /* Sizes are checked against the file before allocating, when it is a regular file (or
     * memory, whose size is known). */
    int regular = mem || (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode));
    uint64_t fsize = mem ? (uint64_t)mem_len : regular ? (uint64_t)sb.st_size : 0;
    if (mem && mem_len == 0) {
        st = sim_fail_path(err, SIM_EFORMAT, path, "file too short (0 bytes) for a .npy preamble");
        goto done;
    }

    unsigned char pre[12];
    size_t got = read_bytes(f, pre, 8, &rerr, hc);
    if (rerr) {
        st = sim_fail_path(err, SIM_EIO, path, "read failed: %s", strerror(rerr));
        goto done;
    }
    if (got < 8 || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        char q[64];
        quote_text(q, sizeof q, (const char *)pre, got < NPY_MAGIC_LEN ? got : NPY_MAGIC_LEN, 8);
        if (got < 8 && memcmp(pre, NPY_MAGIC, got < NPY_MAGIC_LEN ? got : NPY_MAGIC_LEN) == 0)
            st =
                sim_fail_path(err, SIM_EFORMAT, path, "file too short (%zu bytes) for a .npy preamble", got);
        else
            st = sim_fail_path(err, SIM_EFORMAT, path,
                      "bad magic: not a .npy file (starts with '%s', expected '\\x93NUMPY')", q);
        goto done;
    }
    int major = pre[6], minor = pre[7];
    size_t lenbytes;
    if (major == 1 && minor == 0)
        lenbytes = 2;
    else if ((major == 2 || major == 3) && minor == 0)
        lenbytes = 4; /* 3.0 only allows UTF-8 in the dict, which our dtypes never use */
    else {
        st = sim_fail_path(err, SIM_EFORMAT, path,
                  "format version %d.%d is not supported (only 1.0, 2.0, 3.0)", major, minor);
        goto done;
    }
    got = read_bytes(f, pre + 8, lenbytes, &rerr, hc);
    if (rerr) {
        st = sim_fail_path(err, SIM_EIO, path, "read failed: %s", strerror(rerr));
        goto done;
    }
    if (got < lenbytes) {
        st = sim_fail_path(err, SIM_EFORMAT, path, "file ends inside the header length field");
        goto done;
    }
    uint64_t hlen = lenbytes == 2 ? (uint64_t)pre[8] | (uint64_t)pre[9] << 8
                                  : (uint64_t)pre[8] | (uint64_t)pre[9] << 8 |
                                        (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    uint64_t data_off = 8 + lenbytes + hlen;
    if (regular && data_off > fsize) {
        st = sim_fail_path(err, SIM_EFORMAT, path,
                  "header length %" PRIu64 " exceeds file (only %" PRIu64 " bytes follow)", hlen,
                  fsize > 8 + lenbytes ? fsize - (8 + lenbytes) : 0);
        goto done;
    }
    if (hlen > NPY_MAX_HEADER) {
        st = sim_fail_path(err, SIM_EFORMAT, path, "header length %" PRIu64 " exceeds the limit of %u bytes",
                  hlen, NPY_MAX_HEADER);
        goto done;
    }
    hbuf = malloc((size_t)hlen + 1);
    if (!hbuf) {
        st = sim_fail_path(err, SIM_ENOMEM, path, "cannot allocate %" PRIu64 " bytes for the header", hlen);
        goto done;
    }
    got = read_bytes(f, hbuf, (size_t)hlen, &rerr, hc);
    if (rerr) {
        st = sim_fail_path(err, SIM_EIO, path, "read failed: %s", strerror(rerr));
        goto done;
    }
    if (got < hlen) {
        st = sim_fail_path(err, SIM_EFORMAT, path,
                  "header length %" PRIu64 " exceeds file (only %zu bytes follow)", hlen, got);
        goto done;
    }
    hbuf[hlen] = '\0';

    char msg[MSGLEN];
    struct hdr h;
    memset(&h, 0, sizeof h);
    h.s = hbuf;
    h.n = (size_t)hlen;
    h.msg = msg;
    if (parse_header(&h) != 0) {
        st = sim_fail_path(err, SIM_EFORMAT, path, "%s", msg);
        goto done;
    }
    int dtype;
    if (check_descr(&h, &dtype, msg) != 0) {
        st = sim_fail_path(err, SIM_EFORMAT, path, "%s", msg);
        goto done;
    }
    if (h.fortran) {
        st = sim_fail_path(err, SIM_EFORMAT, path, "fortran_order is True; only C order is supported");
        goto done;
    }

    /* count must fit in memory as doubles, whatever the file's dtype. */
    size_t count = 1;
    int zero = 0;
    for (int i = 0; i < h.ndim; i++)
        zero |= h.shape[i] == 0;
    if (zero)
        count = 0;
    else {
        for (int i = 0; i < h.ndim; i++) {
            if ((uint64_t)h.shape[i] > SIZE_MAX / sizeof(double) / count) {
                st = sim_fail_path(err, SIM_EFORMAT, path,
                          "shape product overflows (dimension %d is %" PRId64 ")", i, h.shape[i]);
                goto done;
            }
            count *= (size_t)h.shape[i];
        }
    }
    size_t esize = dtype == SIM_NPY_F8 ? 8 : 4;
    size_t nbytes = count * esize;
    if (regular && fsize - data_off < nbytes) {
        st = sim_fail_path(err, SIM_EFORMAT, path, "data truncated: expected %zu bytes, found %" PRIu64,
                  nbytes, fsize - data_off);
        goto done;
    }
    if (regular && fsize - data_off > nbytes) {
        st = sim_fail_path(err, SIM_EFORMAT, path,
                  "extra bytes after the data: expected %zu bytes of data, found %" PRIu64, nbytes,
                  fsize - data_off);
        goto done;
    }

    if (header_only) {
        out->dtype = dtype;
        out->ndim = h.ndim;
        for (int i = 0; i < h.ndim; i++)
            out->shape[i] = h.shape[i];
        out->count = count;
        goto done;
    }
    /* At least one element so data is never NULL on success. */
    data = malloc((count ? count : 1) * sizeof(double));
    if (!data) {
        st = sim_fail_path(err, SIM_ENOMEM, path, "cannot allocate %zu values", count);
        goto done;
    }
    size_t total = 0;
    if (dtype == SIM_NPY_F8) {
        total = read_bytes(f, data, nbytes, &rerr, hc);
    } else if (count > 0) {
        size_t block = count < NPY_CONV_BLOCK ? count : NPY_CONV_BLOCK;
        fbuf = malloc(block * sizeof(float));
        if (!fbuf) {
            st = sim_fail_path(err, SIM_ENOMEM, path, "cannot allocate a conversion buffer");
            goto done;
        }
        for (size_t i = 0; i < count && !rerr; i += block) {
            size_t m = count - i < block ? count - i : block;
            size_t g = read_bytes(f, fbuf, m * sizeof(float), &rerr, hc);
            total += g;
            for (size_t j = 0; j < g / sizeof(float); j++)
                data[i + j] = (double)fbuf[j];
            if (g < m * sizeof(float))
                break;
        }
    }
    if (rerr) {
        st = sim_fail_path(err, SIM_EIO, path, "read failed: %s", strerror(rerr));
        goto done;
    }
    if (total < nbytes) {
        st = sim_fail_path(err, SIM_EFORMAT, path, "data truncated: expected %zu bytes, found %zu", nbytes,
                  total);
        goto done;
    }
    /* Not a regular file (or it grew meanwhile): look for bytes past the data. */
    if (fgetc(f) != EOF) {
        st = sim_fail_path(err, SIM_EFORMAT, path,
                  "extra bytes after the data: expected %zu bytes of data, found more", nbytes);
        goto done;
    }
    if (ferror(f)) {
        st = sim_fail_path(err, SIM_EIO, path, "read failed: %s", strerror(errno ? errno : EIO));
        goto done;
    }

    if (hc)
        sim_sha256_final(hc, sha256);
    out->dtype = dtype;
    out->ndim = h.ndim;
    for (int i = 0; i < h.ndim; i++)
        out->shape[i] = h.shape[i];
    out->count = count;
    out->data = data;
    data = NULL;

done:
    free(hbuf);
    free(fbuf);
    free(data);
    fclose(f); /* read-only stream: nothing to lose on close */
    return st;
}

/* ---------------------------------------------------------------- writing */

/* Preamble + dict exactly as numpy.save (>= 1.24) writes them; returns the length, 0 if too long.
 */
static size_t build_header(char *buf, size_t cap, int dtype, int ndim, const int64_t *shape)
{
    char dict[512];
    size_t k =
        (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                         dtype == SIM_NPY_F8 ? "<f8" : "<f4");
    for (int i = 0; i < ndim; i++)
        k += (size_t)snprintf(dict + k, sizeof dict - k, i ? ", %" PRId64 : "%" PRId64, shape[i]);
    k += (size_t)snprintf(dict + k, sizeof dict - k, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) {
        /* Spare room so the first axis can grow in place: 21 minus its digit count. */
        char digits[32];
        int nd = snprintf(digits, sizeof digits, "%" PRId64, shape[0]);
        for (int i = nd; i < NPY_GROWTH_AXIS_MAX_DIGITS; i++)
            dict[k++] = ' ';
    }
    /* Version 1.0 (2-byte length) unless the padded dict does not fit in 65535 bytes. */
    size_t hlen = k + 1; /* + '\n' */
    size_t pre = NPY_MAGIC_LEN + 2 + 2;
    size_t pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    int major = 1;
    if (hlen + pad > 65535) {
        major = 2;
        pre = NPY_MAGIC_LEN + 2 + 4;
        pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    }
    size_t total = pre + hlen + pad;
    if (total > cap)
        return 0;
    size_t field = hlen + pad;
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = (char)major;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (char)(field >> (8 * i) & 0xff);
    memcpy(buf + pre, dict, k);
    memset(buf + pre + k, ' ', pad);
    buf[total - 1] = '\n';
    return total;
}

/* The header numpy.save writes; see sim.h. */
size_t sim_npy_header(char *buf, size_t cap, int dtype, int ndim, const int64_t *shape)
{
    if ((dtype != SIM_NPY_F8 && dtype != SIM_NPY_F4) || ndim < 0 || ndim > SIM_NPY_MAXDIM ||
        (ndim > 0 && !shape))
        return 0;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return 0;
    return build_header(buf, cap, dtype, ndim, shape);
}

/* Write a .npy file atomically; see sim.h. */
int sim_npy_write(const char *path, int dtype, int ndim, const int64_t *shape, const double *data,
                  char err[SIM_ERRLEN])
{
    return sim_npy_write_hashed(path, dtype, ndim, shape, data, NULL, err);
}

/* sim_atomic_write that feeds the digest if there is one. */
static int write_hashed(struct sim_atomic *a, const void *p, size_t n, struct sim_sha256 *hc)
{
    if (hc)
        sim_sha256_update(hc, p, n);
    return sim_atomic_write(a, p, n);
}

/* Write a .npy file atomically and digest its bytes; see sim.h. */
int sim_npy_write_hashed(const char *path, int dtype, int ndim, const int64_t *shape,
                         const double *data, unsigned char sha256[32], char err[SIM_ERRLEN])
{
    struct sim_sha256 hash, *hc = sha256 ? &hash : NULL;
    if (hc)
        sim_sha256_init(hc);
    if (err)
        err[0] = '\0';
    if (!path || !path[0])
        return sim_fail_path(err, SIM_EARG, path, "no path given");
    if (dtype != SIM_NPY_F8 && dtype != SIM_NPY_F4)
        return sim_fail_path(err, SIM_EARG, path, "unknown dtype %d", dtype);
    if (ndim < 0 || ndim > SIM_NPY_MAXDIM)
        return sim_fail_path(err, SIM_EARG, path, "ndim %d out of range 0..%d", ndim, SIM_NPY_MAXDIM);
    if (ndim > 0 && !shape)
        return sim_fail_path(err, SIM_EARG, path, "no shape given");
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return sim_fail_path(err, SIM_EARG, path, "negative dimension %" PRId64 " in shape", shape[i]);
    for (int i = 0; i < ndim && count; i++) {
        if (shape[i] == 0)
            count = 0;
        else if ((uint64_t)shape[i] > SIZE_MAX / sizeof(double) / count)
            return sim_fail_path(err, SIM_EARG, path, "shape product overflows");
        else
            count *= (size_t)shape[i];
    }
    if (count > 0 && !data)
        return sim_fail_path(err, SIM_EARG, path, "no data given");

    char header[1024];
    size_t hsize = build_header(header, sizeof header, dtype, ndim, shape);
    if (hsize == 0)
        return sim_fail_path(err, SIM_EARG, path, "header does not fit");

    float *fbuf = NULL;
    if (dtype == SIM_NPY_F4 && count > 0) {
        fbuf = malloc((count < NPY_CONV_BLOCK ? count : NPY_CONV_BLOCK) * sizeof(float));
        if (!fbuf)
            return sim_fail_path(err, SIM_ENOMEM, path, "cannot allocate a conversion buffer");
    }
    struct sim_atomic a;
    int st = sim_atomic_open(&a, path, err);
    if (st != SIM_OK) {
        free(fbuf);
        return st;
    }
    int bad = write_hashed(&a, header, hsize, hc);
    if (dtype == SIM_NPY_F8) {
        if (!bad)
            bad = write_hashed(&a, data, count * sizeof(double), hc);
    } else {
        for (size_t i = 0; i < count && !bad; i += NPY_CONV_BLOCK) {
            size_t m = count - i < NPY_CONV_BLOCK ? count - i : NPY_CONV_BLOCK;
            for (size_t j = 0; j < m; j++)
                fbuf[j] = (float)data[i + j]; /* IEEE round-to-nearest, as astype(float32) */
            bad = write_hashed(&a, fbuf, m * sizeof(float), hc);
        }
    }
    free(fbuf);
    if (hc)
        sim_sha256_final(hc, sha256);
    /* A write error is kept in a and reported by the commit, which then removes the temporary. */
    return sim_atomic_commit(&a, err);
}

/* ---------------------------------------------------------------- dataset names */

/* "{dir}/{quantity}_{split}_{sim}{n}_initvel1{tag}.npy"; an empty or NULL dir means no
 * directory part and a dir ending in '/' gets no second one. */
int sim_dataset_path(char *buf, size_t len, const char *dir, const char *quantity,
                     const char *split, int kind, int n, const char *tag)
{
    const char *sim = sim_kind_name(kind);
    if (!buf || len == 0 || !quantity || !split || !sim || n < 1)
        return SIM_EARG;
    buf[0] = '\0';
    if (!dir)
        dir = "";
    if (!tag)
        tag = "";
    size_t dl = strlen(dir);
    const char *sep = dl > 0 && dir[dl - 1] != '/' ? "/" : "";
    int k =
        snprintf(buf, len, "%s%s%s_%s_%s%d_initvel1%s.npy", dir, sep, quantity, split, sim, n, tag);
    if (k < 0 || (size_t)k >= len) {
        buf[0] = '\0';
        return SIM_EARG;
    }
    return SIM_OK;
}
