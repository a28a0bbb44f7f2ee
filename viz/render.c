/* render.c: everything that calls OpenGL (3.3 core): shaders from files, the 3-D panels
 * (spheres, trails, ghosts, floor grid, field arrows, axes) and the text/plot/timeline overlay. */
#include "viz.h"

#include "plot.h"

#include <GL/glcorearb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenGL entry points, loaded at run time through the context's getproc. One table
 * per process: every context this program creates comes from the same driver. */
#define GL_FUNCS(X)                                                                     \
    X(PFNGLVIEWPORTPROC, Viewport)                                                      \
    X(PFNGLSCISSORPROC, Scissor)                                                        \
    X(PFNGLENABLEPROC, Enable)                                                          \
    X(PFNGLDISABLEPROC, Disable)                                                        \
    X(PFNGLCLEARCOLORPROC, ClearColor)                                                  \
    X(PFNGLCLEARPROC, Clear)                                                            \
    X(PFNGLBLENDFUNCPROC, BlendFunc)                                                    \
    X(PFNGLDEPTHMASKPROC, DepthMask)                                                    \
    X(PFNGLDEPTHFUNCPROC, DepthFunc)                                                    \
    X(PFNGLLINEWIDTHPROC, LineWidth)                                                    \
    X(PFNGLGETFLOATVPROC, GetFloatv)                                                    \
    X(PFNGLGETINTEGERVPROC, GetIntegerv)                                                \
    X(PFNGLGETSTRINGPROC, GetString)                                                    \
    X(PFNGLGETERRORPROC, GetError)                                                      \
    X(PFNGLFINISHPROC, Finish)                                                          \
    X(PFNGLGENVERTEXARRAYSPROC, GenVertexArrays)                                        \
    X(PFNGLBINDVERTEXARRAYPROC, BindVertexArray)                                        \
    X(PFNGLDELETEVERTEXARRAYSPROC, DeleteVertexArrays)                                  \
    X(PFNGLGENBUFFERSPROC, GenBuffers)                                                  \
    X(PFNGLBINDBUFFERPROC, BindBuffer)                                                  \
    X(PFNGLBUFFERDATAPROC, BufferData)                                                  \
    X(PFNGLDELETEBUFFERSPROC, DeleteBuffers)                                            \
    X(PFNGLVERTEXATTRIBPOINTERPROC, VertexAttribPointer)                                \
    X(PFNGLENABLEVERTEXATTRIBARRAYPROC, EnableVertexAttribArray)                        \
    X(PFNGLVERTEXATTRIBDIVISORPROC, VertexAttribDivisor)                                \
    X(PFNGLDRAWARRAYSPROC, DrawArrays)                                                  \
    X(PFNGLDRAWELEMENTSINSTANCEDPROC, DrawElementsInstanced)                            \
    X(PFNGLCREATESHADERPROC, CreateShader)                                              \
    X(PFNGLSHADERSOURCEPROC, ShaderSource)                                              \
    X(PFNGLCOMPILESHADERPROC, CompileShader)                                            \
    X(PFNGLGETSHADERIVPROC, GetShaderiv)                                                \
    X(PFNGLGETSHADERINFOLOGPROC, GetShaderInfoLog)                                      \
    X(PFNGLDELETESHADERPROC, DeleteShader)                                              \
    X(PFNGLCREATEPROGRAMPROC, CreateProgram)                                            \
    X(PFNGLATTACHSHADERPROC, AttachShader)                                              \
    X(PFNGLLINKPROGRAMPROC, LinkProgram)                                                \
    X(PFNGLGETPROGRAMIVPROC, GetProgramiv)                                              \
    X(PFNGLGETPROGRAMINFOLOGPROC, GetProgramInfoLog)                                    \
    X(PFNGLDELETEPROGRAMPROC, DeleteProgram)                                            \
    X(PFNGLUSEPROGRAMPROC, UseProgram)                                                  \
    X(PFNGLGETUNIFORMLOCATIONPROC, GetUniformLocation)                                  \
    X(PFNGLUNIFORMMATRIX4FVPROC, UniformMatrix4fv)                                      \
    X(PFNGLUNIFORM1FPROC, Uniform1f)                                                    \
    X(PFNGLUNIFORM1IPROC, Uniform1i)                                                    \
    X(PFNGLUNIFORM3FPROC, Uniform3f)                                                    \
    X(PFNGLGENTEXTURESPROC, GenTextures)                                                \
    X(PFNGLBINDTEXTUREPROC, BindTexture)                                                \
    X(PFNGLTEXIMAGE2DPROC, TexImage2D)                                                  \
    X(PFNGLTEXPARAMETERIPROC, TexParameteri)                                            \
    X(PFNGLDELETETEXTURESPROC, DeleteTextures)                                          \
    X(PFNGLACTIVETEXTUREPROC, ActiveTexture)                                            \
    X(PFNGLPIXELSTOREIPROC, PixelStorei)                                                \
    X(PFNGLGENFRAMEBUFFERSPROC, GenFramebuffers)                                        \
    X(PFNGLBINDFRAMEBUFFERPROC, BindFramebuffer)                                        \
    X(PFNGLFRAMEBUFFERRENDERBUFFERPROC, FramebufferRenderbuffer)                        \
    X(PFNGLCHECKFRAMEBUFFERSTATUSPROC, CheckFramebufferStatus)                          \
    X(PFNGLDELETEFRAMEBUFFERSPROC, DeleteFramebuffers)                                  \
    X(PFNGLGENRENDERBUFFERSPROC, GenRenderbuffers)                                      \
    X(PFNGLBINDRENDERBUFFERPROC, BindRenderbuffer)                                      \
    X(PFNGLRENDERBUFFERSTORAGEPROC, RenderbufferStorage)                                \
    X(PFNGLRENDERBUFFERSTORAGEMULTISAMPLEPROC, RenderbufferStorageMultisample)          \
    X(PFNGLDELETERENDERBUFFERSPROC, DeleteRenderbuffers)                                \
    X(PFNGLBLITFRAMEBUFFERPROC, BlitFramebuffer)                                        \
    X(PFNGLREADBUFFERPROC, ReadBuffer)                                                  \
    X(PFNGLREADPIXELSPROC, ReadPixels)

static struct {
#define X(type, name) type name;
    GL_FUNCS(X)
#undef X
} gl;

/* A growable array of floats for geometry built on the CPU each frame. */
struct fbuf {
    float *v;
    size_t len, cap; /* floats */
    int failed;      /* an allocation failed this frame: the rest of the batch is dropped */
};

/* Depth of a body in view space, for sorting. */
struct depth_key {
    float z;
    int i;
};

/* The three shader programs and their uniforms. */
struct programs {
    GLuint sphere, line, ui;
    GLint s_view, s_proj, s_radius;
    GLint l_viewproj, l_fade_center, l_fade_radius;
    GLint u_proj, u_font;
};

struct viz_renderer {
    char shader_dir[512];
    struct programs prog;
    GLuint sphere_vao, sphere_vbo, sphere_ibo, inst_vbo;
    int sphere_indices;
    GLuint line_vao, line_vbo;
    GLuint ui_vao, ui_vbo;
    GLuint font_tex;
    int atlas_w, atlas_h;
    GLuint fbo_ms, rb_ms_color, rb_ms_depth; /* multisampled target (samples > 0) */
    GLuint fbo, rb_color, rb_depth;          /* own image (hidden windows), read back */
    int direct;                              /* draw into the window's framebuffer, not fbo */
    int fb_w, fb_h, samples;
    float line_max;                          /* widest line the driver draws */
    struct fbuf lines, tris, ui, inst;
    float *pos;                              /* [n][3] positions of one panel */
    float *ghost;                            /* [n][3] the truth's, for the overlay */
    struct depth_key *order;                 /* [n] bodies by view depth */
    int pos_n;
};

#define LINE_FLOATS 7 /* x y z r g b a */
#define UI_FLOATS 8   /* x y u v r g b a */
#define ATLAS_COLS 16
#define ATLAS_ROWS 6
#define GRID_HALF 9.0f   /* floor grid half-size, world units around the target */
#define ARROW_STEP 2.0f  /* spacing of the field arrows on the floor */
#define ARROW_LEN 0.9f

/* ------------------------------------------------------------ buffers */

/* Room for `count` more floats; NULL (and failed set) if memory runs out. */
static float *fbuf_grow(struct fbuf *b, size_t count)
{
    if (b->failed)
        return NULL;
    if (b->len + count > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + count)
            cap *= 2;
        float *v = realloc(b->v, cap * sizeof(float));
        if (!v) {
            b->failed = 1;
            return NULL;
        }
        b->v = v;
        b->cap = cap;
    }
    float *p = b->v + b->len;
    b->len += count;
    return p;
}

/* Empty a batch for the next use. */
static void fbuf_clear(struct fbuf *b)
{
    b->len = 0;
    b->failed = 0;
}

