/* Hostile-use tests of the Mycelium C ABI (issue #12): cycles of callbacks that unsubscribe
 * each other, enum values out of range, lengths too large to form a slice from, out-structs
 * from older and newer headers, unsubscribing a receiver while its visit runs, capacities above
 * the limit. Built with -Wall -Wextra -Werror and run plain, under valgrind and under ASan by
 * scripts/test-ffi.sh.
 *
 * A deadlock is a failure, not a hang: every wait here has a deadline, after which the
 * program reports the check as failed and leaves with _exit (the stuck threads cannot be
 * joined). Prints "N passed, N failed" last. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mycelium.h"

static int passed, failed;

#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    if (cond) {                                                               \
      passed++;                                                               \
    } else {                                                                  \
      failed++;                                                               \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                    \
      fprintf(stderr, __VA_ARGS__);                                           \
      fprintf(stderr, "\n");                                                  \
    }                                                                         \
  } while (0)

#define CHECK_STATUS(expr, want)                                              \
  do {                                                                        \
    mycelium_status got_ = (expr);                                            \
    CHECK(got_ == (want), "%s returned %s, expected %s (%s)", #expr,          \
          mycelium_status_name(got_), mycelium_status_name(want), mycelium_last_error()); \
  } while (0)

/* One message type without fields, so every publish is the empty payload. */
static const char SCHEMA[] =
    "schema: hardening\nversion: 1\nmessages:\n"
    "  Ping:\n    id: 1\n    fields: []\n"
    "  Blob:\n    id: 2\n    fields:\n      - data: bytes\n";
#define PING 1

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Waits until *v >= want or `seconds` pass; a deadlock shows up as a timeout here. */
static int wait_for(atomic_int *v, int want, double seconds) {
  double deadline = now_s() + seconds;
  while (atomic_load(v) < want) {
    if (now_s() > deadline) return 0;
    sleep_ms(1);
  }
  return 1;
}

static void give_up_if_stuck(int ok, const char *what) {
  if (!ok) {
    failed++;
    fprintf(stderr, "FAIL: %s: still blocked after the deadline (deadlock)\n", what);
    printf("%d passed, %d failed\n", passed, failed);
    fflush(NULL);
    _exit(1);
  }
}

static mycelium_runtime_t *make_runtime(void) {
  mycelium_runtime_t *rt = NULL;
  mycelium_status s = mycelium_runtime_create(SCHEMA, strlen(SCHEMA), &rt);
  if (s != MYCELIUM_OK) {
    fprintf(stderr, "runtime_create: %s\n", mycelium_last_error());
    exit(2);
  }
  return rt;
}

/* ---- 1. cycles of callbacks that unsubscribe (or destroy) each other ---- */

#define MAX_RING 4

typedef struct ring ring_t;
typedef struct {
  ring_t *ring;
  int index;
} member_t;

struct ring {
  mycelium_runtime_t *rt;
  int size;          /* members that unsubscribe the next member */
  int destroyer;     /* index of a member that destroys the runtime instead, or -1 */
  uint64_t ids[MAX_RING];
  member_t members[MAX_RING];
  atomic_int arrived;   /* members inside their callback */
  atomic_int returned;  /* members whose unsubscribe/destroy returned */
  atomic_int drops;
  atomic_int bad_status;
};

static int ring_call(void *ctx, const mycelium_message *m) {
  (void)m;
  member_t *me = ctx;
  ring_t *r = me->ring;
  int total = r->size + (r->destroyer >= 0 ? 1 : 0);
  atomic_fetch_add(&r->arrived, 1);
  /* Every member is inside its callback before any of them acts, so the waits overlap. */
  double deadline = now_s() + 5.0;
  while (atomic_load(&r->arrived) < total && now_s() < deadline) sleep_ms(1);
  mycelium_status s;
  if (me->index == r->destroyer) {
    s = mycelium_runtime_destroy(r->rt);
  } else {
    s = mycelium_unsubscribe(r->rt, r->ids[(me->index + 1) % r->size]);
  }
  /* Destroy may have taken the target first: then it is unknown or the handle is closed. */
  if (s != MYCELIUM_OK && s != MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION && s != MYCELIUM_ERR_CLOSED)
    atomic_fetch_add(&r->bad_status, 1);
  atomic_fetch_add(&r->returned, 1);
  return 0;
}

