/* The part of mycelium_native that runs on threads OCaml did not create.
 *
 * Subscriptions deliver on Rust delivery threads. To run an OCaml handler there, the thread must
 * be registered with the OCaml runtime and hold the runtime lock; the handler lives in a GC root
 * whose cell must not move. These are written against the OCaml manual's C interface (threads.h,
 * memory.h) rather than ocaml-rs, which binds neither thread registration nor the lock handover
 * for foreign threads. See docs/ocaml.md, "Threads and the runtime lock".
 *
 * Rules kept here:
 *  - a foreign thread is registered once (caml_c_thread_register), with an alternate signal stack
 *    so that OCaml can report a stack overflow, and unregistered when it exits (a Rust
 *    thread-local destructor: see ocaml/stubs/src/registration.rs for why not a pthread key);
 *  - the lock is held only while OCaml code runs or GC roots change: taken once per batch;
 *  - a handler's root is removed with the lock held, also when `drop` runs on a thread that does
 *    not hold it (a delivery thread, or the thread that unsubscribed after the join).
 */
#define CAML_NAME_SPACE
#include <caml/alloc.h>
#include <caml/callback.h>
#include <caml/memory.h>
#include <caml/mlvalues.h>
#include <caml/printexc.h>
#include <caml/threads.h>

#include <caml/version.h>

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Mirrors `MlPayload` in ocaml/stubs/src/delivery.rs. `topic` is NULL for a message published
 * without one (and for every message of a handler that does not take topics). */
typedef struct {
  const uint8_t *data;
  size_t len;
  const uint8_t *topic;
  size_t topic_len;
} mycelium_ml_payload;

/* ---- thread registration ---- */

#if OCAML_VERSION_MAJOR == 4 && OCAML_VERSION_MINOR == 13
/* OCaml 4.13's caml_c_thread_unregister frees the thread's info block but not the memprof
 * context caml_c_thread_register allocated for it (caml_thread_stop, the Thread.create path,
 * does free it): 80 bytes per registration, so 8 MB per 100 000 subscribe/close cycles (issue #12
 * item 14). The runtime offers no way to reach that context, so the stubs read it from the info
 * block, whose layout (native code) is mirrored here. Only the fields up to memprof_ctx matter;
 * every read is checked against what the runtime itself says about the calling thread before it
 * is trusted (mycelium_ml_thread_register), and other OCaml versions skip this altogether. */
#define MYCELIUM_ML_FREE_MEMPROF_CTX 1
struct caml_memprof_th_ctx;
struct mycelium_ml_413_thread {
  value descr;
  struct mycelium_ml_413_thread *next;
  struct mycelium_ml_413_thread *prev;
  char *top_of_stack;
  char *bottom_of_stack;
  uintnat last_retaddr;
  value *gc_regs;
  char *exception_pointer;
  void *local_roots;
  void *exit_buf;
  int backtrace_pos;
  void *backtrace_buffer;
  value backtrace_last_exn;
  struct caml_memprof_th_ctx *memprof_ctx;
};
/* Runtime and systhreads functions without a public header. */
extern value caml_thread_self(value unit);
extern void caml_memprof_delete_th_ctx(struct caml_memprof_th_ctx *ctx);
extern struct caml_memprof_th_ctx caml_memprof_main_ctx;

/* The pthread key under which systhreads keeps each thread's info block (its static
 * thread_descriptor_key), found once by comparing every key's value before and after a
 * registration: registering sets exactly that one. -1 until found. */
static long descriptor_key = -1;

/* Calling thread, just registered, lock NOT held: its memprof context, or NULL when it cannot be
 * found with certainty. `before` is every key's value before the registration, or NULL. */
static struct caml_memprof_th_ctx *registered_memprof_ctx(void *const *before)
{
  long key = __atomic_load_n(&descriptor_key, __ATOMIC_RELAXED);
  if (key < 0 && before != NULL) {
    for (long k = 0; k < PTHREAD_KEYS_MAX; k++) {
      if (before[k] == NULL && pthread_getspecific((pthread_key_t)k) != NULL) {
        if (key >= 0) return NULL; /* two candidates: not sure which */
        key = k;
      }
    }
  }
  if (key < 0) return NULL;
  struct mycelium_ml_413_thread *th = pthread_getspecific((pthread_key_t)key);
  if (th == NULL) return NULL;
  /* With the lock held the runtime's current thread is this one: its descriptor and its place in
   * the ring of threads must be the block's. */
  caml_acquire_runtime_system();
  int ours = th->descr == caml_thread_self(Val_unit) && th->next->prev == th && th->prev->next == th
             && th->memprof_ctx != NULL && th->memprof_ctx != &caml_memprof_main_ctx;
  caml_release_runtime_system();
  if (!ours) return NULL;
  __atomic_store_n(&descriptor_key, key, __ATOMIC_RELAXED);
  /* Never changes while the thread is registered. */
  return th->memprof_ctx;
}
#endif

