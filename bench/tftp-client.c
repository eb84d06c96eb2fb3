/*
 * A measuring TFTP client for bench/tftp.bench.ts: RFC 1350 reads in octet mode with the options of RFC 2347
 * (OACK), 2348 (blksize), 2349 (tsize) and 7440 (windowsize). It writes nothing to disk: it counts the bytes and
 * hashes them, and it fetches the same file K times in one process, so the timings hold no process start-up.
 *
 *   tftp-client [-b BLKSIZE] [-w WINDOWSIZE] [-s] [-n K | -S] [-G] [-m TIMEOUT_MS] [-r RETRIES] HOST PORT FILE
 *
 * With -S (storm mode, for bench/boot-storm) it fetches FILE once per request line on stdin, many at a time: see
 * storm() below.
 *
 * -b and -w ask for the option (absent: not asked); -s asks for tsize and checks the byte count against it.
 * -G sets UDP_GRO on the socket: a window the server sent as one GSO datagram arrives whole (one skb through the
 * kernel's receive path instead of one per block) and is split here at the segment size the kernel reports.
 * One line per fetch on stdout:  fetch I bytes N hash HHHHHHHH seconds S blksize B windowsize W oack 0|1 datagrams D
 * (D: the datagrams received, each window one under -G when the server sent it in one GSO send)
 * and at the end:  cpu S  (the client's own user + system CPU seconds over all fetches)
 * Exit status 0 when every fetch completed, 1 on a TFTP error or a timeout, 2 on bad usage.
 *
 * The hash (4-lane word FNV-1a) reads the bytes as 32-bit little-endian words, a tail of 1-3 bytes zero-padded into a
 * last word, and runs FNV-1a over words instead of bytes in four lanes: word i goes to lane i mod 4. The four lanes'
 * results, then the length, are FNV-1a'd into one. One chain of multiplies runs one word per multiply latency; four
 * independent chains run nearly four at once. The helper stands in for the machines' own CPUs, and with one lane
 * its hashing was ~30 % of its CPU in a storm (perf), CPU taken from heph on the same two cores. It is still easy
 * to compute in JavaScript with Math.imul.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { OP_RRQ = 1, OP_DATA = 3, OP_ACK = 4, OP_ERROR = 5, OP_OACK = 6 };
enum { BATCH = 64, MAX_BLKSIZE = 65464, MAX_PACKET = MAX_BLKSIZE + 4 };

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

struct hash {
  uint32_t lane[4];
  uint64_t len, words;
  uint8_t carry[4]; /* bytes of a word not yet complete (blocks need not be multiples of 4) */
  unsigned ncarry;
};

static void hash_init(struct hash *s) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < 4; i++) s->lane[i] = FNV_OFFSET;
}

static inline uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static inline void hash_word(struct hash *s, uint32_t w) {
  uint32_t *l = &s->lane[s->words++ & 3];
  *l = (*l ^ w) * FNV_PRIME;
}

