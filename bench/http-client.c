/*
 * A measuring HTTP/1.1 client for bench/boot-storm: many GETs at once in one epoll loop, each from a source address
 * of its own, so the simulated machines' large downloads (kernel, initrd) cost the bench little CPU and the asset
 * step measures the servers rather than the client. A body is counted, not kept: recv(MSG_TRUNC) lets the kernel
 * drop TCP data without copying it out, the client-side cost a real machine pays on a CPU of its own. The small
 * pages a machine reads (the iPXE script, its config) can be kept instead and handed back in hex.
 *
 *   http-client [-m TIMEOUT_MS] [-k KEEP_BYTES] [-r]
 *
 * Requests arrive on stdin, one per line:  ID SOURCE-IPV4 http://IPV4:PORT/PATH [keep] [fresh]
 * Each request ends with one line on stdout, timed from its line's arrival to the body's last byte:
 *   done ID status S bytes N seconds T [body HEX]       or       failed ID REASON
 * `keep` (needs -k) hands the body back in hex; a body longer than KEEP_BYTES fails. `fresh` opens a connection of
 * its own even with -r: another program on the machine (Talos, after iPXE) has no share in iPXE's pool.
 * Without -r, one connection per request (Connection: close). With -r, connections are pooled as iPXE pools them
 * (src/net/tcp/httpconn.c): every request asks for keep-alive; a response that answers `Connection: keep-alive`
 * leaves its connection idle for 10 s, and the next request from the same source to the same server takes it. A
 * pooled connection the server closed before any byte of the response came back is reopened and the request sent
 * again, as iPXE's pool_reopen does; the time spent counts.
 * A 200 must carry a Content-Length and deliver exactly that many bytes. stdin's end lets the requests in flight
 * finish; then `cpu S` (the client's user + system CPU seconds) and exit 0.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <strings.h>

#include "c-stage.h"

enum { HEAD_MAX = 8192, LINE_MAX_LEN = 2048 };
/* struct slot's busy: a request in flight, or (with -r) a connection idle in the pool until its deadline. */
enum { FREE = 0, BUSY = 1, IDLE = 2 };
/* iPXE's HTTP_CONN_EXPIRY. */
static const double POOL_S = 10;

struct conn {
  int busy; /* these two first: struct slot */
  double deadline;
  /* The connection: kept by a pooled connection from one request to the next. */
  int fd;
  struct sockaddr_in from, to;
  /* The request: cleared for each. */
  long long id;
  double t0;
  int sent, keep, reused, server_keepalive;
  int in_body, status;
  long long length; /* -1: no Content-Length */
  long long got;
  size_t head_len, request_len, kept_len;
  /* The buffers last. */
  char request[LINE_MAX_LEN + 128];
  char head[HEAD_MAX];
  char *kept; /* KEEP_BYTES, for requests marked keep */
};

static double timeout_s = 120;
static int pooled;
static struct conn **conns;
static size_t cap, active, keep_max;
static char scratch[1 << 20];

static void drop(struct conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->busy = FREE;
}

static void end(struct conn *c, const char *failure) {
  if (failure) printf("failed %lld %s\n", c->id, failure);
  else printf("done %lld status %d bytes %lld seconds %.6f", c->id, c->status, c->got, now() - c->t0);
  if (!failure && c->keep) {
    static const char digits[] = "0123456789abcdef";
    fputs(" body ", stdout);
    for (size_t i = 0; i < c->kept_len; i++) putchar(digits[(unsigned char)c->kept[i] >> 4]), putchar(digits[c->kept[i] & 15]);
  }
  if (!failure) putchar('\n');
  active--;
  /* Complete and framed, the server willing: the connection waits in the pool (still watched for the server's close). */
  if (!failure && pooled && c->server_keepalive && c->length >= 0 && c->got == c->length) {
    c->busy = IDLE;
    c->deadline = now() + POOL_S;
    return;
  }
  drop(c);
}

/* The status line and Content-Length of a complete head; -1 when it is not an HTTP/1.x response. */
static int parse_head(struct conn *c) {
  if (sscanf(c->head, "HTTP/1.%*d %d", &c->status) != 1) return -1;
  c->length = -1;
  for (char *l = strstr(c->head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
    if (!strncasecmp(l + 2, "content-length:", 15)) c->length = strtoll(l + 17, NULL, 10);
    /* iPXE keeps a connection only when the server says keep-alive in so many words (http_parse_connection). */
    if (!strncasecmp(l + 2, "connection:", 11)) c->server_keepalive = !strncasecmp(l + 13 + strspn(l + 13, " \t"), "keep-alive", 10);
  }
  return 0;
}

/* Counts body bytes, and keeps them for a request marked keep; 0 when they do not fit in KEEP_BYTES. */
static int take(struct conn *c, const char *data, size_t n) {
  c->got += (long long)n;
  if (!c->keep) return 1;
  if (c->kept_len + n > keep_max) return 0;
  memcpy(c->kept + c->kept_len, data, n);
  c->kept_len += n;
  return 1;
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

static void reopen(struct conn *c);

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
        if (!take(c, sep + 4, (size_t)(c->head + c->head_len - (sep + 4)))) return end(c, "body longer than -k");
        finish(c, 0);
        if (!c->busy) return;
        continue;
      }
    } else {
      n = recv(c->fd, scratch, sizeof scratch, c->keep ? 0 : MSG_TRUNC);
      if (n > 0) {
        if (!take(c, scratch, (size_t)n)) return end(c, "body longer than -k");
        finish(c, 0);
        if (!c->busy) return;
        continue;
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (c->reused && !c->head_len) return reopen(c);
    if (n == 0) return c->in_body ? finish(c, 1) : end(c, "connection closed before the response head");
    return end(c, strerror(errno));
  }
}