/* Registers the calling thread with the OCaml runtime, and gives it an alternate signal stack if
 * it has none. Lock NOT held. Returns 1 when this call registered the thread, 0 when the runtime
 * already knew the thread (an OCaml thread, or the main one) or could not register it. On 1,
 * `resources` receives what mycelium_ml_thread_unregister must release (entries may be NULL).
 * caml_c_thread_register answers 0 both for "already registered" and for "threads library not
 * initialised"; the latter cannot happen because the Mycelium_native module initialises Thread
 * before any subscription exists.
 *
 * Why the alternate stack: OCaml 4.13 turns a stack overflow in OCaml code into Stack_overflow
 * from its SIGSEGV handler, which is installed with SA_ONSTACK because the faulting thread's own
 * stack is exhausted. Thread.create sets up such a stack in every thread it starts
 * (caml_setup_stack_overflow_detection); caml_c_thread_register does not, and a thread without
 * one cannot run any SIGSEGV handler after an overflow, so the kernel killed the whole process
 * (issue #12 item 13). Everything else the handler checks already holds on a registered thread:
 * the fault lies below the top of stack recorded at registration, within the stack pointer's
 * reach, at a pc in OCaml code, and the thread's stack ends in a guard page (glibc gives every
 * pthread one). A thread that already has an alternate stack (Rust's std gives its threads one
 * when a Rust main installed Rust's own overflow handler) keeps it. */
typedef struct {
  void *altstack;
  void *memprof_ctx;
} mycelium_ml_registration;

