/* C-side tests of the Mycelium C ABI (mycelium.h), built with -Wall -Wextra -Werror and run
 * plain, under valgrind memcheck and under AddressSanitizer by scripts/test-ffi.sh.
 *
 * Usage: ffi_test CONTRACTS_YAML
 * Prints one line per check and a closing "N passed, N failed" line. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mycelium.h"

#define TRADE_TICK 1
#define HEARTBEAT 8

static int passed, failed;

#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    if (cond) {                                                               \
      passed++;                                                               \
    } else {                                                                  \
      failed++;                                                               \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                             \
      printf(__VA_ARGS__);                                                    \
      printf(" (last error: %s)\n", mycelium_last_error());                   \
    }                                                                         \
  } while (0)

#define CHECK_STATUS(expr, want)                                              \
  do {                                                                        \
    mycelium_status got_ = (expr);                                            \
    CHECK(got_ == (want), "%s returned %s, expected %s", #expr,               \
          mycelium_status_name(got_), mycelium_status_name(want));            \
  } while (0)

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(2); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) { perror("fread"); exit(2); }
  fclose(f);
  buf[n] = 0;
  *len = (size_t)n;
  return buf;
}

/* TradeTick = symbol string, price f64, size u32, ts_ns u64, side u8 (see contracts.yaml). */
static size_t encode_tick(uint8_t *out, const char *symbol, double price, uint32_t size,
                          uint64_t ts_ns, uint8_t side) {
  size_t o = 0;
  uint32_t n = (uint32_t)strlen(symbol);
  memcpy(out + o, &n, 4); o += 4; /* little-endian hosts only, as the test machines are */
  memcpy(out + o, symbol, n); o += n;
  memcpy(out + o, &price, 8); o += 8;
  memcpy(out + o, &size, 4); o += 4;
  memcpy(out + o, &ts_ns, 8); o += 8;
  out[o++] = side;
  return o;
}

static uint32_t tick_size(const mycelium_message *m) {
  uint32_t n, size;
  memcpy(&n, m->payload, 4);
  memcpy(&size, m->payload + 4 + n + 8, 4);
  return size;
}
static uint64_t tick_ts(const mycelium_message *m) {
  uint32_t n;
  uint64_t ts;
  memcpy(&n, m->payload, 4);
  memcpy(&ts, m->payload + 4 + n + 12, 8);
  return ts;
}

/* ---- a counting subscriber that checks per-publisher order ---- */
#define MAX_PUBLISHERS 8
typedef struct {
  atomic_long calls;
  atomic_int drops;
  atomic_int in_call;
  atomic_int order_errors;
  uint64_t next_seq[MAX_PUBLISHERS];
  int sleep_us;
} counter_t;

static int count_call(void *ctx, const mycelium_message *m) {
  counter_t *c = ctx;
  atomic_store(&c->in_call, 1);
  if (m->type_id == TRADE_TICK) {
    uint32_t pub = tick_size(m);
    uint64_t seq = tick_ts(m);
    if (pub < MAX_PUBLISHERS) {
      if (seq != c->next_seq[pub]) atomic_fetch_add(&c->order_errors, 1);
      c->next_seq[pub] = seq + 1;
    }
  }
  if (c->sleep_us) usleep((useconds_t)c->sleep_us);
  atomic_fetch_add(&c->calls, 1);
  atomic_store(&c->in_call, 0);
  return 0;
}
static void count_drop(void *ctx) { atomic_fetch_add(&((counter_t *)ctx)->drops, 1); }

static mycelium_closure counter_closure(counter_t *c) {
  mycelium_closure cl = {.context = c, .call = count_call, .call_batch = NULL, .drop = count_drop};
  return cl;
}

typedef struct {
  mycelium_runtime_t *rt;
  uint32_t index;
  uint64_t count;
  int errors;
} publisher_t;

static void *publish_thread(void *arg) {
  publisher_t *p = arg;
  uint8_t buf[64];
  for (uint64_t i = 0; i < p->count; i++) {
    size_t n = encode_tick(buf, "ACME", 1.5, p->index, i, 1);
    if (mycelium_publish(p->rt, TRADE_TICK, buf, n) != MYCELIUM_OK) p->errors++;
  }
  return NULL;
}

static void test_version_and_errors(const char *yaml, size_t yaml_len) {
  CHECK(mycelium_abi_version() == MYCELIUM_ABI_VERSION, "abi version %08" PRIx32, mycelium_abi_version());
  CHECK(strlen(mycelium_version_string()) > 0, "version string");

  mycelium_runtime_t *rt = NULL;
  const char *bad = "schema: x\nversion: 1\nmessages:\n  A:\n    id: 1\n    fields:\n      - x: f65\n";
  CHECK_STATUS(mycelium_runtime_create(bad, strlen(bad), &rt), MYCELIUM_ERR_SCHEMA);
  CHECK(rt == NULL, "out untouched on error");
  CHECK(strstr(mycelium_last_error(), "f65") != NULL, "schema error names the bad type: %s", mycelium_last_error());
  CHECK_STATUS(mycelium_runtime_create(NULL, 0, &rt), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, NULL), MYCELIUM_ERR_NULL_POINTER);
  char small[4];
  size_t full = mycelium_last_error_copy(small, sizeof small);
  CHECK(full > 3 && small[3] == 0, "last_error_copy truncates and terminates");

  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &rt), MYCELIUM_OK);
  char digest[65];
  CHECK_STATUS(mycelium_schema_digest(rt, digest, sizeof digest), MYCELIUM_OK);
  CHECK(strlen(digest) == 64, "digest has 64 hex chars");
  CHECK_STATUS(mycelium_schema_digest(rt, digest, 10), MYCELIUM_ERR_BUFFER_TOO_SMALL);
  CHECK_STATUS(mycelium_verify_schema_digest(rt, digest), MYCELIUM_OK);
  CHECK_STATUS(mycelium_verify_schema_digest(rt, "00"), MYCELIUM_ERR_SCHEMA_MISMATCH);
  CHECK_STATUS(mycelium_verify_schema_digest(rt, NULL), MYCELIUM_ERR_NULL_POINTER);

  size_t need = 0;
  CHECK_STATUS(mycelium_schema_description(rt, NULL, 0, &need), MYCELIUM_ERR_BUFFER_TOO_SMALL);
  char *desc = malloc(need);
  CHECK_STATUS(mycelium_schema_description(rt, desc, need, &need), MYCELIUM_OK);
  CHECK_STATUS(mycelium_verify_schema_description(rt, desc, strlen(desc)), MYCELIUM_OK);
  /* change TradeTick.price from f64 to f32 and expect a precise report */
  char *p = strstr(desc, "field price f64");
  CHECK(p != NULL, "description has TradeTick.price");
  if (p) {
    memcpy(p + strlen("field price "), "f32", 3);
    CHECK_STATUS(mycelium_verify_schema_description(rt, desc, strlen(desc)), MYCELIUM_ERR_SCHEMA_MISMATCH);
    CHECK(strstr(mycelium_last_error(), "price") != NULL, "mismatch names the field: %s", mycelium_last_error());
  }
  free(desc);

  uint8_t buf[64];
  size_t n = encode_tick(buf, "ACME", 1.0, 1, 1, 0);
  CHECK_STATUS(mycelium_publish(NULL, TRADE_TICK, buf, n), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_publish(rt, 4242, buf, n), MYCELIUM_ERR_UNKNOWN_TYPE);
  CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, buf, n - 1), MYCELIUM_ERR_DECODE);
  CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, NULL, 5), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, NULL, 0), MYCELIUM_ERR_DECODE);
  CHECK_STATUS(mycelium_publish(rt, HEARTBEAT, NULL, 0), MYCELIUM_OK);
  size_t huge = 17u * 1024u * 1024u;
  uint8_t *big = calloc(huge, 1);
  CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, big, huge), MYCELIUM_ERR_TOO_LARGE);
  free(big);
  CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, buf, n), MYCELIUM_OK);

  uint64_t id = 0;
  counter_t c = {0};
  mycelium_closure cl = counter_closure(&c);
  CHECK_STATUS(mycelium_subscribe(rt, 4242, NULL, &cl, &id), MYCELIUM_ERR_UNKNOWN_TYPE);
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, NULL, NULL, &id), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, NULL, &cl, NULL), MYCELIUM_ERR_NULL_POINTER);
  mycelium_closure neither = {.context = &c, .call = NULL, .call_batch = NULL, .drop = count_drop};
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, NULL, &neither, &id), MYCELIUM_ERR_INVALID_ARGUMENT);
  mycelium_subscribe_options opts;
  CHECK_STATUS(mycelium_subscribe_options_init(&opts), MYCELIUM_OK);
  opts.policy = 7;
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, &opts, &cl, &id), MYCELIUM_ERR_INVALID_ARGUMENT);
  opts.policy = MYCELIUM_OVERFLOW_BLOCK;
  opts.spin_us = 10001;
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, &opts, &cl, &id), MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(mycelium_last_error(), "spin_us 10001") != NULL, "spin error names the field: %s",
        mycelium_last_error());
  opts.spin_us = 0;
  opts.struct_size = 4;
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, &opts, &cl, &id), MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK(atomic_load(&c.drops) == 0, "failed subscribe never calls drop");
  CHECK_STATUS(mycelium_unsubscribe(rt, 999999), MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION);
  CHECK_STATUS(mycelium_type_metrics_get(rt, TRADE_TICK, NULL), MYCELIUM_ERR_NULL_POINTER);

  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_ERR_CLOSED);
  CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, buf, n), MYCELIUM_ERR_CLOSED);
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, NULL, &cl, &id), MYCELIUM_ERR_CLOSED);
  CHECK_STATUS(mycelium_runtime_destroy(NULL), MYCELIUM_OK);
}

