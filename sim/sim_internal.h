/* sim_internal.h: helpers shared by the sim/ sources and not part of the public API. */
#ifndef SIM_INTERNAL_H
#define SIM_INTERNAL_H

/* Fill err (SIM_ERRLEN bytes, if not NULL) with "path: message"; returns status, so callers
 * can `return sim_fail_path(...)`. */
int sim_fail_path(char *err, int status, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
