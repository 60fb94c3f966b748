/*
** uv_client.c: bounded load client for uv_server (127.0.0.1 only). Keeps --conns connections
** open at once until --total connections have each sent --requests requests (SET, GET and every
** --hash-every-th a HASH), with up to --depth requests in flight per connection, and checks every
** reply against the reply it predicted. Connection slot i always uses keys "s<i>k<j>", so GETs
** are predictable across the connections that take turns in a slot.
**
** Prints "requests N errors E seconds S req_per_s R"; exits 0 only if every reply was right.
** Usage: uv_client --port N [--conns C] [--total T] [--requests R] [--depth D]
**                  [--hash-every K] [--rounds N] [--timeout-ms MS]
*/
#include <uv.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KEYS = 16, MAX_LINE = 512 };

typedef struct expect_s {
  struct expect_s *next;
  size_t len;
  char line[];
} expect_t;

typedef struct slot_s {
  uv_tcp_t tcp;
  uv_connect_t connect;
  int index;
  bool open;
  long sent, answered; /* by the current connection */
  uint64_t rng;
  char values[KEYS][MAX_LINE]; /* what the server holds for this slot's keys ("" = missing) */
  expect_t *head, *tail;
  char in[4096];
  size_t in_len;
} slot_t;

static struct {
  uv_loop_t *loop;
  struct sockaddr_in addr;
  long conns, total, requests, depth, hash_every, rounds, timeout_ms;
  long started, finished;
  uint64_t done, errors;
  slot_t *slots;
  uv_timer_t timer;
  bool timed_out;
} C = {.conns = 32, .total = 256, .requests = 200, .depth = 4, .hash_every = 10, .rounds = 500,
       .timeout_ms = 60000};

static uint64_t fnv1a(const char *s, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return h;
}

static uint64_t slow_hash(const char *s, size_t n, uint64_t rounds) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t r = 0; r < rounds; r++) h = fnv1a(s, n, h ^ r);
  return h;
}

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void start_conn(slot_t *s);
static void fill(slot_t *s);

static void fail(slot_t *s, const char *why, const char *got, size_t n) {
  if (C.errors++ < 5) fprintf(stderr, "slot %d: %s: '%.*s'\n", s->index, why, (int)n, got);
}

static void on_written(uv_write_t *req, int status) {
  if (status != 0) C.errors++;
  free(req);
}

static void expect(slot_t *s, const char *line, size_t n) {
  expect_t *e = malloc(sizeof *e + n);
  e->next = NULL;
  e->len = n;
  memcpy(e->line, line, n);
  if (s->tail) s->tail->next = e;
  else s->head = e;
  s->tail = e;
}

/* One request: the bytes to send and the reply the server must give. */
static void send_one(slot_t *s) {
  char req[MAX_LINE + 64], rep[MAX_LINE + 64];
  int rn, pn;
  long i = s->sent++;
  uint64_t r = next_rand(&s->rng);
  int key = (int)(r % KEYS);
  if (C.hash_every > 0 && i % C.hash_every == C.hash_every - 1) {
    char text[48];
    int tn = snprintf(text, sizeof text, "t%" PRIu64 "-%ld", r >> 20, i);
    rn = snprintf(req, sizeof req, "HASH %ld %s\n", C.rounds, text);
    pn = snprintf(rep, sizeof rep, "HASH %016" PRIx64, slow_hash(text, (size_t)tn, (uint64_t)C.rounds));
  } else if (i % 2 == 0) {
    int vlen = 8 + (int)((r >> 8) % 200);
    char *v = s->values[key];
    for (int k = 0; k < vlen; k++) v[k] = (char)('a' + (r >> (k % 40)) % 26);
    v[vlen] = '\0';
    rn = snprintf(req, sizeof req, "SET s%dk%d %s\n", s->index, key, v);
    pn = snprintf(rep, sizeof rep, "OK");
  } else {
    rn = snprintf(req, sizeof req, "GET s%dk%d\n", s->index, key);
    if (s->values[key][0]) pn = snprintf(rep, sizeof rep, "VALUE %s", s->values[key]);
    else pn = snprintf(rep, sizeof rep, "MISSING");
  }
  expect(s, rep, (size_t)pn);
  uv_write_t *w = malloc(sizeof *w + (size_t)rn);
  char *copy = (char *)(w + 1);
  memcpy(copy, req, (size_t)rn);
  uv_buf_t buf = uv_buf_init(copy, (unsigned)rn);
  if (uv_write(w, (uv_stream_t *)&s->tcp, &buf, 1, on_written) != 0) {
    free(w);
    C.errors++;
  }
}

static void fill(slot_t *s) {
  while (s->sent < C.requests && s->sent - s->answered < C.depth) send_one(s);
}

static void on_closed(uv_handle_t *h) {
  slot_t *s = h->data;
  while (s->head) {
    expect_t *e = s->head;
    s->head = e->next;
    free(e);
  }
  s->tail = NULL;
  s->open = false;
  C.finished++;
  if (C.started < C.total && !C.timed_out) start_conn(s);
  else if (C.finished == C.started && !uv_is_closing((uv_handle_t *)&C.timer))
    uv_close((uv_handle_t *)&C.timer, NULL);
}

