/* An LD_PRELOAD shim that makes one kind of file system call fail, for the tests that
 * check what reactord does when the disk says no (tests/test_faults.cc): an upload whose
 * write, fsync, close or rename fails must answer a clear error, leave the target as it
 * was, and leave no temporary behind.
 *
 *   REACTOR_FAULT_OP     write | fsync | close | rename
 *   REACTOR_FAULT_MATCH  a substring of the path (of the descriptor's file, or the
 *                        rename's destination) that the failure applies to
 *   REACTOR_FAULT_ERRNO  the errno to fail with (default EIO)
 *
 * Nothing else changes: every other call goes straight to libc. The path of a
 * descriptor is read from /proc/self/fd, only for the call named by REACTOR_FAULT_OP.
 * close(2) still closes the descriptor and then reports the error, as NFS does. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char* op(void) { return getenv("REACTOR_FAULT_OP"); }

static int fault_errno(void) {
  const char* e = getenv("REACTOR_FAULT_ERRNO");
  return e != NULL && atoi(e) > 0 ? atoi(e) : EIO;
}

static int wanted(const char* name) {
  const char* o = op();
  return o != NULL && strcmp(o, name) == 0;
}

static int path_matches(const char* path) {
  const char* match = getenv("REACTOR_FAULT_MATCH");
  return match != NULL && match[0] != '\0' && path != NULL && strstr(path, match) != NULL;
}

static int fd_matches(int fd) {
  char link[64];
  char path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  return path_matches(path);
}

typedef ssize_t (*write_fn)(int, const void*, size_t);
typedef int (*fd_fn)(int);
typedef int (*renameat_fn)(int, const char*, int, const char*);
typedef int (*renameat2_fn)(int, const char*, int, const char*, unsigned int);
typedef int (*linkat_fn)(int, const char*, int, const char*, int);

/* The libc function this one stands in front of, looked up once. */
#define REAL(name, type) \
  static type real_##name = NULL; \
  if (real_##name == NULL) real_##name = (type)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void* buf, size_t count) {
  REAL(write, write_fn);
  if (wanted("write") && fd_matches(fd)) {
    errno = fault_errno();
    return -1;
  }
  return real_write(fd, buf, count);
}

int fsync(int fd) {
  REAL(fsync, fd_fn);
  if (wanted("fsync") && fd_matches(fd)) {
    errno = fault_errno();
    return -1;
  }
  return real_fsync(fd);
}

int fdatasync(int fd) {
  REAL(fdatasync, fd_fn);
  if (wanted("fsync") && fd_matches(fd)) {
    errno = fault_errno();
    return -1;
  }
  return real_fdatasync(fd);
}

int close(int fd) {
  REAL(close, fd_fn);
  int failing = wanted("close") && fd_matches(fd);
  int rc = real_close(fd);
  if (failing && rc == 0) {
    errno = fault_errno();
    return -1;
  }
  return rc;
}

int renameat(int olddir, const char* oldpath, int newdir, const char* newpath) {
  REAL(renameat, renameat_fn);
  if (wanted("rename") && path_matches(newpath)) {
    errno = fault_errno();
    return -1;
  }
  return real_renameat(olddir, oldpath, newdir, newpath);
}

int renameat2(int olddir, const char* oldpath, int newdir, const char* newpath, unsigned int flags) {
  REAL(renameat2, renameat2_fn);
  if (wanted("rename") && path_matches(newpath)) {
    errno = fault_errno();
    return -1;
  }
  return real_renameat2(olddir, oldpath, newdir, newpath, flags);
}

int linkat(int olddir, const char* oldpath, int newdir, const char* newpath, int flags) {
  REAL(linkat, linkat_fn);
  if (wanted("rename") && path_matches(newpath)) {
    errno = fault_errno();
    return -1;
  }
  return real_linkat(olddir, oldpath, newdir, newpath, flags);
}