/* GCC's vectoriser turns the four lanes into one SSE2 chain of shifts and adds (x86-64 has no packed 32-bit multiply
 * before SSE4.1) that ran slower than one scalar lane. Four scalar chains hash 1000 x 831 KiB in 0.06 s of an EPYC
 * core, one chain in 0.22 s. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
static void hash_update(struct hash *s, const uint8_t *p, size_t n) {
  s->len += n;
  while (s->ncarry && n) {
    s->carry[s->ncarry++] = *p++, n--;
    if (s->ncarry == 4) hash_word(s, le32(s->carry)), s->ncarry = 0;
  }
  for (; n >= 4 && (s->words & 3); p += 4, n -= 4) hash_word(s, le32(p));
  uint32_t a = s->lane[0], b = s->lane[1], c = s->lane[2], d = s->lane[3];
  const size_t quads = n / 16;
  for (size_t q = 0; q < quads; q++, p += 16) {
    a = (a ^ le32(p)) * FNV_PRIME, b = (b ^ le32(p + 4)) * FNV_PRIME;
    c = (c ^ le32(p + 8)) * FNV_PRIME, d = (d ^ le32(p + 12)) * FNV_PRIME;
  }
  s->lane[0] = a, s->lane[1] = b, s->lane[2] = c, s->lane[3] = d, s->words += 4 * quads, n -= 16 * quads;
  for (; n >= 4; p += 4, n -= 4) hash_word(s, le32(p));
  while (n--) s->carry[s->ncarry++] = *p++;
}

static uint32_t hash_final(struct hash *s) {
  if (s->ncarry) {
    memset(s->carry + s->ncarry, 0, 4 - s->ncarry);
    hash_word(s, le32(s->carry)), s->ncarry = 0;
  }
  uint32_t h = FNV_OFFSET;
  for (int i = 0; i < 4; i++) h = (h ^ s->lane[i]) * FNV_PRIME;
  h = (h ^ (uint32_t)s->len) * FNV_PRIME;
  return (h ^ (uint32_t)(s->len >> 32)) * FNV_PRIME;
}

struct opts {
  unsigned blksize, windowsize; /* 0: not asked */
  int tsize;
  unsigned count, timeout_ms, retries;
  const char *file;
  struct sockaddr_storage server;
  socklen_t server_len;
  int gro; /* -G: take a window the server sent as one GSO datagram in one piece (UDP_GRO) */
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static size_t put_str(uint8_t *p, const char *s) {
  size_t n = strlen(s) + 1;
  memcpy(p, s, n);
  return n;
}

static size_t build_rrq(const struct opts *o, uint8_t *p) {
  char num[16];
  size_t n = 2;
  p[0] = 0, p[1] = OP_RRQ;
  n += put_str(p + n, o->file);
  n += put_str(p + n, "octet");
  if (o->blksize) snprintf(num, sizeof num, "%u", o->blksize), n += put_str(p + n, "blksize"), n += put_str(p + n, num);
  if (o->tsize) n += put_str(p + n, "tsize"), n += put_str(p + n, "0");
  if (o->windowsize) snprintf(num, sizeof num, "%u", o->windowsize), n += put_str(p + n, "windowsize"), n += put_str(p + n, num);
  return n;
}

struct fetch {
  int fd;
  const struct opts *o;
  uint8_t rrq[1024];
  size_t rrq_len;
  unsigned blksize, windowsize; /* in force: 512 and 1 unless the OACK said otherwise */
  int oack;
  long long tsize; /* -1: unknown */
  struct hash hash;
  int started;       /* the server's TID is known and the socket connected to it */
  uint16_t next;     /* the block we wait for; wraps 65535 -> 0 like the server's */
  unsigned in_window;
  int reacked;       /* a gap re-ACK for the current `next` went out already */
  unsigned timeouts; /* in a row, without an answer */
  unsigned long datagrams;
};

/* Why the last fetch failed; the one-shot mode prints it to stderr, the storm mode on the fetch's line. */
static char failure[640];

static int fail(const char *what) {
  snprintf(failure, sizeof failure, "%s", what);
  return -1;
}

static int send_ack(struct fetch *f, uint16_t block) {
  uint8_t p[4] = {0, OP_ACK, (uint8_t)(block >> 8), (uint8_t)block};
  return send(f->fd, p, 4, 0) == 4 ? 0 : fail("send ACK");
}

static int send_error(struct fetch *f, uint16_t code, const char *msg) {
  uint8_t p[128] = {0, OP_ERROR, (uint8_t)(code >> 8), (uint8_t)code};
  size_t n = 4 + put_str(p + 4, msg);
  send(f->fd, p, n, 0);
  return -1;
}

