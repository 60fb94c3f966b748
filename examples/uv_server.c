/*
** uv_server.c: example libuv TCP service on 127.0.0.1 using hakmem_uv. Each connection gets its
** own heap (three lines: hak_uv_conn_heap, hak_uv_alloc_cb, hak_uv_close); the shared store
** lives in the loop's heap; HASH runs on the threadpool with blocks handed both ways.
**
** Line protocol, one reply line per request, replies in request order:
**   SET <key> <value>     -> OK
**   GET <key>             -> VALUE <value> | MISSING
**   HASH <rounds> <text>  -> HASH <16 hex digits>   (computed on a threadpool thread)
**   anything else         -> ERR <reason>
**
** Usage: uv_server [--port N] [--max-conns N] [--malloc] [--quiet]
**   --port 0 picks a free port; the first stdout line is always "listening 127.0.0.1:<port>".
**   --max-conns N stops after N connections have closed; SIGINT stops at once. Both print stats.
**   --malloc runs the same server on the C library's malloc (for benchmarks).
*/
#include <hakmem_uv.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* ** {======================================================================
** memory: hakmem heaps, or malloc for comparison
** ======================================================================= */

static bool g_hak = true;
static hak_heap_t *g_loop_heap; /* store, connection records */

static void *heap_alloc(hak_heap_t *heap, size_t n) {
  return g_hak ? hak_heap_malloc(heap, n) : malloc(n);
}
static void *heap_realloc(hak_heap_t *heap, void *p, size_t n) {
  return g_hak ? hak_heap_realloc(heap, p, n) : realloc(p, n);
}
static void mem_free(void *p) {
  if (g_hak) hak_free(p);
  else free(p);
}

static void malloc_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  char *p;
  (void)h;
  if (suggested > HAK_UV_READ_MAX) suggested = HAK_UV_READ_MAX; /* same size as hakmem's */
  p = malloc(suggested);
  *buf = uv_buf_init(p, p ? (unsigned)suggested : 0);
}

/* }====================================================================== */

/* ** {======================================================================
** the store: chained hash table in the loop's heap, loop thread only
** ======================================================================= */

typedef struct entry_s {
  struct entry_s *next;
  char *value;
  size_t value_len;
  size_t key_len;
  char key[];
} entry_t;

enum { STORE_BUCKETS = 4096 };
static entry_t *g_store[STORE_BUCKETS];

static uint64_t fnv1a(const char *s, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return h;
}

static entry_t **store_find(const char *key, size_t len) {
  entry_t **e = &g_store[fnv1a(key, len, 0xcbf29ce484222325ull) % STORE_BUCKETS];
  while (*e && ((*e)->key_len != len || memcmp((*e)->key, key, len) != 0)) e = &(*e)->next;
  return e;
}

static bool store_set(const char *key, size_t klen, const char *val, size_t vlen) {
  entry_t **slot = store_find(key, klen), *e = *slot;
  char *v = heap_alloc(g_loop_heap, vlen ? vlen : 1);
  if (!v) return false;
  memcpy(v, val, vlen);
  if (!e) {
    e = heap_alloc(g_loop_heap, sizeof *e + klen);
    if (!e) {
      mem_free(v);
      return false;
    }
    e->next = NULL;
    e->key_len = klen;
    memcpy(e->key, key, klen);
    e->value = NULL;
    *slot = e;
  }
  mem_free(e->value);
  e->value = v;
  e->value_len = vlen;
  return true;
}

static void store_clear(void) {
  for (size_t i = 0; i < STORE_BUCKETS; i++)
    while (g_store[i]) {
      entry_t *e = g_store[i];
      g_store[i] = e->next;
      mem_free(e->value);
      mem_free(e);
    }
}

/* }====================================================================== */

/* ** {======================================================================
** connections
** ======================================================================= */

typedef struct out_s {
  uv_write_t req;
  size_t len, cap;
  char data[];
} out_t;

typedef struct conn_s {
  uv_tcp_t tcp;
  hak_heap_t *heap; /* the connection's heap (NULL with --malloc) */
  char *in;         /* unparsed input, in the connection's heap */
  size_t in_len, in_cap;
  out_t *out;       /* replies not yet written */
  bool busy;        /* a HASH is on the threadpool: later lines wait, replies stay in order */
  bool closing;
  bool closed;      /* close callback ran while busy: the job's completion frees the record */
} conn_t;