static void test_many_publishers(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &rt), MYCELIUM_OK);
  counter_t c = {0};
  mycelium_closure cl = counter_closure(&c);
  mycelium_subscribe_options opts;
  mycelium_subscribe_options_init(&opts);
  opts.capacity = 64; /* small queue: publishers really block */
  opts.label = "c-counter";
  uint64_t id = 0;
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, &opts, &cl, &id), MYCELIUM_OK);
  enum { THREADS = 4, EACH = 20000 };
  pthread_t th[THREADS];
  publisher_t pubs[THREADS];
  for (int i = 0; i < THREADS; i++) {
    pubs[i] = (publisher_t){.rt = rt, .index = (uint32_t)i, .count = EACH, .errors = 0};
    pthread_create(&th[i], NULL, publish_thread, &pubs[i]);
  }
  int errors = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    errors += pubs[i].errors;
  }
  CHECK(errors == 0, "%d publish errors", errors);
  CHECK_STATUS(mycelium_flush(rt, 30000), MYCELIUM_OK);
  CHECK(atomic_load(&c.calls) == THREADS * EACH, "delivered %ld of %d", atomic_load(&c.calls), THREADS * EACH);
  CHECK(atomic_load(&c.order_errors) == 0, "%d per-publisher order errors", atomic_load(&c.order_errors));

  mycelium_type_metrics m;
  memset(&m, 0, sizeof m);
  m.struct_size = sizeof m;
  CHECK_STATUS(mycelium_type_metrics_get(rt, TRADE_TICK, &m), MYCELIUM_OK);
  CHECK(m.published == THREADS * EACH && m.delivered == THREADS * EACH && m.dropped == 0,
        "metrics published=%" PRIu64 " delivered=%" PRIu64 " dropped=%" PRIu64, m.published, m.delivered, m.dropped);
  size_t need = 0;
  mycelium_metrics_json(rt, NULL, 0, &need);
  char *json = malloc(need);
  CHECK_STATUS(mycelium_metrics_json(rt, json, need, NULL), MYCELIUM_OK);
  CHECK(strstr(json, "c-counter") != NULL, "metrics JSON has the label");
  free(json);
  mycelium_metrics_prometheus(rt, NULL, 0, &need);
  char *prom = malloc(need);
  CHECK_STATUS(mycelium_metrics_prometheus(rt, prom, need, NULL), MYCELIUM_OK);
  CHECK(strstr(prom, "# TYPE") != NULL, "prometheus text has TYPE lines");
  free(prom);

  CHECK_STATUS(mycelium_unsubscribe(rt, id), MYCELIUM_OK);
  CHECK(atomic_load(&c.drops) == 1, "drop ran once at unsubscribe (%d)", atomic_load(&c.drops));
  CHECK_STATUS(mycelium_unsubscribe(rt, id), MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
  CHECK(atomic_load(&c.drops) == 1, "no second drop at destroy");
}

static void test_unsubscribe_races_delivery(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  mycelium_runtime_create(yaml, yaml_len, &rt);
  for (int round = 0; round < 20; round++) {
    counter_t c = {0};
    c.sleep_us = 50;
    mycelium_closure cl = counter_closure(&c);
    mycelium_subscribe_options opts;
    mycelium_subscribe_options_init(&opts);
    opts.policy = MYCELIUM_OVERFLOW_DROP_OLDEST;
    opts.capacity = 16;
    uint64_t id;
    CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, &opts, &cl, &id), MYCELIUM_OK);
    publisher_t p = {.rt = rt, .index = 99, .count = 2000, .errors = 0};
    pthread_t th;
    pthread_create(&th, NULL, publish_thread, &p);
    usleep(200 * (useconds_t)(round % 5));
    CHECK_STATUS(mycelium_unsubscribe(rt, id), MYCELIUM_OK);
    long after = atomic_load(&c.calls);
    int running = atomic_load(&c.in_call);
    int drops = atomic_load(&c.drops);
    pthread_join(th, NULL);
    usleep(2000);
    CHECK(running == 0, "callback still running after unsubscribe returned");
    CHECK(drops == 1, "drop called %d times when unsubscribe returned", drops);
    CHECK(atomic_load(&c.calls) == after, "callback ran after unsubscribe returned");
  }
  mycelium_runtime_destroy(rt);
}

