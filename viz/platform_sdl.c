/* platform_sdl.c: the only file that touches SDL: the window, the OpenGL 3.3 core
 * context, the clock, and events turned into struct viz_input. */
#include "viz.h"

#include <SDL.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct viz_platform {
    SDL_Window *win;
    SDL_GLContext ctx;
    double freq; /* performance counter ticks per second */
};

int viz_platform_open(struct viz_platform **out, const char *title, int w, int h, int hidden,
                      char err[VIZ_ERRLEN])
{
    *out = NULL;
    SDL_SetHint(SDL_HINT_VIDEO_HIGHDPI_DISABLED, "0");
    /* Without DISPLAY or WAYLAND_DISPLAY, probing X11 and Wayland only prints failures:
     * hidden windows go straight to SDL's offscreen (EGL) driver, visible ones may still
     * find a console (KMS/DRM). SDL_VIDEODRIVER in the environment overrides both. */
    if (!getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY"))
        SDL_SetHint(SDL_HINT_VIDEODRIVER, hidden ? "offscreen" : "kmsdrm");
    if (SDL_Init(SDL_INIT_VIDEO) != 0) {
        if (!getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY"))
            snprintf(err, VIZ_ERRLEN, "DISPLAY and WAYLAND_DISPLAY are unset; SDL: %s", SDL_GetError());
        else
            snprintf(err, VIZ_ERRLEN, "SDL: %s", SDL_GetError());
        return VIZ_ENODISPLAY;
    }
    /* SDL falls back to drivers without a screen; a visible window needs a real one. */
    const char *driver = SDL_GetCurrentVideoDriver();
    if (!hidden && driver && (!strcmp(driver, "offscreen") || !strcmp(driver, "dummy"))) {
        snprintf(err, VIZ_ERRLEN, "DISPLAY and WAYLAND_DISPLAY unset or unusable; SDL fell back to its '%s' driver",
                 driver);
        SDL_Quit();
        return VIZ_ENODISPLAY;
    }
    SDL_GL_SetAttribute(SDL_GL_CONTEXT_MAJOR_VERSION, 3);
    SDL_GL_SetAttribute(SDL_GL_CONTEXT_MINOR_VERSION, 3);
    SDL_GL_SetAttribute(SDL_GL_CONTEXT_PROFILE_MASK, SDL_GL_CONTEXT_PROFILE_CORE);
    SDL_GL_SetAttribute(SDL_GL_DOUBLEBUFFER, 1);
    /* Visible windows are drawn into directly, depth test included. */
    SDL_GL_SetAttribute(SDL_GL_DEPTH_SIZE, 24);
    Uint32 flags = SDL_WINDOW_OPENGL | SDL_WINDOW_RESIZABLE | SDL_WINDOW_ALLOW_HIGHDPI |
                   (hidden ? SDL_WINDOW_HIDDEN : SDL_WINDOW_SHOWN);
    SDL_Window *win = SDL_CreateWindow(title, SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, w, h, flags);
    if (!win) {
        snprintf(err, VIZ_ERRLEN, "cannot open a %d x %d window: %s", w, h, SDL_GetError());
        SDL_Quit();
        return VIZ_EGL;
    }
    SDL_GLContext ctx = SDL_GL_CreateContext(win);
    if (!ctx) {
        snprintf(err, VIZ_ERRLEN, "cannot create an OpenGL 3.3 core context: %s", SDL_GetError());
        SDL_DestroyWindow(win);
        SDL_Quit();
        return VIZ_EGL;
    }
    struct viz_platform *p = calloc(1, sizeof *p);
    if (!p) {
        SDL_GL_DeleteContext(ctx);
        SDL_DestroyWindow(win);
        SDL_Quit();
        snprintf(err, VIZ_ERRLEN, "out of memory");
        return VIZ_ENOMEM;
    }
    p->win = win;
    p->ctx = ctx;
    p->freq = (double)SDL_GetPerformanceFrequency();
    SDL_GL_MakeCurrent(win, ctx);
    SDL_GL_SetSwapInterval(1);
    /* Keys only, no text entry: SDL would otherwise start an input-method session (IBus
     * over D-Bus) for the window. */
    SDL_StopTextInput();
    *out = p;
    return VIZ_OK;
}

void viz_platform_close(struct viz_platform *p)
{
    if (!p)
        return;
    SDL_GL_DeleteContext(p->ctx);
    SDL_DestroyWindow(p->win);
    SDL_Quit();
    free(p);
}

viz_getproc_fn viz_platform_getproc(struct viz_platform *p)
{
    (void)p;
    return SDL_GL_GetProcAddress;
}

/* The viewer's key for an SDL key code, or -1. */
static int map_key(SDL_Keycode k)
{
    switch (k) {
    case SDLK_ESCAPE: return VIZ_KEY_ESCAPE;
    case SDLK_SPACE: return VIZ_KEY_SPACE;
    case SDLK_RIGHT: return VIZ_KEY_RIGHT;
    case SDLK_r: return VIZ_KEY_R;
    case SDLK_1: case SDLK_KP_1: return VIZ_KEY_1;
    case SDLK_2: case SDLK_KP_2: return VIZ_KEY_2;
    case SDLK_3: case SDLK_KP_3: return VIZ_KEY_3;
    case SDLK_PLUS: case SDLK_EQUALS: case SDLK_KP_PLUS: return VIZ_KEY_PLUS;
    case SDLK_MINUS: case SDLK_KP_MINUS: return VIZ_KEY_MINUS;
    case SDLK_t: return VIZ_KEY_T;
    case SDLK_h: return VIZ_KEY_H;
    case SDLK_F5: return VIZ_KEY_F5;
    case SDLK_f: return VIZ_KEY_F;
    case SDLK_g: return VIZ_KEY_G;
    case SDLK_e: return VIZ_KEY_E;
    case SDLK_n: return VIZ_KEY_N;
    case SDLK_p: return VIZ_KEY_P;
    case SDLK_LEFT: return VIZ_KEY_LEFT;
    default: return -1;
    }
}

void viz_platform_poll(struct viz_platform *p, struct viz_input *in)
{
    viz_input_begin_frame(in);
    SDL_Event e;
    while (SDL_PollEvent(&e)) {
        int key;
        switch (e.type) {
        case SDL_QUIT:
            in->quit = 1;
            break;
        case SDL_KEYDOWN:
            key = map_key(e.key.keysym.sym);
            if (key >= 0 && !e.key.repeat) {
                in->down[key] = 1;
                in->tap[key] = 1;
            }
            break;
        case SDL_KEYUP:
            key = map_key(e.key.keysym.sym);
            if (key >= 0)
                in->down[key] = 0;
            break;
        case SDL_MOUSEBUTTONDOWN:
            if (e.button.button == SDL_BUTTON_LEFT)
                in->button = 1;
            in->mouse_x = (float)e.button.x;
            in->mouse_y = (float)e.button.y;
            break;
        case SDL_MOUSEBUTTONUP:
            if (e.button.button == SDL_BUTTON_LEFT)
                in->button = 0;
            break;
        case SDL_MOUSEMOTION:
            in->mouse_dx += (float)e.motion.xrel;
            in->mouse_dy += (float)e.motion.yrel;
            in->mouse_x = (float)e.motion.x;
            in->mouse_y = (float)e.motion.y;
            break;
        case SDL_MOUSEWHEEL:
            in->wheel += (float)(e.wheel.direction == SDL_MOUSEWHEEL_FLIPPED ? -e.wheel.y : e.wheel.y);
            break;
        case SDL_WINDOWEVENT:
            /* Keys released while another window had the focus never report their release. */
            if (e.window.event == SDL_WINDOWEVENT_FOCUS_LOST) {
                memset(in->down, 0, sizeof in->down);
                in->button = 0;
            }
            break;
        default:
            break;
        }
    }
    SDL_GetWindowSize(p->win, &in->win_w, &in->win_h);
    SDL_GL_GetDrawableSize(p->win, &in->fb_w, &in->fb_h);
}

void viz_platform_swap(struct viz_platform *p)
{
    SDL_GL_SwapWindow(p->win);
}

void viz_platform_vsync(struct viz_platform *p, int on)
{
    (void)p;
    SDL_GL_SetSwapInterval(on ? 1 : 0);
}

double viz_platform_time(struct viz_platform *p)
{
    return (double)SDL_GetPerformanceCounter() / p->freq;
}

void viz_platform_sleep(double seconds)
{
    if (seconds > 0.0)
        SDL_Delay((Uint32)(seconds * 1000.0));
}