/* One vertex of world-space geometry. */
static void put_vertex(struct fbuf *b, const float p[3], const float c[4])
{
    float *v = fbuf_grow(b, LINE_FLOATS);
    if (!v)
        return;
    v[0] = p[0], v[1] = p[1], v[2] = p[2];
    v[3] = c[0], v[4] = c[1], v[5] = c[2], v[6] = c[3];
}

/* A world-space line segment. */
static void put_line(struct viz_renderer *r, const float a[3], const float b[3], const float c[4])
{
    put_vertex(&r->lines, a, c);
    put_vertex(&r->lines, b, c);
}

/* ------------------------------------------------------------ shaders */

/* Read a whole text file; NULL with a message if it cannot. */
static char *read_text(const char *path, char err[VIZ_ERRLEN])
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, VIZ_ERRLEN, "cannot open shader '%.900s'", path);
        return NULL;
    }
    char *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)len + 1)) && fread(buf, 1, (size_t)len, f) == (size_t)len) {
        buf[len] = '\0';
        fclose(f);
        return buf;
    }
    free(buf);
    fclose(f);
    snprintf(err, VIZ_ERRLEN, "cannot read shader '%.900s'", path);
    return NULL;
}

/* Compile one stage from <dir>/<name>; 0 with the info log in err on failure. */
static GLuint compile_stage(const char *dir, const char *name, GLenum type, char err[VIZ_ERRLEN])
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *src = read_text(path, err);
    if (!src)
        return 0;
    GLuint sh = gl.CreateShader(type);
    const GLchar *s = src;
    gl.ShaderSource(sh, 1, &s, NULL);
    gl.CompileShader(sh);
    free(src);
    GLint ok = 0;
    gl.GetShaderiv(sh, GL_COMPILE_STATUS, &ok);
    if (!ok) {
        char log[700] = "";
        gl.GetShaderInfoLog(sh, sizeof log, NULL, log);
        snprintf(err, VIZ_ERRLEN, "shader '%.300s' does not compile:\n%.680s", path, log);
        gl.DeleteShader(sh);
        return 0;
    }
    return sh;
}

/* Compile and link <name>.vert + <name>.frag; 0 with the info log in err on failure. */
static GLuint build_program(const char *dir, const char *name, char err[VIZ_ERRLEN])
{
    char vs_name[64], fs_name[64];
    snprintf(vs_name, sizeof vs_name, "%s.vert", name);
    snprintf(fs_name, sizeof fs_name, "%s.frag", name);
    GLuint vs = compile_stage(dir, vs_name, GL_VERTEX_SHADER, err);
    if (!vs)
        return 0;
    GLuint fs = compile_stage(dir, fs_name, GL_FRAGMENT_SHADER, err);
    if (!fs) {
        gl.DeleteShader(vs);
        return 0;
    }
    GLuint p = gl.CreateProgram();
    gl.AttachShader(p, vs);
    gl.AttachShader(p, fs);
    gl.LinkProgram(p);
    gl.DeleteShader(vs);
    gl.DeleteShader(fs);
    GLint ok = 0;
    gl.GetProgramiv(p, GL_LINK_STATUS, &ok);
    if (!ok) {
        char log[700] = "";
        gl.GetProgramInfoLog(p, sizeof log, NULL, log);
        snprintf(err, VIZ_ERRLEN, "shaders '%.300s/%.32s.*' do not link:\n%.650s", dir, name, log);
        gl.DeleteProgram(p);
        return 0;
    }
    return p;
}

/* Build all three programs; on failure nothing is changed in *out. */
static int build_programs(const char *dir, struct programs *out, char err[VIZ_ERRLEN])
{
    struct programs p;
    memset(&p, 0, sizeof p);
    if (!(p.sphere = build_program(dir, "sphere", err)))
        return VIZ_EGL;
    if (!(p.line = build_program(dir, "line", err))) {
        gl.DeleteProgram(p.sphere);
        return VIZ_EGL;
    }
    if (!(p.ui = build_program(dir, "ui", err))) {
        gl.DeleteProgram(p.sphere);
        gl.DeleteProgram(p.line);
        return VIZ_EGL;
    }
    p.s_view = gl.GetUniformLocation(p.sphere, "u_view");
    p.s_proj = gl.GetUniformLocation(p.sphere, "u_proj");
    p.s_radius = gl.GetUniformLocation(p.sphere, "u_radius");
    p.l_viewproj = gl.GetUniformLocation(p.line, "u_viewproj");
    p.l_fade_center = gl.GetUniformLocation(p.line, "u_fade_center");
    p.l_fade_radius = gl.GetUniformLocation(p.line, "u_fade_radius");
    p.u_proj = gl.GetUniformLocation(p.ui, "u_proj");
    p.u_font = gl.GetUniformLocation(p.ui, "u_font");
    *out = p;
    return VIZ_OK;
}

/* Delete the programs of a set. */
static void free_programs(struct programs *p)
{
    if (p->sphere)
        gl.DeleteProgram(p->sphere);
    if (p->line)
        gl.DeleteProgram(p->line);
    if (p->ui)
        gl.DeleteProgram(p->ui);
    memset(p, 0, sizeof *p);
}

int viz_render_reload(struct viz_renderer *r, char err[VIZ_ERRLEN])
{
    struct programs p;
    int rc = build_programs(r->shader_dir, &p, err);
    if (rc != VIZ_OK)
        return rc; /* the previous programs stay */
    free_programs(&r->prog);
    r->prog = p;
    return VIZ_OK;
}

/* ------------------------------------------------------------ setup */

/* The quad each sphere is ray-cast on (sphere.vert places it), drawn once per body. */
static void build_sphere(struct viz_renderer *r)
{
    static const float corners[8] = {-1, -1, 1, -1, -1, 1, 1, 1};
    static const GLushort idx[6] = {0, 1, 2, 2, 1, 3};
    r->sphere_indices = 6;
    gl.GenVertexArrays(1, &r->sphere_vao);
    gl.BindVertexArray(r->sphere_vao);
    gl.GenBuffers(1, &r->sphere_vbo);
    gl.BindBuffer(GL_ARRAY_BUFFER, r->sphere_vbo);
    gl.BufferData(GL_ARRAY_BUFFER, sizeof corners, corners, GL_STATIC_DRAW);
    gl.VertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 2 * sizeof(float), (void *)0);
    gl.EnableVertexAttribArray(0);
    gl.GenBuffers(1, &r->sphere_ibo);
    gl.BindBuffer(GL_ELEMENT_ARRAY_BUFFER, r->sphere_ibo);
    gl.BufferData(GL_ELEMENT_ARRAY_BUFFER, sizeof idx, idx, GL_STATIC_DRAW);
    gl.GenBuffers(1, &r->inst_vbo);
    gl.BindBuffer(GL_ARRAY_BUFFER, r->inst_vbo);
    gl.VertexAttribPointer(1, 3, GL_FLOAT, GL_FALSE, 6 * sizeof(float), (void *)0);
    gl.EnableVertexAttribArray(1);
    gl.VertexAttribDivisor(1, 1);
    gl.VertexAttribPointer(2, 3, GL_FLOAT, GL_FALSE, 6 * sizeof(float), (void *)(3 * sizeof(float)));
    gl.EnableVertexAttribArray(2);
    gl.VertexAttribDivisor(2, 1);
    gl.BindVertexArray(0);
}

/* Vertex arrays for the streamed world-space and overlay geometry. */
static void build_streams(struct viz_renderer *r)
{
    gl.GenVertexArrays(1, &r->line_vao);
    gl.BindVertexArray(r->line_vao);
    gl.GenBuffers(1, &r->line_vbo);
    gl.BindBuffer(GL_ARRAY_BUFFER, r->line_vbo);
    gl.VertexAttribPointer(0, 3, GL_FLOAT, GL_FALSE, LINE_FLOATS * sizeof(float), (void *)0);
    gl.EnableVertexAttribArray(0);
    gl.VertexAttribPointer(1, 4, GL_FLOAT, GL_FALSE, LINE_FLOATS * sizeof(float), (void *)(3 * sizeof(float)));
    gl.EnableVertexAttribArray(1);
    gl.GenVertexArrays(1, &r->ui_vao);
    gl.BindVertexArray(r->ui_vao);
    gl.GenBuffers(1, &r->ui_vbo);
    gl.BindBuffer(GL_ARRAY_BUFFER, r->ui_vbo);
    gl.VertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, UI_FLOATS * sizeof(float), (void *)0);
    gl.EnableVertexAttribArray(0);
    gl.VertexAttribPointer(1, 2, GL_FLOAT, GL_FALSE, UI_FLOATS * sizeof(float), (void *)(2 * sizeof(float)));
    gl.EnableVertexAttribArray(1);
    gl.VertexAttribPointer(2, 4, GL_FLOAT, GL_FALSE, UI_FLOATS * sizeof(float), (void *)(4 * sizeof(float)));
    gl.EnableVertexAttribArray(2);
    gl.BindVertexArray(0);
}