typedef struct job_s {
  hak_uv_work_t work;
  conn_t *conn;
  uint64_t rounds;
  char *text; /* allocated on the loop, freed by the worker */
  size_t text_len;
  char *reply; /* allocated by the worker, written by the loop */
  size_t reply_len;
} job_t;

static struct {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_signal_t sigint;
  long max_conns;
  bool quiet, stopping;
  uint64_t accepted, closed, requests, hashes, errors;
  uint64_t reclaimed_bytes; /* still live in a connection heap at close, reclaimed by reset */
  size_t conn_held_max;     /* largest held_bytes of a connection heap at close */
} S;

static void on_closed(uv_handle_t *h);
static void process(conn_t *c);

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = true;
  if (g_hak) hak_uv_close((uv_handle_t *)&c->tcp, on_closed);
  else uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void stop(void) {
  if (S.stopping) return;
  S.stopping = true;
  uv_close((uv_handle_t *)&S.listener, NULL);
  uv_close((uv_handle_t *)&S.sigint, NULL);
}

/* With hakmem, the connection heap is reset after this (or after the last job): what is still
** live in it is reclaimed at once; under malloc it would be a leak, so free it by hand. */
static void conn_free(conn_t *c) {
  if (g_hak) {
    hak_heap_stats_t st;
    hak_heap_get_stats(c->heap, &st);
    S.reclaimed_bytes += st.live_bytes;
    if (st.held_bytes > S.conn_held_max) S.conn_held_max = st.held_bytes;
  } else {
    free(c->in);
    free(c->out);
  }
  mem_free(c);
}

static void on_closed(uv_handle_t *h) {
  conn_t *c = (conn_t *)h;
  if (c->busy) c->closed = true;
  else conn_free(c);
  S.closed++;
  if (S.max_conns > 0 && (long)S.closed >= S.max_conns) stop();
}

static void free_handle(uv_handle_t *h) { mem_free(h); }

static void on_written(uv_write_t *req, int status) {
  (void)status;
  mem_free(req->data);
}

static bool reply(conn_t *c, const char *s, size_t n) {
  out_t *o = c->out;
  if (!o || o->len + n + 1 > o->cap) {
    size_t cap = o ? o->cap * 2 : 256;
    while (cap < (o ? o->len : 0) + n + 1) cap *= 2;
    o = heap_realloc(c->heap, o, sizeof *o + cap);
    if (!o) return false;
    if (!c->out) o->len = 0;
    o->cap = cap;
    c->out = o;
  }
  memcpy(o->data + o->len, s, n);
  o->data[o->len + n] = '\n';
  o->len += n + 1;
  return true;
}

static void flush(conn_t *c) {
  out_t *o = c->out;
  uv_buf_t buf;
  if (!o || c->closing) return;
  c->out = NULL;
  o->req.data = o;
  buf = uv_buf_init(o->data, (unsigned)o->len);
  if (uv_write(&o->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0) {
    mem_free(o);
    conn_close(c);
  }
}

/* }====================================================================== */

/* ** {======================================================================
** HASH on the threadpool
** ======================================================================= */

static uint64_t slow_hash(const char *s, size_t n, uint64_t rounds) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t r = 0; r < rounds; r++) h = fnv1a(s, n, h ^ r);
  return h;
}

/* Threadpool thread. The text came from the loop thread: freeing it here is a remote free while
** this thread has no cache for the connection's heap. The reply goes the other way. */
static void hash_work(uv_work_t *req) {
  job_t *j = (job_t *)hak_uv_work_of(req);
  uint64_t h = slow_hash(j->text, j->text_len, j->rounds);
  mem_free(j->text);
  j->text = NULL;
  j->reply = heap_alloc(j->work.heap, 32);
  if (j->reply) j->reply_len = (size_t)snprintf(j->reply, 32, "HASH %016" PRIx64, h);
}

static void hash_done(uv_work_t *req, int status) {
  job_t *j = (job_t *)hak_uv_work_of(req);
  conn_t *c = j->conn;
  (void)status;
  c->busy = false;
  if (!c->closing) {
    if (j->reply) reply(c, j->reply, j->reply_len);
    else reply(c, "ERR out of memory", 17);
    process(c);
  }
  mem_free(j->text);
  mem_free(j->reply);
  mem_free(j);
  if (c->closed) conn_free(c);
}