/* ---- callbacks that call back into the library ---- */
typedef struct {
  mycelium_runtime_t *rt;
  uint64_t self_id;
  atomic_int calls;
  atomic_int drops;
  atomic_int unsub_status;
  atomic_int publish_status;
  atomic_int subscribe_status;
  atomic_int flush_status;
  uint64_t child_id;
} reentrant_t;

static int unsubscribe_self(void *ctx, const mycelium_message *m) {
  (void)m;
  reentrant_t *r = ctx;
  atomic_fetch_add(&r->calls, 1);
  atomic_store(&r->flush_status, mycelium_flush(r->rt, 10));
  atomic_store(&r->unsub_status, mycelium_unsubscribe(r->rt, r->self_id));
  return 0;
}
static void reentrant_drop(void *ctx) { atomic_fetch_add(&((reentrant_t *)ctx)->drops, 1); }

static counter_t child_counter;

static int publish_and_subscribe(void *ctx, const mycelium_message *m) {
  reentrant_t *r = ctx;
  (void)m;
  if (atomic_fetch_add(&r->calls, 1) == 0) {
    /* subscribe first, then publish: the new subscriber must see the heartbeat */
    mycelium_closure cl = counter_closure(&child_counter);
    atomic_store(&r->subscribe_status, mycelium_subscribe(r->rt, HEARTBEAT, NULL, &cl, &r->child_id));
    atomic_store(&r->publish_status, mycelium_publish(r->rt, HEARTBEAT, NULL, 0));
  }
  return 0;
}

static size_t batch_call(void *ctx, const mycelium_message *msgs, size_t count) {
  counter_t *c = ctx;
  size_t failed_here = 0;
  for (size_t i = 0; i < count; i++) {
    if (msgs[i].len == 0 && msgs[i].payload != NULL) failed_here++; /* NULL promised for len 0 */
    atomic_fetch_add(&c->calls, 1);
  }
  return failed_here;
}

static void test_reentrancy(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  mycelium_runtime_create(yaml, yaml_len, &rt);

  reentrant_t r = {.rt = rt};
  mycelium_closure cl = {.context = &r, .call = unsubscribe_self, .call_batch = NULL, .drop = reentrant_drop};
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, NULL, &cl, &r.self_id), MYCELIUM_OK);
  uint8_t buf[64];
  size_t n = encode_tick(buf, "SELF", 2.0, 7, 0, 1);
  for (int i = 0; i < 10; i++) mycelium_publish(rt, TRADE_TICK, buf, n);
  for (int i = 0; i < 200 && atomic_load(&r.drops) == 0; i++) usleep(1000);
  CHECK(atomic_load(&r.calls) == 1, "self-unsubscribing callback ran %d times", atomic_load(&r.calls));
  CHECK(atomic_load(&r.unsub_status) == MYCELIUM_OK, "unsubscribe from own callback: %s",
        mycelium_status_name((mycelium_status)atomic_load(&r.unsub_status)));
  CHECK(atomic_load(&r.flush_status) == MYCELIUM_ERR_WRONG_THREAD, "flush from own callback refused");
  CHECK(atomic_load(&r.drops) == 1, "drop ran once after the callback returned (%d)", atomic_load(&r.drops));

  /* a callback that publishes another type, seen by a batch subscriber on that type */
  counter_t hb = {0};
  mycelium_closure bcl = {.context = &hb, .call = NULL, .call_batch = batch_call, .drop = count_drop};
  uint64_t hb_id;
  CHECK_STATUS(mycelium_subscribe(rt, HEARTBEAT, NULL, &bcl, &hb_id), MYCELIUM_OK);
  reentrant_t r2 = {.rt = rt};
  mycelium_closure cl2 = {.context = &r2, .call = publish_and_subscribe, .call_batch = NULL, .drop = reentrant_drop};
  uint64_t id2;
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, NULL, &cl2, &id2), MYCELIUM_OK);
  mycelium_publish(rt, TRADE_TICK, buf, n);
  CHECK_STATUS(mycelium_flush(rt, 10000), MYCELIUM_OK);
  CHECK_STATUS(mycelium_flush(rt, 10000), MYCELIUM_OK); /* the heartbeat published inside the callback */
  CHECK(atomic_load(&r2.publish_status) == MYCELIUM_OK, "publish from a callback");
  CHECK(atomic_load(&hb.calls) == 1, "batch subscriber got %ld heartbeats", atomic_load(&hb.calls));
  CHECK(atomic_load(&r2.subscribe_status) == MYCELIUM_OK, "subscribe from a callback");
  CHECK(atomic_load(&child_counter.calls) == 1, "subscriber made in a callback got %ld heartbeats",
        atomic_load(&child_counter.calls));

  mycelium_type_metrics m;
  memset(&m, 0, sizeof m);
  m.struct_size = sizeof m;
  mycelium_type_metrics_get(rt, HEARTBEAT, &m);
  CHECK(m.handler_errors == 0, "batch callback saw NULL payload for len 0");
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
  CHECK(atomic_load(&hb.drops) == 1 && atomic_load(&r2.drops) == 1 && atomic_load(&child_counter.drops) == 1,
        "destroy dropped every closure once");
}

static void test_destroy_in_flight(const char *yaml, size_t yaml_len) {
  enum { SUBS = 6 };
  mycelium_runtime_t *rt = NULL;
  mycelium_runtime_create(yaml, yaml_len, &rt);
  counter_t cs[SUBS];
  memset(cs, 0, sizeof cs);
  for (int i = 0; i < SUBS; i++) {
    cs[i].sleep_us = 100;
    mycelium_closure cl = counter_closure(&cs[i]);
    mycelium_subscribe_options opts;
    mycelium_subscribe_options_init(&opts);
    opts.policy = MYCELIUM_OVERFLOW_DROP_OLDEST;
    uint64_t id;
    mycelium_subscribe(rt, TRADE_TICK, &opts, &cl, &id);
  }
  uint8_t buf[64];
  size_t n = encode_tick(buf, "FLY", 3.0, 9, 0, 1);
  for (int i = 0; i < 500; i++) mycelium_publish(rt, TRADE_TICK, buf, n);
  /* clone shares the bus; destroying the original must not stop the clone */
  mycelium_runtime_t *clone = NULL;
  CHECK_STATUS(mycelium_runtime_clone(rt, &clone), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
  int all_once = 1;
  for (int i = 0; i < SUBS; i++) all_once &= atomic_load(&cs[i].drops) == 1 && atomic_load(&cs[i].in_call) == 0;
  CHECK(all_once, "destroy with in-flight callbacks dropped each closure once and none runs");
  CHECK_STATUS(mycelium_publish(clone, TRADE_TICK, buf, n), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_close(clone), MYCELIUM_OK);
  CHECK_STATUS(mycelium_publish(clone, TRADE_TICK, buf, n), MYCELIUM_ERR_CLOSED);
  CHECK_STATUS(mycelium_runtime_destroy(clone), MYCELIUM_OK);
}


/* ---- options from a program built against the ABI 1.0 header ---- */

/* mycelium_subscribe_options as it was in ABI 1.0, before spin_us was appended. */
typedef struct {
  uint32_t struct_size;
  uint32_t capacity;
  uint32_t policy;
  uint32_t max_batch;
  const char *label;
} subscribe_options_1_0;

static void test_older_options(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &rt), MYCELIUM_OK);
  CHECK(sizeof(subscribe_options_1_0) < sizeof(mycelium_subscribe_options), "1.1 options grew (%zu vs %zu)",
        sizeof(subscribe_options_1_0), sizeof(mycelium_subscribe_options));
  /* Exactly the old size on the heap: reading past it shows up under valgrind and ASan. */
  subscribe_options_1_0 *old = malloc(sizeof *old);
  *old = (subscribe_options_1_0){.struct_size = sizeof *old, .capacity = 8, .label = "abi-1.0"};
  counter_t c = {0};
  mycelium_closure cl = counter_closure(&c);
  uint64_t id = 0;
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, (const mycelium_subscribe_options *)old, &cl, &id), MYCELIUM_OK);
  uint64_t rx = 0;
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, (const mycelium_subscribe_options *)old, &rx), MYCELIUM_OK);
  free(old);
  uint8_t buf[64];
  size_t n = encode_tick(buf, "OLD", 1.0, 0, 0, 0);
  CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, buf, n), MYCELIUM_OK);
  CHECK_STATUS(mycelium_flush(rt, 30000), MYCELIUM_OK);
  CHECK(atomic_load(&c.calls) == 1, "1.0-sized options subscription delivered %ld", atomic_load(&c.calls));
  size_t need = 0;
  mycelium_metrics_json(rt, NULL, 0, &need);
  char *json = malloc(need);
  CHECK_STATUS(mycelium_metrics_json(rt, json, need, NULL), MYCELIUM_OK);
  CHECK(strstr(json, "abi-1.0") && strstr(json, "\"capacity\":8"), "1.0 options fields were read: %s", json);
  free(json);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* ---- pull receivers ---- */
