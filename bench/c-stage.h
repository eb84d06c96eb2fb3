/*
 * What the bench's many-at-once C helpers (http-client.c, grpc-client.c) share, as bench/c-stage.ts drives them:
 * request lines on non-blocking stdin, one epoll loop over all connections, a deadline sweep every 50 ms, and at
 * stdin's end, once the requests in flight are finished, a `cpu S` line (user + system CPU seconds).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int ep;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* How every helper's connection struct begins: these two fields first, in this order. */
struct slot {
  int busy;
  double deadline;
};

struct stage {
  const char *name;
  /* One request line, its newline removed. */
  void (*start)(char *line);
  /* An event on a busy connection: what was registered with epoll as data.ptr (NULL is stdin). */
  void (*ready)(void *conn, uint32_t events);
  /* Ends a busy connection that has run past its deadline. */
  void (*expire)(void *conn);
  /* The helper's connections (stage_slot's pool) and how many are busy. */
  void ***pool;
  const size_t *cap, *active;
};

/* A free connection struct of `size` bytes from the pool, which grows as needed; a new one is all zero. */
static void *stage_slot(void ***pool, size_t *cap, size_t size) {
  size_t k = 0;
  while (k < *cap && (*pool)[k] && ((struct slot *)(*pool)[k])->busy) k++;
  if (k == *cap) {
    size_t more = *cap ? 2 * *cap : 64;
    *pool = realloc(*pool, more * sizeof **pool);
    memset(*pool + *cap, 0, (more - *cap) * sizeof **pool);
    *cap = more;
  }
  if (!(*pool)[k]) (*pool)[k] = calloc(1, size);
  return (*pool)[k];
}

/*
 * A non-blocking TCP connection from `from` (a machine's address) to `to`, registered with epoll for its completion
 * (EPOLLOUT) as `conn`; -1, with why it could not start, when it cannot.
 */
static int stage_connect(const struct sockaddr_in *from, const struct sockaddr_in *to, void *conn, const char **why) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  *why = NULL;
  int one = 1;
  if (fd < 0) *why = "socket";
  /* Every client the helpers stand for sends without Nagle's delay: curl, Go (Talos) and iPXE's own TCP. */
  else if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)) *why = "TCP_NODELAY";
  else if (bind(fd, (const struct sockaddr *)from, sizeof *from)) *why = "bind to the source address";
  else if (connect(fd, (const struct sockaddr *)to, sizeof *to) && errno != EINPROGRESS) *why = strerror(errno);
  struct epoll_event e = {.events = EPOLLOUT, .data.ptr = conn};
  if (!*why && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e)) *why = "epoll_ctl";
  if (!*why) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

/* 0 once a stage_connect connection is established, else why it failed (an errno). */
static int stage_connect_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

/* Runs the helper until stdin has ended and nothing is in flight; returns its exit status. */
static int stage_run(const struct stage *s, size_t line_max) {
  struct rlimit nofile;
  if (!getrlimit(RLIMIT_NOFILE, &nofile)) nofile.rlim_cur = nofile.rlim_max, setrlimit(RLIMIT_NOFILE, &nofile);
  ep = epoll_create1(EPOLL_CLOEXEC);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  struct epoll_event in = {.events = EPOLLIN, .data.ptr = NULL};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, 0, &in)) return fprintf(stderr, "%s: epoll: %s\n", s->name, strerror(errno)), 1;
  char *line = malloc(line_max + 1);
  size_t have = 0;
  int eof = 0;
  double next_sweep = now() + 0.05;
  while (!eof || *s->active) {
    struct epoll_event ev[64];
    int n = epoll_wait(ep, ev, 64, 50);
    if (n < 0 && errno != EINTR) return fprintf(stderr, "%s: epoll_wait: %s\n", s->name, strerror(errno)), 1;
    for (int i = 0; i < n; i++) {
      struct slot *c = ev[i].data.ptr;
      if (c) {
        if (c->busy) s->ready(c, ev[i].events); /* else ended earlier in this batch */
        continue;
      }
      ssize_t r;
      while ((r = read(0, line + have, line_max - have)) > 0) {
        have += (size_t)r;
        char *nl;
        while ((nl = memchr(line, '\n', have))) {
          *nl = 0;
          s->start(line);
          have -= (size_t)(nl + 1 - line);
          memmove(line, nl + 1, have);
        }
        if (have == line_max) return fprintf(stderr, "%s: request line too long\n", s->name), 1;
      }
      if (r == 0) eof = 1, epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
    }
    double t = now();
    if (t >= next_sweep) {
      next_sweep = t + 0.05;
      for (size_t k = 0; k < *s->cap; k++) {
        struct slot *c = (*s->pool)[k];
        if (c && c->busy && t > c->deadline) s->expire(c);
      }
    }
    fflush(stdout);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("cpu %.6f\n", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  free(line);
  return 0;
}
