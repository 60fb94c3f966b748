/*
** uv_conns_test.c: 500 concurrent connections on 127.0.0.1 (plain program so it runs under TSan).
** The server (main thread) gives each connection a heap from the pool and answers each request
** "<n>\n" on the threadpool (hak_uv_queue_work): the worker frees the request copy the loop made
** (a remote free to the loop thread's cache), builds the reply from PIECES blocks of work->heap
** (the worker is a guest of the connection heap) and frees them; the loop writes the reply and
** frees it (guest blocks go back into the guest cache under its lock: not remote frees). A client thread with its own loop (plain malloc) opens all 500 connections at once,
** sends REQUESTS requests on each in turn and checks every reply byte for byte.
** Exact: every reply right; per connection heap at close, remote_free_count == REQUESTS (the
** request copies) and nothing live; the drains ran on the loop thread; every heap reset and
** back in the pool or destroyed, as many heaps taken from the pool or created as connections.
*/
#include <hakmem_uv.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

enum { CONNS = 500, REQUESTS = 4, PIECES = 4, DEADLINE_MS = 60000 };

/* The reply to request n: "<n>:" then 4 pieces of 16 + (n + k) % 48 letters, then "\n". */
static size_t piece_len(unsigned n, int k) { return 16 + (n + (unsigned)k) % 48; }

static size_t expected_reply(unsigned n, char *out) {
  size_t at = (size_t)sprintf(out, "%u:", n);
  for (int k = 0; k < PIECES; k++) {
    memset(out + at, 'a' + (int)((n + (unsigned)k) % 26), piece_len(n, k));
    at += piece_len(n, k);
  }
  out[at++] = '\n';
  return at;
}

/* ** {======================================================================
** server: loop thread
** ======================================================================= */

typedef struct sconn_s {
  uv_tcp_t tcp;
  hak_heap_t *heap;
  char line[32];
  size_t line_len;
  bool busy, closed;
} sconn_t;

typedef struct job_s {
  hak_uv_work_t work;
  sconn_t *conn;
  char *request; /* allocated on the loop, freed by the worker */
  char *reply;   /* allocated by the worker, freed by the loop after the write */
  size_t reply_len;
  uv_write_t write;
} job_t;

static struct {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int port;
  uv_thread_t thread;
  uv_async_t client_done;
  uv_timer_t deadline;
  unsigned closed, bad_remote, bad_live, requests;
  bool timed_out;
} S;

static void server_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void work_cb(uv_work_t *req) {
  job_t *j = hak_uv_work_of(req)->data;
  hak_heap_t *heap = hak_uv_work_of(req)->heap;
  unsigned n = (unsigned)strtoul(j->request, NULL, 10);
  char *piece[PIECES];
  size_t at;
  hak_free(j->request); /* made on the loop thread: a remote free */
  j->request = NULL;
  for (int k = 0; k < PIECES; k++) {
    piece[k] = hak_heap_malloc(heap, piece_len(n, k));
    if (piece[k]) memset(piece[k], 'a' + (int)((n + (unsigned)k) % 26), piece_len(n, k));
  }
  j->reply = hak_heap_malloc(heap, 16 + PIECES * 64);
  if (j->reply) {
    at = (size_t)sprintf(j->reply, "%u:", n);
    for (int k = 0; k < PIECES; k++) {
      if (piece[k]) memcpy(j->reply + at, piece[k], piece_len(n, k));
      at += piece_len(n, k);
    }
    j->reply[at++] = '\n';
    j->reply_len = at;
  }
  for (int k = 0; k < PIECES; k++) hak_free(piece[k]);
}

static void on_server_closed(uv_handle_t *h) {
  sconn_t *c = (sconn_t *)h;
  hak_heap_stats_t st;
  hak_heap_get_stats(c->heap, &st);
  if (st.remote_free_count != (uint64_t)REQUESTS) {
    if (S.bad_remote++ == 0)
      fprintf(stderr, "remote_free_count %llu\n", (unsigned long long)st.remote_free_count);
  }
  if (st.live_blocks != 0) S.bad_live++;
  S.closed++;
  free(c);
}

