/* camera.c: matrices, the shared orbit camera and the split-screen layout; pure
 * functions with no window or OpenGL state, so tests run them directly. */
#include "viz.h"

#include <math.h>
#include <string.h>

void viz_mat4_identity(struct viz_mat4 *out)
{
    memset(out, 0, sizeof *out);
    out->m[0] = out->m[5] = out->m[10] = out->m[15] = 1.0f;
}

void viz_mat4_mul(struct viz_mat4 *out, const struct viz_mat4 *a, const struct viz_mat4 *b)
{
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 4; r++) {
            float s = 0.0f;
            for (int k = 0; k < 4; k++)
                s += a->m[k * 4 + r] * b->m[c * 4 + k];
            out->m[c * 4 + r] = s;
        }
}

void viz_mat4_perspective(struct viz_mat4 *out, float fovy, float aspect, float znear, float zfar)
{
    float f = 1.0f / tanf(0.5f * fovy);
    memset(out, 0, sizeof *out);
    out->m[0] = f / aspect;
    out->m[5] = f;
    out->m[10] = (zfar + znear) / (znear - zfar);
    out->m[11] = -1.0f;
    out->m[14] = 2.0f * zfar * znear / (znear - zfar);
}

void viz_mat4_ortho(struct viz_mat4 *out, float l, float r, float b, float t, float n, float f)
{
    memset(out, 0, sizeof *out);
    out->m[0] = 2.0f / (r - l);
    out->m[5] = 2.0f / (t - b);
    out->m[10] = -2.0f / (f - n);
    out->m[12] = -(r + l) / (r - l);
    out->m[13] = -(t + b) / (t - b);
    out->m[14] = -(f + n) / (f - n);
    out->m[15] = 1.0f;
}

