/*
** uv_http.c: the HTTP/1.1 keep-alive server of //bench:uv, written from docs/LIBUV.md: a heap
** per connection from the loop's pool, reads through hak_uv_alloc_cb, and /work's response built
** on a threadpool thread from the connection's heap (hak_uv_queue_work). With --malloc the same
** server runs on the C library's malloc (LD_PRELOAD another allocator to compare it).
**
** Routes (GET; anything else is 404), each reply with Content-Length and keep-alive:
**   /1k    1 KiB body, built on the loop thread
**   /64k   64 KiB body, built on the loop thread (header and body in two blocks)
**   /work  ~1 KiB body built on a threadpool thread from 16 pieces joined, written by the loop
**
** Reads go into one loop-wide 64 KiB buffer (hak_uv_alloc_cb_shared; with --malloc a static
** one), and only a partial request is copied out; --read-alloc takes a 16 KiB block per read
** instead (hak_uv_alloc_cb, or malloc).
**
** Usage: uv_http [--port N] [--malloc] [--read-alloc]
**   --port 0 picks a free port; the first stdout line is "listening 127.0.0.1:<port>".
** SIGINT or SIGTERM stops it and prints "requests N" and, with hakmem, the pool's counters.
*/
#include <hakmem_uv.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool g_hak = true;
static bool g_read_alloc;
static hak_heap_t *g_loop_heap;

static void *mem_alloc(hak_heap_t *heap, size_t n) {
  return g_hak ? hak_heap_malloc(heap, n) : malloc(n);
}
static void *mem_realloc(hak_heap_t *heap, void *p, size_t n) {
  return g_hak ? hak_heap_realloc(heap, p, n) : realloc(p, n);
}
static void mem_free(void *p) {
  if (g_hak) hak_free(p);
  else free(p);
}

static void malloc_alloc_cb_shared(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char shared[HAK_UV_READ_SHARED];
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(shared, sizeof shared);
}

static void malloc_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  char *p;
  (void)h;
  if (suggested > HAK_UV_READ_MAX) suggested = HAK_UV_READ_MAX; /* as hak_uv_alloc_cb's */
  p = malloc(suggested);
  *buf = uv_buf_init(p, p ? (unsigned)suggested : 0);
}

typedef struct conn_s {
  uv_tcp_t tcp;
  hak_heap_t *heap; /* NULL with --malloc */
  char *in;         /* a partial request, in the connection's heap */
  size_t in_len;
  bool busy;        /* /work on the threadpool: later input waits, replies stay in order */
  bool closing, closed;
} conn_t;

typedef struct reply_s {
  uv_write_t req;
  char *body; /* a second block (/64k), or NULL */
  size_t len;
  char data[];
} reply_t;

typedef struct job_s {
  hak_uv_work_t work;
  uv_work_t plain; /* --malloc */
  conn_t *conn;
  reply_t *reply;  /* built by the worker */
} job_t;

static struct {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm;
  uint64_t requests, errors;
  char body[65536];
} S;

static void process(conn_t *c, const char *p, size_t n);

static void on_closed(uv_handle_t *h) {
  conn_t *c = (conn_t *)h;
  if (!g_hak) free(c->in);
  if (c->busy) c->closed = true; /* the job's completion frees the record */
  else mem_free(c);
}

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = true;
  if (g_hak) hak_uv_close((uv_handle_t *)&c->tcp, on_closed);
  else uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status) {
  reply_t *r = (reply_t *)req;
  conn_t *c = req->data;
  mem_free(r->body);
  mem_free(r);
  if (status < 0) conn_close(c);
}

static reply_t *reply_new(hak_heap_t *heap, size_t extra) {
  reply_t *r = mem_alloc(heap, sizeof *r + 128 + extra);
  if (r) r->body = NULL;
  return r;
}

static int header(reply_t *r, int code, size_t body_len) {
  return sprintf(r->data, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: keep-alive\r\n\r\n",
                 code, code == 200 ? "OK" : "Not Found", body_len);
}

static void send_reply(conn_t *c, reply_t *r, size_t body_len) {
  uv_buf_t bufs[2] = {uv_buf_init(r->data, (unsigned)r->len),
                      uv_buf_init(r->body, (unsigned)body_len)};
  r->req.data = c;
  S.requests++;
  if (uv_write(&r->req, (uv_stream_t *)&c->tcp, bufs, r->body ? 2 : 1, on_written) < 0) {
    mem_free(r->body);
    mem_free(r);
    conn_close(c);
  }
}

