/* Request/reply through the C ABI (ABI 1.3): mycelium_serve / mycelium_unserve,
 * mycelium_request / mycelium_request_all, mycelium_reply_write / mycelium_reply_fail.
 * Built with -Wall -Wextra -Werror and run plain, under valgrind and under ASan by
 * scripts/test-ffi.sh. Prints "N passed, N failed" last; exits non-zero on any failure.
 *
 * Waits that must end at once use MYCELIUM_WAIT_FOREVER, so a regression hangs (and the suite's
 * timeout fails it) instead of passing; short timeouts appear only where the timeout is the
 * expected outcome. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* Order { qty: u32 } -> Decision { qty: u32, ok: bool }. */
static const char SCHEMA[] =
    "schema: rr\nversion: 1\nmessages:\n"
    "  Order:\n    id: 1\n    fields:\n      - qty: u32\n"
    "  Decision:\n    id: 2\n    fields:\n      - qty: u32\n      - ok: bool\n"
    "services:\n  RiskCheck: {request: Order, reply: Decision}\n";
#define ORDER 1
#define DECISION 2

static void put_u32(uint8_t *out, uint32_t v) {
  for (int i = 0; i < 4; i++) out[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *in) {
  return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The risk handler. qty <= 100 approved; 666 fails with a reason; 7 returns 0 without a
 * reply; 8 writes an invalid reply (checked: refused) and returns 0; 1000 sleeps past the
 * requester's timeout. */
typedef struct {
  atomic_int calls;
  atomic_int drops;
  atomic_int bad_write_refused;
} handler_state;

static int32_t risk(void *context, const mycelium_message *request, mycelium_reply_writer *reply) {
  handler_state *st = context;
  atomic_fetch_add(&st->calls, 1);
  if (request->type_id != ORDER || request->len != 4) return 2;
  uint32_t qty = get_u32(request->payload);
  if (qty == 666) {
    static const char why[] = "quantity 666 is refused";
    mycelium_reply_fail(reply, why, sizeof why - 1);
    return 1;
  }
  if (qty == 7) return 0;
  if (qty == 8) {
    uint8_t short_reply[3] = {0};
    if (mycelium_reply_write(reply, short_reply, sizeof short_reply) == MYCELIUM_ERR_DECODE)
      atomic_fetch_add(&st->bad_write_refused, 1);
    return 0;
  }
  if (qty == 1000) sleep_ms(300);
  uint8_t out[5];
  put_u32(out, qty);
  out[4] = qty <= 100;
  return mycelium_reply_write(reply, out, sizeof out) == MYCELIUM_OK ? 0 : 3;
}

static int32_t refuse_all(void *context, const mycelium_message *request,
                          mycelium_reply_writer *reply) {
  (void)context;
  (void)request;
  (void)reply;
  return 9;
}

static void count_drop(void *context) { atomic_fetch_add(&((handler_state *)context)->drops, 1); }

/* on_reply: copies the decision out. */
typedef struct {
  int replies;
  uint32_t qty;
  int ok;
  uint16_t type_id;
} reply_box;

static int on_reply(void *context, const mycelium_message *reply) {
  reply_box *box = context;
  box->replies++;
  box->type_id = reply->type_id;
  if (reply->len == 5) {
    box->qty = get_u32(reply->payload);
    box->ok = reply->payload[4];
  }
  return 0;
}

static mycelium_status ask(mycelium_runtime_t *rt, uint32_t qty, uint32_t timeout_ms, reply_box *box) {
  uint8_t order[4];
  put_u32(order, qty);
  return mycelium_request(rt, ORDER, order, sizeof order, DECISION, timeout_ms, NULL, on_reply, box);
}

/* Wait hooks that count their calls (a language adapter releases its lock in them). */
typedef struct {
  int before, after;
} hook_counts;
static void before_wait(void *c) { ((hook_counts *)c)->before++; }
static void after_wait(void *c) { ((hook_counts *)c)->after++; }
/* Gives up at once: what an adapter does when Ctrl-C is pending. */
static int give_up(void *c) {
  (void)c;
  return 0;
}

typedef struct {
  mycelium_runtime_t *rt;
  int ok;
} worker_arg;

#define PER_THREAD 200
static void *requester(void *p) {
  worker_arg *a = p;
  for (uint32_t i = 0; i < PER_THREAD; i++) {
    reply_box box = {0};
    uint32_t qty = 10 + i % 50; /* approved quantities, none of the handler's special ones */
    if (ask(a->rt, qty, MYCELIUM_WAIT_FOREVER, &box) == MYCELIUM_OK && box.qty == qty && box.ok == 1)
      a->ok++;
  }
  return NULL;
}

int main(void) {
  CHECK(mycelium_abi_version() >= ((1u << 16) | 3u), "ABI %x is older than 1.3", mycelium_abi_version());
  mycelium_runtime_t *rt = NULL;
  CHECK_STATUS(mycelium_runtime_create(SCHEMA, sizeof SCHEMA - 1, &rt), MYCELIUM_OK);
  if (!rt) return 1;
  reply_box box = {0};

  /* Nobody serves yet: at once, even with no time limit. */
  CHECK_STATUS(ask(rt, 1, MYCELIUM_WAIT_FOREVER, &box), MYCELIUM_ERR_NO_RESPONDER);
  CHECK(box.replies == 0, "on_reply ran without a reply");

  handler_state st = {0};
  mycelium_service_closure handler = {.context = &st, .call = risk, .drop = count_drop};
  uint64_t id = 0;
  CHECK_STATUS(mycelium_serve(rt, ORDER, DECISION, 0, "risk", &handler, &id), MYCELIUM_OK);
  /* Bad arguments are refused without taking the closure. */
  mycelium_service_closure no_call = {.context = &st, .call = NULL, .drop = count_drop};
  uint64_t unused = 0;
  CHECK_STATUS(mycelium_serve(rt, ORDER, DECISION, 0, NULL, &no_call, &unused),
               MYCELIUM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(mycelium_serve(rt, ORDER, 99, 0, NULL, &handler, &unused), MYCELIUM_ERR_UNKNOWN_TYPE);

  /* A reply. */
  CHECK_STATUS(ask(rt, 42, MYCELIUM_WAIT_FOREVER, &box), MYCELIUM_OK);
  CHECK(box.replies == 1 && box.type_id == DECISION && box.qty == 42 && box.ok == 1,
        "reply: %d replies, type %u, qty %u, ok %d", box.replies, box.type_id, box.qty, box.ok);

  /* Failures keep the responder alive and carry the handler's reason. */
  CHECK_STATUS(ask(rt, 666, MYCELIUM_WAIT_FOREVER, &box), MYCELIUM_ERR_RESPONDER_FAILED);
  CHECK(strstr(mycelium_last_error(), "quantity 666 is refused") != NULL, "reason: %s",
        mycelium_last_error());
  CHECK_STATUS(ask(rt, 7, MYCELIUM_WAIT_FOREVER, &box), MYCELIUM_ERR_RESPONDER_FAILED);
  CHECK(strstr(mycelium_last_error(), "without writing a reply") != NULL, "reason: %s",
        mycelium_last_error());
  CHECK_STATUS(ask(rt, 8, MYCELIUM_WAIT_FOREVER, &box), MYCELIUM_ERR_RESPONDER_FAILED);
  CHECK(strstr(mycelium_last_error(), "refused") != NULL, "reason: %s", mycelium_last_error());
  CHECK(atomic_load(&st.bad_write_refused) == 1, "an invalid reply was accepted by reply_write");
  box.replies = 0;
  CHECK_STATUS(ask(rt, 150, MYCELIUM_WAIT_FOREVER, &box), MYCELIUM_OK);
  CHECK(box.replies == 1 && box.ok == 0, "after failures: %d replies, ok %d", box.replies, box.ok);

  /* A request that does not validate is not sent. */
  uint8_t short_order[2] = {0};
  CHECK_STATUS(mycelium_request(rt, ORDER, short_order, sizeof short_order, DECISION, 1000, NULL,
                                on_reply, &box),
               MYCELIUM_ERR_DECODE);

  /* Timeout, then the late reply is discarded (the handler sleeps 300 ms). */
  CHECK_STATUS(ask(rt, 1000, 50, &box), MYCELIUM_ERR_TIMEOUT);

  /* Hooks run around the wait, once each. */
  hook_counts hc = {0, 0};
  mycelium_wait_hooks hooks;
  mycelium_wait_hooks_init(&hooks);
  hooks.context = &hc;
  hooks.before_wait = before_wait;
  hooks.after_wait = after_wait;
  uint8_t order[4];
  put_u32(order, 5);
  box.replies = 0;
  CHECK_STATUS(mycelium_request(rt, ORDER, order, sizeof order, DECISION, MYCELIUM_WAIT_FOREVER,
                                &hooks, on_reply, &box),
               MYCELIUM_OK);
  CHECK(box.replies == 1 && hc.before == hc.after && hc.before <= 1, "hooks %d/%d, replies %d",
        hc.before, hc.after, box.replies);

  /* keep_waiting may give up a wait (Ctrl-C): the request ends with MYCELIUM_ERR_TIMEOUT,
   * whatever its own timeout. The handler sleeps 300 ms on qty 1000, so the wait is real. */
  hc = (hook_counts){0, 0};
  hooks.keep_waiting = give_up;
  put_u32(order, 1000);
  CHECK_STATUS(mycelium_request(rt, ORDER, order, sizeof order, DECISION, MYCELIUM_WAIT_FOREVER,
                                &hooks, on_reply, &box),
               MYCELIUM_ERR_TIMEOUT);
  CHECK(hc.before == 1 && hc.after == 1, "interrupted wait: hooks %d/%d", hc.before, hc.after);
  CHECK(strstr(mycelium_last_error(), "gave up") != NULL, "reason: %s", mycelium_last_error());
  put_u32(order, 5);

  /* Concurrent requesters. */
  pthread_t threads[4];
  worker_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (worker_arg){rt, 0};
    pthread_create(&threads[i], NULL, requester, &args[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
    CHECK(args[i].ok == PER_THREAD, "thread %d: %d of %d requests answered", i, args[i].ok,
          PER_THREAD);
  }

  /* Gather-all: a second responder that always fails. */
  handler_state st2 = {0};
  mycelium_service_closure refuser = {.context = &st2, .call = refuse_all, .drop = count_drop};
  uint64_t id2 = 0;
  CHECK_STATUS(mycelium_serve(rt, ORDER, DECISION, 0, NULL, &refuser, &id2), MYCELIUM_OK);
  size_t failed_n = 99, unanswered = 99;
  box.replies = 0;
  CHECK_STATUS(mycelium_request_all(rt, ORDER, order, sizeof order, DECISION,
                                    MYCELIUM_WAIT_FOREVER, NULL, on_reply, &box, &failed_n,
                                    &unanswered),
               MYCELIUM_OK);
  CHECK(box.replies == 1 && failed_n == 1 && unanswered == 0,
        "gather-all: %d replies, %zu failed, %zu unanswered", box.replies, failed_n, unanswered);
  /* First-wins skips the failing responder. */
  box.replies = 0;
  CHECK_STATUS(ask(rt, 3, MYCELIUM_WAIT_FOREVER, &box), MYCELIUM_OK);
  CHECK(box.replies == 1, "first-wins with a failing responder: %d replies", box.replies);

  /* Metrics carry the service. */
  char json[16384];
  size_t needed = 0;
  CHECK_STATUS(mycelium_metrics_json(rt, json, sizeof json, &needed), MYCELIUM_OK);
  CHECK(strstr(json, "\"services\":[") != NULL && strstr(json, "\"request_name\":\"Order\"") != NULL,
        "metrics JSON lacks the service: %.300s", json);

  /* Unserve: drop once, then nobody serves (after the refuser goes too). */
  CHECK_STATUS(mycelium_unserve(rt, id2), MYCELIUM_OK);
  CHECK(atomic_load(&st2.drops) == 1, "refuser drop ran %d times", atomic_load(&st2.drops));
  CHECK_STATUS(mycelium_unserve(rt, id2), MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION);
  CHECK_STATUS(mycelium_unserve(rt, id), MYCELIUM_OK);
  CHECK(atomic_load(&st.drops) == 1, "risk drop ran %d times", atomic_load(&st.drops));
  CHECK_STATUS(ask(rt, 1, MYCELIUM_WAIT_FOREVER, &box), MYCELIUM_ERR_NO_RESPONDER);

  /* Destroy ends a live responder and runs its drop. */
  handler_state st3 = {0};
  mycelium_service_closure third = {.context = &st3, .call = risk, .drop = count_drop};
  CHECK_STATUS(mycelium_serve(rt, ORDER, DECISION, 0, NULL, &third, &id), MYCELIUM_OK);
  CHECK_STATUS(mycelium_runtime_destroy(rt), MYCELIUM_OK);
  CHECK(atomic_load(&st3.drops) == 1, "drop on destroy ran %d times", atomic_load(&st3.drops));

  /* The writer functions refuse NULL. */
  CHECK_STATUS(mycelium_reply_write(NULL, order, sizeof order), MYCELIUM_ERR_NULL_POINTER);
  CHECK_STATUS(mycelium_reply_fail(NULL, "x", 1), MYCELIUM_ERR_NULL_POINTER);

  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
