/* Joining a bus over a socket bridge from C: the child process owns a bus and listens on a Unix
 * socket; the parent joins it with mycelium_bridge_connect and publishes a TextMessage, which
 * the child receives with a pull receiver. The publish/subscribe code is the same as in-process.
 * Build: gcc -Wall -Wextra bridge.c -I rust/mycelium-ffi/include -L target/debug -lmycelium_ffi
 * Run:   ./bridge contracts.yaml */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mycelium.h"

enum { TEXT_MESSAGE = 2 };

static size_t put_str(unsigned char *out, const char *s) {
  unsigned int n = (unsigned int)strlen(s);
  memcpy(out, &n, 4);
  memcpy(out + 4, s, n);
  return 4 + n;
}

static size_t print_text(void *context, const mycelium_message *msgs, size_t count) {
  (void)context;
  for (size_t i = 0; i < count; i++) {
    unsigned int n;
    memcpy(&n, msgs[i].payload, 4);
    printf("child got TextMessage from %.*s over the bridge\n", (int)n, (const char *)msgs[i].payload + 4);
  }
  return 0;
}

static int fail(const char *who, const char *what) {
  fprintf(stderr, "%s: %s failed: %s\n", who, what, mycelium_last_error());
  return 1;
}

static mycelium_runtime_t *create(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(2); }
  static char yaml[1 << 16];
  size_t len = fread(yaml, 1, sizeof yaml, f);
  fclose(f);
  mycelium_runtime_t *rt = NULL;
  if (mycelium_runtime_create(yaml, len, &rt) != MYCELIUM_OK) exit(fail("create", "mycelium_runtime_create"));
  return rt;
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: %s contracts.yaml\n", argv[0]); return 2; }
  char address[128];
  /* $TMPDIR when set (a Nix build sandbox has no writable /tmp). */
  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || *tmp == '\0') tmp = "/tmp";
  int len = snprintf(address, sizeof address, "unix:%s/mycelium-bridge-example-%d.sock", tmp, (int)getpid());
  if (len < 0 || (size_t)len >= sizeof address) { fprintf(stderr, "TMPDIR is too long for a socket path\n"); return 2; }
  int ready[2];
  if (pipe(ready) != 0) { perror("pipe"); return 2; }

  pid_t child = fork();
  if (child == 0) { /* the service side: listen, receive one message */
    close(ready[0]);
    mycelium_runtime_t *rt = create(argv[1]);
    uint64_t listener, rx;
    if (mycelium_bridge_listen(rt, address, NULL, &listener) != MYCELIUM_OK) return fail("child", "listen");
    if (mycelium_receiver_open(rt, TEXT_MESSAGE, NULL, &rx) != MYCELIUM_OK) return fail("child", "receiver");
    if (write(ready[1], "r", 1) != 1) return 1; /* the socket exists now */
    size_t got = 0;
    mycelium_status st = mycelium_receiver_recv(rt, rx, 10000, 1, print_text, NULL, &got);
    mycelium_runtime_destroy(rt);
    return st == MYCELIUM_OK && got == 1 ? 0 : fail("child", "receive");
  }

  /* the joining side */
  close(ready[1]);
  char c;
  if (read(ready[0], &c, 1) != 1) { fprintf(stderr, "the child did not start listening\n"); return 1; }
  mycelium_runtime_t *rt = create(argv[1]);
  uint64_t bridge;
  if (mycelium_bridge_connect(rt, address, NULL, &bridge) != MYCELIUM_OK) return fail("parent", "connect");
  if (mycelium_bridge_wait(rt, bridge, 1, 10000) != MYCELIUM_OK) return fail("parent", "wait");
  unsigned char payload[128];
  size_t n = put_str(payload, "c-parent");
  n += put_str(payload + n, "hello across processes");
  memset(payload + n, 0, 8);
  n += 8;
  /* The child's subscription reaches us asynchronously after the handshake; until it does,
   * nothing is forwarded, so publish until the child reports success. */
  int status = 0;
  for (int i = 0; i < 200; i++) {
    if (mycelium_publish(rt, TEXT_MESSAGE, payload, n) != MYCELIUM_OK) return fail("parent", "publish");
    if (waitpid(child, &status, WNOHANG) == child) break;
    usleep(20000);
  }
  if (waitpid(child, &status, WNOHANG) == 0) { kill(child, SIGKILL); waitpid(child, &status, 0); }
  mycelium_bridge_close(rt, bridge);
  mycelium_runtime_destroy(rt);
  printf("parent: child exited with %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