static void ring_drop(void *ctx) { atomic_fetch_add(&((member_t *)ctx)->ring->drops, 1); }

static void run_ring(int size, int with_destroyer) {
  static ring_t r;
  memset(&r, 0, sizeof r);
  r.rt = make_runtime();
  r.size = size;
  r.destroyer = with_destroyer ? size : -1;
  int total = size + (with_destroyer ? 1 : 0);
  for (int i = 0; i < total; i++) {
    r.members[i] = (member_t){&r, i};
    mycelium_closure cl = {.context = &r.members[i], .call = ring_call, .drop = ring_drop};
    CHECK_STATUS(mycelium_subscribe(r.rt, PING, NULL, &cl, &r.ids[i]), MYCELIUM_OK);
  }
  CHECK_STATUS(mycelium_publish(r.rt, PING, NULL, 0), MYCELIUM_OK);
  char what[96];
  snprintf(what, sizeof what, "ring of %d unsubscribing callbacks%s", size,
           with_destroyer ? " plus one destroying the runtime" : "");
  give_up_if_stuck(wait_for(&r.returned, total, 10.0), what);
  /* The callbacks that were not waited for finish right after; their drops follow. */
  give_up_if_stuck(wait_for(&r.drops, total, 10.0), "drops after a broken cycle");
  CHECK(atomic_load(&r.drops) == total, "%s: each drop ran once (%d of %d)", what,
        atomic_load(&r.drops), total);
  CHECK(atomic_load(&r.bad_status) == 0, "%s: unexpected status", what);
  mycelium_status s = mycelium_runtime_destroy(r.rt);
  CHECK(s == (with_destroyer ? MYCELIUM_ERR_CLOSED : MYCELIUM_OK), "%s: destroy afterwards: %s",
        what, mycelium_status_name(s));
  sleep_ms(20); /* drops ran; let the detached delivery threads exit before `r` is reused */
}

/* Outside any cycle the promise holds: unsubscribe from another thread returns only after the
 * callback has finished. */
typedef struct {
  atomic_int in_call, done;
} slow_t;

static int slow_call(void *ctx, const mycelium_message *m) {
  (void)m;
  slow_t *s = ctx;
  atomic_store(&s->in_call, 1);
  sleep_ms(150);
  atomic_store(&s->done, 1);
  return 0;
}

