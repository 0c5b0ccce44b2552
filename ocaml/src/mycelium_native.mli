(** OCaml on a Mycelium message bus, in the same process as Rust.

    Messages come from [contracts.yaml] through [mycelium codegen --lang ocaml], whose per-message
    submodules satisfy {!MESSAGE} and whose top level satisfies {!SCHEMA}:
    {[
      let rt = Mycelium_native.Runtime.of_file "contracts.yaml" in
      let sub =
        Mycelium_native.subscribe rt (module Contracts.TradeTick) (fun t ->
            Printf.printf "%s %.2f\n%!" t.symbol t.price)
      in
      Mycelium_native.publish rt (module Contracts.TradeTick)
        { symbol = "BTC-USD"; price = 1.5; size = 2; ts_ns = 0L; side = 0 };
      Mycelium_native.Runtime.flush rt;
      Mycelium_native.Subscription.close sub;
      Mycelium_native.Runtime.close rt
    ]}

    Callbacks run on a delivery thread of their own subscription (never inside [publish]),
    holding the OCaml runtime lock only while OCaml code runs. See docs/ocaml.md. *)

(** {1 Generated code} *)

(** What a generated message submodule provides. *)
module type MESSAGE = sig
  type t

  val type_id : int
  val name : string

  val encode : t -> string
  (** The TLV payload (no frame header). Raises [Invalid_argument] for out-of-range values. *)

  val decode : string -> (t, string) result
end

(** What a generated module provides at its top level: the schema it was generated from. *)
module type SCHEMA = sig
  val schema_digest : string
  val schema_canonical : string
end

(** {1 Errors} *)

