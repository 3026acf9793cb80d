/* The Go runtime raises the process's soft RLIMIT_NOFILE to its hard
 * limit when it starts (Go's syscall package, go.dev/issue/46279): in a
 * shared library that is a change to the host's process. The library
 * keeps the host's limit: this constructor, which runs before the Go
 * runtime's (a lower priority number runs first), records it, and the
 * library's init puts it back (fq_restore_nofile). The engine needs no
 * more: a client holds at most concurrency + 8 sockets. */
#include <sys/resource.h>

#include "queue.h"

static struct rlimit nofile_at_load;
static int nofile_recorded;

__attribute__((constructor(101))) static void record_nofile(void)
{
    nofile_recorded = getrlimit(RLIMIT_NOFILE, &nofile_at_load) == 0;
}

int32_t fq_restore_nofile(void)
{
    struct rlimit now;
    if (!nofile_recorded || getrlimit(RLIMIT_NOFILE, &now) != 0)
        return 0;
    /* Go sets the soft limit to the hard one less 1; anything else is
     * unchanged, or changed by someone else since. */
    if (now.rlim_cur == nofile_at_load.rlim_cur || now.rlim_max != nofile_at_load.rlim_max ||
        now.rlim_cur != now.rlim_max - 1)
        return 0;
    return setrlimit(RLIMIT_NOFILE, &nofile_at_load) == 0;
}