typedef struct {
  uint64_t seen[16];
  size_t n;
} pulled_t;

static size_t collect(void *ctx, const mycelium_message *msgs, size_t count) {
  pulled_t *p = ctx;
  for (size_t i = 0; i < count && p->n < 16; i++) p->seen[p->n++] = tick_ts(&msgs[i]);
  return 0;
}

typedef struct {
  mycelium_runtime_t *rt;
  uint64_t id;
  atomic_int status;
} blocked_recv_t;

static void *recv_forever(void *arg) {
  blocked_recv_t *b = arg;
  pulled_t p = {0};
  atomic_store(&b->status, mycelium_receiver_recv(b->rt, b->id, MYCELIUM_WAIT_FOREVER, 1, collect, &p, NULL));
  return NULL;
}

static void test_receivers(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  mycelium_runtime_create(yaml, yaml_len, &rt);
  uint64_t id = 0;
  pulled_t p = {0};
  size_t got = 99;
  CHECK_STATUS(mycelium_receiver_open(rt, 4242, NULL, &id), MYCELIUM_ERR_UNKNOWN_TYPE);
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, NULL, NULL), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, NULL, &id), MYCELIUM_OK);
  CHECK_STATUS(mycelium_receiver_recv(rt, id, 0, 8, collect, &p, &got), MYCELIUM_ERR_TIMEOUT);
  CHECK_STATUS(mycelium_receiver_recv(rt, id, 20, 8, collect, &p, &got), MYCELIUM_ERR_TIMEOUT);
  CHECK_STATUS(mycelium_receiver_recv(rt, id, 0, 8, NULL, &p, &got), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_receiver_recv(rt, id, 0, 0, collect, &p, &got), MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(mycelium_receiver_recv(rt, id + 1000, 0, 8, collect, &p, &got), MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION);
  uint8_t buf[64];
  for (uint64_t i = 0; i < 5; i++) {
    size_t n = encode_tick(buf, "PULL", 1.0, 0, i, 0);
    mycelium_publish(rt, TRADE_TICK, buf, n);
  }
  CHECK_STATUS(mycelium_receiver_recv(rt, id, 1000, 3, collect, &p, &got), MYCELIUM_OK);
  CHECK(got == 3, "first batch has 3 messages (%zu)", got);
  CHECK_STATUS(mycelium_receiver_recv(rt, id, 1000, 8, collect, &p, &got), MYCELIUM_OK);
  CHECK(got == 2 && p.n == 5, "second batch has the other 2 (%zu, total %zu)", got, p.n);
  int in_order = 1;
  for (size_t i = 0; i < p.n; i++) in_order &= p.seen[i] == i;
  CHECK(in_order, "pulled in publish order");

  /* closing from another thread wakes a receiver blocked without a time limit */
  blocked_recv_t b = {.rt = rt, .id = id};
  atomic_store(&b.status, -1);
  pthread_t th;
  pthread_create(&th, NULL, recv_forever, &b);
  usleep(20000);
  CHECK_STATUS(mycelium_unsubscribe(rt, id), MYCELIUM_OK);
  pthread_join(th, NULL);
  CHECK(atomic_load(&b.status) == MYCELIUM_ERR_CLOSED, "blocked recv ended with %s",
        mycelium_status_name((mycelium_status)atomic_load(&b.status)));
  CHECK_STATUS(mycelium_receiver_recv(rt, id, 0, 8, collect, &p, &got), MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION);
  CHECK_STATUS(mycelium_unsubscribe(rt, id), MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION);

  /* a spinning receiver: a message published from another thread arrives (woken while
     spinning or after it slept) */
  uint64_t spinner;
  mycelium_subscribe_options sopts;
  mycelium_subscribe_options_init(&sopts);
  sopts.spin_us = 200;
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, &sopts, &spinner), MYCELIUM_OK);
  for (uint64_t i = 0; i < 3; i++) {
    blocked_recv_t sb = {.rt = rt, .id = spinner};
    atomic_store(&sb.status, -1);
    pthread_t sth;
    pthread_create(&sth, NULL, recv_forever, &sb);
    if (i == 1) usleep(1000); /* past the spin: the receiver sleeps and must be woken */
    size_t sn = encode_tick(buf, "SPIN", 1.0, 0, i, 0);
    mycelium_publish(rt, TRADE_TICK, buf, sn);
    pthread_join(sth, NULL);
    CHECK(atomic_load(&sb.status) == MYCELIUM_OK, "spinning receiver got message %" PRIu64 ": %s", i,
          mycelium_status_name((mycelium_status)atomic_load(&sb.status)));
  }
  CHECK_STATUS(mycelium_unsubscribe(rt, spinner), MYCELIUM_OK);

  /* a receiver left open is closed by destroy; queued messages are counted as dropped */
  uint64_t id2;
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, NULL, &id2), MYCELIUM_OK);
  size_t n = encode_tick(buf, "LEFT", 1.0, 0, 0, 0);
  mycelium_publish(rt, TRADE_TICK, buf, n);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* ---- socket bridges: two runtimes (two buses) joined through a Unix socket ---- */
/* ---- mycelium_publish_with_hooks: hooks only around a wait for room ---- */
typedef struct {
  mycelium_runtime_t *rt;
  uint64_t id;
  atomic_int taken;
} slow_taker_t;

