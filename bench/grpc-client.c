/*
 * A measuring gRPC client for bench/boot-storm: the Talos events of many machines at once in one epoll loop, each
 * machine on its own HTTP/2 connection from its own source address, so the storm's events cost the bench a little
 * C instead of a Node process compiling and running an HTTP/2 stack on the CPUs heph needs. HTTP/2 framing and
 * HPACK are libnghttp2's; this file only drives sockets and checks each call's outcome.
 *
 *   grpc-client -p PATH [-m TIMEOUT_MS]
 *
 * Requests arrive on stdin, one per line:  ID SOURCE-IPV4 IPV4:PORT HEX[,HEX...]
 * Each HEX is one protobuf message. They are sent as unary calls to PATH over one connection (HTTP/2 with prior
 * knowledge), one after another, the next when the last has ended, as Talos' event sink client publishes. A call
 * succeeds on :status 200 and grpc-status 0 (in the trailers, or in the headers of a trailers-only response).
 * Each line ends with one line on stdout, timed from its arrival to the last call's end:
 *   done ID bytes N seconds T       or       failed ID REASON
 * N counts the gRPC frames sent (5 + message bytes each). stdin's end lets the lines in flight finish; then
 * `cpu S` (the client's user + system CPU seconds) and exit 0.
 */
#define _GNU_SOURCE
#include <nghttp2/nghttp2.h>

#include "c-stage.h"

enum { LINE_MAX_LEN = 1 << 16, MAX_CALLS = 64 };

struct conn {
  int busy; /* these two first: struct slot */
  double deadline;
  int fd, session_up, out_armed, blocked;
  long long id, bytes;
  double t0;
  nghttp2_session *s;
  char authority[80];
  /* The calls' gRPC frames, back to back; call k is frames[at[k] .. at[k + 1]). */
  unsigned char *frames;
  size_t at[MAX_CALLS + 1], sent;
  int calls, call;
  /* The call in flight; nghttp2's callbacks only record, the loop decides once they have returned. */
  int32_t stream;
  int ended, http_status, grpc_status;
  uint32_t reset;
  char grpc_message[160];
  char failure[200];
};

static const char *path = NULL;
static double timeout_s = 30;
static struct conn **conns;
static size_t cap, active;
static unsigned char scratch[1 << 16];
/* The same for every session: made once in main. */
static nghttp2_session_callbacks *callbacks;

static void end(struct conn *c, const char *failure) {
  if (failure) printf("failed %lld %s\n", c->id, failure);
  else printf("done %lld bytes %lld seconds %.6f\n", c->id, c->bytes, now() - c->t0);
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  if (c->s) nghttp2_session_del(c->s);
  free(c->frames);
  c->s = NULL, c->frames = NULL, c->busy = 0;
  active--;
}

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user) {
  (void)s, (void)flags;
  struct conn *c = user;
  ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
  if (n >= 0) return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return c->blocked = 1, NGHTTP2_ERR_WOULDBLOCK;
  snprintf(c->failure, sizeof c->failure, "%s", strerror(errno));
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static ssize_t read_body(nghttp2_session *s, int32_t stream, uint8_t *buf, size_t len, uint32_t *flags, nghttp2_data_source *src, void *user) {
  (void)s, (void)stream, (void)src;
  struct conn *c = user;
  size_t left = c->at[c->call + 1] - c->sent, n = left < len ? left : len;
  memcpy(buf, c->frames + c->sent, n);
  c->sent += n;
  if (c->sent == c->at[c->call + 1]) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user) {
  (void)s, (void)flags;
  struct conn *c = user;
  if (f->hd.stream_id != c->stream) return 0;
  if (nlen == 7 && !memcmp(name, ":status", 7)) c->http_status = atoi((const char *)value);
  else if (nlen == 11 && !memcmp(name, "grpc-status", 11)) c->grpc_status = atoi((const char *)value);
  else if (nlen == 12 && !memcmp(name, "grpc-message", 12)) snprintf(c->grpc_message, sizeof c->grpc_message, "%.*s", (int)vlen, value);
  return 0;
}

static int on_close(nghttp2_session *s, int32_t stream, uint32_t code, void *user) {
  (void)s;
  struct conn *c = user;
  if (stream == c->stream) c->ended = 1, c->reset = code;
  return 0;
}

static int submit_call(struct conn *c) {
  const char *ct = "application/grpc", *te = "trailers";
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
  nghttp2_nv h[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", path), NV(":authority", c->authority), NV("content-type", ct), NV("te", te)};
#undef NV
  nghttp2_data_provider body = {.read_callback = read_body};
  c->sent = c->at[c->call], c->ended = 0, c->reset = 0, c->http_status = 0, c->grpc_status = -1, c->grpc_message[0] = 0;
  c->stream = nghttp2_submit_request(c->s, NULL, h, sizeof h / sizeof h[0], &body, NULL);
  return c->stream < 0 ? -1 : 0;
}

/* Why the call that just ended failed, or NULL when it succeeded. */
static const char *outcome(struct conn *c) {
  if (c->reset) snprintf(c->failure, sizeof c->failure, "stream reset: %s", nghttp2_http2_strerror(c->reset));
  else if (c->http_status != 200) snprintf(c->failure, sizeof c->failure, "HTTP status %d", c->http_status);
  else if (c->grpc_status < 0) snprintf(c->failure, sizeof c->failure, "no grpc-status");
  else if (c->grpc_status) snprintf(c->failure, sizeof c->failure, "grpc-status %d: %s", c->grpc_status, c->grpc_message);
  else return NULL;
  return c->failure;
}

/* After a call has ended: fails the line, ends it after its last call, or starts the next call; 1 once it has ended. */
static int settle(struct conn *c) {
  const char *why = outcome(c);
  if (why) return end(c, why), 1;
  c->bytes += (long long)(c->at[c->call + 1] - c->at[c->call]);
  if (++c->call == c->calls) return end(c, NULL), 1;
  if (submit_call(c)) return end(c, "could not submit the next call"), 1;
  return 0;
}

/* After any event: let nghttp2 write, settle ended calls, and ask epoll for what the session now waits on. */
static void pump(struct conn *c) {
  c->blocked = 0;
  for (;;) {
    if (nghttp2_session_send(c->s)) return end(c, c->failure[0] ? c->failure : "HTTP/2 send failed");
    if (!c->ended) break;
    if (settle(c)) return;
  }
  /* nghttp2 is done with a connection after a GOAWAY and its last stream. */
  if (!nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s)) return end(c, "connection closed");
  /* EPOLLOUT only while a send would block: a socket with room is always writable, and would spin the loop. */
  int out = c->blocked && nghttp2_session_want_write(c->s);
  if (out != c->out_armed) {
    struct epoll_event e = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    c->out_armed = out;
  }
}

static void connected(struct conn *c) {
  int err = stage_connect_error(c->fd);
  if (err) return end(c, strerror(err));
  if (nghttp2_session_client_new(&c->s, callbacks, c) || nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, NULL, 0) || submit_call(c)) return end(c, "could not start the HTTP/2 session");
  c->session_up = 1;
  c->out_armed = -1; /* registered for EPOLLOUT alone: pump must set the interest whatever it wants */
  pump(c);
}