int mycelium_ml_thread_register(mycelium_ml_registration *resources)
{
  resources->altstack = NULL;
  resources->memprof_ctx = NULL;
#ifdef MYCELIUM_ML_FREE_MEMPROF_CTX
  void **before = NULL;
  if (__atomic_load_n(&descriptor_key, __ATOMIC_RELAXED) < 0) {
    before = malloc(PTHREAD_KEYS_MAX * sizeof(void *));
    if (before != NULL)
      for (long k = 0; k < PTHREAD_KEYS_MAX; k++) before[k] = pthread_getspecific((pthread_key_t)k);
  }
  int registered = caml_c_thread_register();
  if (registered) resources->memprof_ctx = registered_memprof_ctx((void *const *)before);
  free(before);
  if (!registered) return 0;
#else
  if (!caml_c_thread_register()) return 0;
#endif
  stack_t current;
  if (sigaltstack(NULL, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
    /* SIGSTKSZ, as OCaml's own threads get; with glibc >= 2.34 it is the kernel's figure for
     * this CPU (sysconf(_SC_SIGSTKSZ)). */
    size_t size = SIGSTKSZ;
    void *mem = malloc(size);
    if (mem != NULL) {
      stack_t ours;
      ours.ss_sp = mem;
      ours.ss_size = size;
      ours.ss_flags = 0;
      if (sigaltstack(&ours, NULL) == 0) resources->altstack = mem;
      else free(mem);
    }
  }
  return 1;
}

/* Undoes mycelium_ml_thread_register when the thread exits (a Rust thread-local destructor,
 * ocaml/stubs/src/registration.rs). Lock NOT held: caml_c_thread_unregister takes it. */
void mycelium_ml_thread_unregister(const mycelium_ml_registration *resources)
{
  int unregistered = caml_c_thread_unregister();
#ifdef MYCELIUM_ML_FREE_MEMPROF_CTX
  /* Without the lock, as nothing else can reach the context any more: the info block that
   * pointed to it is gone, and memprof only ever uses the lock holder's context (this one never
   * again) and, while a memprof callback runs in a thread, an entry this exiting thread has not. */
  if (unregistered && resources->memprof_ctx != NULL) caml_memprof_delete_th_ctx(resources->memprof_ctx);
#else
  (void)unregistered;
#endif
  if (resources->altstack != NULL) {
    /* Switched off before it is freed: a signal after the free must not land in freed memory. */
    stack_t off;
    off.ss_sp = NULL;
    off.ss_size = 0;
    off.ss_flags = SS_DISABLE;
    if (sigaltstack(&off, NULL) == 0) free(resources->altstack);
    /* else: still in use (cannot happen outside a signal handler); leaked, never freed live. */
  }
}

/* ---- GC roots for handlers ---- */

/* Runtime lock held. The cell is malloc'd so the root's address never moves. */
void *mycelium_ml_root_new(value handler)
{
  value *cell = malloc(sizeof(value));
  if (cell == NULL) return NULL;
  *cell = handler;
  caml_register_generational_global_root(cell);
  return cell;
}

/* Runtime lock held. */
void mycelium_ml_root_free_locked(void *root)
{
  value *cell = root;
  caml_remove_generational_global_root(cell);
  free(cell);
}

/* Any thread registered with the runtime (mycelium_ml_thread_register, called by the Rust side
 * first), runtime lock NOT held (the subscription's `drop`). */
void mycelium_ml_root_release(void *root)
{
  caml_acquire_runtime_system();
  mycelium_ml_root_free_locked(root);
  caml_release_runtime_system();
}

/* ---- delivery ---- */

static void report_escaped_exception(value exn)
{
  /* The OCaml wrapper catches the user's exceptions itself; this only sees what escaped it
   * (e.g. Out_of_memory while formatting). caml_format_exception mallocs, never allocates in the
   * OCaml heap. */
  char *text = caml_format_exception(exn);
  fprintf(stderr, "mycelium_native: exception escaped a subscription handler: %s\n",
          text != NULL ? text : "(unprintable)");
  fflush(stderr);
  caml_stat_free(text);
}

static value alloc_bytes(const uint8_t *data, size_t len)
{
  return len == 0 ? caml_alloc_string(0) : caml_alloc_initialized_string(len, (const char *)data);
}

/* 1 when a handler call failed (raised, or answered false), else 0. */
static size_t call_failed(value result)
{
  if (Is_exception_result(result)) {
    report_escaped_exception(Extract_exception(result));
    return 1;
  }
  return result == Val_false;
}

/* Runtime lock held. `string -> bool` handlers. */
static size_t deliver_payloads(const value *cell, const mycelium_ml_payload *payloads, size_t count)
{
  size_t failed = 0;
  for (size_t i = 0; i < count; i++) {
    value payload = alloc_bytes(payloads[i].data, payloads[i].len);
    /* Read the handler after the allocation: a minor GC may have moved it, and the root cell
     * always holds its current address. */
    failed += call_failed(caml_callback_exn(*cell, payload));
  }
  return failed;
}

/* Runtime lock held: CAMLparam0 links these roots into the lock holder's local roots, so it must
 * not run before the lock is taken. `string -> string option -> bool` handlers. The payload must
 * survive the allocation of the topic string and of its `Some`, hence registered locals. */
static size_t deliver_with_topics(const value *cell, const mycelium_ml_payload *payloads, size_t count)
{
  CAMLparam0();
  CAMLlocal2(payload, topic);
  size_t failed = 0;
  for (size_t i = 0; i < count; i++) {
    payload = alloc_bytes(payloads[i].data, payloads[i].len);
    topic = Val_none;
    if (payloads[i].topic != NULL) {
      topic = alloc_bytes(payloads[i].topic, payloads[i].topic_len);
      topic = caml_alloc_some(topic);
    }
    failed += call_failed(caml_callback2_exn(*cell, payload, topic));
  }
  CAMLreturnT(size_t, failed);
}

/* Delivery thread, registered with the runtime (by the Rust side, first), runtime lock NOT held.
 * Calls the handler once per payload (and its topic, when `with_topics`) under one acquisition
 * of the lock and returns how many calls failed. */
size_t mycelium_ml_deliver(void *root, const mycelium_ml_payload *payloads, size_t count, int with_topics)
{
  const value *cell = root;
  caml_acquire_runtime_system();
  size_t failed = with_topics ? deliver_with_topics(cell, payloads, count)
                              : deliver_payloads(cell, payloads, count);
  caml_release_runtime_system();
  return failed;
}

/* ---- request/reply: a serve handler on the responder thread ---- */

/* The C ABI's reply writer functions (rust/mycelium-ffi, linked into the same library). The
 * writer is opaque here; both copy what they are given. */
extern int mycelium_reply_write(void *reply, const uint8_t *payload, size_t len);
extern int mycelium_reply_fail(void *reply, const char *reason, size_t len);

static int fail_with(void *reply, const char *reason, size_t len)
{
  mycelium_reply_fail(reply, reason, len);
  return 1;
}

/* Responder thread, registered with the runtime (by the Rust side, first), runtime lock NOT
 * held. Calls the handler in `root` (`string -> (string, string) result`, made by
 * Mycelium_native.serve: it decodes, runs the user's function, encodes, and turns exceptions
 * into Error) on the request and answers through `reply` while the lock is held (the OCaml
 * strings must not move while they are copied). Returns 0 when a reply was written, 1 when
 * the request failed. */
int mycelium_ml_serve_call(void *root, const uint8_t *data, size_t len, void *reply)
{
  const value *cell = root;
  int outcome;
  caml_acquire_runtime_system();
  value request = len == 0 ? caml_alloc_string(0)
                           : caml_alloc_initialized_string(len, (const char *)data);
  value result = caml_callback_exn(*cell, request);
  if (Is_exception_result(result)) {
    /* The wrapper catches the user's exceptions; this is what escaped it. */
    char *text = caml_format_exception(Extract_exception(result));
    const char *reason = text != NULL ? text : "an exception escaped the serve handler";
    outcome = fail_with(reply, reason, strlen(reason));
    caml_stat_free(text);
  } else {
    value payload = Field(result, 0);
    if (Tag_val(result) == 0) { /* Ok reply */
      if (mycelium_reply_write(reply, (const uint8_t *)String_val(payload),
                               caml_string_length(payload)) == 0) {
        outcome = 0;
      } else {
        static const char refused[] = "the handler's reply was refused (not a valid reply message)";
        outcome = fail_with(reply, refused, sizeof refused - 1);
      }
    } else { /* Error reason */
      outcome = fail_with(reply, String_val(payload), caml_string_length(payload));
    }
  }
  caml_release_runtime_system();
  return outcome;
}
