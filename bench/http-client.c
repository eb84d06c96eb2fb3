/*
 * A measuring HTTP/1.1 client for bench/boot-storm: many GETs at once in one epoll loop, each from a source address
 * of its own, so the simulated machines' large downloads (kernel, initrd) cost the bench little CPU and the asset
 * step measures the servers rather than the client. The body is counted, not kept: recv(MSG_TRUNC) lets the kernel
 * drop TCP data without copying it out, the client-side cost a real machine pays on a CPU of its own.
 *
 *   http-client [-m TIMEOUT_MS]
 *
 * Requests arrive on stdin, one per line:  ID SOURCE-IPV4 http://IPV4:PORT/PATH
 * One connection per request (Connection: close, as iPXE fetches a kernel); each request ends with one line on
 * stdout, timed from its line's arrival to the body's last byte:
 *   done ID status S bytes N seconds T       or       failed ID REASON
 * A 200 must carry a Content-Length and deliver exactly that many bytes. stdin's end lets the requests in flight
 * finish; then `cpu S` (the client's user + system CPU seconds) and exit 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { HEAD_MAX = 8192, LINE_MAX_LEN = 2048 };

struct conn {
  int fd;
  long long id;
  double t0, deadline;
  int busy, sent;
  int in_body, status;
  long long length; /* -1: no Content-Length */
  long long got;
  size_t head_len, request_len;
  /* The buffers last: a new request clears everything before them. */
  char request[LINE_MAX_LEN + 128];
  char head[HEAD_MAX];
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double timeout_s = 120;
static int ep;
static struct conn **conns;
static size_t cap, active;
static char scratch[1 << 20];

static void end(struct conn *c, const char *failure) {
  if (failure) printf("failed %lld %s\n", c->id, failure);
  else printf("done %lld status %d bytes %lld seconds %.6f\n", c->id, c->status, c->got, now() - c->t0);
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->busy = 0;
  active--;
}

/* The status line and Content-Length of a complete head; -1 when it is not an HTTP/1.x response. */
static int parse_head(struct conn *c) {
  if (sscanf(c->head, "HTTP/1.%*d %d", &c->status) != 1) return -1;
  c->length = -1;
  for (char *l = strstr(c->head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
    if (!strncasecmp(l + 2, "content-length:", 15)) c->length = strtoll(l + 17, NULL, 10);
  }
  return 0;
}

/* After the body's last byte, or the connection's end. */
static void finish(struct conn *c, int eof) {
  if (c->status == 200 && c->length < 0) return end(c, "200 without Content-Length");
  if (c->length >= 0 && c->got != c->length) {
    if (!eof && c->got < c->length) return;
    char why[96];
    snprintf(why, sizeof why, "body of %lld bytes, Content-Length %lld", c->got, c->length);
    return end(c, why);
  }
  if (c->length >= 0 || eof) end(c, NULL);
}

static void readable(struct conn *c) {
  for (;;) {
    ssize_t n;
    if (!c->in_body) {
      n = recv(c->fd, c->head + c->head_len, HEAD_MAX - 1 - c->head_len, 0);
      if (n > 0) {
        c->head_len += (size_t)n;
        c->head[c->head_len] = 0;
        char *sep = strstr(c->head, "\r\n\r\n");
        if (!sep) {
          if (c->head_len == HEAD_MAX - 1) return end(c, "response head too long");
          continue;
        }
        if (parse_head(c)) return end(c, "not an HTTP/1.x response");
        c->in_body = 1;
        c->got = (long long)(c->head + c->head_len - (sep + 4));
        finish(c, 0);
        if (!c->busy) return;
        continue;
      }
    } else {
      n = recv(c->fd, scratch, sizeof scratch, MSG_TRUNC);
      if (n > 0) {
        c->got += n;
        finish(c, 0);
        if (!c->busy) return;
        continue;
      }
    }
    if (n == 0) return c->in_body ? finish(c, 1) : end(c, "connection closed before the response head");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    return end(c, strerror(errno));
  }
}

static void writable(struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) return end(c, strerror(err));
  /* A request line of a few hundred bytes fits any fresh socket's send buffer. */
  if (send(c->fd, c->request, c->request_len, MSG_NOSIGNAL) != (ssize_t)c->request_len) return end(c, "send");
  c->sent = 1;
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static struct conn *slot(void) {
  size_t k = 0;
  while (k < cap && conns[k] && conns[k]->busy) k++;
  if (k == cap) {
    size_t more = cap ? 2 * cap : 64;
    conns = realloc(conns, more * sizeof *conns);
    memset(conns + cap, 0, (more - cap) * sizeof *conns);
    cap = more;
  }
  if (!conns[k]) conns[k] = malloc(sizeof **conns);
  return conns[k];
}

static void start(const char *line) {
  long long id;
  char src[64], host[64], path[LINE_MAX_LEN];
  unsigned port;
  struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
  if (sscanf(line, "%lld %63s http://%63[0-9.]:%u%2047s", &id, src, host, &port, path) != 5 || port > 65535 || inet_pton(AF_INET, src, &from.sin_addr) != 1 ||
      inet_pton(AF_INET, host, &to.sin_addr) != 1) {
    printf("failed -1 bad request line: %s\n", line);
    return;
  }
  to.sin_port = htons((uint16_t)port);
  struct conn *c = slot();
  memset(c, 0, offsetof(struct conn, request));
  c->id = id, c->t0 = now(), c->deadline = c->t0 + timeout_s, c->length = -1;
  c->request_len = (size_t)snprintf(c->request, sizeof c->request, "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: heph-bench\r\nConnection: close\r\n\r\n", path, host, port);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const char *why = NULL;
  if (c->fd < 0) why = "socket";
  else if (bind(c->fd, (struct sockaddr *)&from, sizeof from)) why = "bind to the source address";
  else if (connect(c->fd, (struct sockaddr *)&to, sizeof to) && errno != EINPROGRESS) why = strerror(errno);
  struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
  if (!why && epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e)) why = "epoll_ctl";
  if (why) {
    printf("failed %lld %s\n", id, why);
    if (c->fd >= 0) close(c->fd);
    return;
  }
  c->busy = 1;
  active++;
}

