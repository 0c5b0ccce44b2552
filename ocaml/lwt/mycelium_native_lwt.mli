(** Subscriptions as Lwt streams.

    Messages arrive on the subscription's delivery thread; they are queued there and the Lwt loop
    is woken with [Lwt_unix.send_notification] (one wake-up per burst, no polling). The stream's
    elements are then pushed from the Lwt thread, in publish order. *)

val subscribe_stream :
  ?capacity:int ->
  ?overflow:Mycelium_native.overflow ->
  ?max_batch:int ->
  ?label:string ->
  ?spin_us:int ->
  ?pattern:string ->
  Mycelium_native.Runtime.t ->
  (module Mycelium_native.MESSAGE with type t = 'a) ->
  'a Lwt_stream.t * Mycelium_native.Subscription.t
(** A stream of the type's messages and the subscription feeding it. The stream ends after the
    subscription is closed (by [Subscription.close] or [Runtime.close]) and the messages already
    received were read. Must be called from the thread running the Lwt loop. The options, and
    the exceptions for bad ones, are those of [Mycelium_native.subscribe]. *)

val stream :
  ?capacity:int ->
  ?overflow:Mycelium_native.overflow ->
  ?max_batch:int ->
  ?label:string ->
  ?spin_us:int ->
  ?pattern:string ->
  Mycelium_native.Runtime.t ->
  (module Mycelium_native.MESSAGE with type t = 'a) ->
  'a Lwt_stream.t
(** [subscribe_stream] for streams that live as long as the runtime: the stream ends when the
    runtime is closed. *)

val subscribe_stream_with_topic :
  ?capacity:int ->
  ?overflow:Mycelium_native.overflow ->
  ?max_batch:int ->
  ?label:string ->
  ?spin_us:int ->
  ?pattern:string ->
  Mycelium_native.Runtime.t ->
  (module Mycelium_native.MESSAGE with type t = 'a) ->
  ('a * string option) Lwt_stream.t * Mycelium_native.Subscription.t
(** [subscribe_stream] whose elements are [(message, topic)] pairs, [topic] being the one the
    message was published with ([Some "ticks/BTC-USD"], or [None] for a publish without one),
    as [Mycelium_native.subscribe_with_topic] hands it to its callback. *)

val stream_with_topic :
  ?capacity:int ->
  ?overflow:Mycelium_native.overflow ->
  ?max_batch:int ->
  ?label:string ->
  ?spin_us:int ->
  ?pattern:string ->
  Mycelium_native.Runtime.t ->
  (module Mycelium_native.MESSAGE with type t = 'a) ->
  ('a * string option) Lwt_stream.t
(** [stream] of [(message, topic)] pairs: [subscribe_stream_with_topic] for streams that live as
    long as the runtime. *)

val recv : 'a Lwt_stream.t -> 'a Lwt.t
(** The next element; fails with [End_of_file] once the stream has ended. *)

(** {1 Request/reply} *)

val request :
  ?timeout:float ->
  Mycelium_native.Runtime.t ->
  (module Mycelium_native.MESSAGE with type t = 'q) ->
  (module Mycelium_native.MESSAGE with type t = 'r) ->
  'q ->
  'r Lwt.t
(** [Mycelium_native.request] without blocking the Lwt loop: the wait runs on
    [Lwt_preemptive]'s thread pool. Fails with the same exceptions. Cancelling the promise stops
    nothing: the request runs on to its answer or timeout. *)

val request_all :
  ?timeout:float ->
  Mycelium_native.Runtime.t ->
  (module Mycelium_native.MESSAGE with type t = 'q) ->
  (module Mycelium_native.MESSAGE with type t = 'r) ->
  'q ->
  'r Mycelium_native.gathered Lwt.t
(** [Mycelium_native.request_all] on [Lwt_preemptive]'s thread pool. *)

val call :
  ?timeout:float ->
  Mycelium_native.Runtime.t ->
  (module Mycelium_native.SERVICE with type Request.t = 'q and type Reply.t = 'r) ->
  'q ->
  'r Lwt.t
(** [Mycelium_native.call] (a generated service) on [Lwt_preemptive]'s thread pool. *)

val call_all :
  ?timeout:float ->
  Mycelium_native.Runtime.t ->
  (module Mycelium_native.SERVICE with type Request.t = 'q and type Reply.t = 'r) ->
  'q ->
  'r Mycelium_native.gathered Lwt.t
(** [Mycelium_native.call_all] on [Lwt_preemptive]'s thread pool. *)