(** The C ABI's status codes ([mycelium_status]). *)
type status = Status.t =
  | Null_pointer
  | Invalid_argument
  | Schema
  | Schema_mismatch
  | Unknown_type
  | Decode
  | Too_large
  | Queue_full
  | Closed
  | Unknown_subscription
  | Timeout
  | Abi_mismatch
  | Buffer_too_small
  | Panic
  | Wrong_thread
  | Bridge  (** A socket bridge stopped: the peer refused the handshake (schema, token). *)
  | No_responder  (** {!request}: nobody serves that (request, reply) pair. *)
  | Responder_failed  (** {!request}: every responder failed; the message has the first reason. *)
  | Unknown of int

val status_name : status -> string
(** The C constant's name, e.g. ["MYCELIUM_ERR_DECODE"]. *)

exception Mycelium_error of status * string
(** A call failed; the string says why and usually what to do. *)

exception Schema_mismatch of string
(** The generated code and the runtime's schema differ; the string names every difference. *)

(** {1 Runtimes} *)

type overflow =
  | Block  (** The publisher waits for room (no message lost). The default. *)
  | Drop_oldest  (** The oldest queued message is dropped and counted. *)
  | Fail_publish  (** [publish] raises [Mycelium_error (Queue_full, _)]; others still receive it. *)

(** One type's counters ([mycelium_type_metrics_get]). *)
type type_metrics = {
  type_id : int;
  published : int;
  published_bytes : int;
  delivered : int;
  dropped : int;
  handler_errors : int;  (** Callbacks that raised, over the live subscriptions. *)
  subscribers : int;
  queued : int;
  latency_p50_ns : int;
  latency_p90_ns : int;
  latency_p99_ns : int;
  latency_max_ns : int;
}

(** A socket bridge opened by {!Runtime.listen} or {!Runtime.connect}: this runtime's bus joined
    to the bus of another process (or another runtime) over a Unix socket or TCP. See
    docs/bridges.md for the protocol, limits and security. *)
module Bridge : sig
  type t

  val id : t -> int
  (** The C ABI's id of the bridge, unique among the runtime's bridges and subscriptions. *)

  val address : t -> string
  (** The address as given to [listen] or [connect]. *)

  val wait : ?timeout_ms:int -> ?sessions:int -> t -> unit
  (** Waits, with the runtime lock released, until the bridge has at least [sessions] (default 1)
      open sessions: for a connector, connected and past the handshake; for a listener, that
      many peers. Raises [Mycelium_error (Bridge, reason)] when the bridge stopped (the peer
      refused the handshake: the reason names the token, or the messages whose definitions
      differ), [Mycelium_error (Timeout, _)] after [timeout_ms] (default 10_000; the message
      gives the last refusal, if any), [Mycelium_error (Closed, _)] after {!close}, and
      [Invalid_argument] for a negative argument. A connector keeps reconnecting meanwhile: a
      peer that is not up yet is a timeout, not an error. *)

  val close : t -> unit
  (** Stops listening or reconnecting, sends peers what is already queued for them, closes the
      connections and removes a Unix socket file the listener created. Idempotent; a no-op once
      the runtime is closed ({!Runtime.close} closes its bridges). Blocks with the runtime lock
      released (bounded by the write timeout), and until a {!wait} running on another thread
      returns. *)

  val is_closed : t -> bool
  (** After {!close}, or once the runtime is closed. *)

  val stats_json : t -> string
  (** [{"endpoints": [...], "stats": {...}}]: the bound endpoints and the counters (frames,
      bytes and messages in and out, sessions, reconnects, refusals and closed sessions with
      their reasons), as described in docs/bridges.md. Raises [Mycelium_error (Closed, _)] after
      {!close} or {!Runtime.close}. *)

  val endpoints : t -> string list
  (** The endpoints a listener is bound to, e.g. ["tcp:127.0.0.1:40123"] for
      ["tcp:127.0.0.1:0"]: how to learn the port the system picked. For a connector, the one
      it connects to. *)
end

module Runtime : sig
  type t
  (** One handle onto a bus, bound to a schema. Close it with {!close}; a runtime that becomes
      unreachable unclosed is closed by a finaliser on a background thread. *)

  val create : schema_yaml:string -> t
  (** A runtime with a bus of its own, from the text of a [contracts.yaml]. Raises
      [Mycelium_error (Schema, _)] listing every problem of an invalid schema (text that is not
      UTF-8 included). The text is parsed without the runtime lock: other threads run meanwhile. *)

  val of_file : string -> t
  (** [create] from a file. Raises [Sys_error] if it cannot be read. *)

  val of_handle : nativeint -> (module SCHEMA) -> t
  (** Attaches to a bus owned by a Rust host, given the address of its [mycelium_runtime_t]
      ([mycelium_ffi::Runtime::address()]). The host's handle is cloned, so the host and this
      runtime are closed independently. Raises {!Schema_mismatch} (the clone is released) when
      the generated code's schema differs from the host's. The address must be a live handle:
      a wrong one crashes the process, as a wrong pointer would in C. *)

  val verify : t -> (module SCHEMA) -> unit
  (** Checks generated code against the runtime's schema; raises {!Schema_mismatch}. *)

  val listen : ?token:string -> ?socket_mode:int -> t -> string -> Bridge.t
  (** Makes this runtime's bus reachable from other processes: binds [address]
      (["unix:/path/to.sock"], or ["tcp:127.0.0.1:PORT"] with 0 for a free port, see
      {!Bridge.endpoints}) and serves every peer that completes the handshake with the same
      schema and [token]. Subscribers on either side then receive what the other side publishes;
      only types someone subscribed to cross. [socket_mode] (default, and when 0: [0o600]) is the
      Unix socket's permission mode; TCP is loopback only. Blocks until bound, runtime lock
      released. Raises [Invalid_argument] for a [socket_mode] outside [0o000..0o777],
      [Mycelium_error (Invalid_argument, _)] for a malformed or non-loopback
      address, an empty token or one with a NUL byte, [Mycelium_error (Bridge, _)] when the
      address cannot be bound (in use by a live process, not a socket, no permission). *)

  val connect : ?token:string -> t -> string -> Bridge.t
  (** Joins the bus of a process listening on [address], in the background: returns at once and
      reconnects with backoff after a cut (nothing is replayed across a cut, nothing is
      delivered twice). Use {!Bridge.wait} to wait for the session, and to learn that the peer
      refused it. Raises [Mycelium_error (Invalid_argument, _)] for a malformed address or
      token.

      ["nats://host:port"] (or [tls://], or a comma-separated cluster list) joins the bus to a
      NATS server instead: the first connection is made before this returns (runtime lock
      released; [Mycelium_error (Bridge, _)] at once if the server is down or refuses the
      credentials), [token] is the server's auth token, and {!Bridge.wait} then waits until
      the server knows this bus's subscriptions. See docs/distributed.md. *)

  val close : t -> unit
  (** Ends every subscription and closes every bridge made through this runtime (waiting for
      running callbacks, unless called from one of them) and releases the handle. Idempotent.
      Other handles onto the same bus, e.g. the Rust host's, are unaffected. *)

  val close_bus : t -> unit
  (** Closes the bus itself, for every handle: later publishes fail with [Closed]. *)

  val is_open : t -> bool

  val flush : ?timeout_ms:int -> t -> unit
  (** Waits until every message published before the call to a subscription of this runtime was
      handled. Raises [Mycelium_error (Timeout, _)] after [timeout_ms] (default 10_000), and
      [Mycelium_error (Wrong_thread, _)] from inside one of this runtime's callbacks. *)

  val schema_digest : t -> string
  val schema_description : t -> string

  val type_metrics : t -> int -> type_metrics
  (** Counters of the type with this id (zeros for a type nobody used yet). *)

  val metrics_json : t -> string
  val metrics_prometheus : t -> string

  val enable_topic_metrics : t -> int -> unit
  (** [enable_topic_metrics t max_topics] counts publishes per topic, for the first [max_topics]
      distinct (type, topic) pairs published from now on: {!metrics_json} then has a ["topics"]
      list of [{"type_id", "name", "topic", "published", "published_bytes"}], and
      {!metrics_prometheus} the [mycelium_topic_*] series; publishes under further topics are
      counted together in ["topics_untracked"]. Off by default, since topics can be unbounded in
      number; [0] turns it off and forgets the counts. Publishes without a topic are never counted
      per topic. Bus-wide: every handle onto the bus (a Rust host's included) sees the same counts
      (docs/topics.md). Raises [Invalid_argument] for a [max_topics] below 0 or above
      [0xFFFF_FFFF] (the C ABI's [uint32_t]), [Mycelium_error (Closed, _)] after {!close}. *)

  val address : t -> nativeint
  (** The C handle's address, valid until {!close}; for handing to another adapter in the
      process, which must clone it. *)
end

(** {1 Publishing and subscribing} *)

val publish : ?topic:string -> Runtime.t -> (module MESSAGE with type t = 'a) -> 'a -> unit
(** Encodes and publishes. The bus validates the payload against the schema before any
    subscriber sees it. Blocks (with the runtime lock released) while a [Block] subscriber's
    queue is full; keeps the lock when there is room. Raises [Invalid_argument] from [encode],
    or [Mycelium_error].

    [topic] (e.g. ["ticks/BTC-USD"], docs/topics.md): subscribers without a pattern get the
    message as always, those whose [pattern] matches get it too. A malformed topic raises
    [Mycelium_error (Invalid_argument, reason)]. *)

module Subscription : sig
  type t

  val id : t -> int
  val message_name : t -> string

  val close : t -> unit
  (** The callback is not running and will not run again when this returns (from inside the
      callback itself: no further call happens). Idempotent; callable from any thread. *)

  val is_closed : t -> bool

  val on_close : t -> (unit -> unit) -> unit
  (** Runs [f] once the subscription is closed (by {!close} or {!Runtime.close}); at once if it
      already is. [f] runs on the closing thread. *)
end

val subscribe :
  ?capacity:int ->
  ?overflow:overflow ->
  ?max_batch:int ->
  ?label:string ->
  ?spin_us:int ->
  ?pattern:string ->
  Runtime.t ->
  (module MESSAGE with type t = 'a) ->
  ('a -> unit) ->
  Subscription.t
(** Calls [f] for every message of the type, in publish order, on a delivery thread of this
    subscription. Defaults: [capacity] 1024, [overflow] [Block], [max_batch] 256 (messages per
    acquisition of the runtime lock). An exception raised by [f] is reported on stderr and
    counted in [handler_errors]; delivery goes on. That includes [Stack_overflow]: unbounded
    recursion in [f] raises it as on an OCaml [Thread] (the delivery thread's stack is the C
    ABI's: 2 MiB unless [RUST_MIN_STACK] says otherwise, where a [Thread] gets [ulimit -s]). [f]
    stays a GC root until the subscription is closed: if it captures the runtime, the runtime
    cannot be finalised before that.

    [pattern] (e.g. ["ticks/*"], docs/topics.md): only messages published with a matching
    [topic] ([*] one segment, a final [>] one or more); without it every message of the type
    arrives. A malformed pattern raises [Mycelium_error (Invalid_argument, reason)].

    [spin_us] is how many microseconds the delivery thread polls its empty queue before it
    sleeps: it trades a busy core for skipping the thread wake-up (tens of microseconds on an
    idle machine) on the next message, for a few latency-critical subscriptions on a machine
    with a core to spare. At most 10_000; the default 0 sleeps after a brief back-off. Raises
    [Invalid_argument] for a negative [capacity], [max_batch] or [spin_us], or a [capacity]
    above 1048576 (1 Mi messages: refused, never clamped), and
    [Mycelium_error (Invalid_argument, _)] naming [spin_us] for one above 10_000. *)

val subscribe_with_topic :
  ?capacity:int ->
  ?overflow:overflow ->
  ?max_batch:int ->
  ?label:string ->
  ?spin_us:int ->
  ?pattern:string ->
  Runtime.t ->
  (module MESSAGE with type t = 'a) ->
  ('a -> string option -> unit) ->
  Subscription.t
(** Like {!subscribe}, [f] also getting the topic each message was published with
    ([Some "ticks/BTC-USD"], or [None] for a publish without one; docs/topics.md). The topic is
    copied into a fresh string per message; {!subscribe} does not look it up at all. *)

val metrics : Runtime.t -> (module MESSAGE) -> type_metrics

(** {1 Payload level} *)

val publish_raw : ?topic:string -> Runtime.t -> type_id:int -> string -> unit
(** Publishes a TLV payload as is (still validated by the bus). *)

val subscribe_raw :
  ?capacity:int ->
  ?overflow:overflow ->
  ?max_batch:int ->
  ?label:string ->
  ?spin_us:int ->
  ?pattern:string ->
  Runtime.t ->
  type_id:int ->
  name:string ->
  (string -> unit) ->
  Subscription.t
(** Like {!subscribe} with the raw payloads; [name] is used in error reports. *)

val subscribe_raw_with_topic :
  ?capacity:int ->
  ?overflow:overflow ->
  ?max_batch:int ->
  ?label:string ->
  ?spin_us:int ->
  ?pattern:string ->
  Runtime.t ->
  type_id:int ->
  name:string ->
  (string -> string option -> unit) ->
  Subscription.t
(** Like {!subscribe_with_topic} with the raw payloads; [name] is used in error reports. *)

(** {1 Diagnostics} *)

val set_callback_error_reporter : (message_name:string -> exn -> Printexc.raw_backtrace -> unit) -> unit
(** Replaces the reporter of exceptions raised by callbacks. It runs on the delivery thread,
    runtime lock held; exceptions it raises are ignored. *)

val default_callback_error_reporter : message_name:string -> exn -> Printexc.raw_backtrace -> unit
(** The initial reporter: the exception and its backtrace on stderr. *)

val abi_version : unit -> int * int
(** The loaded C ABI's (major, minor) version. *)

val finaliser_destroys_pending : unit -> int
(** Runtimes whose finaliser handed them to a background thread that has not finished
    destroying them yet. Mostly for tests and clean shutdowns. *)

(** {1 Request/reply}

    A service answers requests of one message type with another ([services:] in the schema;
    see docs/request-reply.md). Requests wait with the runtime lock released, so services of
    this process (OCaml ones included) run meanwhile. *)

(** A running responder (from {!serve}). *)
module Service : sig
  type t

  val id : t -> int
  val name : t -> string

  val close : t -> unit
  (** Stops serving: new requests no longer reach it, queued ones fail (another service of the
      same pair may still answer them), and (unless called from its own handler) the handler is
      not running when this returns. Idempotent. *)

  val is_closed : t -> bool
end

val serve :
  ?capacity:int ->
  ?label:string ->
  Runtime.t ->
  (module MESSAGE with type t = 'q) ->
  (module MESSAGE with type t = 'r) ->
  ('q -> 'r) ->
  Service.t
(** [serve rt (module Req) (module Rep) f] answers every request of [Req] for a [Rep] with
    [f request], run on a responder thread of its own (holding the runtime lock while [f]
    runs), one request at a time. An exception raised by [f] fails that request: the requester
    gets [Mycelium_error (Responder_failed, text)] with [Printexc.to_string] of it, and the
    service goes on. [capacity]: requests that may wait (default 256). With a generated
    service: [serve rt (module C.RiskCheck.Request) (module C.RiskCheck.Reply) f]. *)

val request :
  ?timeout:float ->
  Runtime.t ->
  (module MESSAGE with type t = 'q) ->
  (module MESSAGE with type t = 'r) ->
  'q ->
  'r
(** Sends the request to the services of the pair and returns the first successful reply,
    waiting up to [timeout] seconds (default 5) with the runtime lock released. Raises
    [Mycelium_error (No_responder, _)] at once when nobody serves it,
    [Mycelium_error (Responder_failed, reason)] when every responder failed,
    [Mycelium_error (Timeout, _)] after [timeout]. *)

type 'a gathered = { replies : 'a list; failed : int; unanswered : int }

val request_all :
  ?timeout:float ->
  Runtime.t ->
  (module MESSAGE with type t = 'q) ->
  (module MESSAGE with type t = 'r) ->
  'q ->
  'r gathered
(** Sends the request to every service of the pair present now and waits until each answered
    or [timeout] passed (not an error here): every successful reply in arrival order, and how
    many services failed or did not answer. Raises [No_responder] at once. *)

val request_raw : ?timeout:float -> Runtime.t -> request_type:int -> reply_type:int -> string -> string
(** {!request} on TLV payloads. *)

(** A service declared in the schema: what [mycelium codegen] emits per entry of [services:]
    ([module RiskCheck : sig val name : string module Request = Order module Reply =
    OrderDecision end]). The forms below take one instead of the two message modules. *)
module type SERVICE = sig
  val name : string

  module Request : MESSAGE
  module Reply : MESSAGE
end

val serve_service :
  ?capacity:int ->
  ?label:string ->
  Runtime.t ->
  (module SERVICE with type Request.t = 'q and type Reply.t = 'r) ->
  ('q -> 'r) ->
  Service.t
(** [serve_service rt (module C.RiskCheck) f] is {!serve} of the service's pair, labelled with
    the service's name unless [label] is given. *)

val call :
  ?timeout:float -> Runtime.t -> (module SERVICE with type Request.t = 'q and type Reply.t = 'r) -> 'q -> 'r
(** [call rt (module C.RiskCheck) order] is {!request} of the service's pair. *)

val call_all :
  ?timeout:float ->
  Runtime.t ->
  (module SERVICE with type Request.t = 'q and type Reply.t = 'r) ->
  'q ->
  'r gathered
(** {!request_all} of the service's pair. *)

(** {1 Logs} *)

(** The library's own log records (a bridge that cannot connect and why, a refused handshake, a
    callback that panicked), handed to an OCaml function. Until [set_handler] is called they are
    not collected (a callback panic still reaches stderr). Which records the library produces is
    set by [MYCELIUM_LOG] (else [RUST_LOG]) in tracing's filter syntax, default [info]. *)
module Log : sig
  type level = Error | Warning | Info | Debug | Trace

  type record = {
    level : level;
    target : string;  (** The Rust module that logged it, e.g. [mycelium_bridge::connector]. *)
    message : string;
    fields : (string * string) list;  (** Structured fields: endpoint, subscription, type... *)
  }

  val set_handler : (record -> unit) -> bool
  (** Sends every later record to the function, called on a thread of its own (a systhread
      started by the first call; it holds the runtime lock only while the function runs, and
      later calls only swap the function). An exception it raises is printed on stderr and
      forwarding goes on. Returns false when the process already had a [tracing] subscriber
      (a Rust host embedding OCaml): that subscriber keeps receiving the records instead. *)

  val stderr_handler : record -> unit
  (** Prints [to_string record] on stderr. *)

  val to_string : record -> string
  (** ["mycelium WARN mycelium_bridge::connector: bridge cannot connect; ... endpoint=unix:/x"]. *)

  val string_of_level : level -> string
end