static bool start_hash(conn_t *c, const char *args, size_t n) {
  char *end;
  uint64_t rounds = strtoull(args, &end, 10);
  job_t *j;
  if (end == args || *end != ' ' || rounds == 0 || rounds > 1000000) return false;
  end++;
  j = heap_alloc(c->heap, sizeof *j);
  if (!j) return false;
  memset(j, 0, sizeof *j);
  j->conn = c;
  j->rounds = rounds;
  j->text_len = n - (size_t)(end - args);
  j->text = heap_alloc(c->heap, j->text_len + 1);
  if (!j->text) {
    mem_free(j);
    return false;
  }
  memcpy(j->text, end, j->text_len);
  c->busy = true;
  S.hashes++;
  if ((g_hak ? hak_uv_queue_work(S.loop, (uv_handle_t *)&c->tcp, &j->work, hash_work, hash_done)
             : uv_queue_work(S.loop, &j->work.req, hash_work, hash_done)) != 0) {
    c->busy = false;
    mem_free(j->text);
    mem_free(j);
    return false;
  }
  return true;
}

/* }====================================================================== */

/* ** {======================================================================
** parsing
** ======================================================================= */

static void command(conn_t *c, char *line, size_t n) {
  char *sp;
  S.requests++;
  if (n > 4 && memcmp(line, "SET ", 4) == 0 && (sp = memchr(line + 4, ' ', n - 4)) != NULL) {
    if (store_set(line + 4, (size_t)(sp - line - 4), sp + 1, n - (size_t)(sp + 1 - line)))
      reply(c, "OK", 2);
    else
      reply(c, "ERR out of memory", 17);
  } else if (n > 4 && memcmp(line, "GET ", 4) == 0) {
    entry_t *e = *store_find(line + 4, n - 4);
    if (e) {
      char head[512];
      if (e->value_len + 6 <= sizeof head) {
        memcpy(head, "VALUE ", 6);
        memcpy(head + 6, e->value, e->value_len);
        reply(c, head, e->value_len + 6);
      } else {
        reply(c, "ERR value too long", 18);
      }
    } else {
      reply(c, "MISSING", 7);
    }
  } else if (n > 5 && memcmp(line, "HASH ", 5) == 0) {
    if (!start_hash(c, line + 5, n - 5)) reply(c, "ERR bad hash", 12);
  } else {
    S.errors++;
    reply(c, "ERR unknown command", 19);
  }
}

static void process(conn_t *c) {
  size_t pos = 0;
  while (!c->busy && pos < c->in_len) {
    char *nl = memchr(c->in + pos, '\n', c->in_len - pos);
    size_t n;
    if (!nl) break;
    n = (size_t)(nl - (c->in + pos));
    if (n > 0 && c->in[pos + n - 1] == '\r') n--;
    command(c, c->in + pos, n);
    pos = (size_t)(nl - c->in) + 1;
  }
  memmove(c->in, c->in + pos, c->in_len - pos);
  c->in_len -= pos;
  flush(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = (conn_t *)s;
  if (nread > 0) {
    if (c->in_len + (size_t)nread > c->in_cap) {
      size_t cap = c->in_cap ? c->in_cap : 1024;
      char *in;
      while (cap < c->in_len + (size_t)nread) cap *= 2;
      in = heap_realloc(c->heap, c->in, cap);
      if (!in || cap > (1u << 20)) {
        if (in) c->in = in;
        mem_free(buf->base);
        conn_close(c);
        return;
      }
      c->in = in;
      c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, buf->base, (size_t)nread);
    c->in_len += (size_t)nread;
    process(c);
  } else if (nread < 0) {
    conn_close(c);
  }
  mem_free(buf->base);
}

static void on_connection(uv_stream_t *server, int status) {
  conn_t *c;
  if (status != 0) return;
  c = heap_alloc(g_loop_heap, sizeof *c);
  if (!c) return;
  memset(c, 0, sizeof *c);
  uv_tcp_init(S.loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, free_handle);
    return;
  }
  S.accepted++;
  uv_tcp_nodelay(&c->tcp, 1);
  if (g_hak) {
    c->heap = hak_uv_conn_heap((uv_handle_t *)&c->tcp);
    if (!c->heap) {
      uv_close((uv_handle_t *)&c->tcp, free_handle);
      return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, hak_uv_alloc_cb, on_read);
  } else {
    uv_read_start((uv_stream_t *)&c->tcp, malloc_alloc_cb, on_read);
  }
}

