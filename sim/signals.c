/* signals.c: SIGINT, SIGTERM and SIGHUP for the programs with threads, handled in one place:
 * blocked in every thread the program makes, acted on by one waiting thread (see sim.h). */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const int handled[3] = {SIGINT, SIGTERM, SIGHUP};

/* The signal number travels from the handler to the waiter through this pipe. */
static int wake[2] = {-1, -1};
static sim_signal_fn user_fn;
static void *user_arg;
/* Held by the program around its file system work, and by the waiter while fn runs. */
static pthread_mutex_t section = PTHREAD_MUTEX_INITIALIZER;

/* The three signals as a set. */
static void handled_set(sigset_t *s)
{
    sigemptyset(s);
    for (int k = 0; k < 3; k++)
        sigaddset(s, handled[k]);
}

/* Runs in the waiter, or in a thread made before sim_signals_start (a library's pool started
 * by a constructor) that has the signals unblocked: only async-signal-safe work, one write. */
static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(wake[1], &b, 1); /* a full pipe already holds a wake-up */
    (void)w;
    errno = saved;
}

/* The one thread with the signals unblocked: each arrival runs fn outside every section. */
static void *waiter(void *arg)
{
    (void)arg;
    sigset_t s;
    handled_set(&s);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    for (;;) {
        unsigned char b;
        ssize_t r = read(wake[0], &b, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != 1)
            return NULL;
        pthread_mutex_lock(&section);
        user_fn(b, user_arg);
        pthread_mutex_unlock(&section);
    }
}

/* Block the three signals here and start the waiter (see sim.h). */
int sim_signals_start(sim_signal_fn fn, void *user)
{
    if (!fn || wake[0] >= 0)
        return SIM_EARG;
    sigset_t s, old;
    handled_set(&s);
    pthread_sigmask(SIG_BLOCK, &s, &old);
    if (pipe(wake) != 0) {
        wake[0] = wake[1] = -1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return SIM_EIO;
    }
    for (int k = 0; k < 2; k++)
        fcntl(wake[k], F_SETFD, FD_CLOEXEC);
    fcntl(wake[1], F_SETFL, fcntl(wake[1], F_GETFL) | O_NONBLOCK);
    user_fn = fn;
    user_arg = user;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    for (int k = 0; k < 3; k++)
        sigaction(handled[k], &sa, NULL);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&t, &attr, waiter, NULL);
    pthread_attr_destroy(&attr);
    if (e != 0) {
        /* no waiter: the default actions again, and the mask as it was */
        for (int k = 0; k < 3; k++)
            signal(handled[k], SIG_DFL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return SIM_EIO;
    }
    return SIM_OK;
}

/* Enter / leave a section that fn never interrupts. */
void sim_signals_hold(void) { pthread_mutex_lock(&section); }
void sim_signals_release(void) { pthread_mutex_unlock(&section); }

/* End the process as sig's default action does (see sim.h). */
void sim_signals_exit(int sig)
{
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
    _exit(128 + sig); /* not reached for the three signals: their default is to terminate */
}