static void *take_later(void *arg) {
  slow_taker_t *t = arg;
  usleep(50000);
  pulled_t p = {0};
  mycelium_receiver_recv(t->rt, t->id, 10000, 1, collect, &p, NULL);
  atomic_fetch_add(&t->taken, 1);
  return NULL;
}

typedef struct {
  atomic_int before, after, taken_at_before;
  slow_taker_t *taker;
} hook_counts_t;

static void hook_before(void *ctx) {
  hook_counts_t *h = ctx;
  atomic_fetch_add(&h->before, 1);
  atomic_store(&h->taken_at_before, atomic_load(&h->taker->taken));
}

static void hook_after(void *ctx) {
  hook_counts_t *h = ctx;
  atomic_fetch_add(&h->after, 1);
}

static void test_publish_with_hooks(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &rt), MYCELIUM_OK);
  mycelium_subscribe_options opts;
  mycelium_subscribe_options_init(&opts);
  opts.capacity = 1;
  slow_taker_t taker = {.rt = rt};
  atomic_store(&taker.taken, 0);
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, &opts, &taker.id), MYCELIUM_OK);
  hook_counts_t counts = {.taker = &taker};
  atomic_store(&counts.before, 0);
  atomic_store(&counts.after, 0);
  atomic_store(&counts.taken_at_before, -1);
  mycelium_wait_hooks hooks;
  CHECK_STATUS(mycelium_wait_hooks_init(&hooks), MYCELIUM_OK);
  CHECK_STATUS(mycelium_wait_hooks_init(NULL), MYCELIUM_ERR_NULL_POINTER);
  hooks.context = &counts;
  hooks.before_wait = hook_before;
  hooks.after_wait = hook_after;
  uint8_t buf[64];
  size_t n = encode_tick(buf, "HOOK", 1.0, 0, 0, 0);
  CHECK_STATUS(mycelium_publish_with_hooks(rt, TRADE_TICK, buf, n, &hooks), MYCELIUM_OK);
  CHECK(atomic_load(&counts.before) == 0 && atomic_load(&counts.after) == 0, "no wait, no hook (%d, %d)",
        atomic_load(&counts.before), atomic_load(&counts.after));
  /* the queue (capacity 1) is full: this publish waits until the taker makes room */
  pthread_t th;
  pthread_create(&th, NULL, take_later, &taker);
  n = encode_tick(buf, "HOOK", 1.0, 0, 1, 0);
  CHECK_STATUS(mycelium_publish_with_hooks(rt, TRADE_TICK, buf, n, &hooks), MYCELIUM_OK);
  pthread_join(th, NULL);
  CHECK(atomic_load(&counts.before) == 1 && atomic_load(&counts.after) == 1, "one wait, one pair of hooks (%d, %d)",
        atomic_load(&counts.before), atomic_load(&counts.after));
  CHECK(atomic_load(&counts.taken_at_before) == 0, "before_wait ran before the wait (taken then: %d)",
        atomic_load(&counts.taken_at_before));
  /* half a pair is refused and publishes nothing */
  hooks.after_wait = NULL;
  CHECK_STATUS(mycelium_publish_with_hooks(rt, TRADE_TICK, buf, n, &hooks), MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(mycelium_last_error(), "both") != NULL, "error explains the pair: %s", mycelium_last_error());
  pulled_t p = {0};
  size_t got = 0;
  CHECK_STATUS(mycelium_receiver_recv(rt, taker.id, 0, 8, collect, &p, &got), MYCELIUM_OK);
  CHECK(got == 1 && p.seen[0] == 1, "only the second message is queued (%zu, ts %" PRIu64 ")", got, p.seen[0]);
  /* NULL hooks: a plain publish */
  CHECK_STATUS(mycelium_publish_with_hooks(rt, TRADE_TICK, buf, n, NULL), MYCELIUM_OK);
  CHECK_STATUS(mycelium_publish_with_hooks(rt, TRADE_TICK, NULL, 3, NULL), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
  CHECK_STATUS(mycelium_publish_with_hooks(rt, TRADE_TICK, buf, n, NULL), MYCELIUM_ERR_CLOSED);
}

