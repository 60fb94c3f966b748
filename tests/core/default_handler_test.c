/*
** The default error handler prints one line "hakmem: <message naming the pointer>" to stderr and
** aborts; hak_set_error_handler(NULL, NULL) restores it after a custom one.
*/
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

TestSuite(default_handler, .timeout = 30);

Test(default_handler, free_of_stack_pointer_aborts, .signal = SIGABRT) {
  int on_stack = 0;
  hak_free(&on_stack);
}

static void ignore(int err, const char *msg, void *arg) {
  (void)err;
  (void)msg;
  (void)arg;
}

Test(default_handler, setting_null_restores_the_aborting_handler, .signal = SIGABRT) {
  int on_stack = 0;
  hak_set_error_handler(ignore, NULL);
  hak_free(&on_stack);
  hak_set_error_handler(NULL, NULL);
  hak_free(&on_stack);
}

/* Run bad_free in a child with stderr on a pipe; return its wait status and what it printed. */
static int run_child(void (*bad_free)(void *), void *p, char *out, size_t cap) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    bad_free(p);
    _exit(0);
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t r;
  while (len + 1 < cap && (r = read(fds[0], out + len, cap - 1 - len)) > 0) len += (size_t)r;
  out[len] = '\0';
  close(fds[0]);
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  return status;
}

static void free_it(void *p) {
  hak_free(p);
}

static void check_one_line_report(int status, const char *out, const void *p) {
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
            "child did not die of SIGABRT (status %#x)", status);
  cr_assert_eq(strncmp(out, "hakmem: ", 8), 0, "stderr does not start with \"hakmem: \": \"%s\"",
               out);
  const char *nl = strchr(out, '\n');
  cr_assert_not_null(nl, "the report is not a terminated line: \"%s\"", out);
  cr_assert_eq(nl[1], '\0', "more than one line on stderr: \"%s\"", out);
  cr_assert(ht_msg_names_pointer(out, p), "the report does not name %p: \"%s\"", p, out);
}

Test(default_handler, stack_pointer_report_is_one_hakmem_line_then_abort) {
  char out[4096];
  int on_stack = 0;
  int status = run_child(free_it, &on_stack, out, sizeof out);
  check_one_line_report(status, out, &on_stack);
}

static void double_free(void *heap) {
  void *p = hak_heap_malloc(heap, 64);
  hak_free(p);
  hak_free(p);
}

Test(default_handler, double_free_report_is_one_hakmem_line_then_abort) {
  char out[4096];
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  int status = run_child(double_free, heap, out, sizeof out);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
            "child did not die of SIGABRT (status %#x)", status);
  cr_assert_eq(strncmp(out, "hakmem: ", 8), 0, "stderr: \"%s\"", out);
  cr_assert_not_null(strchr(out, '\n'));
  cr_assert_eq(strchr(out, '\n')[1], '\0', "more than one line: \"%s\"", out);
  hak_heap_destroy(heap);
}

Test(default_handler, interior_pointer_report_names_the_pointer) {
  char out[4096];
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  char *p = hak_heap_malloc(heap, 256);
  cr_assert_not_null(p);
  int status = run_child(free_it, p + 32, out, sizeof out);
  check_one_line_report(status, out, p + 32);
  hak_free(p);
  hak_heap_destroy(heap);
}