/* The font as a one-channel texture: 16 x 6 cells of PLOT_FONT_ADVANCE x PLOT_FONT_LINE. */
static int build_font(struct viz_renderer *r)
{
    r->atlas_w = ATLAS_COLS * PLOT_FONT_ADVANCE;
    r->atlas_h = ATLAS_ROWS * PLOT_FONT_LINE;
    unsigned char *px = calloc((size_t)r->atlas_w * r->atlas_h, 1);
    if (!px)
        return VIZ_ENOMEM;
    for (int ch = 32; ch < 127; ch++) {
        int cx = (ch - 32) % ATLAS_COLS * PLOT_FONT_ADVANCE, cy = (ch - 32) / ATLAS_COLS * PLOT_FONT_LINE;
        for (int row = 0; row < PLOT_FONT_H; row++)
            for (int col = 0; col < PLOT_FONT_W; col++)
                if (plot_font_pixel(ch, col, row))
                    px[(size_t)(cy + 1 + row) * r->atlas_w + cx + col] = 255;
    }
    gl.GenTextures(1, &r->font_tex);
    gl.BindTexture(GL_TEXTURE_2D, r->font_tex);
    gl.PixelStorei(GL_UNPACK_ALIGNMENT, 1);
    gl.TexImage2D(GL_TEXTURE_2D, 0, GL_R8, r->atlas_w, r->atlas_h, 0, GL_RED, GL_UNSIGNED_BYTE, px);
    gl.TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    gl.TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    gl.TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    gl.TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    free(px);
    return VIZ_OK;
}

/* Delete the offscreen framebuffers. */
static void free_targets(struct viz_renderer *r)
{
    GLuint fbos[2] = {r->fbo_ms, r->fbo};
    GLuint rbs[4] = {r->rb_ms_color, r->rb_ms_depth, r->rb_color, r->rb_depth};
    gl.DeleteFramebuffers(2, fbos);
    gl.DeleteRenderbuffers(4, rbs);
    r->fbo_ms = r->rb_ms_color = r->rb_ms_depth = r->fbo = r->rb_color = r->rb_depth = 0;
    r->fb_w = r->fb_h = 0;
}

/* A colour and a depth renderbuffer (multisampled when samples > 0) attached to a new
 * framebuffer; returns its completeness status. */
static GLenum make_fbo(GLuint *fbo, GLuint *color, GLuint *depth, int samples, int w, int h)
{
    gl.GenFramebuffers(1, fbo);
    gl.BindFramebuffer(GL_FRAMEBUFFER, *fbo);
    gl.GenRenderbuffers(1, color);
    gl.BindRenderbuffer(GL_RENDERBUFFER, *color);
    gl.RenderbufferStorageMultisample(GL_RENDERBUFFER, samples, GL_RGBA8, w, h);
    gl.FramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, *color);
    gl.GenRenderbuffers(1, depth);
    gl.BindRenderbuffer(GL_RENDERBUFFER, *depth);
    gl.RenderbufferStorageMultisample(GL_RENDERBUFFER, samples, GL_DEPTH_COMPONENT24, w, h);
    gl.FramebufferRenderbuffer(GL_FRAMEBUFFER, GL_DEPTH_ATTACHMENT, GL_RENDERBUFFER, *depth);
    GLenum st = gl.CheckFramebufferStatus(GL_FRAMEBUFFER);
    gl.BindFramebuffer(GL_FRAMEBUFFER, 0);
    return st;
}

/* (Re)create the framebuffers a w x h frame needs: a multisampled one to draw into when
 * multisampling, and an own image unless drawing straight into the window. */
static int make_targets(struct viz_renderer *r, int w, int h, char err[VIZ_ERRLEN])
{
    free_targets(r);
    GLenum st = GL_FRAMEBUFFER_COMPLETE;
    if (!r->direct)
        st = make_fbo(&r->fbo, &r->rb_color, &r->rb_depth, 0, w, h);
    if (st == GL_FRAMEBUFFER_COMPLETE && r->samples)
        st = make_fbo(&r->fbo_ms, &r->rb_ms_color, &r->rb_ms_depth, r->samples, w, h);
    if (st != GL_FRAMEBUFFER_COMPLETE) {
        free_targets(r);
        snprintf(err, VIZ_ERRLEN, "cannot create a %d x %d framebuffer (%d samples): status 0x%x", w, h,
                 r->samples, (unsigned)st);
        return VIZ_EGL;
    }
    r->fb_w = w;
    r->fb_h = h;
    return VIZ_OK;
}