/* Parses a decimal option value; -1 when it is not one. */
static long long number(const char *s) {
  if (!*s || strlen(s) > 18) return -1;
  long long v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

/* RFC 2347: the OACK may only hold options we asked for, with values no larger than asked. */
static int accept_oack(struct fetch *f, const uint8_t *p, size_t n) {
  const struct opts *o = f->o;
  const char *s = (const char *)p + 2, *end = (const char *)p + n;
  if (n < 2 || p[n - 1] != 0) return send_error(f, 8, "malformed OACK"), fail("malformed OACK");
  while (s < end) {
    const char *name = s, *value = s + strlen(s) + 1;
    if (value >= end) return send_error(f, 8, "malformed OACK"), fail("malformed OACK");
    long long v = number(value);
    s = value + strlen(value) + 1;
    if (!strcasecmp(name, "blksize") && o->blksize && v >= 8 && v <= o->blksize) f->blksize = (unsigned)v;
    else if (!strcasecmp(name, "windowsize") && o->windowsize && v >= 1 && v <= o->windowsize) f->windowsize = (unsigned)v;
    else if (!strcasecmp(name, "tsize") && o->tsize && v >= 0) f->tsize = v;
    else return send_error(f, 8, "unexpected option"), fail("OACK with an option not asked for or out of range");
  }
  f->oack = 1;
  return 0;
}

static int report_error(const uint8_t *p, size_t n) {
  char msg[600];
  unsigned code = n >= 4 ? (unsigned)(p[2] << 8 | p[3]) : 0;
  snprintf(msg, sizeof msg, "server ERROR %u: %.*s", code, n > 4 ? (int)strnlen((const char *)p + 4, n - 4) : 0, n > 4 ? (const char *)p + 4 : "");
  return fail(msg);
}

enum { MORE = 1, DONE = 0, FAILED = -1 };

/* With UDP_GRO the kernel may hand over several equal datagrams as one, and says their size in a control message. */
static size_t gro_segment(struct msghdr *m) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
      int size;
      memcpy(&size, CMSG_DATA(c), sizeof size);
      return size > 0 ? (size_t)size : 0;
    }
  }
  return 0;
}

