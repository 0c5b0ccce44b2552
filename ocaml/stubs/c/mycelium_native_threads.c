/* The part of mycelium_native that runs on threads OCaml did not create.
 *
 * Subscriptions deliver on Rust delivery threads. To run an OCaml handler there, the thread must
 * be registered with the OCaml runtime and hold the runtime lock; the handler lives in a GC root
 * whose cell must not move. These are written against the OCaml manual's C interface (threads.h,
 * memory.h) rather than ocaml-rs, which binds neither thread registration nor the lock handover
 * for foreign threads. See docs/ocaml.md, "Threads and the runtime lock".
 *
 * Rules kept here:
 *  - a foreign thread is registered once (caml_c_thread_register) and unregistered when it exits
 *    (a pthread key destructor), so OCaml never keeps a descriptor for a dead thread;
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

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Mirrors `MlPayload` in ocaml/stubs/src/delivery.rs. */
typedef struct {
  const uint8_t *data;
  size_t len;
} mycelium_ml_payload;

/* ---- thread registration ---- */

static pthread_key_t registered_key;
static pthread_once_t registered_key_once = PTHREAD_ONCE_INIT;

static void unregister_at_exit(void *marker)
{
  (void)marker;
  /* Takes the runtime lock itself; the exiting thread does not hold it. */
  caml_c_thread_unregister();
}

static void make_registered_key(void)
{
  if (pthread_key_create(&registered_key, unregister_at_exit) != 0) {
    fprintf(stderr, "mycelium_native: pthread_key_create failed; OCaml callbacks cannot run\n");
    abort();
  }
}

/* Registers the calling thread with the OCaml runtime unless it already is. Lock NOT held.
 * caml_c_thread_register answers 0 both for "already registered" (an OCaml thread, or one we
 * registered before) and for "threads library not initialised"; the latter cannot happen because
 * the Mycelium_native module initialises Thread before any subscription exists. */
static void ensure_registered(void)
{
  pthread_once(&registered_key_once, make_registered_key);
  if (pthread_getspecific(registered_key) != NULL) return;
  if (caml_c_thread_register()) {
    /* Any non-NULL marker makes the destructor run at thread exit. */
    pthread_setspecific(registered_key, (void *)&registered_key);
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

/* Any thread, runtime lock NOT held (the subscription's `drop`). */
void mycelium_ml_root_release(void *root)
{
  ensure_registered();
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

/* Delivery thread, runtime lock NOT held. Calls the handler once per payload under one
 * acquisition of the lock and returns how many calls failed. */
size_t mycelium_ml_deliver(void *root, const mycelium_ml_payload *payloads, size_t count)
{
  const value *cell = root;
  size_t failed = 0;
  ensure_registered();
  caml_acquire_runtime_system();
  for (size_t i = 0; i < count; i++) {
    value payload = payloads[i].len == 0
                        ? caml_alloc_string(0)
                        : caml_alloc_initialized_string(payloads[i].len,
                                                        (const char *)payloads[i].data);
    /* Read the handler after the allocation: a minor GC may have moved it, and the root cell
     * always holds its current address. */
    value result = caml_callback_exn(*cell, payload);
    if (Is_exception_result(result)) {
      report_escaped_exception(Extract_exception(result));
      failed++;
    } else if (result == Val_false) {
      failed++;
    }
  }
  caml_release_runtime_system();
  return failed;
}
