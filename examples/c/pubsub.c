/* The smallest complete C program on Mycelium: create a runtime from contracts.yaml, subscribe
 * to TextMessage, publish one, wait for delivery, clean up.
 * Build: gcc -Wall -Wextra pubsub.c -I rust/mycelium-ffi/include -L target/debug -lmycelium_ffi
 * Run:   ./pubsub contracts.yaml */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mycelium.h"

enum { TEXT_MESSAGE = 2 };

/* TextMessage = sender string, body string, sent_at_ns u64 (little-endian TLV). */
static size_t put_str(unsigned char *out, const char *s) {
  unsigned int n = (unsigned int)strlen(s);
  memcpy(out, &n, 4);
  memcpy(out + 4, s, n);
  return 4 + n;
}

static int on_text(void *context, const mycelium_message *msg) {
  int *received = context;
  unsigned int n;
  memcpy(&n, msg->payload, 4);
  printf("C got TextMessage from %.*s (%zu bytes, queued %llu ns)\n", (int)n,
         (const char *)msg->payload + 4, msg->len, (unsigned long long)msg->queued_ns);
  (*received)++;
  return 0;
}

static int fail(const char *what) {
  fprintf(stderr, "%s failed: %s\n", what, mycelium_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: %s contracts.yaml\n", argv[0]); return 2; }
  FILE *f = fopen(argv[1], "rb");
  if (!f) { perror(argv[1]); return 2; }
  static char yaml[1 << 16];
  size_t yaml_len = fread(yaml, 1, sizeof yaml, f);
  fclose(f);

  mycelium_runtime_t *rt = NULL;
  if (mycelium_runtime_create(yaml, yaml_len, &rt) != MYCELIUM_OK) return fail("create");

  int received = 0;
  mycelium_closure closure = {.context = &received, .call = on_text, .call_batch = NULL, .drop = NULL};
  uint64_t sub = 0;
  if (mycelium_subscribe(rt, TEXT_MESSAGE, NULL, &closure, &sub) != MYCELIUM_OK) return fail("subscribe");

  unsigned char payload[128];
  size_t n = put_str(payload, "c-example");
  n += put_str(payload + n, "hello from C");
  unsigned long long sent_at = 0;
  memcpy(payload + n, &sent_at, 8);
  n += 8;
  if (mycelium_publish(rt, TEXT_MESSAGE, payload, n) != MYCELIUM_OK) return fail("publish");
  if (mycelium_flush(rt, 5000) != MYCELIUM_OK) return fail("flush");

  mycelium_unsubscribe(rt, sub);
  mycelium_runtime_destroy(rt);
  return received == 1 ? 0 : 1;
}