/* ---- /work: pieces joined on a threadpool thread ---- */

static void work_build(job_t *j, hak_heap_t *heap) {
  char *piece[16];
  size_t len[16], total = 0;
  for (int i = 0; i < 16; i++) {
    len[i] = 32 + (size_t)i * 4; /* 32..92 bytes, 992 in all */
    piece[i] = mem_alloc(heap, len[i]);
    if (!piece[i]) len[i] = 0;
    else memset(piece[i], 'a' + i, len[i]);
    total += len[i];
  }
  j->reply = reply_new(heap, total);
  if (j->reply) {
    size_t at = (size_t)header(j->reply, 200, total);
    for (int i = 0; i < 16; i++) {
      memcpy(j->reply->data + at, piece[i], len[i]);
      at += len[i];
    }
    j->reply->len = at;
  }
  for (int i = 0; i < 16; i++) mem_free(piece[i]);
}

static void work_cb_hak(uv_work_t *req) {
  hak_uv_work_t *w = hak_uv_work_of(req);
  work_build(w->data, w->heap);
}

static void work_cb_plain(uv_work_t *req) { work_build(req->data, NULL); }

static void after_work(job_t *j) {
  conn_t *c = j->conn;
  reply_t *r = j->reply;
  mem_free(j);
  c->busy = false;
  if (c->closed) {
    mem_free(r);
    mem_free(c);
    return;
  }
  if (!r) {
    conn_close(c);
    return;
  }
  send_reply(c, r, 0);
  if (c->in_len) { /* input that waited for the job */
    char *in = c->in;
    size_t n = c->in_len;
    c->in = NULL;
    c->in_len = 0;
    process(c, in, n);
    mem_free(in);
  }
}

static void after_work_hak(uv_work_t *req, int status) {
  (void)status;
  after_work(hak_uv_work_of(req)->data);
}

static void after_work_plain(uv_work_t *req, int status) {
  (void)status;
  after_work(req->data);
}

static bool queue_work(conn_t *c) {
  job_t *j = mem_alloc(c->heap, sizeof *j);
  if (!j) return false;
  j->conn = c;
  j->reply = NULL;
  c->busy = true;
  if (g_hak) {
    j->work.data = j;
    if (hak_uv_queue_work(S.loop, (uv_handle_t *)&c->tcp, &j->work, work_cb_hak,
                          after_work_hak) == 0)
      return true;
  } else {
    j->plain.data = j;
    if (uv_queue_work(S.loop, &j->plain, work_cb_plain, after_work_plain) == 0) return true;
  }
  c->busy = false;
  mem_free(j);
  return false;
}

/* ---- requests ---- */

/* One request "GET <path> ..." ending at the blank line; false ends the connection. */
static bool handle(conn_t *c, const char *req, size_t n) {
  const char *path = req + 4, *sp;
  reply_t *r;
  size_t body;
  if (n < 5 || memcmp(req, "GET ", 4) != 0 || !(sp = memchr(path, ' ', n - 4))) return false;
  if (sp - path == 5 && memcmp(path, "/work", 5) == 0) return queue_work(c);
  if (sp - path == 3 && memcmp(path, "/1k", 3) == 0) {
    body = 1024;
    if (!(r = reply_new(c->heap, body))) return false;
    r->len = (size_t)header(r, 200, body);
    memcpy(r->data + r->len, S.body, body);
    r->len += body;
    send_reply(c, r, 0);
  } else if (sp - path == 4 && memcmp(path, "/64k", 4) == 0) {
    body = sizeof S.body;
    if (!(r = reply_new(c->heap, 0))) return false;
    if (!(r->body = mem_alloc(c->heap, body))) {
      mem_free(r);
      return false;
    }
    memcpy(r->body, S.body, body);
    r->len = (size_t)header(r, 200, body);
    send_reply(c, r, body);
  } else {
    if (!(r = reply_new(c->heap, 0))) return false;
    r->len = (size_t)header(r, 404, 0);
    send_reply(c, r, 0);
  }
  return true;
}

