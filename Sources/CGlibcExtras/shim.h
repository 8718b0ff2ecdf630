// glibc's GNU extensions that the Glibc module does not export (it is built without _GNU_SOURCE).
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>

extern int pthread_setname_np(pthread_t thread, const char *name);
extern int pthread_getname_np(pthread_t thread, char *name, size_t length);

#include <sys/types.h>

/// `struct ucred` (SO_PEERCRED's answer), hidden behind _GNU_SOURCE in <sys/socket.h>; the same
/// layout under its own name so both headers can be imported together.
struct access_peer_ucred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

#include <spawn.h>

/// Closes every descriptor from `from` up in the child (glibc 2.34+, hidden behind _GNU_SOURCE).
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
