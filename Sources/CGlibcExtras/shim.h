// glibc's GNU extensions that the Glibc module does not export (it is built without _GNU_SOURCE).
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>

extern int pthread_setname_np(pthread_t thread, const char *name);
extern int pthread_getname_np(pthread_t thread, char *name, size_t length);