/* Opens the fetch's socket (bound to `source` when given) and sends the RRQ. */
static int fetch_start(struct fetch *f, const struct opts *o, const struct sockaddr_in *source, int flags) {
  f->o = o;
  f->rrq_len = build_rrq(o, f->rrq);
  f->blksize = 512, f->windowsize = 1, f->oack = 0, f->tsize = -1;
  f->started = 0, f->next = 1, f->in_window = 0, f->reacked = 0, f->timeouts = 0, f->datagrams = 0;
  hash_init(&f->hash);
  f->fd = socket(o->server.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | flags, 0);
  if (f->fd < 0) return fail("socket");
  int rcvbuf = 4 << 20;
  setsockopt(f->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  int on = 1;
  if (o->gro && setsockopt(f->fd, IPPROTO_UDP, UDP_GRO, &on, sizeof on)) return fail("UDP_GRO");
  if (source && bind(f->fd, (const struct sockaddr *)source, sizeof *source)) return fail("bind to the source address");
  if (sendto(f->fd, f->rrq, f->rrq_len, 0, (const struct sockaddr *)&o->server, o->server_len) != (ssize_t)f->rrq_len) return fail("send RRQ");
  return 0;
}

/* No answer within the timeout: before the first answer the RRQ may have been lost; after it, our last ACK. */
static int fetch_timeout(struct fetch *f) {
  if (++f->timeouts > f->o->retries) return fail("timed out");
  if (!f->started) {
    if (sendto(f->fd, f->rrq, f->rrq_len, 0, (const struct sockaddr *)&f->o->server, f->o->server_len) != (ssize_t)f->rrq_len) return fail("send RRQ");
  } else if (send_ack(f, (uint16_t)(f->next - 1))) return FAILED;
  f->in_window = 0;
  return MORE;
}

/*
 * One batch of datagrams. Blocks that arrive in order are hashed and counted; the last block of each window is
 * ACKed (every block in lock-step). A block out of order means one was lost or reordered: RFC 7440 says to ACK the
 * last block received in order, and the server restarts its window after it. That re-ACK goes out once per position
 * (a broken window delivers its remaining blocks out of order too), while a block we already have (the server
 * timed out and resent) is re-ACKed once per batch.
 */
static int fetch_input(struct fetch *f, uint8_t (*bufs)[MAX_PACKET], struct mmsghdr *msgs, struct sockaddr_storage *from, int got) {
  const struct opts *o = f->o;
  f->timeouts = 0;
  int ack_due = 0, reack = 0;
  for (int i = 0; i < got; i++) {
    size_t seg = gro_segment(&msgs[i].msg_hdr), total = msgs[i].msg_len;
    if (!seg) seg = total;
    f->datagrams++;
    for (size_t off = 0; off < total; off += seg) {
      const uint8_t *p = bufs[i] + off;
      size_t n = total - off < seg ? total - off : seg;
      if (n < 4) continue; /* too short to be anything we expect: dropped */
      if (!f->started) {
        /* The first answer fixes the server's TID; connecting drops datagrams from anyone else. */
        const struct sockaddr_in *a = (const struct sockaddr_in *)&from[i], *s = (const struct sockaddr_in *)&o->server;
        if (o->server.ss_family == AF_INET && a->sin_addr.s_addr != s->sin_addr.s_addr) continue;
        if (connect(f->fd, (const struct sockaddr *)&from[i], msgs[i].msg_hdr.msg_namelen)) return fail("connect");
        f->started = 1;
        if (p[1] == OP_OACK && p[0] == 0) {
          if (accept_oack(f, p, n)) return FAILED;
          if (send_ack(f, 0)) return FAILED;
          continue;
        }
        /* Anything else must be DATA 1 (the server ignored our options) or an ERROR, handled below. */
      }
      uint16_t op = (uint16_t)(p[0] << 8 | p[1]), block = (uint16_t)(p[2] << 8 | p[3]);
      if (op == OP_ERROR) return report_error(p, n);
      if (op == OP_OACK) continue; /* a repeated OACK: our ACK 0 was lost; the timeout resends it */
      if (op != OP_DATA) return send_error(f, 4, "unexpected opcode"), fail("unexpected opcode");
      size_t len = n - 4;
      if (len > f->blksize) return send_error(f, 4, "block too large"), fail("DATA larger than blksize");
      if (block != f->next) {
        uint16_t ahead = (uint16_t)(block - f->next);
        if (ahead < 32768) { /* a gap: blocks lost or reordered */
          if (!f->reacked) reack = 1, f->reacked = 1;
        } else {
          reack = 1; /* old data again: the server did not get our ACK */
        }
        continue;
      }
      hash_update(&f->hash, p + 4, len);
      f->next++, f->reacked = 0;
      if (len < f->blksize) {
        /* The last block. A lost final ACK leaves the server to time out; nothing here depends on it. */
        if (send_ack(f, block)) return FAILED;
        if (f->tsize >= 0 && (unsigned long long)f->tsize != f->hash.len) return fail("byte count differs from tsize");
        return DONE;
      }
      if (++f->in_window == f->windowsize) ack_due = 1, f->in_window = 0;
    }
  }
  if (ack_due || reack) {
    if (send_ack(f, (uint16_t)(f->next - 1))) return FAILED;
    if (reack) f->in_window = 0; /* the server starts a fresh window after the block we ACKed */
  }
  return MORE;
}

struct batch {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_storage from[BATCH];
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(sizeof(int))];
  } control[BATCH];
  uint8_t (*bufs)[MAX_PACKET];
};

static void batch_reset(struct batch *b) {
  for (int i = 0; i < BATCH; i++) {
    b->iov[i].iov_base = b->bufs[i], b->iov[i].iov_len = MAX_PACKET;
    memset(&b->msgs[i].msg_hdr, 0, sizeof b->msgs[i].msg_hdr);
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i], b->msgs[i].msg_hdr.msg_iovlen = 1;
    b->msgs[i].msg_hdr.msg_name = &b->from[i], b->msgs[i].msg_hdr.msg_namelen = sizeof b->from[i];
    b->msgs[i].msg_hdr.msg_control = b->control[i].bytes, b->msgs[i].msg_hdr.msg_controllen = sizeof b->control[i];
  }
}

