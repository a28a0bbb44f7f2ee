/* manifest.c: a dataset folder's provenance sidecar (dataset.json): written with the twelve
 * files by nbody-gen, parsed (a small strict JSON reader) and checked by the loaders. */
#include "sim.h"
#include "sim_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Deepest nesting the reader follows in values it skips. */
#define MAX_DEPTH 16

/* --------------------------------------------------------------- reading */

/* A position in the text and where a failure goes. */
struct jp {
    const char *s;
    size_t n, i;
    const char *what;
    char *err;
    int failed;
};

/* Record the first failure ("what: problem at byte i"); returns -1. */
static int jfail(struct jp *p, const char *problem)
{
    if (!p->failed)
        sim_fail_path(p->err, SIM_EFORMAT, p->what, "%s at byte %zu", problem, p->i);
    p->failed = 1;
    return -1;
}

static void ws(struct jp *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

/* The next non-space character (0 at the end), not consumed. */
static char peek(struct jp *p)
{
    ws(p);
    return p->i < p->n ? p->s[p->i] : 0;
}

static int expect(struct jp *p, char c)
{
    if (peek(p) != c) {
        char m[32];
        snprintf(m, sizeof m, "expected '%c'", c);
        return jfail(p, m);
    }
    p->i++;
    return 0;
}

/* Value of one hex digit, or -1. */
static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A string into out (cap bytes with the NUL; out NULL: skipped). Escapes are decoded (\u to
 * UTF-8, surrogate pairs refused); control characters and overlong strings are refused. */
static int jstring(struct jp *p, char *out, size_t cap)
{
    if (expect(p, '"'))
        return -1;
    size_t k = 0;
    for (;;) {
        if (p->i >= p->n)
            return jfail(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->i++];
        unsigned code;
        if (c == '"')
            break;
        if (c < 0x20)
            return jfail(p, "control character in a string");
        if (c != '\\') {
            code = c;
        } else {
            if (p->i >= p->n)
                return jfail(p, "unterminated string");
            char e = p->s[p->i++];
            switch (e) {
            case '"': code = '"'; break;
            case '\\': code = '\\'; break;
            case '/': code = '/'; break;
            case 'b': code = '\b'; break;
            case 'f': code = '\f'; break;
            case 'n': code = '\n'; break;
            case 'r': code = '\r'; break;
            case 't': code = '\t'; break;
            case 'u': {
                code = 0;
                for (int d = 0; d < 4; d++) {
                    int v = p->i < p->n ? hexval(p->s[p->i]) : -1;
                    if (v < 0)
                        return jfail(p, "bad \\u escape");
                    code = code * 16 + (unsigned)v;
                    p->i++;
                }
                if (code >= 0xD800 && code <= 0xDFFF)
                    return jfail(p, "surrogate \\u escape not supported");
                if (code == 0)
                    return jfail(p, "NUL in a string");
                break;
            }
            default:
                return jfail(p, "bad escape in a string");
            }
        }
        /* raw bytes (c >= 0x80 unescaped) pass as they are; \u code points become UTF-8 */
        unsigned char enc[3];
        size_t len = 1;
        if (c == '\\' && code >= 0x80) {
            if (code < 0x800) {
                enc[0] = (unsigned char)(0xC0 | code >> 6);
                enc[1] = (unsigned char)(0x80 | (code & 0x3F));
                len = 2;
            } else {
                enc[0] = (unsigned char)(0xE0 | code >> 12);
                enc[1] = (unsigned char)(0x80 | ((code >> 6) & 0x3F));
                enc[2] = (unsigned char)(0x80 | (code & 0x3F));
                len = 3;
            }
        } else {
            enc[0] = (unsigned char)code;
        }
        if (out) {
            if (k + len >= cap)
                return jfail(p, "string too long");
            memcpy(out + k, enc, len);
        }
        k += len;
    }
    if (out)
        out[k] = '\0';
    return 0;
}

/* A number (JSON grammar); *iv its value when it is an integer that fits in int64, and
 * *is_int 1 then. */
static int jnumber(struct jp *p, int64_t *iv, int *is_int)
{
    ws(p);
    int neg = 0, integer = 1, overflow = 0;
    uint64_t v = 0;
    if (p->i < p->n && p->s[p->i] == '-') {
        neg = 1;
        p->i++;
    }
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
        return jfail(p, "expected a number");
    if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
        return jfail(p, "leading zero in a number");
    for (; p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9'; p->i++) {
        unsigned d = (unsigned)(p->s[p->i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            v = v * 10 + d;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        integer = 0;
        p->i++;
        size_t d0 = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        if (p->i == d0)
            return jfail(p, "expected digits after '.'");
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        integer = 0;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        size_t d0 = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        if (p->i == d0)
            return jfail(p, "expected digits in an exponent");
    }
    *is_int = integer && !overflow && v <= (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX);
    if (*is_int)
        *iv = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

/* An integer value in [lo, hi]. */
static int jint(struct jp *p, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v = 0;
    int is_int = 0;
    if (jnumber(p, &v, &is_int))
        return -1;
    if (!is_int)
        return jfail(p, "expected an integer");
    if (v < lo || v > hi)
        return jfail(p, "integer out of range");
    *out = v;
    return 0;
}

/* A literal word (true, false, null). */
static int jword(struct jp *p, const char *w)
{
    size_t l = strlen(w);
    ws(p);
    if (p->n - p->i < l || memcmp(p->s + p->i, w, l) != 0)
        return jfail(p, "unexpected value");
    p->i += l;
    return 0;
}

/* true or false. */
static int jbool(struct jp *p, int *out)
{
    char c = peek(p);
    if (c == 't') {
        *out = 1;
        return jword(p, "true");
    }
    if (c == 'f') {
        *out = 0;
        return jword(p, "false");
    }
    return jfail(p, "expected true or false");
}

/* Any value, discarded (nesting at most MAX_DEPTH). */
static int jskip(struct jp *p, int depth)
{
    if (depth > MAX_DEPTH)
        return jfail(p, "nested too deeply");
    char c = peek(p);
    if (c == '"')
        return jstring(p, NULL, 0);
    if (c == '{' || c == '[') {
        const char close = c == '{' ? '}' : ']';
        p->i++;
        if (peek(p) == close) {
            p->i++;
            return 0;
        }
        for (;;) {
            if (c == '{' && (jstring(p, NULL, 0) || expect(p, ':')))
                return -1;
            if (jskip(p, depth + 1))
                return -1;
            char d = peek(p);
            p->i += d != 0;
            if (d == close)
                return 0;
            if (d != ',')
                return jfail(p, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    if (c == 't')
        return jword(p, "true");
    if (c == 'f')
        return jword(p, "false");
    if (c == 'n')
        return jword(p, "null");
    int64_t v;
    int is_int;
    return jnumber(p, &v, &is_int);
}

/* The members of an object: for each key, fn(p, key, ctx) parses the value. */
static int jobject(struct jp *p, int (*fn)(struct jp *, const char *, void *), void *ctx)
{
    if (expect(p, '{'))
        return -1;
    if (peek(p) == '}') {
        p->i++;
        return 0;
    }
    for (;;) {
        char key[64];
        if (jstring(p, key, sizeof key) || expect(p, ':') || fn(p, key, ctx))
            return -1;
        char d = peek(p);
        p->i += d != 0;
        if (d == '}')
            return 0;
        if (d != ',')
            return jfail(p, "expected ',' or '}'");
    }
}

/* An entry of "files" being read, and which of its three members it has had. */
struct file_ctx {
    struct sim_manifest_file *f;
    int seen; /* bits: 1 name, 2 bytes, 4 sha256 */
};

/* One member of an entry of "files". */
static int file_member(struct jp *p, const char *key, void *ctx)
{
    struct file_ctx *fc = ctx;
    struct sim_manifest_file *f = fc->f;
    if (!strcmp(key, "name")) {
        fc->seen |= 1;
        return jstring(p, f->name, sizeof f->name);
    }
    if (!strcmp(key, "bytes")) {
        fc->seen |= 2;
        return jint(p, 0, INT64_MAX, &f->bytes);
    }
    if (!strcmp(key, "sha256")) {
        fc->seen |= 4;
        char hex[80];
        if (jstring(p, hex, sizeof hex))
            return -1;
        if (strlen(hex) != 64)
            return jfail(p, "sha256 is not 64 hex digits");
        for (int k = 0; k < 32; k++) {
            int hi = hexval(hex[2 * k]), lo = hexval(hex[2 * k + 1]);
            if (hi < 0 || lo < 0)
                return jfail(p, "sha256 is not 64 hex digits");
            f->sha256[k] = (unsigned char)(hi * 16 + lo);
        }
        return 0;
    }
    return jskip(p, 2);
}

/* A finite number as a double: the JSON grammar checked by jnumber, the value by
 * sim_parse_double (independent of the locale). */
static int jdouble(struct jp *p, double *out)
{
    ws(p);
    size_t at = p->i;
    int64_t iv;
    int is_int;
    if (jnumber(p, &iv, &is_int))
        return -1;
    char buf[64];
    size_t len = p->i - at;
    if (len < sizeof buf) {
        memcpy(buf, p->s + at, len);
        buf[len] = '\0';
        if (sim_parse_double(buf, out) == SIM_OK)
            return 0;
    }
    p->i = at;
    return jfail(p, "a number too long or out of the range of double");
}

/* The "physics" object: only the softening differs between datasets (by stream); the other
 * constants are the same for every dataset this version writes and are not read back. */
static int physics_member(struct jp *p, const char *key, void *ctx)
{
    double *softening = ctx;
    if (!strcmp(key, "softening")) {
        if (jdouble(p, softening))
            return -1;
        if (*softening < 0)
            return jfail(p, "negative softening");
        return 0;
    }
    return jskip(p, 2);
}

/* The "counts" object. */
static int counts_member(struct jp *p, const char *key, void *ctx)
{
    int64_t *c = ctx;
    static const char *const names[3] = {"train", "valid", "test"};
    for (int k = 0; k < 3; k++)
        if (!strcmp(key, names[k]))
            return jint(p, 0, INT64_MAX, &c[k]);
    return jskip(p, 2);
}

/* What the top level has seen. */
struct top {
    struct sim_manifest *m;
    int format, run_id, files;
};

/* A member of the top-level object. */
static int top_member(struct jp *p, const char *key, void *ctx)
{
    struct top *t = ctx;
    struct sim_manifest *m = t->m;
    if (!strcmp(key, "format")) {
        char fmt[64];
        if (jstring(p, fmt, sizeof fmt))
            return -1;
        if (strcmp(fmt, SIM_MANIFEST_FORMAT) != 0)
            return jfail(p, "format is not \"" SIM_MANIFEST_FORMAT "\" (a newer or other writer)");
        t->format = 1;
        return 0;
    }
    if (!strcmp(key, "run_id")) {
        if (jstring(p, m->run_id, sizeof m->run_id))
            return -1;
        if (!m->run_id[0])
            return jfail(p, "empty run_id");
        t->run_id = 1;
        return 0;
    }
    if (!strcmp(key, "generator"))
        return jstring(p, m->generator, sizeof m->generator);
    if (!strcmp(key, "sim"))
        return jstring(p, m->sim, sizeof m->sim);
    if (!strcmp(key, "tag"))
        return jstring(p, m->tag, sizeof m->tag);
    if (!strcmp(key, "bodies"))
        return jint(p, 0, INT64_MAX, &m->bodies);
    if (!strcmp(key, "seed"))
        return jint(p, 0, INT64_MAX, &m->seed);
    if (!strcmp(key, "length"))
        return jint(p, 0, INT64_MAX, &m->length);
    if (!strcmp(key, "sample_freq"))
        return jint(p, 0, INT64_MAX, &m->sample_freq);
    if (!strcmp(key, "frames"))
        return jint(p, 0, INT64_MAX, &m->frames);
    if (!strcmp(key, "reference_seeds"))
        return jbool(p, &m->reference_seeds);
    if (!strcmp(key, "stream"))
        return jstring(p, m->stream, sizeof m->stream);
    if (!strcmp(key, "generator_version"))
        return jint(p, 0, INT64_MAX, &m->generator_version);
    if (!strcmp(key, "physics"))
        return jobject(p, physics_member, &m->softening);
    if (!strcmp(key, "counts"))
        return jobject(p, counts_member, m->counts);
    if (!strcmp(key, "files")) {
        if (t->files)
            return jfail(p, "\"files\" given twice");
        t->files = 1;
        if (expect(p, '['))
            return -1;
        if (peek(p) == ']') {
            p->i++;
            return 0;
        }
        for (;;) {
            if (m->nfiles >= SIM_MANIFEST_MAX_FILES)
                return jfail(p, "more than 12 files listed");
            struct sim_manifest_file *f = &m->file[m->nfiles];
            memset(f, 0, sizeof *f);
            struct file_ctx fc = {f, 0};
            size_t at = p->i;
            if (jobject(p, file_member, &fc))
                return -1;
            if (fc.seen != 7 || !f->name[0]) {
                p->i = at;
                return jfail(p, "a file entry needs a name, bytes and sha256");
            }
            if (strchr(f->name, '/') || !strcmp(f->name, ".") || !strcmp(f->name, "..")) {
                p->i = at;
                return jfail(p, "a file name with a directory part");
            }
            for (int k = 0; k < m->nfiles; k++)
                if (!strcmp(m->file[k].name, f->name)) {
                    p->i = at;
                    return jfail(p, "a file listed twice");
                }
            m->nfiles++;
            char d = peek(p);
            p->i += d != 0;
            if (d == ']')
                return 0;
            if (d != ',')
                return jfail(p, "expected ',' or ']'");
        }
    }
    return jskip(p, 1);
}

/* Parse a sidecar's text (see sim.h). */
int sim_manifest_parse(const char *text, size_t len, const char *what, struct sim_manifest *m,
                       char err[SIM_ERRLEN])
{
    if (err)
        err[0] = '\0';
    memset(m, 0, sizeof *m);
    if (!text)
        return sim_fail_path(err, SIM_EARG, what, "no text given");
    struct jp p = {text, len, 0, what ? what : SIM_MANIFEST_NAME, err, 0};
    struct top t = {m, 0, 0, 0};
    if (jobject(&p, top_member, &t))
        return SIM_EFORMAT;
    if (peek(&p) != 0) {
        jfail(&p, "unexpected text after the object");
        return SIM_EFORMAT;
    }
    const char *missing = !t.format ? "format" : !t.run_id ? "run_id" : !t.files ? "files" : NULL;
    if (missing)
        return sim_fail_path(err, SIM_EFORMAT, p.what, "no \"%s\"", missing);
    if (m->nfiles == 0)
        return sim_fail_path(err, SIM_EFORMAT, p.what, "no file listed");
    return SIM_OK;
}

/* Read dir/dataset.json (see sim.h). */
int sim_manifest_read(const char *dir, struct sim_manifest *m, int *present, char err[SIM_ERRLEN])
{
    if (err)
        err[0] = '\0';
    memset(m, 0, sizeof *m);
    *present = 0;
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s", dir, SIM_MANIFEST_NAME) >= (int)sizeof path)
        return sim_fail_path(err, SIM_EARG, dir, "path too long");
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return SIM_OK;
        return sim_fail_path(err, SIM_EIO, path, "cannot open: %s", strerror(errno));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return sim_fail_path(err, SIM_EFORMAT, path, "not a regular file");
    }
    if (sb.st_size > SIM_MANIFEST_MAX_BYTES) {
        fclose(f);
        return sim_fail_path(err, SIM_EFORMAT, path, "%lld bytes, more than a sidecar's %d",
                             (long long)sb.st_size, SIM_MANIFEST_MAX_BYTES);
    }
    char *text = malloc(SIM_MANIFEST_MAX_BYTES + 1);
    if (!text) {
        fclose(f);
        return sim_fail_path(err, SIM_ENOMEM, path, "out of memory");
    }
    size_t n = fread(text, 1, SIM_MANIFEST_MAX_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    int st;
    if (bad)
        st = sim_fail_path(err, SIM_EIO, path, "read failed");
    else if (n > SIM_MANIFEST_MAX_BYTES)
        st = sim_fail_path(err, SIM_EFORMAT, path, "more than a sidecar's %d bytes",
                           SIM_MANIFEST_MAX_BYTES);
    else
        st = sim_manifest_parse(text, n, path, m, err);
    free(text);
    if (st == SIM_OK)
        *present = 1;
    return st;
}

/* The entry for a file name (see sim.h). */
const struct sim_manifest_file *sim_manifest_find(const struct sim_manifest *m, const char *name)
{
    for (int k = 0; k < m->nfiles; k++)
        if (!strcmp(m->file[k].name, name))
            return &m->file[k];
    return NULL;
}

/* --------------------------------------------------------------- writing */

/* s as a JSON string literal (see sim.h). */
void sim_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Write dir/dataset.json (see sim.h). */
int sim_manifest_write(const char *dir, const struct sim_manifest *m, char err[SIM_ERRLEN])
{
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s", dir, SIM_MANIFEST_NAME) >= (int)sizeof path)
        return sim_fail_path(err, SIM_EARG, dir, "path too long");
    struct sim_atomic a;
    int st = sim_atomic_open(&a, path, err);
    if (st != SIM_OK)
        return st;
    FILE *f = a.f;
    fprintf(f, "{\n  \"format\": \"%s\",\n  \"generator\": ", SIM_MANIFEST_FORMAT);
    sim_json_string(f, m->generator);
    fprintf(f, ",\n  \"generator_version\": %lld,\n  \"run_id\": ",
            (long long)m->generator_version);
    sim_json_string(f, m->run_id);
    fprintf(f, ",\n  \"sim\": ");
    sim_json_string(f, m->sim);
    fprintf(f, ",\n  \"bodies\": %lld,\n  \"tag\": ", (long long)m->bodies);
    sim_json_string(f, m->tag);
    fprintf(f, ",\n  \"stream\": ");
    sim_json_string(f, m->stream);
    fprintf(f, ",\n  \"seed\": %lld,\n  \"reference_seeds\": %s,\n  \"length\": %lld,\n"
               "  \"sample_freq\": %lld,\n  \"frames\": %lld,\n"
               "  \"counts\": {\"train\": %lld, \"valid\": %lld, \"test\": %lld},\n"
               "  \"physics\": {\"dt\": %.15g, \"softening\": %.15g, \"max_f\": %.15g, "
               "\"gravity\": %.15g, \"bfield\": %.15g},\n  \"files\": [",
            (long long)m->seed, m->reference_seeds ? "true" : "false", (long long)m->length,
            (long long)m->sample_freq, (long long)m->frames, (long long)m->counts[0],
            (long long)m->counts[1], (long long)m->counts[2], SIM_DT, m->softening, SIM_MAX_F,
            SIM_GRAVITY, SIM_BFIELD);
    for (int k = 0; k < m->nfiles; k++) {
        char hex[65];
        sim_sha256_hex(m->file[k].sha256, hex);
        fprintf(f, "%s\n    {\"name\": ", k ? "," : "");
        sim_json_string(f, m->file[k].name);
        fprintf(f, ", \"bytes\": %lld, \"sha256\": \"%s\"}", (long long)m->file[k].bytes, hex);
    }
    fprintf(f, "\n  ]\n}\n");
    return sim_atomic_commit(&a, err); /* a failed fprintf shows in ferror */
}

/* SHA-256 and size of a whole file (see sim.h). */
int sim_file_sha256(const char *path, unsigned char sha256[32], int64_t *bytes,
                    char err[SIM_ERRLEN])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sim_fail_path(err, SIM_EIO, path, "cannot open: %s", strerror(errno));
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        fclose(f);
        return sim_fail_path(err, SIM_ENOMEM, path, "out of memory");
    }
    struct sim_sha256 c;
    sim_sha256_init(&c);
    size_t got;
    int64_t total = 0;
    while ((got = fread(buf, 1, CHUNK, f)) > 0) {
        sim_sha256_update(&c, buf, got);
        total += (int64_t)got;
    }
    int bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad)
        return sim_fail_path(err, SIM_EIO, path, "read failed");
    sim_sha256_final(&c, sha256);
    if (bytes)
        *bytes = total;
    return SIM_OK;
}