static void close_slot(slot_t *s) {
  if (s->open && !uv_is_closing((uv_handle_t *)&s->tcp)) uv_close((uv_handle_t *)&s->tcp, on_closed);
}

static void on_line(slot_t *s, const char *line, size_t n) {
  expect_t *e = s->head;
  if (!e) {
    fail(s, "unexpected reply", line, n);
    return;
  }
  s->head = e->next;
  if (!s->head) s->tail = NULL;
  if (e->len != n || memcmp(e->line, line, n) != 0) fail(s, "wrong reply", line, n);
  free(e);
  s->answered++;
  C.done++;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  slot_t *s = h->data;
  (void)suggested;
  *buf = uv_buf_init(s->in + s->in_len, (unsigned)(sizeof s->in - s->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  slot_t *s = st->data;
  size_t pos = 0;
  (void)buf;
  if (nread < 0) {
    if (s->answered < C.requests) fail(s, "connection lost", "", 0);
    close_slot(s);
    return;
  }
  s->in_len += (size_t)nread;
  for (;;) {
    char *nl = memchr(s->in + pos, '\n', s->in_len - pos);
    if (!nl) break;
    on_line(s, s->in + pos, (size_t)(nl - (s->in + pos)));
    pos = (size_t)(nl - s->in) + 1;
  }
  memmove(s->in, s->in + pos, s->in_len - pos);
  s->in_len -= pos;
  if (s->in_len == sizeof s->in) {
    fail(s, "reply line too long", s->in, 40);
    close_slot(s);
    return;
  }
  if (s->answered == C.requests) close_slot(s);
  else fill(s);
}

static void on_connect(uv_connect_t *req, int status) {
  slot_t *s = req->data;
  if (status != 0) {
    fail(s, "connect", uv_strerror(status), strlen(uv_strerror(status)));
    close_slot(s);
    return;
  }
  uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, on_read);
  fill(s);
}

static void start_conn(slot_t *s) {
  C.started++;
  s->sent = s->answered = 0;
  s->in_len = 0;
  s->open = true;
  uv_tcp_init(C.loop, &s->tcp);
  s->tcp.data = s;
  s->connect.data = s;
  uv_tcp_nodelay(&s->tcp, 1);
  if (uv_tcp_connect(&s->connect, &s->tcp, (const struct sockaddr *)&C.addr, on_connect) != 0) {
    C.errors++;
    close_slot(s);
  }
}

static void on_timeout(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "timeout after %ld ms\n", C.timeout_ms);
  C.timed_out = true;
  C.errors++;
  uv_close((uv_handle_t *)&C.timer, NULL);
  for (long i = 0; i < C.conns; i++) close_slot(&C.slots[i]);
}

int main(int argc, char **argv) {
  long port = -1;
  uv_loop_t loop;
  for (int i = 1; i + 1 < argc; i += 2) {
    long v = atol(argv[i + 1]);
    if (strcmp(argv[i], "--port") == 0) port = v;
    else if (strcmp(argv[i], "--conns") == 0) C.conns = v;
    else if (strcmp(argv[i], "--total") == 0) C.total = v;
    else if (strcmp(argv[i], "--requests") == 0) C.requests = v;
    else if (strcmp(argv[i], "--depth") == 0) C.depth = v;
    else if (strcmp(argv[i], "--hash-every") == 0) C.hash_every = v;
    else if (strcmp(argv[i], "--rounds") == 0) C.rounds = v;
    else if (strcmp(argv[i], "--timeout-ms") == 0) C.timeout_ms = v;
    else port = -1, i = argc;
  }
  if (port <= 0 || port > 65535 || C.conns < 1 || C.total < 1 || C.requests < 1 || C.depth < 1) {
    fprintf(stderr, "usage: %s --port N [--conns C] [--total T] [--requests R] [--depth D] "
                    "[--hash-every K] [--rounds N] [--timeout-ms MS]\n", argv[0]);
    return 2;
  }
  if (C.conns > C.total) C.conns = C.total;
  uv_loop_init(&loop);
  C.loop = &loop;
  uv_ip4_addr("127.0.0.1", (int)port, &C.addr);
  C.slots = calloc((size_t)C.conns, sizeof *C.slots);
  uv_timer_init(&loop, &C.timer);
  uv_timer_start(&C.timer, on_timeout, (uint64_t)C.timeout_ms, 0);
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < C.conns; i++) {
    C.slots[i].index = (int)i;
    C.slots[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    start_conn(&C.slots[i]);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  uint64_t want = (uint64_t)C.total * (uint64_t)C.requests;
  if (C.done != want) C.errors++;
  printf("requests %" PRIu64 " errors %" PRIu64 " seconds %.3f req_per_s %.0f\n", C.done, C.errors,
         secs, (double)C.done / secs);
  uv_loop_close(&loop);
  free(C.slots);
  return C.errors == 0 ? 0 : 1;
}