/* One fetch on a blocking socket: the receive loop takes up to BATCH datagrams per recvmmsg. */
static int fetch_once(const struct opts *o, struct batch *b, struct fetch *f) {
  if (fetch_start(f, o, NULL, 0)) return FAILED;
  struct timeval tv = {o->timeout_ms / 1000, (o->timeout_ms % 1000) * 1000};
  if (setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)) return fail("SO_RCVTIMEO");
  for (;;) {
    batch_reset(b);
    /* Blocks for the first datagram only (up to SO_RCVTIMEO), then takes whatever else is queued: one syscall. */
    int got = recvmmsg(f->fd, b->msgs, BATCH, MSG_WAITFORONE, NULL);
    int r;
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) r = fetch_timeout(f);
    else if (got < 0) return fail("recvmmsg");
    else r = fetch_input(f, b->bufs, b->msgs, b->from, got);
    if (r != MORE) return r;
  }
}

/*
 * Storm mode (-S): many fetches at once, one non-blocking socket each, all in one epoll set, so that a boot-storm
 * bench's client stays a small fraction of a CPU however many machines fetch. Requests arrive on stdin, one per
 * line: `ID SOURCE-IPV4` (the file and options are the command line's); each socket binds to its source address,
 * like a machine of its own. Each fetch ends with one line on stdout, timed from its RRQ to its last block:
 *   done ID bytes N hash HHHHHHHH seconds S       or       failed ID REASON
 * stdin's end lets the fetches in flight finish; then the `cpu` line, and exit 0.
 */
struct slot {
  struct fetch f;
  long long id;
  double t0, deadline;
  int busy;
};

static int storm(const struct opts *o, struct batch *b) {
  struct rlimit nofile;
  if (!getrlimit(RLIMIT_NOFILE, &nofile)) nofile.rlim_cur = nofile.rlim_max, setrlimit(RLIMIT_NOFILE, &nofile);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return fail("epoll_create1"), 1;
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  struct epoll_event in = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &in)) return fail("epoll_ctl stdin"), 1;
  size_t cap = 64, active = 0;
  struct slot **slots = calloc(cap, sizeof *slots);
  char line[256];
  size_t have = 0;
  int eof = 0;
  const double timeout = o->timeout_ms / 1000.0;
  double next_scan = now() + 0.05;
  while (!eof || active) {
    struct epoll_event ev[64];
    int n = epoll_wait(ep, ev, 64, 50);
    if (n < 0 && errno != EINTR) return fail("epoll_wait"), 1;
    for (int i = 0; i < n; i++) {
      struct slot *s = ev[i].data.ptr;
      if (s) {
        if (!s->busy) continue; /* ended earlier in this same batch of events */
        batch_reset(b);
        int got = recvmmsg(s->f.fd, b->msgs, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) continue;
        int r = fetch_input(&s->f, b->bufs, b->msgs, b->from, got);
        if (r == MORE) {
          s->deadline = now() + timeout;
          continue;
        }
        if (r == DONE) printf("done %lld bytes %llu hash %08x seconds %.6f\n", s->id, (unsigned long long)s->f.hash.len, hash_final(&s->f.hash), now() - s->t0);
        else printf("failed %lld %s\n", s->id, failure);
        close(s->f.fd), s->busy = 0, active--;
        continue;
      }
      /* stdin: new requests */
      for (;;) {
        ssize_t r = read(0, line + have, sizeof line - 1 - have);
        if (r == 0) eof = 1, epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
        if (r <= 0) break;
        have += (size_t)r;
        char *nl;
        while ((nl = memchr(line, '\n', have))) {
          *nl = 0;
          long long id;
          char ip[64];
          struct sockaddr_in src = {.sin_family = AF_INET};
          if (sscanf(line, "%lld %63s", &id, ip) != 2 || inet_pton(AF_INET, ip, &src.sin_addr) != 1) {
            printf("failed -1 bad request line: %s\n", line);
          } else {
            size_t k = 0;
            while (k < cap && slots[k] && slots[k]->busy) k++;
            if (k == cap) slots = realloc(slots, 2 * cap * sizeof *slots), memset(slots + cap, 0, cap * sizeof *slots), cap *= 2;
            if (!slots[k]) slots[k] = calloc(1, sizeof **slots);
            struct slot *s = slots[k];
            s->id = id, s->t0 = now(), s->deadline = s->t0 + timeout;
            struct epoll_event e = {.events = EPOLLIN, .data.ptr = s};
            if (fetch_start(&s->f, o, &src, SOCK_NONBLOCK) || (epoll_ctl(ep, EPOLL_CTL_ADD, s->f.fd, &e) && fail("epoll_ctl"))) {
              printf("failed %lld %s\n", id, failure);
              if (s->f.fd >= 0) close(s->f.fd);
            } else s->busy = 1, active++;
          }
          have -= (size_t)(nl + 1 - line);
          memmove(line, nl + 1, have);
        }
        if (have == sizeof line - 1) return fail("request line too long"), 1;
      }
    }
    double t = now();
    if (t >= next_scan) {
      next_scan = t + 0.05;
      for (size_t k = 0; k < cap; k++) {
        struct slot *s = slots[k];
        if (!s || !s->busy || t < s->deadline) continue;
        if (fetch_timeout(&s->f) == MORE) s->deadline = t + timeout;
        else printf("failed %lld %s\n", s->id, failure), close(s->f.fd), s->busy = 0, active--;
      }
    }
    fflush(stdout);
  }
  return 0;
}