/* Handles the complete requests in p[0..n); keeps the rest (a partial request, or everything
** after a /work until its reply is written) in c->in. */
static void process(conn_t *c, const char *p, size_t n) {
  while (n && !c->busy) {
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    size_t len;
    if (!end) break;
    len = (size_t)(end - p) + 4;
    if (!handle(c, p, len)) {
      S.errors++;
      conn_close(c);
      return;
    }
    p += len;
    n -= len;
  }
  if (n) {
    char *in = mem_realloc(c->heap, c->in, c->in_len + n);
    if (!in || c->in_len + n > 65536) {
      conn_close(c);
      return;
    }
    memmove(in + c->in_len, p, n);
    c->in = in;
    c->in_len += n;
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = (conn_t *)s;
  if (nread > 0) {
    if (c->in_len) { /* continue a partial request */
      char *in = c->in;
      size_t n = c->in_len;
      c->in = NULL;
      c->in_len = 0;
      process(c, in, n);
      if (!c->closing) process(c, buf->base, (size_t)nread);
      mem_free(in);
    } else {
      process(c, buf->base, (size_t)nread);
    }
  } else if (nread < 0) {
    conn_close(c);
  }
  if (g_read_alloc) mem_free(buf->base);
}

static void on_connection(uv_stream_t *server, int status) {
  conn_t *c;
  if (status < 0) return;
  c = mem_alloc(g_loop_heap, sizeof *c);
  if (!c) return;
  memset(c, 0, sizeof *c);
  uv_tcp_init(S.loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (g_hak) {
    c->heap = hak_uv_conn_heap((uv_handle_t *)&c->tcp);
    if (!c->heap) {
      conn_close(c);
      return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, g_read_alloc ? hak_uv_alloc_cb : hak_uv_alloc_cb_shared,
                  on_read);
  } else {
    uv_read_start((uv_stream_t *)&c->tcp, g_read_alloc ? malloc_alloc_cb : malloc_alloc_cb_shared,
                  on_read);
  }
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  if (uv_is_closing(h) || (g_hak && hak_uv_is_internal(h))) return;
  if (h->type == UV_TCP && h != (uv_handle_t *)&S.listener) conn_close((conn_t *)h);
  else uv_close(h, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  uv_walk(S.loop, close_walk_cb, NULL);
}

int main(int argc, char **argv) {
  int port = 8080, r;
  struct sockaddr_in addr;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--malloc") == 0) g_hak = false;
    else if (strcmp(argv[i], "--read-alloc") == 0) g_read_alloc = true;
    else {
      fprintf(stderr, "usage: uv_http [--port N] [--malloc] [--read-alloc]\n");
      return 2;
    }
  }
  memset(S.body, 'x', sizeof S.body);
  S.loop = uv_default_loop();
  if (g_hak) {
    hak_heap_config_t cfg = {.name = "http-loop"};
    g_loop_heap = hak_heap_create(&cfg);
    if (!g_loop_heap || hak_uv_loop_bind(S.loop, g_loop_heap) != 0) return 1;
  }
  uv_tcp_init(S.loop, &S.listener);
  uv_ip4_addr("127.0.0.1", port, &addr);
  if ((r = uv_tcp_bind(&S.listener, (const struct sockaddr *)&addr, 0)) != 0 ||
      (r = uv_listen((uv_stream_t *)&S.listener, 1024, on_connection)) != 0) {
    fprintf(stderr, "listen: %s\n", uv_strerror(r));
    return 1;
  }
  {
    struct sockaddr_in bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&S.listener, (struct sockaddr *)&bound, &len);
    printf("listening 127.0.0.1:%d\n", ntohs(bound.sin_port));
    fflush(stdout);
  }
  uv_signal_init(S.loop, &S.sigint);
  uv_signal_start(&S.sigint, on_signal, SIGINT);
  uv_signal_init(S.loop, &S.sigterm);
  uv_signal_start(&S.sigterm, on_signal, SIGTERM);
  uv_run(S.loop, UV_RUN_DEFAULT);
  printf("requests %" PRIu64 " errors %" PRIu64 "\n", S.requests, S.errors);
  if (g_hak) {
    hak_uv_stats_t st;
    hak_uv_loop_stats(S.loop, &st);
    printf("conn_heaps_created %" PRIu64 " reused %" PRIu64 " pool_idle %zu\n",
           st.conn_heaps_created, st.conn_heaps_reused, st.pool_idle);
    if (hak_uv_loop_unbind(S.loop) != 0) return 1;
    uv_run(S.loop, UV_RUN_DEFAULT);
  }
  if (uv_loop_close(S.loop) != 0) return 1;
  if (g_hak) hak_heap_destroy(g_loop_heap);
  return 0;
}