int viz_render_create(struct viz_renderer **out, viz_getproc_fn getproc, const char *shader_dir,
                      int msaa, int direct, char err[VIZ_ERRLEN])
{
    *out = NULL;
#define X(type, name)                                                                   \
    if (!(gl.name = (type)getproc("gl" #name))) {                                       \
        snprintf(err, VIZ_ERRLEN, "OpenGL function gl%s is missing (need OpenGL 3.3)", #name); \
        return VIZ_EGL;                                                                 \
    }
    GL_FUNCS(X)
#undef X
    struct viz_renderer *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, VIZ_ERRLEN, "out of memory");
        return VIZ_ENOMEM;
    }
    snprintf(r->shader_dir, sizeof r->shader_dir, "%s", shader_dir);
    r->direct = direct;
    int rc = build_programs(r->shader_dir, &r->prog, err);
    if (rc != VIZ_OK) {
        free(r);
        return rc;
    }
    GLint max_samples = 0;
    gl.GetIntegerv(GL_MAX_SAMPLES, &max_samples);
    if (msaa == VIZ_MSAA_AUTO) {
        /* Software rasterisers spend most of a frame on the extra samples; spheres and trails
         * antialias themselves, so only thin lines lose by going without. */
        const char *name = (const char *)gl.GetString(GL_RENDERER);
        int software = name && (strstr(name, "llvmpipe") || strstr(name, "softpipe") || strstr(name, "swrast") ||
                                strstr(name, "SWR"));
        msaa = software ? 0 : 4;
    }
    r->samples = msaa < max_samples ? msaa : max_samples;
    if (r->samples < 2)
        r->samples = 0;
    float range[2] = {1.0f, 1.0f};
    gl.GetFloatv(GL_ALIASED_LINE_WIDTH_RANGE, range);
    r->line_max = range[1] >= 1.0f ? range[1] : 1.0f;
    build_sphere(r);
    build_streams(r);
    if ((rc = build_font(r)) != VIZ_OK) {
        snprintf(err, VIZ_ERRLEN, "out of memory");
        viz_render_destroy(r);
        return rc;
    }
    GLenum e = gl.GetError();
    if (e != GL_NO_ERROR) {
        snprintf(err, VIZ_ERRLEN, "OpenGL error 0x%x while setting up", (unsigned)e);
        viz_render_destroy(r);
        return VIZ_EGL;
    }
    *out = r;
    return VIZ_OK;
}

void viz_render_destroy(struct viz_renderer *r)
{
    if (!r)
        return;
    free_targets(r);
    free_programs(&r->prog);
    GLuint vaos[3] = {r->sphere_vao, r->line_vao, r->ui_vao};
    GLuint bufs[5] = {r->sphere_vbo, r->sphere_ibo, r->inst_vbo, r->line_vbo, r->ui_vbo};
    gl.DeleteVertexArrays(3, vaos);
    gl.DeleteBuffers(5, bufs);
    gl.DeleteTextures(1, &r->font_tex);
    free(r->lines.v);
    free(r->tris.v);
    free(r->ui.v);
    free(r->inst.v);
    free(r->pos);
    free(r->ghost);
    free(r->order);
    free(r);
}

int viz_render_samples(const struct viz_renderer *r)
{
    return r->samples;
}

void viz_render_describe(struct viz_renderer *r, char *out, size_t len)
{
    (void)r;
    const char *renderer = (const char *)gl.GetString(GL_RENDERER);
    const char *version = (const char *)gl.GetString(GL_VERSION);
    snprintf(out, len, "%s, OpenGL %s", renderer ? renderer : "?", version ? version : "?");
}

/* ------------------------------------------------------------ world geometry */

static const float col_pos[3] = VIZ_RGB_POSITIVE;
static const float col_neg[3] = VIZ_RGB_NEGATIVE;
static const float col_grav[3] = VIZ_RGB_GRAVITY;
static const float col_bfield[3] = VIZ_RGB_BFIELD;

/* Colour of a body by the sign of its charge. */
static const float *charge_color(double q)
{
    return q >= 0.0 ? col_pos : col_neg;
}

/* Send a world-space batch and draw it as lines or triangles, then empty it. */
static void flush_world(struct viz_renderer *r, struct fbuf *b, GLenum mode)
{
    if (b->len == 0)
        return;
    gl.BindVertexArray(r->line_vao);
    gl.BindBuffer(GL_ARRAY_BUFFER, r->line_vbo);
    gl.BufferData(GL_ARRAY_BUFFER, (GLsizeiptr)(b->len * sizeof(float)), b->v, GL_STREAM_DRAW);
    gl.DrawArrays(mode, 0, (GLsizei)(b->len / LINE_FLOATS));
    fbuf_clear(b);
}

/* Floor grid: lines every world unit, every fifth brighter, faded around the target. */
static void add_grid(struct viz_renderer *r, const float target[3], float z0, float unit)
{
    float cx = floorf(target[0] / unit) * unit, cy = floorf(target[1] / unit) * unit, half_w = GRID_HALF * unit;
    int half = (int)GRID_HALF;
    for (int k = -half; k <= half; k++) {
        float gx = cx + (float)k * unit, gy = cy + (float)k * unit;
        float cxs[4] = {0.42f, 0.47f, 0.58f, fmodf(fabsf(gx / unit), 5.0f) < 0.5f ? 0.55f : 0.28f};
        float cys[4] = {0.42f, 0.47f, 0.58f, fmodf(fabsf(gy / unit), 5.0f) < 0.5f ? 0.55f : 0.28f};
        float a[3] = {gx, cy - half_w, z0}, b[3] = {gx, cy + half_w, z0};
        put_line(r, a, b, cxs);
        float c[3] = {cx - half_w, gy, z0}, d[3] = {cx + half_w, gy, z0};
        put_line(r, c, d, cys);
    }
}

/* Field arrows standing on the floor lattice: +z for the static setting, B for the dynamic one. */
static void add_field_arrows(struct viz_renderer *r, int field, const float target[3], float z0,
                             const float eye[3], float unit)
{
    const float step = ARROW_STEP * unit, alen = ARROW_LEN * unit;
    float dir[3];
    const float *rgb;
    if (field == 1) {
        dir[0] = 0.0f, dir[1] = 0.0f, dir[2] = 1.0f;
        rgb = col_grav;
    } else {
        float s = 1.0f / sqrtf(3.0f);
        dir[0] = dir[1] = dir[2] = s;
        rgb = col_bfield;
    }
    float c[4] = {rgb[0], rgb[1], rgb[2], 0.6f};
    float cx = floorf(target[0] / step) * step, cy = floorf(target[1] / step) * step;
    for (int ix = -3; ix <= 3; ix++)
        for (int iy = -3; iy <= 3; iy++) {
            float base[3] = {cx + ((float)ix + 0.5f) * step, cy + ((float)iy + 0.5f) * step, z0};
            float tip[3];
            for (int k = 0; k < 3; k++)
                tip[k] = base[k] + alen * dir[k];
            put_line(r, base, tip, c);
            /* Arrowhead barbs across the line of sight, so they never collapse to a dot. */
            float to_eye[3] = {eye[0] - tip[0], eye[1] - tip[1], eye[2] - tip[2]};
            float side[3] = {dir[1] * to_eye[2] - dir[2] * to_eye[1], dir[2] * to_eye[0] - dir[0] * to_eye[2],
                             dir[0] * to_eye[1] - dir[1] * to_eye[0]};
            float len = sqrtf(side[0] * side[0] + side[1] * side[1] + side[2] * side[2]);
            if (len < 1e-6f)
                continue;
            for (int sgn = -1; sgn <= 1; sgn += 2) {
                float barb[3];
                for (int k = 0; k < 3; k++)
                    barb[k] = tip[k] - 0.22f * unit * dir[k] + sgn * 0.11f * unit * side[k] / len;
                put_line(r, tip, barb, c);
            }
        }
}

/* A faint disc in the body's colour on the floor under each body, and a line down to it:
 * where a body stands and how high, at the cost of a few small triangles. */
static void add_footprints(struct viz_renderer *r, int n, const float *pos, const double *q, float z0,
                           float radius)
{
    enum { SEG = 16 };
    for (int i = 0; i < n; i++) {
        const float *p = pos + 3 * i;
        const float *rgb = charge_color(q[i]);
        float disc[4] = {rgb[0], rgb[1], rgb[2], 0.35f};
        float centre[3] = {p[0], p[1], z0 + 0.002f};
        for (int s = 0; s < SEG; s++) {
            float a0 = 6.2831853f * s / SEG, a1 = 6.2831853f * (s + 1) / SEG;
            float e0[3] = {centre[0] + radius * cosf(a0), centre[1] + radius * sinf(a0), centre[2]};
            float e1[3] = {centre[0] + radius * cosf(a1), centre[1] + radius * sinf(a1), centre[2]};
            put_vertex(&r->tris, centre, disc);
            put_vertex(&r->tris, e0, disc);
            put_vertex(&r->tris, e1, disc);
        }
        float c[4] = {rgb[0], rgb[1], rgb[2], 0.25f};
        put_line(r, p, centre, c);
    }
}

/* Trails as ribbons facing the eye, from the body's current position back through its
 * stored points, opaque along the middle and clear at both edges (so they need no
 * multisampling to look smooth), fading with age. */
static void add_trails(struct viz_renderer *r, const struct viz_trail *tr, int n, const float *pos,
                       const double *q, const float eye[3], float width, float min_seg)
{
    for (int i = 0; i < n; i++) {
        const float *rgb = charge_color(q[i]);
        const float *prev = pos + 3 * i;
        float prev_side[3] = {0, 0, 0};
        int have_side = 0, prev_age = -1;
        for (int age = 0; age < tr->count; age++) {
            const float *p = viz_trail_point(tr, n, age, i);
            float d[3] = {prev[0] - p[0], prev[1] - p[1], prev[2] - p[2]};
            /* A software rasteriser pays per triangle: points closer than a few pixels to the
             * last one drawn are skipped (the oldest point always closes the trail). */
            if (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] < min_seg * min_seg && age + 1 < tr->count)
                continue;
            float to_eye[3] = {eye[0] - p[0], eye[1] - p[1], eye[2] - p[2]};
            float side[3] = {d[1] * to_eye[2] - d[2] * to_eye[1], d[2] * to_eye[0] - d[0] * to_eye[2],
                             d[0] * to_eye[1] - d[1] * to_eye[0]};
            float len = sqrtf(side[0] * side[0] + side[1] * side[1] + side[2] * side[2]);
            if (len < 1e-9f) {
                if (!have_side)
                    continue; /* no motion yet: nothing to draw */
                memcpy(side, prev_side, sizeof side);
            } else {
                for (int k = 0; k < 3; k++)
                    side[k] *= 0.5f * width / len;
            }
            if (!have_side)
                memcpy(prev_side, side, sizeof side);
            float f0 = 1.0f - (float)(prev_age + 1) / VIZ_TRAIL_LEN, f1 = 1.0f - (float)(age + 1) / VIZ_TRAIL_LEN;
            float m0[4] = {rgb[0], rgb[1], rgb[2], 0.8f * f0 * f0}, m1[4] = {rgb[0], rgb[1], rgb[2], 0.8f * f1 * f1};
            float e0[4] = {rgb[0], rgb[1], rgb[2], 0.0f}, e1[4] = {rgb[0], rgb[1], rgb[2], 0.0f};
            for (int sgn = -1; sgn <= 1; sgn += 2) {
                float a0[3], a1[3];
                for (int k = 0; k < 3; k++) {
                    a0[k] = prev[k] + sgn * prev_side[k];
                    a1[k] = p[k] + sgn * side[k];
                }
                put_vertex(&r->tris, prev, m0);
                put_vertex(&r->tris, a0, e0);
                put_vertex(&r->tris, p, m1);
                put_vertex(&r->tris, p, m1);
                put_vertex(&r->tris, a0, e0);
                put_vertex(&r->tris, a1, e1);
            }
            memcpy(prev_side, side, sizeof side);
            have_side = 1;
            prev = p;
            prev_age = age;
        }
    }
}

/* Farther bodies first (more negative view z). */
static int cmp_depth(const void *a, const void *b)
{
    float x = ((const struct depth_key *)a)->z, y = ((const struct depth_key *)b)->z;
    return (x > y) - (x < y);
}

/* Draw the bodies as ray-cast spheres, far to near so that their soft edges blend over
 * whatever lies behind them. */
static void draw_spheres(struct viz_renderer *r, const struct viz_mat4 *view, const struct viz_mat4 *proj,
                         int n, const float *pos, const double *q, float radius)
{
    for (int i = 0; i < n; i++) {
        float vz[4];
        viz_mat4_apply(view, pos + 3 * i, 1.0f, vz);
        r->order[i].z = vz[2];
        r->order[i].i = i;
    }
    qsort(r->order, (size_t)n, sizeof *r->order, cmp_depth);
    fbuf_clear(&r->inst);
    float *v = fbuf_grow(&r->inst, (size_t)6 * n);
    if (!v)
        return;
    for (int k = 0; k < n; k++) {
        int i = r->order[k].i;
        memcpy(v + 6 * k, pos + 3 * i, 3 * sizeof(float));
        memcpy(v + 6 * k + 3, charge_color(q[i]), 3 * sizeof(float));
    }
    gl.UseProgram(r->prog.sphere);
    gl.UniformMatrix4fv(r->prog.s_view, 1, GL_FALSE, view->m);
    gl.UniformMatrix4fv(r->prog.s_proj, 1, GL_FALSE, proj->m);
    gl.Uniform1f(r->prog.s_radius, radius);
    gl.BindVertexArray(r->sphere_vao);
    gl.BindBuffer(GL_ARRAY_BUFFER, r->inst_vbo);
    gl.BufferData(GL_ARRAY_BUFFER, (GLsizeiptr)((size_t)6 * n * sizeof(float)), v, GL_STREAM_DRAW);
    gl.DrawElementsInstanced(GL_TRIANGLES, r->sphere_indices, GL_UNSIGNED_SHORT, (void *)0, n);
}