static void test_unsubscribe_cycles(void) {
  run_ring(2, 0);
  run_ring(3, 0);
  run_ring(2, 1);
  run_ring(3, 1);

  mycelium_runtime_t *rt = make_runtime();
  slow_t s = {0};
  mycelium_closure cl = {.context = &s, .call = slow_call};
  uint64_t id = 0;
  CHECK_STATUS(mycelium_subscribe(rt, PING, NULL, &cl, &id), MYCELIUM_OK);
  CHECK_STATUS(mycelium_publish(rt, PING, NULL, 0), MYCELIUM_OK);
  give_up_if_stuck(wait_for(&s.in_call, 1, 5.0), "slow callback start");
  CHECK_STATUS(mycelium_unsubscribe(rt, id), MYCELIUM_OK);
  CHECK(atomic_load(&s.done) == 1, "unsubscribe from a plain thread waited for the callback");
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* ---- 2. enum-like values out of range ---- */

static void test_status_names(void) {
  /* The first code past the last known status (ABI 1.3 ends at MYCELIUM_ERR_RESPONDER_FAILED). */
  int bad[] = {MYCELIUM_ERR_RESPONDER_FAILED + 1, 99, -1, INT_MAX, INT_MIN};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *name = mycelium_status_name(bad[i]);
    CHECK(name != NULL && strcmp(name, "MYCELIUM_STATUS_UNKNOWN") == 0,
          "status_name(%d) = %s", bad[i], name ? name : "(null)");
  }
  CHECK(strcmp(mycelium_status_name(MYCELIUM_ERR_RESPONDER_FAILED), "MYCELIUM_ERR_RESPONDER_FAILED") == 0,
        "the last known status still has its name");
  CHECK(strcmp(mycelium_status_name(MYCELIUM_OK), "MYCELIUM_OK") == 0, "MYCELIUM_OK's name");

  mycelium_runtime_t *rt = make_runtime();
  mycelium_subscribe_options o;
  CHECK_STATUS(mycelium_subscribe_options_init(&o), MYCELIUM_OK);
  uint32_t policies[] = {3, 99, UINT32_MAX, (uint32_t)INT_MAX + 1u};
  uint64_t id;
  for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
    o.policy = policies[i];
    CHECK_STATUS(mycelium_receiver_open(rt, PING, &o, &id), MYCELIUM_ERR_INVALID_ARGUMENT);
  }
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* ---- 3. lengths are checked before any slice is formed ---- */

static void test_huge_lengths(void) {
  mycelium_runtime_t *rt = make_runtime();
  uint8_t one = 0;
  size_t huge[] = {SIZE_MAX, SIZE_MAX / 2, (size_t)PTRDIFF_MAX + 1u};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    CHECK_STATUS(mycelium_publish(rt, PING, &one, huge[i]), MYCELIUM_ERR_TOO_LARGE);
    CHECK(strstr(mycelium_last_error(), "exceeds the maximum") != NULL, "publish: %s",
          mycelium_last_error());
    mycelium_wait_hooks hooks;
    CHECK_STATUS(mycelium_wait_hooks_init(&hooks), MYCELIUM_OK);
    CHECK_STATUS(mycelium_publish_with_hooks(rt, PING, &one, huge[i], &hooks),
                 MYCELIUM_ERR_TOO_LARGE);
    mycelium_runtime_t *other = NULL;
    CHECK_STATUS(mycelium_runtime_create(SCHEMA, huge[i], &other), MYCELIUM_ERR_TOO_LARGE);
    CHECK(other == NULL, "out untouched");
    CHECK_STATUS(mycelium_verify_schema_description(rt, SCHEMA, huge[i]), MYCELIUM_ERR_TOO_LARGE);
  }
  /* A length just above the limit with a real buffer behind it is refused the same way. */
  size_t over = MYCELIUM_MAX_TEXT_LEN + 1;
  char *text = calloc(over, 1);
  mycelium_runtime_t *other = NULL;
  CHECK_STATUS(mycelium_runtime_create(text, over, &other), MYCELIUM_ERR_TOO_LARGE);
  free(text);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* ---- 5. out-structs from older and newer headers ---- */