static void on_reply_written(uv_write_t *w, int status) {
  job_t *j = w->data;
  (void)status;
  hak_free(j->reply); /* made by the worker (a guest): back into the guest cache */
  free(j);
}

static void after_work(uv_work_t *req, int status) {
  job_t *j = hak_uv_work_of(req)->data;
  sconn_t *c = j->conn;
  uv_buf_t b = uv_buf_init(j->reply, (unsigned)j->reply_len);
  (void)status;
  c->busy = false;
  S.requests++;
  j->write.data = j;
  if (!j->reply || uv_write(&j->write, (uv_stream_t *)&c->tcp, &b, 1, on_reply_written) != 0) {
    hak_free(j->reply);
    free(j);
  }
}

static void server_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  hak_uv_alloc_cb_shared(h, suggested, buf);
}

static void server_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  sconn_t *c = (sconn_t *)s;
  if (nread < 0) {
    hak_uv_close((uv_handle_t *)s, on_server_closed);
    return;
  }
  for (ssize_t i = 0; i < nread; i++) {
    if (c->line_len + 1 >= sizeof c->line) continue;
    c->line[c->line_len++] = buf->base[i];
    if (buf->base[i] != '\n') continue;
    /* one request at a time per connection: the client waits for each reply */
    job_t *j = calloc(1, sizeof *j);
    j->conn = c;
    j->request = hak_heap_malloc(c->heap, c->line_len + 1);
    memcpy(j->request, c->line, c->line_len);
    j->request[c->line_len] = 0;
    c->line_len = 0;
    j->work.data = j;
    c->busy = true;
    if (hak_uv_queue_work(S.loop, (uv_handle_t *)s, &j->work, work_cb, after_work) != 0) {
      hak_free(j->request);
      free(j);
    }
  }
}

static void on_connection(uv_stream_t *server, int status) {
  sconn_t *c;
  if (status < 0) return;
  c = calloc(1, sizeof *c);
  uv_tcp_init(S.loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) abort();
  c->heap = hak_uv_conn_heap((uv_handle_t *)&c->tcp);
  if (!c->heap) abort();
  uv_read_start((uv_stream_t *)&c->tcp, server_alloc, server_on_read);
}

static void on_client_done(uv_async_t *a) {
  (void)a;
  uv_close((uv_handle_t *)&S.listener, NULL);
  uv_close((uv_handle_t *)&S.client_done, NULL);
  uv_close((uv_handle_t *)&S.deadline, NULL);
}

static void on_deadline(uv_timer_t *t) {
  (void)t;
  S.timed_out = true;
  abort();
}

/* }====================================================================== */

/* ** {======================================================================
** client: its own loop and thread, malloc
** ======================================================================= */

typedef struct cconn_s {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  unsigned id, sent;
  char req[32];
  char got[512];
  size_t got_len;
} cconn_t;

static struct {
  uv_loop_t loop;
  cconn_t conns[CONNS];
  unsigned replies, bad, closed;
} C;

static void client_send(cconn_t *c);

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  cconn_t *c = (cconn_t *)h;
  (void)suggested;
  *buf = uv_buf_init(c->got + c->got_len, (unsigned)(sizeof c->got - c->got_len));
}

static void client_closed(uv_handle_t *h) {
  (void)h;
  C.closed++;
}

static void client_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  cconn_t *c = (cconn_t *)s;
  char want[512];
  (void)buf;
  if (nread < 0) {
    C.bad++;
    uv_close((uv_handle_t *)s, client_closed);
    return;
  }
  c->got_len += (size_t)nread;
  if (c->got_len == 0 || c->got[c->got_len - 1] != '\n') {
    if (c->got_len == sizeof c->got) {
      C.bad++;
      uv_close((uv_handle_t *)s, client_closed);
    }
    return;
  }
  size_t n = expected_reply(c->id * REQUESTS + c->sent - 1, want);
  if (n == c->got_len && memcmp(want, c->got, n) == 0) C.replies++;
  else C.bad++;
  c->got_len = 0;
  if (c->sent < REQUESTS) client_send(c);
  else uv_close((uv_handle_t *)s, client_closed);
}