/* Line width in pixels, within what the driver supports. */
static void line_width(struct viz_renderer *r, float w)
{
    gl.LineWidth(w < 1.0f ? 1.0f : w > r->line_max ? r->line_max : w);
}

/* A circle of radius rad about c facing the eye: a ghost or a predicted position. */
static void add_ring(struct viz_renderer *r, const float c[3], float rad, const float eye[3], const float col[4])
{
    enum { SEG = 20 };
    float w[3] = {eye[0] - c[0], eye[1] - c[1], eye[2] - c[2]};
    float up[3] = {0.0f, 0.0f, 1.0f};
    float u[3] = {w[1] * up[2] - w[2] * up[1], w[2] * up[0] - w[0] * up[2], w[0] * up[1] - w[1] * up[0]};
    float ul = sqrtf(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
    if (ul < 1e-6f) {
        u[0] = 1.0f, u[1] = u[2] = 0.0f;
        ul = 1.0f;
    }
    for (int k = 0; k < 3; k++)
        u[k] /= ul;
    float v[3] = {w[1] * u[2] - w[2] * u[1], w[2] * u[0] - w[0] * u[2], w[0] * u[1] - w[1] * u[0]};
    float vl = sqrtf(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    if (vl < 1e-9f)
        return;
    for (int k = 0; k < 3; k++)
        v[k] /= vl;
    float prev[3] = {0.0f, 0.0f, 0.0f};
    for (int s = 0; s <= SEG; s++) {
        float ang = 6.2831853f * (float)s / SEG, ca = cosf(ang), sa = sinf(ang), p[3];
        for (int k = 0; k < 3; k++)
            p[k] = c[k] + rad * (ca * u[k] + sa * v[k]);
        if (s > 0)
            put_line(r, prev, p, col);
        memcpy(prev, p, sizeof prev);
    }
}

/* Learned panels: the truth as faint rings with a thin line from each drawn body to its true
 * position (overlay); a position model's predicted frame-40 positions as rings with a line
 * from each body to its prediction. */
static void add_comparison(struct viz_renderer *r, const struct viz_frame *f, int panel, const float *pos,
                           const float eye[3])
{
    const struct viz_app *a = f->app;
    const struct viz_learned *p = &a->panel[panel - 1];
    float rad = f->body_radius;
    if (p->position && p->predicted) {
        for (int i = 0; i < a->n; i++) {
            const float *rgb = charge_color(a->truth.q[i]);
            float col[4] = {rgb[0], rgb[1], rgb[2], 0.95f}, thin[4] = {rgb[0], rgb[1], rgb[2], 0.55f};
            float c[3] = {(float)p->pred[i], (float)p->pred[a->n + i], (float)p->pred[2 * a->n + i]};
            add_ring(r, c, 1.25f * rad, eye, col);
            add_ring(r, c, 0.35f * rad, eye, col);
            put_line(r, pos + 3 * i, c, thin);
        }
    }
    if (a->overlay && !p->position) {
        viz_app_positions(a, 0, r->ghost);
        for (int i = 0; i < a->n; i++) {
            const float *rgb = charge_color(a->truth.q[i]);
            float col[4] = {rgb[0], rgb[1], rgb[2], 0.45f}, link[4] = {0.92f, 0.92f, 0.95f, 0.55f};
            add_ring(r, r->ghost + 3 * i, rad, eye, col);
            put_line(r, pos + 3 * i, r->ghost + 3 * i, link);
        }
    }
}

/* One viewport: the scene of one panel (0 the truth). */
static void draw_side(struct viz_renderer *r, const struct viz_frame *f, int side)
{
    const struct viz_app *a = f->app;
    const struct viz_layout *l = f->layout;
    const struct viz_rect *vp = &l->view[side];
    gl.Viewport(vp->x, vp->y, vp->w, vp->h);
    gl.Scissor(vp->x, vp->y, vp->w, vp->h);
    gl.Enable(GL_SCISSOR_TEST);
    gl.ClearColor(0.05f, 0.056f, 0.075f, 1.0f);
    gl.Clear(GL_COLOR_BUFFER_BIT | GL_DEPTH_BUFFER_BIT);

    struct viz_mat4 view, proj, viewproj;
    viz_camera_matrices(f->cam, (float)vp->w / (float)vp->h, &view, &proj);
    viz_mat4_mul(&viewproj, &proj, &view);
    float eye[3];
    viz_camera_eye(f->cam, eye);
    const float *target = f->cam->target;
    float z0 = target[2] - f->floor_below;
    viz_app_positions(a, side, r->pos);

    /* Bodies first, writing depth, so that the translucent layers after them are hidden behind
     * them; their one-pixel soft edges blend over the backdrop. */
    gl.Enable(GL_DEPTH_TEST);
    gl.DepthMask(GL_TRUE);
    gl.Enable(GL_BLEND);
    gl.BlendFunc(GL_SRC_ALPHA, GL_ONE_MINUS_SRC_ALPHA);
    draw_spheres(r, &view, &proj, a->n, r->pos, a->truth.q, f->body_radius);
    gl.DepthMask(GL_FALSE);
    gl.UseProgram(r->prog.line);
    gl.UniformMatrix4fv(r->prog.l_viewproj, 1, GL_FALSE, viewproj.m);
    gl.Uniform3f(r->prog.l_fade_center, target[0], target[1], target[2]);
    gl.Uniform1f(r->prog.l_fade_radius, GRID_HALF * f->grid_scale);
    line_width(r, l->dpi_scale);
    add_grid(r, target, z0, f->grid_scale);
    flush_world(r, &r->lines, GL_LINES);
    add_footprints(r, a->n, r->pos, a->truth.q, z0, 0.8f * f->body_radius);
    flush_world(r, &r->tris, GL_TRIANGLES);
    gl.Uniform1f(r->prog.l_fade_radius, 0.0f);
    flush_world(r, &r->lines, GL_LINES); /* the drop lines, not faded */
    int field = a->kind == SIM_STATIC ? 1 : a->kind == SIM_DYNAMIC ? 2 : 0;
    if (field) {
        gl.Uniform1f(r->prog.l_fade_radius, 3.5f * ARROW_STEP * f->grid_scale);
        line_width(r, 1.5f * l->dpi_scale);
        add_field_arrows(r, field, target, z0, eye, f->grid_scale);
        flush_world(r, &r->lines, GL_LINES);
        gl.Uniform1f(r->prog.l_fade_radius, 0.0f);
    }
    if (side > 0) {
        line_width(r, 1.5f * l->dpi_scale);
        add_comparison(r, f, side, r->pos, eye);
        flush_world(r, &r->lines, GL_LINES);
    }
    if (a->trails) {
        const struct viz_trail *tr = side == 0 ? &a->trail : &a->panel[side - 1].trail;
        /* 0.003 of the eye distance is ~2.5 pixels at 720 lines and a 45 degree field of view. */
        add_trails(r, tr, a->n, r->pos, a->truth.q, eye, 1.1f * f->body_radius, 0.003f * f->cam->distance);
        flush_world(r, &r->tris, GL_TRIANGLES);
    }
    gl.DepthMask(GL_TRUE);
    gl.Disable(GL_SCISSOR_TEST);
}

/* Small axes in the top-right corner of a viewport, turning with the camera; returns the
 * screen positions of the axis tips for their labels. */
static void draw_axes(struct viz_renderer *r, const struct viz_frame *f, int side, float tips[3][2])
{
    const struct viz_layout *l = f->layout;
    const struct viz_rect *vp = &l->view[side];
    int size = 44 * l->text_scale, margin = 4 * l->text_scale;
    struct viz_rect g = {vp->x + vp->w - size - margin, vp->y + vp->h - size - margin, size, size};
    struct viz_camera c = *f->cam;
    c.target[0] = c.target[1] = c.target[2] = 0.0f;
    c.distance = 3.0f;
    struct viz_mat4 view, proj, vp_m, ortho;
    viz_camera_matrices(&c, 1.0f, &view, &proj);
    viz_mat4_ortho(&ortho, -1.6f, 1.6f, -1.6f, 1.6f, 0.1f, 10.0f);
    viz_mat4_mul(&vp_m, &ortho, &view);
    gl.Viewport(g.x, g.y, g.w, g.h);
    gl.Disable(GL_DEPTH_TEST);
    gl.Enable(GL_BLEND);
    gl.UseProgram(r->prog.line);
    gl.UniformMatrix4fv(r->prog.l_viewproj, 1, GL_FALSE, vp_m.m);
    gl.Uniform1f(r->prog.l_fade_radius, 0.0f);
    line_width(r, 1.5f * l->dpi_scale);
    static const float o[3] = {0, 0, 0};
    static const float grey[4] = {0.78f, 0.80f, 0.86f, 0.9f};
    for (int k = 0; k < 3; k++) {
        float e[3] = {0, 0, 0};
        e[k] = 1.0f;
        put_line(r, o, e, grey);
        float lab[3] = {0, 0, 0};
        lab[k] = 1.3f;
        viz_project(&vp_m, &g, lab, tips[k]);
    }
    flush_world(r, &r->lines, GL_LINES);
}

/* ------------------------------------------------------------ overlay */

/* A solid or textured overlay quad, in framebuffer pixels with y down. */
static void ui_quad(struct viz_renderer *r, float x0, float y0, float x1, float y1, float u0, float v0,
                    float u1, float v1, const float c[4])
{
    float *v = fbuf_grow(&r->ui, 6 * UI_FLOATS);
    if (!v)
        return;
    float corners[6][4] = {{x0, y0, u0, v0}, {x1, y0, u1, v0}, {x0, y1, u0, v1},
                           {x0, y1, u0, v1}, {x1, y0, u1, v0}, {x1, y1, u1, v1}};
    for (int k = 0; k < 6; k++) {
        memcpy(v + k * UI_FLOATS, corners[k], 4 * sizeof(float));
        memcpy(v + k * UI_FLOATS + 4, c, 4 * sizeof(float));
    }
}

/* A solid rectangle. */
static void ui_rect(struct viz_renderer *r, float x, float y, float w, float h, const float c[4])
{
    ui_quad(r, x, y, x + w, y + h, -1, -1, -1, -1, c);
}

/* A line of overlay width w pixels between two points. */
static void ui_line(struct viz_renderer *r, float x0, float y0, float x1, float y1, float w, const float c[4])
{
    float dx = x1 - x0, dy = y1 - y0, len = sqrtf(dx * dx + dy * dy);
    if (len < 1e-6f)
        return;
    float nx = -dy / len * 0.5f * w, ny = dx / len * 0.5f * w;
    float *v = fbuf_grow(&r->ui, 6 * UI_FLOATS);
    if (!v)
        return;
    float corners[6][2] = {{x0 + nx, y0 + ny}, {x1 + nx, y1 + ny}, {x0 - nx, y0 - ny},
                           {x0 - nx, y0 - ny}, {x1 + nx, y1 + ny}, {x1 - nx, y1 - ny}};
    for (int k = 0; k < 6; k++) {
        float *p = v + k * UI_FLOATS;
        p[0] = corners[k][0], p[1] = corners[k][1], p[2] = -1, p[3] = -1;
        memcpy(p + 4, c, 4 * sizeof(float));
    }
}

/* Text with its top-left corner at (x, y), with a dark shadow for contrast on any background,
 * cut off at max_w pixels (0: no limit); returns its width in pixels. */
static float ui_text_clip(struct viz_renderer *r, float x, float y, int s, const char *text, const float c[4],
                          float max_w)
{
    static const float shadow_rgb[3] = {0.0f, 0.0f, 0.0f};
    float cw = (float)(PLOT_FONT_ADVANCE * s), chh = (float)(PLOT_FONT_LINE * s);
    for (int pass = 0; pass < 2; pass++) {
        float off = pass == 0 ? (float)s : 0.0f;
        float col[4];
        if (pass == 0) {
            memcpy(col, shadow_rgb, sizeof shadow_rgb);
            col[3] = 0.75f * c[3];
        } else {
            memcpy(col, c, sizeof col);
        }
        float cx = x;
        for (const char *p = text; *p && (max_w <= 0.0f || cx + cw <= x + max_w); p++, cx += cw) {
            int ch = (unsigned char)*p;
            if (ch == ' ')
                continue;
            if (ch < 32 || ch > 126)
                ch = '?';
            float u0 = (float)((ch - 32) % ATLAS_COLS * PLOT_FONT_ADVANCE) / r->atlas_w;
            float v0 = (float)((ch - 32) / ATLAS_COLS * PLOT_FONT_LINE) / r->atlas_h;
            float u1 = u0 + (float)PLOT_FONT_ADVANCE / r->atlas_w, v1 = v0 + (float)PLOT_FONT_LINE / r->atlas_h;
            ui_quad(r, cx + off, y + off, cx + off + cw, y + off + chh, u0, v0, u1, v1, col);
        }
    }
    float w = (float)strlen(text) * cw;
    return max_w > 0.0f && w > max_w ? max_w : w;
}

/* Text without a width limit. */
static float ui_text(struct viz_renderer *r, float x, float y, int s, const char *text, const float c[4])
{
    return ui_text_clip(r, x, y, s, text, c, 0.0f);
}

/* Top of a rectangle in overlay coordinates (y down). */
static float top_of(const struct viz_layout *l, const struct viz_rect *rc)
{
    return (float)(l->fb_h - rc->y - rc->h);
}

/* Colour of each panel's title and curve: the truth white, then amber, mint, pink, lilac
 * (all far from the two charge hues, so that a test telling bodies by hue ignores them). */
static const float panel_col[VIZ_MAX_PANELS][4] = {
    {0.92f, 0.93f, 0.96f, 1.0f}, {0.98f, 0.92f, 0.55f, 1.0f}, {0.55f, 0.95f, 0.75f, 1.0f},
    {1.00f, 0.62f, 0.86f, 1.0f}, {0.80f, 0.76f, 0.98f, 1.0f}};

/* The curve a panel contributes to the plot, or NULL (the truth has no error curve). */
static const struct viz_series *panel_series(const struct viz_app *a, int panel, int energy)
{
    if (panel == 0)
        return energy ? &a->energy : NULL;
    const struct viz_learned *p = &a->panel[panel - 1];
    if (energy)
        return p->position ? NULL : &p->energy;
    return &p->err;
}

/* The plot: position MSE (log scale) or total energy of every panel over simulation time,
 * one curve per panel in the panel's colour, a cursor at the displayed time. */
static void draw_plot(struct viz_renderer *r, const struct viz_frame *f)
{
    const struct viz_app *a = f->app;
    const struct viz_layout *l = f->layout;
    int s = l->text_scale, energy = a->plot_energy;
    float x = (float)l->plot.x, y = top_of(l, &l->plot), w = (float)l->plot.w, h = (float)l->plot.h;
    static const float panel[4] = {0.02f, 0.025f, 0.04f, 0.85f};
    static const float frame[4] = {0.45f, 0.5f, 0.6f, 0.6f};
    static const float label[4] = {0.78f, 0.80f, 0.86f, 1.0f};
    static const float tick[4] = {0.45f, 0.5f, 0.6f, 0.35f};
    static const float cursor[4] = {0.92f, 0.93f, 0.96f, 0.5f};
    static const float beyond[4] = {0.95f, 0.35f, 0.30f, 0.6f};
    ui_rect(r, x, y, w, h, panel);
    float lh = (float)(PLOT_FONT_LINE * s), cw = (float)(PLOT_FONT_ADVANCE * s);
    ui_text_clip(r, x + cw, y + 0.4f * lh, s, energy ? "energy vs time (E)" : "MSE vs time (log, E: energy)", label,
                 w - 2 * cw);
    /* Legend: the short names in the curves' colours. */
    float lx = x + cw;
    int panels = 1 + a->learned;
    for (int k = 0; k < panels; k++) {
        if (!panel_series(a, k, energy))
            continue;
        char nm[24];
        viz_legend_name(a, k, nm, sizeof nm);
        if (lx + (float)strlen(nm) * cw > x + w - cw)
            break;
        lx += ui_text(r, lx, y + 1.4f * lh, s, nm, panel_col[k]) + cw;
    }
    float px0 = x + 7 * cw, px1 = x + w - 1.5f * cw, py0 = y + 2.8f * lh, py1 = y + h - 1.6f * lh;
    if (px1 - px0 < 10 || py1 - py0 < 10)
        return;
    double t0 = a->start_step * SIM_DT, tmax = a->t * SIM_DT;
    double lo = 0.0, hi = 0.0;
    int have_range = 0;
    for (int k = 0; k < panels; k++) {
        const struct viz_series *sr = panel_series(a, k, energy);
        if (!sr)
            continue;
        for (int j = 0; j < sr->count; j++) {
            double m = sr->y[j];
            if (!isfinite(m) || (!energy && !(m > 0.0)))
                continue;
            if (!have_range)
                lo = hi = m, have_range = 1;
            lo = m < lo ? m : lo;
            hi = m > hi ? m : hi;
        }
        if (sr->count > 0 && sr->t[sr->count - 1] > tmax)
            tmax = sr->t[sr->count - 1];
    }
    if (tmax < t0 + 1.0)
        tmax = t0 + 1.0;
    double ylo, yhi;
    if (energy) {
        if (!have_range)
            lo = -1.0, hi = 1.0;
        double pad = 0.08 * (hi - lo) + 1e-6 * (fabs(hi) + 1.0);
        ylo = lo - pad, yhi = hi + pad;
        char buf[32];
        snprintf(buf, sizeof buf, "%.3g", yhi);
        ui_text(r, x + 0.5f * cw, py0 - 0.5f * lh, s, buf, label);
        snprintf(buf, sizeof buf, "%.3g", ylo);
        ui_text(r, x + 0.5f * cw, py1 - 0.5f * lh, s, buf, label);
        ui_line(r, px0, py0, px1, py0, 1.0f, tick);
        ui_line(r, px0, 0.5f * (py0 + py1), px1, 0.5f * (py0 + py1), 1.0f, tick);
    } else {
        int dlo = have_range ? (int)floor(log10(lo)) : -6, dhi = have_range ? (int)ceil(log10(hi)) : -2;
        if (dhi - dlo < 2)
            dlo = dhi - 2;
        if (dlo < dhi - 8)
            dlo = dhi - 8;
        ylo = dlo, yhi = dhi;
        /* Label as many decades as fit with half a line between labels. */
        int every = (int)ceilf(1.5f * lh * (float)(dhi - dlo) / (py1 - py0));
        if (every < 1)
            every = 1;
        for (int d = dlo; d <= dhi; d++) {
            float yy = py1 - (float)(d - dlo) / (float)(dhi - dlo) * (py1 - py0);
            ui_line(r, px0, yy, px1, yy, 1.0f, tick);
            if ((dhi - d) % every == 0) {
                char buf[16];
                snprintf(buf, sizeof buf, "1e%d", d);
                ui_text(r, px0 - (float)(strlen(buf) + 1) * cw, yy - 0.5f * lh, s, buf, label);
            }
        }
    }
    ui_line(r, px0, py0, px0, py1, 1.0f, frame);
    ui_line(r, px0, py1, px1, py1, 1.0f, frame);
    char buf[32];
    snprintf(buf, sizeof buf, "t %.1f", t0);
    ui_text(r, px0, py1 + 0.3f * lh, s, buf, label);
    snprintf(buf, sizeof buf, "%.1f", tmax);
    ui_text(r, px1 - (float)strlen(buf) * cw, py1 + 0.3f * lh, s, buf, label);
    double span = tmax - t0;
    double th = a->horizon_step * SIM_DT;
    if (th > t0 && th < tmax) {
        float xx = px0 + (float)((th - t0) / span) * (px1 - px0);
        ui_line(r, xx, py0, xx, py1, 1.0f, beyond);
    }
    for (int k = 0; k < panels; k++) {
        const struct viz_series *sr = panel_series(a, k, energy);
        if (!sr || sr->count == 0)
            continue;
        /* One point per pixel column is all the plot can show. */
        int stride = sr->count > (int)(px1 - px0) ? sr->count / (int)(px1 - px0) : 1;
        float qx = 0, qy = 0;
        int have = 0;
        for (int j = 0; j < sr->count; j += stride) {
            double m = sr->y[j];
            double v = energy ? m : (m > 0.0 && isfinite(m) ? log10(m) : ylo);
            if (!isfinite(v))
                continue;
            v = v < ylo ? ylo : v > yhi ? yhi : v;
            float xx = px0 + (float)((sr->t[j] - t0) / span) * (px1 - px0);
            float yy = py1 - (float)((v - ylo) / (yhi - ylo)) * (py1 - py0);
            if (have)
                ui_line(r, qx, qy, xx, yy, 1.5f * l->dpi_scale, panel_col[k]);
            else if (sr->count == 1 || stride > sr->count)
                ui_rect(r, xx - 2.0f * l->dpi_scale, yy - 2.0f * l->dpi_scale, 4.0f * l->dpi_scale,
                        4.0f * l->dpi_scale, panel_col[k]);
            qx = xx, qy = yy, have = 1;
        }
    }
    float cx = px0 + (float)((a->t * SIM_DT - t0) / span) * (px1 - px0);
    ui_line(r, cx, py0, cx, py1, 1.0f, cursor);
}

/* The timeline under the panels: the span from the start, the part the history ring can go
 * back to, the training horizon and what lies beyond it in red, the displayed time. */
static void draw_timeline(struct viz_renderer *r, const struct viz_frame *f)
{
    const struct viz_app *a = f->app;
    const struct viz_layout *l = f->layout;
    const struct viz_hud *h = f->hud;
    if (l->timeline.h <= 0)
        return;
    int s = l->text_scale;
    float lh = (float)(PLOT_FONT_LINE * s), cw = (float)(PLOT_FONT_ADVANCE * s);
    float y = top_of(l, &l->timeline), th = (float)l->timeline.h;
    static const float back[4] = {0.035f, 0.04f, 0.055f, 1.0f};
    static const float bar[4] = {0.30f, 0.33f, 0.40f, 1.0f};
    static const float ring[4] = {0.50f, 0.56f, 0.68f, 1.0f};
    static const float red[4] = {0.90f, 0.25f, 0.22f, 0.75f};
    static const float redtext[4] = {1.00f, 0.45f, 0.40f, 1.0f};
    static const float label[4] = {0.78f, 0.80f, 0.86f, 1.0f};
    static const float cur[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    ui_rect(r, 0.0f, y, (float)l->fb_w, th, back);
    double t0, t1;
    float x0, x1;
    viz_timeline_span(a, &t0, &t1);
    viz_timeline_bar(l, &x0, &x1);
    float by = y + 0.15f * lh + lh, bh = 0.45f * lh;
    ui_rect(r, x0, by, x1 - x0, bh, bar);
    long first, last;
    float scale = (x1 - x0) / (float)(t1 - t0);
    if (viz_app_ring_range(a, &first, &last)) {
        float r0 = x0 + (float)(first * SIM_DT - t0) * scale, r1 = x0 + (float)(last * SIM_DT - t0) * scale;
        ui_rect(r, r0, by, r1 - r0 > 1.0f ? r1 - r0 : 1.0f, bh, ring);
    }
    double hz = a->horizon_step * SIM_DT;
    if (hz < t1) {
        float hx = x0 + (float)(hz - t0) * scale;
        if (hx < x0)
            hx = x0;
        ui_rect(r, hx, by - 0.1f * lh, x1 - hx, bh + 0.2f * lh, red);
        ui_line(r, hx, by - 0.3f * lh, hx, by + bh + 0.3f * lh, 2.0f * l->dpi_scale, redtext);
    }
    float cx = x0 + (float)(a->t * SIM_DT - t0) * scale;
    ui_rect(r, cx - 1.5f * l->dpi_scale, by - 0.35f * lh, 3.0f * l->dpi_scale, bh + 0.7f * lh, cur);
    char buf[64];
    snprintf(buf, sizeof buf, "t %.2f", a->t * SIM_DT);
    ui_text(r, x0, y + 0.15f * lh, s, buf, label);
    snprintf(buf, sizeof buf, "%.1f", t1);
    ui_text(r, x1 - (float)strlen(buf) * cw, y + 0.15f * lh, s, buf, label);
    if (h)
        ui_text_clip(r, x0 + 10 * cw, y + 0.15f * lh, s, h->timeline, h->beyond ? redtext : label,
                     x1 - x0 - 16 * cw);
}

/* Text, legend, plot and help of one frame. */
static void draw_overlay(struct viz_renderer *r, const struct viz_frame *f, float tips[VIZ_MAX_PANELS][3][2])
{
    const struct viz_layout *l = f->layout;
    const struct viz_hud *h = f->hud;
    const struct viz_app *a = f->app;
    int s = l->text_scale;
    float lh = (float)(PLOT_FONT_LINE * s), cw = (float)(PLOT_FONT_ADVANCE * s), m = 8.0f * s;
    static const float grey[4] = {0.68f, 0.71f, 0.78f, 1.0f};
    static const float info[4] = {0.86f, 0.88f, 0.92f, 1.0f};
    static const float warn[4] = {1.0f, 0.86f, 0.52f, 1.0f};
    static const float axis[4] = {0.78f, 0.80f, 0.86f, 0.9f};
    static const float redtext[4] = {1.00f, 0.45f, 0.40f, 1.0f};
    float room[VIZ_MAX_PANELS];
    for (int side = 0; side < l->panels; side++) {
        const struct viz_rect *vp = &l->view[side];
        float x = (float)vp->x + m, y = top_of(l, vp) + m;
        room[side] = (float)vp->w - 2 * m;
        static const float white[4] = {1.0f, 1.0f, 1.0f, 1.0f};
        ui_text_clip(r, x, y, s, h->title[side], side == 0 ? white : panel_col[side], room[side] - (float)(48 * s));
        ui_text_clip(r, x, y + lh, s, h->sub[side], grey, room[side] - (float)(48 * s));
        if (side > 0)
            ui_text_clip(r, x, y + 2.2f * lh, s, h->error[side], panel_col[side], room[side]);
        static const char *const names[3] = {"x", "y", "z"};
        for (int k = 0; k < 3; k++)
            ui_text(r, tips[side][k][0] - 0.5f * cw, (float)l->fb_h - tips[side][k][1] - 0.5f * lh, s,
                    names[k], axis);
    }
    float x0 = (float)l->view[0].x + m, y0 = top_of(l, &l->view[0]) + m + 2.4f * lh;
    for (int k = 0; k < 3; k++)
        if (h->info[k][0])
            ui_text_clip(r, x0, y0 + (float)k * lh, s, h->info[k], info, room[0]);
    if (h->beyond)
        ui_text_clip(r, x0, y0 + 3.0f * lh, s, "beyond the training horizon", redtext, room[0]);

    /* Bottom left: legend, then the status line above it. */
    float yb = top_of(l, &l->view[0]) + (float)l->view[0].h - m - lh;
    float xb = x0;
    float sq = (float)(5 * s);
    float cpos[4] = {col_pos[0], col_pos[1], col_pos[2], 1.0f};
    float cneg[4] = {col_neg[0], col_neg[1], col_neg[2], 1.0f};
    ui_rect(r, xb, yb + 2.0f * s, sq, sq + 2.0f * s, cpos);
    xb += sq + cw;
    xb += ui_text(r, xb, yb, s, "+1", info) + 2 * cw;
    ui_rect(r, xb, yb + 2.0f * s, sq, sq + 2.0f * s, cneg);
    xb += sq + cw;
    xb += ui_text(r, xb, yb, s, "-1", info) + 3 * cw;
    ui_text(r, xb, yb, s, "H help", grey);
    if (h->status[0])
        ui_text_clip(r, x0, yb - 1.4f * lh, s, h->status, warn, (float)l->fb_w - 2 * m);

    draw_plot(r, f);
    draw_timeline(r, f);

    if (a->help) {
        /* The panel shrinks to 1x text when it would not fit the window. */
        if (s > 1 && (float)(h->help_lines + 2) * lh > (float)l->fb_h - 2 * m) {
            s = 1;
            lh = (float)PLOT_FONT_LINE, cw = (float)PLOT_FONT_ADVANCE;
        }
        float w = 48 * cw, hh = (float)(h->help_lines + 2) * lh;
        float px = 0.5f * ((float)l->fb_w - w), py = 0.5f * ((float)l->fb_h - hh);
        static const float panel[4] = {0.02f, 0.025f, 0.04f, 0.88f};
        static const float border[4] = {0.45f, 0.5f, 0.6f, 0.8f};
        static const float white[4] = {1.0f, 1.0f, 1.0f, 1.0f};
        ui_rect(r, px, py, w, hh, panel);
        ui_line(r, px, py, px + w, py, 1.0f, border);
        ui_line(r, px, py + hh, px + w, py + hh, 1.0f, border);
        ui_line(r, px, py, px, py + hh, 1.0f, border);
        ui_line(r, px + w, py, px + w, py + hh, 1.0f, border);
        for (int k = 0; k < h->help_lines; k++)
            ui_text(r, px + 2 * cw, py + (float)(k + 1) * lh, s, h->help[k], k == 0 ? white : info);
    }
}

/* Send the overlay batch and draw it over the whole framebuffer. */
static void flush_ui(struct viz_renderer *r, const struct viz_layout *l)
{
    if (r->ui.len == 0)
        return;
    struct viz_mat4 ortho;
    viz_mat4_ortho(&ortho, 0.0f, (float)l->fb_w, (float)l->fb_h, 0.0f, -1.0f, 1.0f);
    gl.Viewport(0, 0, l->fb_w, l->fb_h);
    gl.Disable(GL_DEPTH_TEST);
    gl.Enable(GL_BLEND);
    gl.BlendFunc(GL_SRC_ALPHA, GL_ONE_MINUS_SRC_ALPHA);
    gl.UseProgram(r->prog.ui);
    gl.UniformMatrix4fv(r->prog.u_proj, 1, GL_FALSE, ortho.m);
    gl.ActiveTexture(GL_TEXTURE0);
    gl.BindTexture(GL_TEXTURE_2D, r->font_tex);
    gl.Uniform1i(r->prog.u_font, 0);
    gl.BindVertexArray(r->ui_vao);
    gl.BindBuffer(GL_ARRAY_BUFFER, r->ui_vbo);
    gl.BufferData(GL_ARRAY_BUFFER, (GLsizeiptr)(r->ui.len * sizeof(float)), r->ui.v, GL_STREAM_DRAW);
    gl.DrawArrays(GL_TRIANGLES, 0, (GLsizei)(r->ui.len / UI_FLOATS));
    fbuf_clear(&r->ui);
}

int viz_render_frame(struct viz_renderer *r, const struct viz_frame *f, char err[VIZ_ERRLEN])
{
    const struct viz_layout *l = f->layout;
    if (l->fb_w != r->fb_w || l->fb_h != r->fb_h) {
        int rc = make_targets(r, l->fb_w, l->fb_h, err);
        if (rc != VIZ_OK)
            return rc;
    }
    if (f->app->n != r->pos_n) {
        float *p = realloc(r->pos, (size_t)3 * f->app->n * sizeof(float));
        if (p)
            r->pos = p;
        float *g = realloc(r->ghost, (size_t)3 * f->app->n * sizeof(float));
        if (g)
            r->ghost = g;
        struct depth_key *o = realloc(r->order, (size_t)f->app->n * sizeof *o);
        if (o)
            r->order = o;
        if (!p || !g || !o) {
            snprintf(err, VIZ_ERRLEN, "out of memory");
            return VIZ_ENOMEM;
        }
        r->pos_n = f->app->n;
    }
    GLuint image = r->direct ? 0 : r->fbo;
    gl.BindFramebuffer(GL_FRAMEBUFFER, r->samples ? r->fbo_ms : image);
    gl.Viewport(0, 0, l->fb_w, l->fb_h);
    gl.ClearColor(0.16f, 0.17f, 0.20f, 1.0f); /* the divider between the viewports */
    gl.Clear(GL_COLOR_BUFFER_BIT | GL_DEPTH_BUFFER_BIT);
    fbuf_clear(&r->lines);
    fbuf_clear(&r->tris);
    fbuf_clear(&r->ui);
    float tips[VIZ_MAX_PANELS][3][2];
    memset(tips, 0, sizeof tips);
    for (int side = 0; side < l->panels; side++) {
        draw_side(r, f, side);
        if (f->hud)
            draw_axes(r, f, side, tips[side]);
    }
    if (f->hud) {
        draw_overlay(r, f, tips);
        flush_ui(r, l);
    }
    if (r->samples) {
        gl.BindFramebuffer(GL_READ_FRAMEBUFFER, r->fbo_ms);
        gl.BindFramebuffer(GL_DRAW_FRAMEBUFFER, image);
        gl.BlitFramebuffer(0, 0, l->fb_w, l->fb_h, 0, 0, l->fb_w, l->fb_h, GL_COLOR_BUFFER_BIT, GL_NEAREST);
    }
    gl.BindFramebuffer(GL_FRAMEBUFFER, 0);
    int failed = r->lines.failed || r->tris.failed || r->ui.failed || r->inst.failed;
    GLenum e = gl.GetError();
    if (e != GL_NO_ERROR || failed) {
        snprintf(err, VIZ_ERRLEN, failed ? "out of memory for geometry" : "OpenGL error 0x%x in a frame",
                 (unsigned)e);
        return failed ? VIZ_ENOMEM : VIZ_EGL;
    }
    return VIZ_OK;
}

void viz_render_read(struct viz_renderer *r, unsigned char *rgba)
{
    gl.BindFramebuffer(GL_READ_FRAMEBUFFER, r->direct ? 0 : r->fbo);
    gl.ReadBuffer(r->direct ? GL_BACK : GL_COLOR_ATTACHMENT0);
    gl.PixelStorei(GL_PACK_ALIGNMENT, 1);
    gl.ReadPixels(0, 0, r->fb_w, r->fb_h, GL_RGBA, GL_UNSIGNED_BYTE, rgba);
    gl.BindFramebuffer(GL_FRAMEBUFFER, 0);
    /* OpenGL's rows run bottom up, images top down. */
    size_t stride = (size_t)r->fb_w * 4;
    for (int y = 0; y < r->fb_h / 2; y++) {
        unsigned char *a = rgba + (size_t)y * stride, *b = rgba + (size_t)(r->fb_h - 1 - y) * stride;
        for (size_t k = 0; k < stride; k++) {
            unsigned char t = a[k];
            a[k] = b[k];
            b[k] = t;
        }
    }
    /* The image is opaque whatever alpha blending left in the framebuffer. */
    for (size_t k = 3; k < stride * r->fb_h; k += 4)
        rgba[k] = 255;
}

void viz_render_finish(struct viz_renderer *r)
{
    (void)r;
    gl.Finish();
}