static void test_out_struct_sizes(void) {
  mycelium_runtime_t *rt = make_runtime();
  uint64_t id = 0;
  CHECK_STATUS(mycelium_receiver_open(rt, PING, NULL, &id), MYCELIUM_OK);
  CHECK_STATUS(mycelium_publish(rt, PING, NULL, 0), MYCELIUM_OK);

  /* Exactly the size of the struct's first ABI version (1.0 for type metrics, 1.1 for
   * subscription stats), heap-exact so that a write past it shows under valgrind and ASan. */
  const size_t metrics_v1 = 96, stats_v1 = 48;
  CHECK(sizeof(mycelium_type_metrics) >= metrics_v1, "type metrics no smaller than 1.0");
  CHECK(sizeof(mycelium_subscription_stats) >= stats_v1, "stats no smaller than 1.1");
  mycelium_type_metrics *m = malloc(metrics_v1);
  memset(m, 0, metrics_v1);
  m->struct_size = (uint32_t)metrics_v1;
  CHECK_STATUS(mycelium_type_metrics_get(rt, PING, m), MYCELIUM_OK);
  CHECK(m->published == 1 && m->struct_size == metrics_v1, "1.0 type metrics filled (%llu, %u)",
        (unsigned long long)m->published, m->struct_size);
  free(m);
  mycelium_subscription_stats *st = malloc(stats_v1);
  memset(st, 0, stats_v1);
  st->struct_size = (uint32_t)stats_v1;
  CHECK_STATUS(mycelium_subscription_stats_get(rt, id, st), MYCELIUM_OK);
  CHECK(st->offered == 1 && st->queued == 1, "1.1 stats filled");
  free(st);

  /* A newer header's larger struct: the library fills what it knows, leaves the tail alone and
   * says how much it filled. */
  _Alignas(8) unsigned char big[256];
  memset(big, 0xAB, sizeof big);
  uint32_t declared = (uint32_t)sizeof big;
  memcpy(big, &declared, sizeof declared);
  CHECK_STATUS(mycelium_type_metrics_get(rt, PING, (mycelium_type_metrics *)(void *)big),
               MYCELIUM_OK);
  uint32_t filled;
  memcpy(&filled, big, sizeof filled);
  CHECK(filled == sizeof(mycelium_type_metrics), "struct_size says what was filled: %u", filled);
  CHECK(big[sizeof(mycelium_type_metrics)] == 0xAB && big[sizeof big - 1] == 0xAB,
        "a newer header's tail is untouched");
  memset(big, 0xAB, sizeof big);
  memcpy(big, &declared, sizeof declared);
  CHECK_STATUS(mycelium_subscription_stats_get(rt, id, (mycelium_subscription_stats *)(void *)big),
               MYCELIUM_OK);
  memcpy(&filled, big, sizeof filled);
  CHECK(filled == sizeof(mycelium_subscription_stats), "stats struct_size says what was filled");
  CHECK(big[sizeof(mycelium_subscription_stats)] == 0xAB, "stats tail untouched");

  /* Smaller than any header ever had: refused, nothing written past struct_size. */
  uint32_t sizes[] = {0, 4, 64, 95};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    memset(big, 0xAB, sizeof big);
    memcpy(big, &sizes[i], sizeof sizes[i]);
    CHECK_STATUS(mycelium_type_metrics_get(rt, PING, (mycelium_type_metrics *)(void *)big),
                 MYCELIUM_ERR_INVALID_ARGUMENT);
    CHECK(strstr(mycelium_last_error(), "at least 96") != NULL, "names the size: %s",
          mycelium_last_error());
    CHECK(big[4] == 0xAB, "nothing written for a refused size");
  }
  /* Init functions never write past the caller's struct. A program built against the ABI 1.0
   * header calls the plain function (no macro then) with a 24-byte struct: heap-exact here, so
   * a write past it shows under valgrind and ASan. */
  const size_t opts_v1_0 = 24;
  mycelium_subscribe_options *old_opts = malloc(opts_v1_0);
  CHECK_STATUS((mycelium_subscribe_options_init)(old_opts), MYCELIUM_OK);
  CHECK(old_opts->struct_size == opts_v1_0 && old_opts->capacity == 0 && old_opts->label == NULL,
        "1.0 options initialised in place (struct_size %u)", old_opts->struct_size);
  CHECK_STATUS(mycelium_receiver_open(rt, PING, old_opts, &id), MYCELIUM_OK);
  free(old_opts);
  old_opts = malloc(opts_v1_0);
  CHECK_STATUS(mycelium_subscribe_options_init_sized(old_opts, opts_v1_0), MYCELIUM_OK);
  CHECK(old_opts->struct_size == opts_v1_0, "sized init writes the size it was given");
  free(old_opts);
  mycelium_subscribe_options cur;
  CHECK_STATUS(mycelium_subscribe_options_init(&cur), MYCELIUM_OK); /* the header's macro */
  CHECK(cur.struct_size == sizeof cur, "the macro passes sizeof: %u", cur.struct_size);
  CHECK_STATUS(mycelium_subscribe_options_init_sized(&cur, 23), MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(mycelium_subscribe_options_init_sized(NULL, sizeof cur), MYCELIUM_ERR_NULL_POINTER);
  mycelium_bridge_options b;
  CHECK_STATUS(mycelium_bridge_options_init(&b), MYCELIUM_OK);
  CHECK(b.struct_size == sizeof b, "bridge options via the macro");
  mycelium_wait_hooks h;
  CHECK_STATUS(mycelium_wait_hooks_init(&h), MYCELIUM_OK);
  CHECK(h.struct_size == sizeof h, "wait hooks via the macro");

  uint32_t small = 47;
  memcpy(big, &small, sizeof small);
  CHECK_STATUS(mycelium_subscription_stats_get(rt, id, (mycelium_subscription_stats *)(void *)big),
               MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* ---- 6. unsubscribing a pull receiver waits for a running visit ---- */

typedef struct {
  mycelium_runtime_t *rt;
  uint64_t id;        /* this receiver */
  uint64_t other;     /* the receiver its visit unsubscribes (0: none) */
  atomic_int *arrived; /* shared by visits that must overlap */
  int overlap;        /* how many visits must be inside before acting */
  int sleep_ms;
  atomic_int in_visit, visit_done, recv_returned;
  mycelium_status unsub_status, recv_status;
} visitor_t;

static size_t visit(void *ctx, const mycelium_message *msgs, size_t count) {
  (void)msgs;
  (void)count;
  visitor_t *v = ctx;
  atomic_store(&v->in_visit, 1);
  if (v->arrived) {
    atomic_fetch_add(v->arrived, 1);
    double deadline = now_s() + 5.0;
    while (atomic_load(v->arrived) < v->overlap && now_s() < deadline) sleep_ms(1);
  }
  if (v->sleep_ms) sleep_ms(v->sleep_ms);
  if (v->other) v->unsub_status = mycelium_unsubscribe(v->rt, v->other);
  atomic_store(&v->visit_done, 1);
  return 0;
}

static void *recv_thread(void *arg) {
  visitor_t *v = arg;
  size_t got = 0;
  v->recv_status = mycelium_receiver_recv(v->rt, v->id, 5000, 16, visit, v, &got);
  atomic_store(&v->recv_returned, 1);
  return NULL;
}

static void test_receiver_visits(void) {
  mycelium_runtime_t *rt = make_runtime();

  /* Another thread's unsubscribe waits for the visit. */
  static visitor_t a;
  memset(&a, 0, sizeof a);
  a.rt = rt;
  a.sleep_ms = 200;
  CHECK_STATUS(mycelium_receiver_open(rt, PING, NULL, &a.id), MYCELIUM_OK);
  CHECK_STATUS(mycelium_publish(rt, PING, NULL, 0), MYCELIUM_OK);
  pthread_t t;
  pthread_create(&t, NULL, recv_thread, &a);
  give_up_if_stuck(wait_for(&a.in_visit, 1, 5.0), "visit start");
  CHECK_STATUS(mycelium_unsubscribe(rt, a.id), MYCELIUM_OK);
  CHECK(atomic_load(&a.visit_done) == 1, "unsubscribe returned while the visit was running");
  pthread_join(t, NULL);
  CHECK_STATUS(a.recv_status, MYCELIUM_OK);

  /* A visit that unsubscribes its own receiver does not wait for itself. */
  static visitor_t self;
  memset(&self, 0, sizeof self);
  self.rt = rt;
  CHECK_STATUS(mycelium_receiver_open(rt, PING, NULL, &self.id), MYCELIUM_OK);
  self.other = self.id;
  CHECK_STATUS(mycelium_publish(rt, PING, NULL, 0), MYCELIUM_OK);
  pthread_create(&t, NULL, recv_thread, &self);
  give_up_if_stuck(wait_for(&self.recv_returned, 1, 10.0), "a visit unsubscribing itself");
  pthread_join(t, NULL);
  CHECK_STATUS(self.unsub_status, MYCELIUM_OK);

  /* Two visits that unsubscribe each other's receiver: a cycle, broken. */
  static visitor_t x, y;
  static atomic_int arrived;
  memset(&x, 0, sizeof x);
  memset(&y, 0, sizeof y);
  atomic_store(&arrived, 0);
  x.rt = y.rt = rt;
  x.arrived = y.arrived = &arrived;
  x.overlap = y.overlap = 2;
  CHECK_STATUS(mycelium_receiver_open(rt, PING, NULL, &x.id), MYCELIUM_OK);
  CHECK_STATUS(mycelium_receiver_open(rt, PING, NULL, &y.id), MYCELIUM_OK);
  x.other = y.id;
  y.other = x.id;
  CHECK_STATUS(mycelium_publish(rt, PING, NULL, 0), MYCELIUM_OK);
  pthread_t tx, ty;
  pthread_create(&tx, NULL, recv_thread, &x);
  pthread_create(&ty, NULL, recv_thread, &y);
  give_up_if_stuck(wait_for(&x.recv_returned, 1, 10.0), "visits unsubscribing each other (x)");
  give_up_if_stuck(wait_for(&y.recv_returned, 1, 10.0), "visits unsubscribing each other (y)");
  pthread_join(tx, NULL);
  pthread_join(ty, NULL);
  CHECK_STATUS(x.unsub_status, MYCELIUM_OK);
  CHECK_STATUS(y.unsub_status, MYCELIUM_OK);

  /* After unsubscribe, a recv that was waiting ends with CLOSED, never a visit. */
  static visitor_t late;
  memset(&late, 0, sizeof late);
  late.rt = rt;
  CHECK_STATUS(mycelium_receiver_open(rt, PING, NULL, &late.id), MYCELIUM_OK);
  pthread_create(&t, NULL, recv_thread, &late);
  sleep_ms(20);
  CHECK_STATUS(mycelium_unsubscribe(rt, late.id), MYCELIUM_OK);
  pthread_join(t, NULL);
  CHECK_STATUS(late.recv_status, MYCELIUM_ERR_CLOSED);
  CHECK(atomic_load(&late.in_visit) == 0, "no visit after unsubscribe");
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* ---- 8. capacities above the limit are refused, not clamped ---- */

static int never_call(void *ctx, const mycelium_message *m) {
  (void)ctx;
  (void)m;
  return 0;
}

static void test_capacity_limit(void) {
  mycelium_runtime_t *rt = make_runtime();
  mycelium_subscribe_options o;
  CHECK_STATUS(mycelium_subscribe_options_init(&o), MYCELIUM_OK);
  uint64_t id;
  mycelium_closure cl = {.call = never_call};
  uint32_t too_big[] = {UINT32_MAX, (1u << 20) + 1u};
  for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++) {
    o.capacity = too_big[i];
    CHECK_STATUS(mycelium_subscribe(rt, PING, &o, &cl, &id), MYCELIUM_ERR_INVALID_ARGUMENT);
    CHECK(strstr(mycelium_last_error(), "at most 1048576") != NULL, "names the limit: %s",
          mycelium_last_error());
    CHECK_STATUS(mycelium_receiver_open(rt, PING, &o, &id), MYCELIUM_ERR_INVALID_ARGUMENT);
  }
  o.capacity = 1u << 20;
  CHECK_STATUS(mycelium_receiver_open(rt, PING, &o, &id), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* ---- a bridge wait that times out says why (#17: reasons must not get lost) ---- */

static void test_bridge_wait_reason(void) {
  mycelium_runtime_t *rt = make_runtime();
  mycelium_bridge_options o;
  CHECK_STATUS(mycelium_bridge_options_init(&o), MYCELIUM_OK);
  uint64_t id = 0;
  CHECK_STATUS(mycelium_bridge_connect(rt, "unix:/nonexistent-dir/mycelium.sock", &o, &id),
               MYCELIUM_OK);
  CHECK_STATUS(mycelium_bridge_wait(rt, id, 1, 300), MYCELIUM_ERR_TIMEOUT);
  const char *why = mycelium_last_error();
  CHECK(strstr(why, "/nonexistent-dir/mycelium.sock") != NULL && strstr(why, "No such file") != NULL,
        "the timeout names the failing connection: %s", why);
  /* The bridge's counters are in the Prometheus output, labelled by its endpoint. */
  size_t need = 0;
  CHECK_STATUS(mycelium_metrics_prometheus(rt, NULL, 0, &need), MYCELIUM_ERR_BUFFER_TOO_SMALL);
  char *prom = malloc(need);
  CHECK_STATUS(mycelium_metrics_prometheus(rt, prom, need, &need), MYCELIUM_OK);
  const char *series =
      "mycelium_bridge_connect_failures_total{bridge=\"unix:/nonexistent-dir/mycelium.sock\"} ";
  const char *at = strstr(prom, series);
  CHECK(at != NULL && atoi(at + strlen(series)) >= 1, "connect failures counted in Prometheus");
  CHECK(strstr(prom, "# TYPE mycelium_bridge_reconnects_total counter") != NULL, "reconnects family");
  CHECK(strstr(prom, "mycelium_publishes_refused_total{reason=\"unknown_type\"} 0") != NULL,
        "refusal counters start at zero");
  free(prom);
  /* Refusals by the C ABI's own checks are counted too. */
  uint8_t junk = 0xFF;
  CHECK_STATUS(mycelium_publish(rt, 4242, NULL, 0), MYCELIUM_ERR_UNKNOWN_TYPE);
  CHECK_STATUS(mycelium_publish(rt, 2, &junk, 1), MYCELIUM_ERR_DECODE);
  CHECK_STATUS(mycelium_publish(rt, PING, &junk, SIZE_MAX), MYCELIUM_ERR_TOO_LARGE);
  CHECK_STATUS(mycelium_metrics_prometheus(rt, NULL, 0, &need), MYCELIUM_ERR_BUFFER_TOO_SMALL);
  prom = malloc(need);
  CHECK_STATUS(mycelium_metrics_prometheus(rt, prom, need, &need), MYCELIUM_OK);
  CHECK(strstr(prom, "mycelium_publishes_refused_total{reason=\"unknown_type\"} 1") != NULL &&
            strstr(prom, "mycelium_publishes_refused_total{reason=\"invalid\"} 1") != NULL &&
            strstr(prom, "mycelium_publishes_refused_total{reason=\"too_large\"} 1") != NULL,
        "refusals counted by reason");
  free(prom);
  CHECK_STATUS(mycelium_bridge_close(rt, id), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

int main(int argc, char **argv) {
  /* With arguments, only the named tests run (to see one fail against an older library). */
  static const struct {
    const char *name;
    void (*run)(void);
  } tests[] = {
      {"status_names", test_status_names},
      {"huge_lengths", test_huge_lengths},
      {"out_struct_sizes", test_out_struct_sizes},
      {"capacity_limit", test_capacity_limit},
      {"receiver_visits", test_receiver_visits},
      {"unsubscribe_cycles", test_unsubscribe_cycles},
      {"bridge_wait_reason", test_bridge_wait_reason},
  };
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int wanted = argc < 2;
    for (int a = 1; a < argc; a++) wanted |= strcmp(argv[a], tests[i].name) == 0;
    if (wanted) tests[i].run();
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