static int resolve(const char *host, const char *port, struct opts *o) {
  struct addrinfo hints = {0}, *res;
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(host, port, &hints, &res)) return -1;
  memcpy(&o->server, res->ai_addr, res->ai_addrlen);
  o->server_len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static unsigned arg(const char *s, unsigned lo, unsigned hi) {
  long long v = number(s);
  if (v < lo || v > hi) {
    fprintf(stderr, "tftp-client: %s: out of range %u..%u\n", s, lo, hi);
    exit(2);
  }
  return (unsigned)v;
}

int main(int argc, char **argv) {
  struct opts o = {0, 0, 0, 1, 1000, 5, NULL, {0}, 0, 0};
  int c;
  int storm_mode = 0;
  while ((c = getopt(argc, argv, "b:w:sn:m:r:SG")) != -1) {
    switch (c) {
      case 'b': o.blksize = arg(optarg, 8, MAX_BLKSIZE); break;
      case 'w': o.windowsize = arg(optarg, 1, 65535); break;
      case 's': o.tsize = 1; break;
      case 'n': o.count = arg(optarg, 1, 1000000); break;
      case 'm': o.timeout_ms = arg(optarg, 1, 600000); break;
      case 'r': o.retries = arg(optarg, 0, 1000); break;
      case 'S': storm_mode = 1; break;
      case 'G': o.gro = 1; break;
      default: return 2;
    }
  }
  if (argc - optind != 3 || strlen(argv[optind + 2]) > 512) {
    fprintf(stderr, "usage: tftp-client [-b BLKSIZE] [-w WINDOWSIZE] [-s] [-n K | -S] [-G] [-m TIMEOUT_MS] [-r RETRIES] HOST PORT FILE\n");
    return 2;
  }
  if (resolve(argv[optind], argv[optind + 1], &o)) return fprintf(stderr, "tftp-client: cannot resolve the server\n"), 2;
  o.file = argv[optind + 2];
  struct batch b;
  b.bufs = malloc(sizeof *b.bufs * BATCH);
  if (!b.bufs) return fprintf(stderr, "tftp-client: out of memory\n"), 1;
  if (storm_mode && storm(&o, &b)) return fprintf(stderr, "tftp-client: %s\n", failure), 1;
  for (unsigned i = 0; !storm_mode && i < o.count; i++) {
    struct fetch f;
    double t0 = now();
    int r = fetch_once(&o, &b, &f);
    double t = now() - t0;
    if (f.fd >= 0) close(f.fd);
    if (r) return fprintf(stderr, "tftp-client: %s\n", failure), 1;
    printf("fetch %u bytes %llu hash %08x seconds %.6f blksize %u windowsize %u oack %d datagrams %lu\n", i, (unsigned long long)f.hash.len, hash_final(&f.hash), t,
           f.blksize, f.windowsize, f.oack, f.datagrams);
    fflush(stdout);
  }
  free(b.bufs);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("cpu %.6f\n", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  return 0;
}