int main(int argc, char **argv) {
  int opt;
  while ((opt = getopt(argc, argv, "m:")) != -1) {
    if (opt != 'm' || atoi(optarg) <= 0) return fprintf(stderr, "usage: http-client [-m TIMEOUT_MS]\n"), 2;
    timeout_s = atoi(optarg) / 1000.0;
  }
  struct rlimit nofile;
  if (!getrlimit(RLIMIT_NOFILE, &nofile)) nofile.rlim_cur = nofile.rlim_max, setrlimit(RLIMIT_NOFILE, &nofile);
  ep = epoll_create1(EPOLL_CLOEXEC);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  struct epoll_event in = {.events = EPOLLIN, .data.ptr = NULL};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, 0, &in)) return perror("http-client: epoll"), 1;
  char line[LINE_MAX_LEN + 256];
  size_t have = 0;
  int eof = 0;
  double next_scan = now() + 0.05;
  while (!eof || active) {
    struct epoll_event ev[64];
    int n = epoll_wait(ep, ev, 64, 50);
    if (n < 0 && errno != EINTR) return perror("http-client: epoll_wait"), 1;
    for (int i = 0; i < n; i++) {
      struct conn *c = ev[i].data.ptr;
      if (c) {
        if (!c->busy) continue; /* ended earlier in this batch */
        if (!c->sent) writable(c);
        else readable(c);
        continue;
      }
      ssize_t r;
      while ((r = read(0, line + have, sizeof line - 1 - have)) > 0) {
        have += (size_t)r;
        char *nl;
        while ((nl = memchr(line, '\n', have))) {
          *nl = 0;
          start(line);
          have -= (size_t)(nl + 1 - line);
          memmove(line, nl + 1, have);
        }
        if (have == sizeof line - 1) return fprintf(stderr, "http-client: request line too long\n"), 1;
      }
      if (r == 0) eof = 1, epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
    }
    double t = now();
    if (t >= next_scan) {
      next_scan = t + 0.05;
      for (size_t k = 0; k < cap; k++)
        if (conns[k] && conns[k]->busy && t > conns[k]->deadline) end(conns[k], "timed out");
    }
    fflush(stdout);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("cpu %.6f\n", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  return 0;
}