static void client_written(uv_write_t *w, int status) {
  if (status != 0) C.bad++;
  (void)w;
}

static void client_send(cconn_t *c) {
  int len = sprintf(c->req, "%u\n", c->id * REQUESTS + c->sent);
  uv_buf_t b = uv_buf_init(c->req, (unsigned)len);
  c->sent++;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, client_written) != 0) C.bad++;
}

static void client_connected(uv_connect_t *req, int status) {
  cconn_t *c = req->data;
  if (status != 0) {
    C.bad++;
    uv_close((uv_handle_t *)&c->tcp, client_closed);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_on_read);
  client_send(c);
}

static void client_main(void *arg) {
  struct sockaddr_in addr;
  (void)arg;
  uv_loop_init(&C.loop);
  uv_ip4_addr("127.0.0.1", S.port, &addr);
  for (unsigned i = 0; i < CONNS; i++) {
    cconn_t *c = &C.conns[i];
    c->id = i;
    c->connect.data = c;
    uv_tcp_init(&C.loop, &c->tcp);
    if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, client_connected) != 0)
      C.bad++;
  }
  uv_run(&C.loop, UV_RUN_DEFAULT);
  uv_loop_close(&C.loop);
  uv_async_send(&S.client_done);
}

/* }====================================================================== */

int main(void) {
  hak_heap_t *heap = hak_heap_create(&(hak_heap_config_t){.name = "conns-loop"});
  struct sockaddr_in addr;
  struct sockaddr_in bound;
  int len = sizeof bound;
  uv_thread_t client;
  hak_uv_stats_t us;

  S.loop = uv_default_loop();
  S.thread = uv_thread_self();
  CHECK(hak_uv_loop_bind(S.loop, heap) == 0);
  uv_tcp_init(S.loop, &S.listener);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  CHECK(uv_tcp_bind(&S.listener, (const struct sockaddr *)&addr, 0) == 0);
  CHECK(uv_listen((uv_stream_t *)&S.listener, CONNS, on_connection) == 0);
  uv_tcp_getsockname(&S.listener, (struct sockaddr *)&bound, &len);
  S.port = ntohs(bound.sin_port);
  uv_async_init(S.loop, &S.client_done, on_client_done);
  uv_timer_init(S.loop, &S.deadline);
  uv_timer_start(&S.deadline, on_deadline, DEADLINE_MS, 0);
  uv_thread_create(&client, client_main, NULL);
  /* Runs until the client has finished and every server connection has closed (the client's
  ** closes end them: EOF). */
  uv_run(S.loop, UV_RUN_DEFAULT);
  uv_thread_join(&client);

  CHECK(C.replies == CONNS * REQUESTS);
  CHECK(C.bad == 0);
  CHECK(C.closed == CONNS);
  CHECK(S.requests == CONNS * REQUESTS);
  CHECK(S.closed == CONNS);
  CHECK(S.bad_remote == 0); /* every heap: REQUESTS remote frees (the request copies) */
  CHECK(S.bad_live == 0);
  CHECK(hak_uv_loop_stats(S.loop, &us) == 0);
  CHECK(us.conn_heaps_attached == 0);
  CHECK(us.conn_heaps_reset == CONNS);
  CHECK(us.conn_heaps_created + us.conn_heaps_reused == CONNS);
  CHECK(us.drains > 0);
  CHECK(uv_thread_equal(&us.drain_thread, &S.thread));
  CHECK(hak_uv_loop_unbind(S.loop) == 0);
  uv_run(S.loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(S.loop) == 0);
  hak_heap_stats_t st;
  hak_heap_get_stats(heap, &st);
  CHECK(st.live_blocks == 0);
  hak_heap_destroy(heap);
  return finish();
}