static void writable(struct conn *c) {
  int err = stage_connect_error(c->fd);
  /* On a pooled connection, a pending error is the server's reset of it while idle. */
  if (err) return c->reused ? reopen(c) : end(c, strerror(err));
  /* A request line of a few hundred bytes fits any fresh socket's (or idle pooled one's) send buffer. */
  if (send(c->fd, c->request, c->request_len, MSG_NOSIGNAL) != (ssize_t)c->request_len) return c->reused ? reopen(c) : end(c, "send");
  c->sent = 1;
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* A pooled connection the server had closed: the request goes again on a new one. */
static void reopen(struct conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->reused = c->sent = 0;
  const char *why;
  c->fd = stage_connect(&c->from, &c->to, c, &why);
  if (c->fd < 0) end(c, why);
}

/* The idle pooled connection from `from` to `to`, if there is one. */
static struct conn *pooled_conn(const struct sockaddr_in *from, const struct sockaddr_in *to) {
  for (size_t k = 0; k < cap; k++) {
    struct conn *c = conns[k];
    if (c && c->busy == IDLE && c->from.sin_addr.s_addr == from->sin_addr.s_addr && c->to.sin_addr.s_addr == to->sin_addr.s_addr && c->to.sin_port == to->sin_port) return c;
  }
  return NULL;
}

static void start(char *line) {
  long long id;
  char src[64], host[64], path[LINE_MAX_LEN], marks[2][8] = {"", ""};
  unsigned port;
  struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
  int fields = sscanf(line, "%lld %63s http://%63[0-9.]:%u%2047s %7s %7s", &id, src, host, &port, path, marks[0], marks[1]);
  int keep = 0, fresh = 0;
  for (int i = 0; i < fields - 5; i++) {
    if (!strcmp(marks[i], "keep")) keep = 1;
    else if (!strcmp(marks[i], "fresh")) fresh = 1;
    else fields = 0;
  }
  if (fields < 5 || port > 65535 || inet_pton(AF_INET, src, &from.sin_addr) != 1 || inet_pton(AF_INET, host, &to.sin_addr) != 1) {
    printf("failed -1 bad request line: %s\n", line);
    return;
  }
  if (keep && !keep_max) {
    printf("failed %lld keep without -k\n", id);
    return;
  }
  to.sin_port = htons((uint16_t)port);
  struct conn *c = pooled && !fresh ? pooled_conn(&from, &to) : NULL;
  int reused = c != NULL;
  if (!c) c = stage_slot((void ***)&conns, &cap, sizeof *c);
  int fd = c->fd;
  memset(c, 0, offsetof(struct conn, request));
  c->fd = fd, c->from = from, c->to = to, c->reused = reused, c->keep = keep;
  if (c->keep && !c->kept) c->kept = malloc(keep_max);
  c->id = id, c->t0 = now(), c->deadline = c->t0 + timeout_s, c->length = -1;
  c->request_len = (size_t)snprintf(c->request, sizeof c->request, "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: heph-bench\r\nConnection: %s\r\n\r\n", path, host, port,
                                    pooled ? "keep-alive" : "close");
  c->busy = BUSY;
  active++;
  if (reused) return writable(c);
  const char *why;
  c->fd = stage_connect(&from, &to, c, &why);
  if (c->fd < 0) {
    printf("failed %lld %s\n", id, why);
    c->busy = FREE;
    active--;
  }
}

static void ready(void *conn, uint32_t events) {
  (void)events;
  struct conn *c = conn;
  /* An idle pooled connection that turns readable has been closed by the server (or sent what nobody asked for). */
  if (c->busy == IDLE) drop(c);
  else if (!c->sent) writable(c);
  else readable(c);
}

static void expire(void *conn) {
  struct conn *c = conn;
  if (c->busy == IDLE) drop(c);
  else end(c, "timed out");
}

int main(int argc, char **argv) {
  int opt;
  while ((opt = getopt(argc, argv, "m:k:r")) != -1) {
    if (opt == 'r') {
      pooled = 1;
      continue;
    }
    if ((opt != 'm' && opt != 'k') || atoi(optarg) <= 0) return fprintf(stderr, "usage: http-client [-m TIMEOUT_MS] [-k KEEP_BYTES] [-r]\n"), 2;
    if (opt == 'm') timeout_s = atoi(optarg) / 1000.0;
    else keep_max = (size_t)atoi(optarg);
  }
  return stage_run(&(struct stage){.name = "http-client", .start = start, .ready = ready, .expire = expire, .pool = (void ***)&conns, .cap = &cap, .active = &active}, LINE_MAX_LEN + 256);
}
