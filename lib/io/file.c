/* Files the library reads or replaces: only regular ones. A FIFO would block open() forever and a
 * device be read without end; a save renamed over /dev/null would turn it into a regular file. */
#include "../internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int nb_open_regular(const char *path, int64_t *size)
{
    const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);   /* a FIFO: open returns at once */
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const int e = errno;
        close(fd);
        errno = e;
        return -2;
    }
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (size) *size = (int64_t)st.st_size;
    return fd;
}

bool nb_check_replaceable(const char *op, const char *path)
{
    if (!*path) {
        nb_error("%s: empty path", op);
        return false;
    }
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        nb_error("%s: %s: refusing to replace it: not a regular file", op, path);
        return false;
    }
    return true;
}
