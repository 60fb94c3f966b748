/* compile_me.c: input of the gcc test; prints a checksum so the run can be compared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *left, *right; int key; char name[24]; };

static struct node *insert(struct node *t, int key) {
  if (t == NULL) {
    t = calloc(1, sizeof *t);
    t->key = key;
    snprintf(t->name, sizeof t->name, "k%d", key);
    return t;
  }
  if (key < t->key) t->left = insert(t->left, key);
  else if (key > t->key) t->right = insert(t->right, key);
  return t;
}

static unsigned long walk(const struct node *t) {
  if (t == NULL) return 0;
  return walk(t->left) * 31 + (unsigned long)t->key + strlen(t->name) + walk(t->right);
}

static void drop(struct node *t) {
  if (t == NULL) return;
  drop(t->left);
  drop(t->right);
  free(t);
}

int main(void) {
  struct node *root = NULL;
  unsigned x = 12345;
  for (int i = 0; i < 100000; i++) {
    x = x * 1103515245u + 12345u;
    root = insert(root, (int)(x >> 8) % 1000000);
  }
  printf("checksum %lu\n", walk(root));
  drop(root);
  return 0;
}