/* ---- per-subscription counters ---- */
static void test_subscription_stats(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &rt), MYCELIUM_OK);
  mycelium_subscribe_options opts;
  mycelium_subscribe_options_init(&opts);
  opts.capacity = 2;
  opts.policy = MYCELIUM_OVERFLOW_DROP_OLDEST;
  uint64_t rx = 0;
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, &opts, &rx), MYCELIUM_OK);
  counter_t c = {0};
  mycelium_closure cl = counter_closure(&c);
  uint64_t sub = 0;
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, NULL, &cl, &sub), MYCELIUM_OK);
  uint8_t buf[64];
  for (uint64_t i = 0; i < 5; i++) {
    size_t n = encode_tick(buf, "STAT", 1.0, 0, i, 0);
    CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, buf, n), MYCELIUM_OK);
  }
  CHECK_STATUS(mycelium_flush(rt, 30000), MYCELIUM_OK);
  mycelium_subscription_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  CHECK_STATUS(mycelium_subscription_stats_get(rt, rx, &st), MYCELIUM_OK);
  CHECK(st.offered == 5 && st.dropped == 3 && st.queued == 2 && st.delivered == 0,
        "receiver: offered %" PRIu64 " dropped %" PRIu64 " queued %" PRIu64 " delivered %" PRIu64, st.offered,
        st.dropped, st.queued, st.delivered);
  pulled_t p = {0};
  CHECK_STATUS(mycelium_receiver_recv(rt, rx, 0, 1, collect, &p, NULL), MYCELIUM_OK);
  CHECK(p.seen[0] == 3, "DROP_OLDEST kept the newest two (first is %" PRIu64 ")", p.seen[0]);
  CHECK_STATUS(mycelium_subscription_stats_get(rt, rx, &st), MYCELIUM_OK);
  CHECK(st.delivered == 1 && st.queued == 1, "after one recv: delivered %" PRIu64 " queued %" PRIu64, st.delivered,
        st.queued);
  CHECK_STATUS(mycelium_subscription_stats_get(rt, sub, &st), MYCELIUM_OK);
  CHECK(st.offered == 5 && st.delivered == 5 && st.dropped == 0 && st.queued == 0,
        "callback subscription: offered %" PRIu64 " delivered %" PRIu64, st.offered, st.delivered);
  CHECK_STATUS(mycelium_subscription_stats_get(rt, sub, NULL), MYCELIUM_ERR_NULL_POINTER);
  st.struct_size = 8;
  CHECK_STATUS(mycelium_subscription_stats_get(rt, sub, &st), MYCELIUM_ERR_INVALID_ARGUMENT);
  st.struct_size = sizeof st;
  CHECK_STATUS(mycelium_unsubscribe(rt, rx), MYCELIUM_OK);
  CHECK_STATUS(mycelium_subscription_stats_get(rt, rx, &st), MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION);
  CHECK_STATUS(mycelium_subscription_stats_get(rt, 987654, &st), MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

static void test_bridges(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *server = NULL, *client = NULL;
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &server), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &client), MYCELIUM_OK);
  char address[128];
  /* $TMPDIR, not /tmp: a Nix build sandbox has no writable /tmp. */
  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || *tmp == '\0') tmp = "/tmp";
  int len = snprintf(address, sizeof address, "unix:%s/mycelium-ffi-test-%d.sock", tmp, (int)getpid());
  CHECK(len > 0 && (size_t)len < sizeof address, "the socket path under $TMPDIR fits the address buffer");
  uint64_t listener = 0, connector = 0, rx = 0;
  CHECK_STATUS(mycelium_bridge_listen(server, "nonsense", NULL, &listener), MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(mycelium_bridge_listen(server, "tcp:0.0.0.0:0", NULL, &listener), MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(mycelium_bridge_listen(server, NULL, NULL, &listener), MYCELIUM_ERR_NULL_POINTER);
  mycelium_bridge_options opts;
  CHECK_STATUS(mycelium_bridge_options_init(&opts), MYCELIUM_OK);
  opts.token = "s3cret";
  CHECK_STATUS(mycelium_bridge_listen(server, address, &opts, &listener), MYCELIUM_OK);
  CHECK_STATUS(mycelium_receiver_open(server, TRADE_TICK, NULL, &rx), MYCELIUM_OK);
  CHECK_STATUS(mycelium_bridge_connect(client, address, &opts, &connector), MYCELIUM_OK);
  CHECK_STATUS(mycelium_bridge_wait(client, connector, 1, 10000), MYCELIUM_OK);
  /* the server's subscription reaches the client asynchronously: publish until one arrives */
  uint8_t buf[64];
  size_t n = encode_tick(buf, "OVER", 1.0, 0, 7, 0);
  pulled_t p = {0};
  size_t got = 0;
  mycelium_status st = MYCELIUM_ERR_TIMEOUT;
  for (int i = 0; i < 100 && st == MYCELIUM_ERR_TIMEOUT; i++) {
    mycelium_publish(client, TRADE_TICK, buf, n);
    st = mycelium_receiver_recv(server, rx, 100, 1, collect, &p, &got);
  }
  CHECK(st == MYCELIUM_OK && p.n == 1 && p.seen[0] == 7, "a tick crossed the bridge (%s)", mycelium_status_name(st));
  size_t need = 0;
  mycelium_bridge_stats_json(server, listener, NULL, 0, &need);
  char *json = malloc(need);
  CHECK_STATUS(mycelium_bridge_stats_json(server, listener, json, need, NULL), MYCELIUM_OK);
  CHECK(strstr(json, "\"sessions\":1") != NULL, "stats count the session: %s", json);
  free(json);

  /* a client with another schema is refused, and the reason names the message */
  mycelium_runtime_t *other = NULL;
  char *changed = strdup(yaml);
  char *price = strstr(changed, "- price: f64");
  if (price) memcpy(price + strlen("- price: "), "f32", 3);
  CHECK_STATUS(mycelium_runtime_create(changed, strlen(changed), &other), MYCELIUM_OK);
  uint64_t refused = 0;
  CHECK_STATUS(mycelium_bridge_connect(other, address, &opts, &refused), MYCELIUM_OK);
  CHECK_STATUS(mycelium_bridge_wait(other, refused, 1, 10000), MYCELIUM_ERR_BRIDGE);
  CHECK(strstr(mycelium_last_error(), "TradeTick") != NULL, "refusal names the message: %s", mycelium_last_error());
  free(changed);

  /* a wrong token is refused too */
  mycelium_bridge_options bad;
  mycelium_bridge_options_init(&bad);
  bad.token = "wrong";
  uint64_t wrong = 0;
  CHECK_STATUS(mycelium_bridge_connect(client, address, &bad, &wrong), MYCELIUM_OK);
  CHECK_STATUS(mycelium_bridge_wait(client, wrong, 1, 10000), MYCELIUM_ERR_BRIDGE);
  CHECK_STATUS(mycelium_bridge_close(client, wrong), MYCELIUM_OK);
  CHECK_STATUS(mycelium_bridge_close(client, wrong), MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION);

  CHECK_STATUS(mycelium_bridge_close(client, connector), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(other), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(client), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(server), MYCELIUM_OK); /* closes the listener too */
}

typedef struct {
  mycelium_runtime_t *rt;
  uint64_t id;
  atomic_int status;
} bridge_waiter_t;

static void *wait_long(void *arg) {
  bridge_waiter_t *w = arg;
  atomic_store(&w->status, mycelium_bridge_wait(w->rt, w->id, 1, 60000));
  return NULL;
}

/* closing a bridge ends a wait on it from another thread at once */
static void test_bridge_close_ends_wait(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  mycelium_runtime_create(yaml, yaml_len, &rt);
  bridge_waiter_t w = {.rt = rt};
  atomic_store(&w.status, -1);
  CHECK_STATUS(mycelium_bridge_connect(rt, "unix:/tmp/mycelium-nobody-listens.sock", NULL, &w.id), MYCELIUM_OK);
  pthread_t th;
  pthread_create(&th, NULL, wait_long, &w);
  usleep(50000);
  CHECK_STATUS(mycelium_bridge_close(rt, w.id), MYCELIUM_OK);
  pthread_join(th, NULL);
  CHECK(atomic_load(&w.status) == MYCELIUM_ERR_BRIDGE, "the wait ended with %s",
        mycelium_status_name((mycelium_status)atomic_load(&w.status)));
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* keep_waiting (ABI 1.2): a publish blocked on a full queue nobody reads gives up when the
 * hook says so (an adapter's Ctrl-C); the abandoned subscriber counts the message as dropped. */
typedef struct {
  atomic_int before, after, asked;
} give_up_t;
static void give_up_before(void *ctx) { atomic_fetch_add(&((give_up_t *)ctx)->before, 1); }
static void give_up_after(void *ctx) { atomic_fetch_add(&((give_up_t *)ctx)->after, 1); }
static int give_up_second_time(void *ctx) {
  return atomic_fetch_add(&((give_up_t *)ctx)->asked, 1) + 1 < 2;
}

static void test_wait_hook_gives_up(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &rt), MYCELIUM_OK);
  mycelium_subscribe_options opts;
  mycelium_subscribe_options_init(&opts);
  opts.capacity = 1;
  uint64_t rx = 0;
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, &opts, &rx), MYCELIUM_OK);
  uint8_t buf[64];
  size_t n = encode_tick(buf, "GIVEUP", 1.0, 0, 0, 0);
  CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, buf, n), MYCELIUM_OK); /* fills the queue */
  give_up_t g;
  atomic_store(&g.before, 0);
  atomic_store(&g.after, 0);
  atomic_store(&g.asked, 0);
  mycelium_wait_hooks hooks;
  CHECK_STATUS(mycelium_wait_hooks_init(&hooks), MYCELIUM_OK);
  CHECK(hooks.keep_waiting == NULL, "keep_waiting defaults to NULL");
  hooks.context = &g;
  hooks.keep_waiting = give_up_second_time;
  CHECK_STATUS(mycelium_publish_with_hooks(rt, TRADE_TICK, buf, n, &hooks),
               MYCELIUM_ERR_INVALID_ARGUMENT); /* keep_waiting alone */
  hooks.before_wait = give_up_before;
  hooks.after_wait = give_up_after;
  CHECK_STATUS(mycelium_publish_with_hooks(rt, TRADE_TICK, buf, n, &hooks), MYCELIUM_ERR_TIMEOUT);
  CHECK(strstr(mycelium_last_error(), "counted the message as dropped") != NULL,
        "the error says what happened: %s", mycelium_last_error());
  CHECK(atomic_load(&g.asked) == 2 && atomic_load(&g.before) == 1 && atomic_load(&g.after) == 1,
        "asked %d times, before %d, after %d", atomic_load(&g.asked), atomic_load(&g.before),
        atomic_load(&g.after));
  mycelium_subscription_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  CHECK_STATUS(mycelium_subscription_stats_get(rt, rx, &st), MYCELIUM_OK);
  CHECK(st.queued == 1 && st.dropped == 1, "queued %" PRIu64 ", dropped %" PRIu64, (uint64_t)st.queued,
        (uint64_t)st.dropped);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* mycelium_runtime_clone takes addresses from foreign code (Python's Runtime.attach, OCaml's
 * Runtime.of_handle): anything that is not a handle of this process must be an error with a
 * reason, never a crash. */