static void readable(struct conn *c) {
  for (;;) {
    ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
    if (n > 0) {
      ssize_t used = nghttp2_session_mem_recv(c->s, scratch, (size_t)n);
      if (used < 0) return end(c, nghttp2_strerror((int)used));
      continue;
    }
    /* The last response may arrive with the server's FIN: settle it before calling the close a failure. */
    if (n == 0) {
      if (!c->ended || !settle(c)) end(c, "connection closed");
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return end(c, strerror(errno));
  }
  pump(c);
}

static int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  ch |= 0x20;
  return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The messages of `hex` (comma-separated) as gRPC frames into c; 0 when malformed or too many. */
static int frames_of(struct conn *c, const char *hex) {
  c->frames = malloc(strlen(hex) / 2 + 5 * MAX_CALLS);
  size_t o = 0;
  for (const char *p = hex; *p;) {
    const char *comma = strchr(p, ','), *stop = comma ? comma : p + strlen(p);
    size_t n = (size_t)(stop - p) / 2;
    if (c->calls == MAX_CALLS || (stop - p) % 2 || !n) return 0;
    c->at[c->calls++] = o;
    c->frames[o] = 0;
    for (int b = 0; b < 4; b++) c->frames[o + 1 + b] = (unsigned char)(n >> (24 - 8 * b));
    o += 5;
    for (size_t i = 0; i < n; i++) {
      int hi = hex_digit(p[2 * i]), lo = hex_digit(p[2 * i + 1]);
      if (hi < 0 || lo < 0) return 0;
      c->frames[o++] = (unsigned char)(hi << 4 | lo);
    }
    p = comma ? comma + 1 : stop;
  }
  c->at[c->calls] = o;
  return c->calls > 0;
}

static void start(char *line) {
  long long id;
  char src[64], host[64];
  unsigned port;
  int hex_at = 0;
  struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
  if (sscanf(line, "%lld %63s %63[0-9.]:%u %n", &id, src, host, &port, &hex_at) != 4 || !hex_at || port > 65535 || inet_pton(AF_INET, src, &from.sin_addr) != 1 ||
      inet_pton(AF_INET, host, &to.sin_addr) != 1) {
    printf("failed -1 bad request line: %.200s\n", line);
    return;
  }
  struct conn *c = stage_slot((void ***)&conns, &cap, sizeof *c);
  memset(c, 0, sizeof *c);
  if (!frames_of(c, line + hex_at)) {
    free(c->frames), c->frames = NULL;
    printf("failed %lld messages are not comma-separated hex (at most %d)\n", id, MAX_CALLS);
    return;
  }
  to.sin_port = htons((uint16_t)port);
  c->id = id, c->t0 = now(), c->deadline = c->t0 + timeout_s;
  snprintf(c->authority, sizeof c->authority, "%s:%u", host, port);
  const char *why;
  c->fd = stage_connect(&from, &to, c, &why);
  if (c->fd < 0) {
    printf("failed %lld %s\n", id, why);
    free(c->frames), c->frames = NULL;
    return;
  }
  c->busy = 1;
  active++;
}

static void ready(void *conn, uint32_t events) {
  struct conn *c = conn;
  if (!c->session_up) connected(c);
  else if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable(c);
  else pump(c);
}

static void expire(void *conn) {
  end(conn, "timed out");
}

int main(int argc, char **argv) {
  int opt;
  while ((opt = getopt(argc, argv, "m:p:")) != -1) {
    if (opt == 'p') path = optarg;
    else if (opt == 'm' && atoi(optarg) > 0) timeout_s = atoi(optarg) / 1000.0;
    else path = NULL, optind = argc;
  }
  if (!path || path[0] != '/') return fprintf(stderr, "usage: grpc-client -p /PACKAGE.SERVICE/METHOD [-m TIMEOUT_MS]\n"), 2;
  if (nghttp2_session_callbacks_new(&callbacks)) return fprintf(stderr, "grpc-client: out of memory\n"), 1;
  nghttp2_session_callbacks_set_send_callback(callbacks, on_send);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_close);
  return stage_run(&(struct stage){.name = "grpc-client", .start = start, .ready = ready, .expire = expire, .pool = (void ***)&conns, .cap = &cap, .active = &active}, LINE_MAX_LEN + 256);
}