/* }====================================================================== */

static void on_sigint(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  stop();
}

static void print_heap(const char *what, hak_heap_t *h) {
  hak_heap_stats_t st;
  hak_heap_get_stats(h, &st);
  printf("heap %-8s live %zu B in %zu blocks, held %zu B (peak %zu B), allocs %" PRIu64
         ", frees %" PRIu64 " (remote %" PRIu64 ")\n",
         what, st.live_bytes, st.live_blocks, st.held_bytes, st.peak_held_bytes, st.alloc_count,
         st.free_count, st.remote_free_count);
}

int main(int argc, char **argv) {
  int port = 7000, r;
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int namelen = sizeof bound;
  hak_heap_t *uv_heap = NULL;
  uv_loop_t loop;
  struct rusage ru;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--max-conns") == 0 && i + 1 < argc) S.max_conns = atol(argv[++i]);
    else if (strcmp(argv[i], "--malloc") == 0) g_hak = false;
    else if (strcmp(argv[i], "--quiet") == 0) S.quiet = true;
    else {
      fprintf(stderr, "usage: %s [--port N] [--max-conns N] [--malloc] [--quiet]\n", argv[0]);
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  if (g_hak) {
    hak_heap_config_t uvc = {.name = "libuv"}, lc = {.name = "loop"};
    uv_heap = hak_heap_create(&uvc);
    if (!uv_heap || hak_uv_replace_allocator(uv_heap) != 0) return 1;
    g_loop_heap = hak_heap_create(&lc);
    if (!g_loop_heap) return 1;
  }
  uv_loop_init(&loop);
  S.loop = &loop;
  if (g_hak && (r = hak_uv_loop_bind(&loop, g_loop_heap)) != 0) {
    fprintf(stderr, "bind: %s\n", uv_strerror(r));
    return 1;
  }
  uv_tcp_init(&loop, &S.listener);
  uv_ip4_addr("127.0.0.1", port, &addr);
  if ((r = uv_tcp_bind(&S.listener, (const struct sockaddr *)&addr, 0)) != 0 ||
      (r = uv_listen((uv_stream_t *)&S.listener, 511, on_connection)) != 0) {
    fprintf(stderr, "listen on 127.0.0.1:%d: %s\n", port, uv_strerror(r));
    return 1;
  }
  uv_tcp_getsockname(&S.listener, (struct sockaddr *)&bound, &namelen);
  printf("listening 127.0.0.1:%d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
  fflush(stdout);
  uv_signal_init(&loop, &S.sigint);
  uv_signal_start(&S.sigint, on_sigint, SIGINT);

  uv_run(&loop, UV_RUN_DEFAULT);

  getrusage(RUSAGE_SELF, &ru);
  printf("connections %" PRIu64 " accepted, %" PRIu64 " closed; requests %" PRIu64 " (hash %" PRIu64
         ", unknown %" PRIu64 ")\n",
         S.accepted, S.closed, S.requests, S.hashes, S.errors);
  printf("peak_rss_kb %ld\n", ru.ru_maxrss);
  printf("cpu_us %ld\n", (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec +
                             ru.ru_stime.tv_usec);
  store_clear();
  if (g_hak) {
    hak_uv_stats_t us;
    hak_uv_loop_stats(&loop, &us);
    printf("conn heaps: created %" PRIu64 ", reused %" PRIu64 ", reset %" PRIu64
           ", attached %zu, idle %zu holding %zu B; reclaimed by reset %" PRIu64 " B\n",
           us.conn_heaps_created, us.conn_heaps_reused, us.conn_heaps_reset,
           us.conn_heaps_attached, us.pool_idle, us.pool_idle_held_bytes, S.reclaimed_bytes);
    printf("conn heap held at close: max %zu B\n", S.conn_held_max);
    printf("loop drains %" PRIu64 " after %" PRIu64 " wake-ups\n", us.drains, us.wakeups);
    print_heap("loop", g_loop_heap);
    print_heap("libuv", uv_heap);
    hak_uv_loop_unbind(&loop);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  r = uv_loop_close(&loop);
  if (r != 0) fprintf(stderr, "uv_loop_close: %s\n", uv_strerror(r));
  if (g_hak) hak_heap_destroy(g_loop_heap);
  return r != 0;
}