/* Normalise a 3-vector in place; a zero vector stays zero. */
static void normalize3(float v[3])
{
    float len = sqrtf(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    if (len > 0.0f)
        for (int k = 0; k < 3; k++)
            v[k] /= len;
}

/* out = a x b. */
static void cross3(const float a[3], const float b[3], float out[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

void viz_mat4_look_at(struct viz_mat4 *out, const float eye[3], const float target[3], const float up[3])
{
    float f[3] = {target[0] - eye[0], target[1] - eye[1], target[2] - eye[2]};
    float s[3], u[3];
    normalize3(f);
    cross3(f, up, s);
    normalize3(s);
    cross3(s, f, u);
    viz_mat4_identity(out);
    for (int k = 0; k < 3; k++) {
        out->m[k * 4 + 0] = s[k];
        out->m[k * 4 + 1] = u[k];
        out->m[k * 4 + 2] = -f[k];
    }
    out->m[12] = -(s[0] * eye[0] + s[1] * eye[1] + s[2] * eye[2]);
    out->m[13] = -(u[0] * eye[0] + u[1] * eye[1] + u[2] * eye[2]);
    out->m[14] = f[0] * eye[0] + f[1] * eye[1] + f[2] * eye[2];
}

void viz_mat4_apply(const struct viz_mat4 *m, const float p[3], float w, float out[4])
{
    for (int r = 0; r < 4; r++)
        out[r] = m->m[r] * p[0] + m->m[4 + r] * p[1] + m->m[8 + r] * p[2] + m->m[12 + r] * w;
}

/* Clamp x to [lo, hi]. */
static float clampf(float x, float lo, float hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

float viz_body_radius(int n)
{
    return 0.14f * cbrtf((float)n / 5.0f);
}

void viz_camera_init(struct viz_camera *c)
{
    memset(c, 0, sizeof *c);
    c->yaw = 0.6f;
    c->pitch = 0.45f;
    c->distance = 8.0f;
    c->fovy = VIZ_FOVY;
}

void viz_camera_rotate(struct viz_camera *c, float dx, float dy)
{
    c->yaw = fmodf(c->yaw - dx * VIZ_ROTATE_PER_PX, 6.2831853f);
    c->pitch = clampf(c->pitch + dy * VIZ_ROTATE_PER_PX, -VIZ_PITCH_MAX, VIZ_PITCH_MAX);
}

void viz_camera_zoom(struct viz_camera *c, float notches)
{
    c->distance = clampf(c->distance * powf(VIZ_ZOOM_PER_NOTCH, notches), VIZ_DIST_MIN, VIZ_DIST_MAX);
}

void viz_camera_eye(const struct viz_camera *c, float eye[3])
{
    float cp = cosf(c->pitch);
    eye[0] = c->target[0] + c->distance * cp * sinf(c->yaw);
    eye[1] = c->target[1] - c->distance * cp * cosf(c->yaw);
    eye[2] = c->target[2] + c->distance * sinf(c->pitch);
}

void viz_camera_matrices(const struct viz_camera *c, float aspect, struct viz_mat4 *view,
                         struct viz_mat4 *proj)
{
    static const float up[3] = {0.0f, 0.0f, 1.0f};
    float eye[3];
    viz_camera_eye(c, eye);
    viz_mat4_look_at(view, eye, c->target, up);
    float znear = VIZ_ZNEAR_FRAC * c->distance;
    float zfar = VIZ_ZFAR_FRAC * c->distance + 50.0f;
    viz_mat4_perspective(proj, c->fovy, aspect > 0.0f ? aspect : 1.0f, znear, zfar);
}

void viz_camera_fit(struct viz_camera *c, int n, const double *x, float margin, float aspect)
{
    double mean[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < n; i++)
            mean[k] += x[k * n + i];
        mean[k] /= n > 0 ? n : 1;
        c->target[k] = (float)mean[k];
    }
    double r2 = 0.0;
    for (int i = 0; i < n; i++) {
        double d2 = 0.0;
        for (int k = 0; k < 3; k++)
            d2 += (x[k * n + i] - mean[k]) * (x[k * n + i] - mean[k]);
        if (d2 > r2)
            r2 = d2;
    }
    float radius = (float)sqrt(r2) + margin;
    float half_v = 0.5f * c->fovy;
    float half_h = atanf(tanf(half_v) * (aspect > 0.0f ? aspect : 1.0f));
    float half = half_v < half_h ? half_v : half_h;
    c->distance = clampf(radius / sinf(half), VIZ_DIST_MIN, VIZ_DIST_MAX);
}

void viz_camera_follow(struct viz_camera *c, const float p[3], float dt)
{
    float a = 1.0f - expf(-(dt > 0.0f ? dt : 0.0f) / VIZ_FOLLOW_TAU);
    for (int k = 0; k < 3; k++)
        c->target[k] += a * (p[k] - c->target[k]);
}

int viz_project(const struct viz_mat4 *vp, const struct viz_rect *r, const float p[3], float out[2])
{
    float clip[4];
    viz_mat4_apply(vp, p, 1.0f, clip);
    if (clip[3] <= 0.0f)
        return 0;
    out[0] = (float)r->x + 0.5f * (clip[0] / clip[3] + 1.0f) * (float)r->w;
    out[1] = (float)r->y + 0.5f * (clip[1] / clip[3] + 1.0f) * (float)r->h;
    return 1;
}

float viz_camera_fit_distance(const struct viz_camera *c, float radius, float aspect)
{
    float half_v = 0.5f * c->fovy;
    float half_h = atanf(tanf(half_v) * (aspect > 0.0f ? aspect : 1.0f));
    float half = half_v < half_h ? half_v : half_h;
    return radius / sinf(half);
}

/* Largest distance from the target to any of pts [count][3], plus margin. */
static float radius_about(const float target[3], int count, const float *pts, float margin)
{
    float r2 = 0.0f;
    for (int i = 0; i < count; i++) {
        const float *p = pts + 3 * i;
        float d2 = 0.0f;
        for (int k = 0; k < 3; k++)
            d2 += (p[k] - target[k]) * (p[k] - target[k]);
        if (isfinite(d2) && d2 > r2)
            r2 = d2;
    }
    return sqrtf(r2) + margin;
}

void viz_camera_track(struct viz_camera *c, const float centroid[3], int count, const float *pts,
                      float margin, float aspect, float dt)
{
    viz_camera_follow(c, centroid, dt);
    float need = viz_camera_fit_distance(c, radius_about(c->target, count, pts, margin), aspect);
    if (c->distance < need) {
        c->distance = need; /* at once: no body may leave the view */
    } else if (c->distance > VIZ_FIT_SLACK * need) {
        float a = 1.0f - expf(-(dt > 0.0f ? dt : 0.0f) / VIZ_ZOOM_TAU);
        c->distance += a * (VIZ_FIT_AIM * need - c->distance);
    }
    c->distance = clampf(c->distance, VIZ_DIST_MIN, VIZ_DIST_MAX);
}

void viz_camera_frame(struct viz_camera *c, int centroid_count, int count, const float *pts, float margin,
                      float aspect)
{
    double mean[3] = {0, 0, 0};
    for (int i = 0; i < centroid_count; i++)
        for (int k = 0; k < 3; k++)
            mean[k] += pts[3 * i + k];
    for (int k = 0; k < 3; k++)
        c->target[k] = centroid_count > 0 ? (float)(mean[k] / centroid_count) : 0.0f;
    float need = viz_camera_fit_distance(c, radius_about(c->target, count, pts, margin), aspect);
    c->distance = clampf(need, VIZ_DIST_MIN, VIZ_DIST_MAX);
}

void viz_layout_compute(struct viz_layout *l, int win_w, int win_h, int fb_w, int fb_h, int panels, int timeline)
{
    memset(l, 0, sizeof *l);
    panels = panels < 1 ? 1 : panels > VIZ_MAX_PANELS ? VIZ_MAX_PANELS : panels;
    if (fb_w < 2 * panels)
        fb_w = 2 * panels;
    if (fb_h < 1)
        fb_h = 1;
    l->fb_w = fb_w;
    l->fb_h = fb_h;
    l->panels = panels;
    l->dpi_scale = win_w > 0 ? (float)fb_w / (float)win_w : 1.0f;
    if (l->dpi_scale < 1.0f)
        l->dpi_scale = 1.0f;
    /* Twice the font's own pixels reads well on ordinary windows; smaller ones get 1x so the
     * headings (up to ~46 columns beside the axes) still fit in half the width. */
    int base = win_w >= 1200 && win_h >= 600 ? 2 : 1;
    l->text_scale = (int)lroundf((float)base * l->dpi_scale);
    if (l->text_scale < 1)
        l->text_scale = 1;
    l->gap = (int)lroundf(2.0f * l->dpi_scale);
    if (l->gap * (panels - 1) >= fb_w / 2)
        l->gap = 0;
    /* The timeline strip: one line of text and a bar, under the panels. */
    int th = timeline ? 22 * l->text_scale : 0;
    if (th > fb_h / 4)
        th = fb_h / 4;
    int ph_all = fb_h - th;
    /* One pixel per divider spare, so that even columns can be kept below. */
    int w = (fb_w - (l->gap + 1) * (panels - 1)) / panels;
    /* Every viewport starts at an even column, so that the 2 x 2 pixel blocks screen-space
     * derivatives are taken over line up alike and all panels rasterise identically; the last
     * one ends at the right edge. */
    if ((fb_w - w) % 2 != 0 && w > 1)
        w--;
    int step = w + l->gap + ((w + l->gap) % 2);
    for (int k = 0; k < panels; k++)
        l->view[k] = (struct viz_rect){k == 0 ? 0 : fb_w - w - (panels - 1 - k) * step, th, w, ph_all};
    l->timeline = (struct viz_rect){0, 0, fb_w, th};
    int margin = 8 * l->text_scale;
    float frac = panels <= 2 ? 0.5f : 0.9f;
    int pw = (int)(frac * (float)w);
    int pmax = (int)(220.0f * (float)l->text_scale);
    if (pw > pmax)
        pw = pmax;
    int ph = (int)(0.6f * (float)pw);
    if (ph > ph_all / 3)
        ph = ph_all / 3;
    const struct viz_rect *last = &l->view[panels - 1];
    l->plot = (struct viz_rect){last->x + w - pw - margin, th + margin, pw, ph};
}