static void expect_not_a_handle(const void *addr, mycelium_status want, const char *needle,
                                const char *what) {
  mycelium_runtime_t *out = NULL;
  mycelium_status got = mycelium_runtime_clone((const mycelium_runtime_t *)addr, &out);
  CHECK(got == want, "clone(%s) returned %s, expected %s", what, mycelium_status_name(got),
        mycelium_status_name(want));
  CHECK(out == NULL, "clone(%s) left out untouched", what);
  CHECK(strstr(mycelium_last_error(), needle) != NULL, "clone(%s) explains: %s", what,
        mycelium_last_error());
}

static void test_clone_refuses_bogus_addresses(const char *yaml, size_t yaml_len) {
  expect_not_a_handle((const void *)(uintptr_t)0x1, MYCELIUM_ERR_INVALID_ARGUMENT, "not aligned", "0x1");
  expect_not_a_handle((const void *)(uintptr_t)0xdeadbeef, MYCELIUM_ERR_INVALID_ARGUMENT,
                      "not aligned", "0xdeadbeef");
  expect_not_a_handle((const void *)(uintptr_t)0xdeadbee8, MYCELIUM_ERR_INVALID_ARGUMENT,
                      "not readable", "0xdeadbee8");
  void *zeros = calloc(1, 256);
  expect_not_a_handle(zeros, MYCELIUM_ERR_INVALID_ARGUMENT, "no function table", "calloc'd zeros");
  uintptr_t stack[32];
  memset(stack, 0xab, sizeof stack);
  expect_not_a_handle(stack, MYCELIUM_ERR_INVALID_ARGUMENT, "not a mycelium runtime handle",
                      "stack buffer of 0xab");
  /* A pointer to a zeroed "table": size 0 is no table. */
  stack[0] = (uintptr_t)zeros;
  expect_not_a_handle(stack, MYCELIUM_ERR_INVALID_ARGUMENT, "not a function table",
                      "stack buffer pointing at zeros");

  mycelium_runtime_t *rt = NULL;
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &rt), MYCELIUM_OK);
  /* A look-alike: its first word is a real handle's table pointer, but no library made it. */
  uintptr_t *lookalike = calloc(1, 256);
  memcpy(lookalike, rt, sizeof(uintptr_t));
  expect_not_a_handle(lookalike, MYCELIUM_ERR_INVALID_ARGUMENT, "not made by the library",
                      "a look-alike of a real header");
  /* The real one clones; destroyed, it is closed. */
  mycelium_runtime_t *copy = NULL;
  CHECK_STATUS(mycelium_runtime_clone(rt, &copy), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(copy), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
  expect_not_a_handle(rt, MYCELIUM_ERR_CLOSED, "destroyed", "a destroyed handle");
  free(lookalike);
  free(zeros);
}

/* ---- named topics (ABI 1.4): mycelium_publish_topic, options.pattern ---- */
static void test_topics(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &rt), MYCELIUM_OK);
  CHECK(mycelium_abi_version() >= ((1u << 16) | 4u), "ABI %x is older than 1.4", mycelium_abi_version());
  mycelium_subscribe_options every, btc, any_tick, bad;
  mycelium_subscribe_options_init(&every);
  mycelium_subscribe_options_init(&btc);
  mycelium_subscribe_options_init(&any_tick);
  mycelium_subscribe_options_init(&bad);
  CHECK(every.pattern == NULL, "init leaves the pattern NULL");
  btc.pattern = "ticks/BTC-USD";
  any_tick.pattern = "ticks/*";
  uint64_t rx_every = 0, rx_btc = 0, rx_any = 0, rx_bad = 0;
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, &every, &rx_every), MYCELIUM_OK);
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, &btc, &rx_btc), MYCELIUM_OK);
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, &any_tick, &rx_any), MYCELIUM_OK);
  bad.pattern = "ticks/>/x";
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, &bad, &rx_bad), MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(mycelium_last_error(), "before its last segment") != NULL, "the bad pattern's reason: %s",
        mycelium_last_error());
  uint8_t buf[64];
  size_t n = encode_tick(buf, "BTC-USD", 1.0, 0, 1, 0);
  CHECK_STATUS(mycelium_publish_topic(rt, TRADE_TICK, "ticks/BTC-USD", buf, n, NULL), MYCELIUM_OK);
  n = encode_tick(buf, "ETH-USD", 1.0, 0, 2, 0);
  CHECK_STATUS(mycelium_publish_topic(rt, TRADE_TICK, "ticks/ETH-USD", buf, n, NULL), MYCELIUM_OK);
  n = encode_tick(buf, "none", 1.0, 0, 3, 0);
  CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, buf, n), MYCELIUM_OK);
  CHECK_STATUS(mycelium_publish_topic(rt, TRADE_TICK, "ticks/*", buf, n, NULL), MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(mycelium_publish_topic(rt, TRADE_TICK, NULL, buf, n, NULL), MYCELIUM_ERR_NULL_POINTER);
  pulled_t p = {0};
  size_t got = 0;
  CHECK_STATUS(mycelium_receiver_recv(rt, rx_every, 1000, 8, collect, &p, &got), MYCELIUM_OK);
  CHECK(got == 3 && p.seen[0] == 1 && p.seen[2] == 3, "the plain receiver got every tick (%zu)", got);
  pulled_t q = {0};
  CHECK_STATUS(mycelium_receiver_recv(rt, rx_btc, 1000, 8, collect, &q, &got), MYCELIUM_OK);
  CHECK(got == 1 && q.seen[0] == 1, "ticks/BTC-USD got only its tick (%zu)", got);
  pulled_t r = {0};
  CHECK_STATUS(mycelium_receiver_recv(rt, rx_any, 1000, 8, collect, &r, &got), MYCELIUM_OK);
  CHECK(got == 2 && r.seen[0] == 1 && r.seen[1] == 2, "ticks/* got the two topic'd ticks (%zu)", got);
  CHECK_STATUS(mycelium_receiver_recv(rt, rx_any, 0, 8, collect, &r, &got), MYCELIUM_ERR_TIMEOUT);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

/* ---- the topic of a delivered message (ABI 1.5): mycelium_message_topic ---- */
typedef struct {
  mycelium_runtime_t *rt;
  char topics[8][32]; /* "" = published without a topic */
  size_t n;
  int errors;        /* calls that failed where they should have answered */
  int refused_copy;  /* a copy of a message is refused */
  atomic_int done;
} topics_seen_t;

static void note_topic(topics_seen_t *t, const mycelium_message *m) {
  const char *topic = (const char *)1;
  size_t len = 99;
  if (mycelium_message_topic(t->rt, m, &topic, &len) != MYCELIUM_OK) {
    t->errors++;
    return;
  }
  if (t->n < 8) {
    if (topic == NULL && len == 0) {
      t->topics[t->n][0] = '\0';
    } else {
      snprintf(t->topics[t->n], sizeof t->topics[0], "%.*s", (int)len, topic);
    }
    t->n++;
  }
  mycelium_message copy = *m;
  if (mycelium_message_topic(t->rt, &copy, &topic, &len) == MYCELIUM_ERR_INVALID_ARGUMENT) t->refused_copy++;
}

static size_t topics_visit(void *ctx, const mycelium_message *msgs, size_t count) {
  for (size_t i = 0; i < count; i++) note_topic(ctx, &msgs[i]);
  return 0;
}

static int topics_call(void *ctx, const mycelium_message *m) {
  topics_seen_t *t = ctx;
  note_topic(t, m);
  atomic_fetch_add(&t->done, 1);
  return 0;
}

static void test_message_topic(const char *yaml, size_t yaml_len) {
  mycelium_runtime_t *rt = NULL;
  CHECK_STATUS(mycelium_runtime_create(yaml, yaml_len, &rt), MYCELIUM_OK);
  CHECK(mycelium_abi_version() >= ((1u << 16) | 5u), "ABI %x is older than 1.5", mycelium_abi_version());
  uint64_t rx = 0, sub = 0;
  CHECK_STATUS(mycelium_receiver_open(rt, TRADE_TICK, NULL, &rx), MYCELIUM_OK);
  CHECK_STATUS(mycelium_enable_topic_metrics(rt, 1), MYCELIUM_OK);
  CHECK_STATUS(mycelium_enable_topic_metrics(NULL, 1), MYCELIUM_ERR_NULL_POINTER);
  topics_seen_t called = {.rt = rt};
  mycelium_closure cl = {.context = &called, .call = topics_call};
  CHECK_STATUS(mycelium_subscribe(rt, TRADE_TICK, NULL, &cl, &sub), MYCELIUM_OK);
  uint8_t buf[64];
  size_t n = encode_tick(buf, "BTC-USD", 1.0, 0, 1, 0);
  CHECK_STATUS(mycelium_publish_topic(rt, TRADE_TICK, "ticks/BTC-USD", buf, n, NULL), MYCELIUM_OK);
  CHECK_STATUS(mycelium_publish(rt, TRADE_TICK, buf, n), MYCELIUM_OK);
  CHECK_STATUS(mycelium_publish_topic(rt, TRADE_TICK, "ticks/ETH-USD", buf, n, NULL), MYCELIUM_OK);

  /* A pull receiver's visit function, the three in one batch. */
  topics_seen_t pulled = {.rt = rt};
  size_t got = 0;
  CHECK_STATUS(mycelium_receiver_recv(rt, rx, 1000, 8, topics_visit, &pulled, &got), MYCELIUM_OK);
  if (got < 3) {
    size_t more = 0;
    CHECK_STATUS(mycelium_receiver_recv(rt, rx, 1000, 8, topics_visit, &pulled, &more), MYCELIUM_OK);
  }
  CHECK(pulled.n == 3 && pulled.errors == 0, "visit: 3 topics read (%zu, %d errors)", pulled.n, pulled.errors);
  CHECK(strcmp(pulled.topics[0], "ticks/BTC-USD") == 0 && pulled.topics[1][0] == '\0' &&
            strcmp(pulled.topics[2], "ticks/ETH-USD") == 0,
        "visit: topics in order: '%s' '%s' '%s'", pulled.topics[0], pulled.topics[1], pulled.topics[2]);
  CHECK(pulled.refused_copy == 3, "a copy of a message is refused (%d of 3)", pulled.refused_copy);

  /* Per-topic metrics, limited to one topic: BTC counted by itself, ETH with the untracked. */
  char json[8192];
  size_t needed = 0;
  CHECK_STATUS(mycelium_metrics_json(rt, json, sizeof json, &needed), MYCELIUM_OK);
  CHECK(strstr(json, "\"topic\":\"ticks/BTC-USD\"") != NULL && strstr(json, "ticks/ETH-USD") == NULL &&
            strstr(json, "\"topics_untracked\":1") != NULL,
        "per-topic metrics: %.300s", strstr(json, "\"topics\"") ? strstr(json, "\"topics\"") : json);

  /* A per-message callback on the delivery thread. */
  CHECK_STATUS(mycelium_flush(rt, 5000), MYCELIUM_OK);
  for (int i = 0; i < 500 && atomic_load(&called.done) < 3; i++) usleep(1000);
  CHECK(called.n == 3 && called.errors == 0, "call: 3 topics read (%zu, %d errors)", called.n, called.errors);
  CHECK(strcmp(called.topics[0], "ticks/BTC-USD") == 0 && called.topics[1][0] == '\0' &&
            strcmp(called.topics[2], "ticks/ETH-USD") == 0,
        "call: topics in order: '%s' '%s' '%s'", called.topics[0], called.topics[1], called.topics[2]);

  /* Outside any delivery, and bad arguments. */
  mycelium_message outside = {0};
  const char *topic = NULL;
  size_t len = 0;
  CHECK_STATUS(mycelium_message_topic(rt, &outside, &topic, &len), MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(mycelium_last_error(), "not inside a delivery") != NULL, "says why: %s", mycelium_last_error());
  CHECK_STATUS(mycelium_message_topic(rt, NULL, &topic, &len), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_message_topic(rt, &outside, NULL, &len), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_message_topic(NULL, &outside, &topic, &len), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_unsubscribe(rt, sub), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CONTRACTS_YAML\n", argv[0]);
    return 2;
  }
  size_t len;
  char *yaml = read_file(argv[1], &len);
  test_version_and_errors(yaml, len);
  test_clone_refuses_bogus_addresses(yaml, len);
  test_many_publishers(yaml, len);
  test_unsubscribe_races_delivery(yaml, len);
  test_reentrancy(yaml, len);
  test_destroy_in_flight(yaml, len);
  test_receivers(yaml, len);
  test_older_options(yaml, len);
  test_publish_with_hooks(yaml, len);
  test_wait_hook_gives_up(yaml, len);
  test_subscription_stats(yaml, len);
  test_bridges(yaml, len);
  test_bridge_close_ends_wait(yaml, len);
  test_topics(yaml, len);
  test_message_topic(yaml, len);
  free(yaml);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
