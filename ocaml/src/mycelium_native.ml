module type MESSAGE = sig
  type t

  val type_id : int
  val name : string
  val encode : t -> string
  val decode : string -> (t, string) result
end

module type SCHEMA = sig
  val schema_digest : string
  val schema_canonical : string
end

(* Callbacks come from Rust threads that register themselves with the runtime, which needs the
   threads library initialised first; referencing Thread here links and initialises it before
   any subscription can exist. *)
let () = ignore (Thread.self () : Thread.t)

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
  | Bridge
  | No_responder
  | Responder_failed
  | Unknown of int

let status_name = Status.name

exception Mycelium_error of status * string
exception Schema_mismatch of string

let () =
  Printexc.register_printer (function
    | Mycelium_error (s, msg) -> Some (Printf.sprintf "Mycelium_error(%s, %S)" (Status.name s) msg)
    | Schema_mismatch msg -> Some (Printf.sprintf "Schema_mismatch(%S)" msg)
    | _ -> None)

let fail (code, msg) = raise (Mycelium_error (Status.of_code code, msg))
let check = function None -> () | Some e -> fail e
let ok = function Ok v -> v | Error e -> fail e

type overflow = Block | Drop_oldest | Fail_publish

let overflow_code = function Block -> 0 | Drop_oldest -> 1 | Fail_publish -> 2

type type_metrics = {
  type_id : int;
  published : int;
  published_bytes : int;
  delivered : int;
  dropped : int;
  handler_errors : int;
  subscribers : int;
  queued : int;
  latency_p50_ns : int;
  latency_p90_ns : int;
  latency_p99_ns : int;
  latency_max_ns : int;
}

(* What Runtime.t and Subscription.t are. The handler given to the stubs must not reach these
   records: it is a GC root, and a root that reaches the runtime would keep it from ever being
   finalised. It shares only the [closed] flag with its subscription. *)
type runtime = {
  handle : Ffi.handle;
  subs : (int, sub) Hashtbl.t;  (** Live subscriptions, so that [close] can mark them closed. *)
  subs_lock : Mutex.t;
}

and sub = {
  id : int;
  owner : runtime;
  message_name : string;
  closed : bool Atomic.t;  (** Also read by the handler: no call after close, even mid-batch. *)
  hooks_lock : Mutex.t;
  mutable hooks : (unit -> unit) list;
  mutable hooks_ran : bool;
}

let with_lock m f =
  Mutex.lock m;
  match f () with
  | v ->
      Mutex.unlock m;
      v
  | exception e ->
      Mutex.unlock m;
      raise e

(* ---- callback error reporting ---- *)

let default_reporter ~message_name exn bt =
  Printf.eprintf "mycelium_native: a %s callback raised %s\n%s%!" message_name
    (Printexc.to_string exn)
    (Printexc.raw_backtrace_to_string bt)

let default_callback_error_reporter = default_reporter
let reporter = Atomic.make default_reporter
let set_callback_error_reporter f = Atomic.set reporter f

let report ~message_name exn bt =
  try (Atomic.get reporter) ~message_name exn bt with _ -> ()

exception Undecodable of string

let () =
  Printexc.register_printer (function
    | Undecodable msg ->
        Some
          (Printf.sprintf
             "a payload the bus accepted did not decode with the generated code (%s): regenerate the \
              code from the runtime's contracts.yaml"
             msg)
    | _ -> None)

(* Called first thing in an exception handler, while the backtrace is still the exception's. *)
let handler_failed ~message_name exn =
  let bt = Printexc.get_raw_backtrace () in
  report ~message_name exn bt;
  false

(* The handler the delivery thread calls (runtime lock held): true when the message was handled,
   false when it counts as a handler error. It never raises. *)
let make_handler ~message_name ~closed (deliver : string -> unit) : string -> bool =
 fun payload ->
  if Atomic.get closed then true
  else match deliver payload with () -> true | exception exn -> handler_failed ~message_name exn

(* Its own function rather than [make_handler] over a pair, so that plain subscriptions allocate
   nothing more per message. *)
let make_topic_handler ~message_name ~closed (deliver : string -> string option -> unit) :
    string -> string option -> bool =
 fun payload topic ->
  if Atomic.get closed then true
  else match deliver payload topic with () -> true | exception exn -> handler_failed ~message_name exn

(* ---- subscriptions ---- *)

module Subscription = struct
  type t = sub

  let id s = s.id
  let message_name s = s.message_name
  let is_closed s = Atomic.get s.closed

  let run_hooks s =
    let hooks =
      with_lock s.hooks_lock (fun () ->
          let h = s.hooks in
          s.hooks <- [];
          s.hooks_ran <- true;
          List.rev h)
    in
    List.iter (fun f -> try f () with exn -> report ~message_name:s.message_name exn (Printexc.get_raw_backtrace ())) hooks

  let on_close s f =
    let now =
      with_lock s.hooks_lock (fun () ->
          if s.hooks_ran then true
          else (
            s.hooks <- f :: s.hooks;
            false))
    in
    if now then f ()

  let forget s = with_lock s.owner.subs_lock (fun () -> Hashtbl.remove s.owner.subs s.id)

  let close s =
    if Atomic.compare_and_set s.closed false true then begin
      forget s;
      (match Ffi.unsubscribe s.owner.handle s.id with
      | None -> ()
      (* Already ended by Runtime.close on another thread: closing twice is not an error. *)
      | Some (code, _) when Status.of_code code = Closed || Status.of_code code = Unknown_subscription -> ()
      | Some e ->
          run_hooks s;
          fail e);
      run_hooks s
    end
end

(* ---- socket bridges ---- *)

(* A bridge belongs to the C handle that opened it: destroying the handle (Runtime.close or its
   finaliser) closes it, so a Bridge.t holds the runtime only to reach the handle. It is not
   closed by the GC: a listener nobody references still serves its peers until one of the two
   closes runs. *)
type bridge = { b_owner : runtime; b_id : int; b_address : string; b_closed : bool Atomic.t }

module Bridge = struct
  type t = bridge

  let id b = b.b_id
  let address b = b.b_address
  let is_closed b = Atomic.get b.b_closed || not (Ffi.runtime_is_open b.b_owner.handle)

  let closed_error b =
    Mycelium_error (Closed, Printf.sprintf "the bridge on %s (id %d) was closed" b.b_address b.b_id)

  let wait ?(timeout_ms = 10_000) ?(sessions = 1) b =
    if timeout_ms < 0 then invalid_arg "Mycelium_native.Bridge.wait: timeout_ms must be >= 0";
    if sessions < 0 then invalid_arg "Mycelium_native.Bridge.wait: sessions must be >= 0";
    if Atomic.get b.b_closed then raise (closed_error b);
    check (Ffi.bridge_wait b.b_owner.handle b.b_id sessions timeout_ms)

  let close b =
    if Atomic.compare_and_set b.b_closed false true then
      match Ffi.bridge_close b.b_owner.handle b.b_id with
      | None -> ()
      (* Runtime.close already closed it along with the handle. *)
      | Some (code, _) when Status.of_code code = Closed || Status.of_code code = Unknown_subscription -> ()
      | Some e -> fail e

  let stats_json b =
    if Atomic.get b.b_closed then raise (closed_error b);
    ok (Ffi.bridge_stats_json b.b_owner.handle b.b_id)

  let endpoints b =
    let json = stats_json b in
    match Endpoints_json.endpoints json with
    | Ok l -> l
    | Error why ->
        raise
          (Mycelium_error
             ( Panic,
               Printf.sprintf "the bridge statistics do not list endpoints as expected (%s; stubs and library out of sync?): %s"
                 why json ))
end

(* ---- runtimes ---- *)

module Runtime = struct
  type t = runtime

  let make handle = { handle; subs = Hashtbl.create 8; subs_lock = Mutex.create () }
  let create ~schema_yaml = make (ok (Ffi.runtime_create schema_yaml))

  let read_file path =
    let ic = open_in_bin path in
    Fun.protect ~finally:(fun () -> close_in_noerr ic) (fun () -> really_input_string ic (in_channel_length ic))

  let of_file path = create ~schema_yaml:(read_file path)

  let verify t (module S : SCHEMA) =
    match Ffi.verify_digest t.handle S.schema_digest with
    | None -> ()
    | Some (code, digest_msg) when Status.of_code code = Schema_mismatch -> (
        (* The digest only says "different"; the canonical descriptions say where. *)
        match Ffi.verify_description t.handle S.schema_canonical with
        | Some (code, msg) when Status.of_code code = Schema_mismatch -> raise (Schema_mismatch msg)
        | Some e -> fail e
        | None -> raise (Schema_mismatch digest_msg))
    | Some e -> fail e

  let close t =
    let live =
      with_lock t.subs_lock (fun () ->
          let l = Hashtbl.fold (fun _ s acc -> s :: acc) t.subs [] in
          Hashtbl.reset t.subs;
          l)
    in
    let ours = List.filter (fun s -> Atomic.compare_and_set s.closed false true) live in
    let result = Ffi.runtime_destroy t.handle in
    List.iter Subscription.run_hooks ours;
    check result

  let of_handle address schema =
    let t = make (ok (Ffi.runtime_attach address)) in
    (match verify t schema with
    | () -> ()
    | exception e ->
        close t;
        raise e);
    t

  let close_bus t = check (Ffi.bus_close t.handle)
  let is_open t = Ffi.runtime_is_open t.handle
  let flush ?(timeout_ms = 10_000) t = check (Ffi.flush t.handle timeout_ms)
  let schema_digest t = ok (Ffi.schema_digest t.handle)
  let schema_description t = ok (Ffi.schema_description t.handle)

  let type_metrics t type_id =
    let a = ok (Ffi.type_metrics t.handle type_id) in
    if Array.length a <> 12 then
      raise (Mycelium_error (Panic, "the stubs returned metrics in an unexpected layout (stubs and OCaml library out of sync?)"));
    {
      type_id = a.(0);
      published = a.(1);
      published_bytes = a.(2);
      delivered = a.(3);
      dropped = a.(4);
      handler_errors = a.(5);
      subscribers = a.(6);
      queued = a.(7);
      latency_p50_ns = a.(8);
      latency_p90_ns = a.(9);
      latency_p99_ns = a.(10);
      latency_max_ns = a.(11);
    }

  let bridge t address id = { b_owner = t; b_id = id; b_address = address; b_closed = Atomic.make false }

  let listen ?token ?(socket_mode = 0) t address =
    if socket_mode < 0 || socket_mode > 0o777 then
      invalid_arg "Mycelium_native.Runtime.listen: socket_mode must be a permission mode, 0o000 to 0o777";
    bridge t address (ok (Ffi.bridge_listen t.handle address token socket_mode))

  let connect ?token t address = bridge t address (ok (Ffi.bridge_connect t.handle address token))

  let metrics_json t = ok (Ffi.metrics_json t.handle)
  let metrics_prometheus t = ok (Ffi.metrics_prometheus t.handle)

  let enable_topic_metrics t max_topics =
    (* The C ABI takes a uint32_t. *)
    if max_topics < 0 || max_topics > 0xFFFF_FFFF then
      invalid_arg "Mycelium_native.Runtime.enable_topic_metrics: max_topics must be from 0 to 4294967295";
    check (Ffi.enable_topic_metrics t.handle max_topics)

  let address t = ok (Ffi.runtime_address t.handle)
end

let publish_raw ?topic (rt : Runtime.t) ~type_id payload =
  match topic with
  | None -> check (Ffi.publish rt.handle type_id payload)
  | Some topic -> check (Ffi.publish_topic rt.handle type_id topic payload)

let publish (type a) ?topic (rt : Runtime.t) (module M : MESSAGE with type t = a) (v : a) =
  publish_raw ?topic rt ~type_id:M.type_id (M.encode v)

(* The bus's largest queue, MAX_QUEUE_CAPACITY in rust/mycelium-transport. *)
let max_capacity = 1 lsl 20

(* Checks the options, then registers the subscription [start] makes with them (a stub call
   whose handler shares [closed]). *)
let add_subscription ~capacity ~overflow ~max_batch ~label ~spin_us ~pattern (rt : Runtime.t) ~name ~closed start =
  if capacity < 0 then invalid_arg "Mycelium_native.subscribe: capacity must be >= 0";
  (* Refused here with the parameter's own name; the C ABI refuses it too (never clamps). *)
  if capacity > max_capacity then
    invalid_arg
      (Printf.sprintf "Mycelium_native.subscribe: capacity %d is too large; use at most %d (1 Mi messages)"
         capacity max_capacity);
  if max_batch < 0 then invalid_arg "Mycelium_native.subscribe: max_batch must be >= 0";
  (* The upper bound (10000) is the C ABI's: it raises Mycelium_error (Invalid_argument, _). *)
  if spin_us < 0 then invalid_arg "Mycelium_native.subscribe: spin_us must be >= 0";
  (* The table lock is held across the stub call so that a concurrent Runtime.close either sees
     the new subscription or runs before it exists (and then the stub fails with Closed). *)
  with_lock rt.subs_lock (fun () ->
      let options = (capacity, overflow_code overflow, max_batch, label, spin_us, pattern) in
      let id = ok (start options) in
      let s =
        {
          id;
          owner = rt;
          message_name = name;
          closed;
          hooks_lock = Mutex.create ();
          hooks = [];
          hooks_ran = false;
        }
      in
      Hashtbl.replace rt.subs id s;
      s)

let subscribe_raw ?(capacity = 0) ?(overflow = Block) ?(max_batch = 0) ?label ?(spin_us = 0) ?pattern (rt : Runtime.t)
    ~type_id ~name (f : string -> unit) =
  let closed = Atomic.make false in
  let handler = make_handler ~message_name:name ~closed f in
  add_subscription ~capacity ~overflow ~max_batch ~label ~spin_us ~pattern rt ~name ~closed (fun options ->
      Ffi.subscribe rt.handle type_id options handler)

let subscribe_raw_with_topic ?(capacity = 0) ?(overflow = Block) ?(max_batch = 0) ?label ?(spin_us = 0) ?pattern
    (rt : Runtime.t) ~type_id ~name (f : string -> string option -> unit) =
  let closed = Atomic.make false in
  let handler = make_topic_handler ~message_name:name ~closed f in
  add_subscription ~capacity ~overflow ~max_batch ~label ~spin_us ~pattern rt ~name ~closed (fun options ->
      Ffi.subscribe_with_topic rt.handle type_id options handler)

let subscribe (type a) ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt
    (module M : MESSAGE with type t = a) (f : a -> unit) =
  let decode = M.decode in
  subscribe_raw ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt ~type_id:M.type_id ~name:M.name (fun payload ->
      match decode payload with Ok v -> f v | Error msg -> raise (Undecodable msg))

let subscribe_with_topic (type a) ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt
    (module M : MESSAGE with type t = a) (f : a -> string option -> unit) =
  let decode = M.decode in
  subscribe_raw_with_topic ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt ~type_id:M.type_id ~name:M.name
    (fun payload topic -> match decode payload with Ok v -> f v topic | Error msg -> raise (Undecodable msg))

let metrics rt (module M : MESSAGE) = Runtime.type_metrics rt M.type_id

let abi_version () =
  let v = Ffi.abi_version () in
  (v lsr 16, v land 0xffff)

let finaliser_destroys_pending = Ffi.deferred_destroys_pending

(* ---- request/reply ---- *)

module Service = struct
  type t = { rt : runtime; id : int; closed : bool Atomic.t; name : string }

  let id t = t.id
  let name t = t.name
  let is_closed t = Atomic.get t.closed || not (Ffi.runtime_is_open t.rt.handle)

  let close t =
    if Atomic.compare_and_set t.closed false true then
      match Ffi.unserve t.rt.handle t.id with
      | None -> ()
      | Some (code, _) when Status.of_code code = Closed || Status.of_code code = Unknown_subscription -> ()
      | Some e -> fail e
end

type 'a gathered = { replies : 'a list; failed : int; unanswered : int }

let pair_key ~request ~reply = (request lsl 16) lor reply

let serve (type q r) ?(capacity = 0) ?label rt (module Q : MESSAGE with type t = q) (module R : MESSAGE with type t = r)
    (f : q -> r) =
  if capacity < 0 then invalid_arg "Mycelium_native.serve: capacity must be >= 0";
  let handler payload =
    match Q.decode payload with
    | Error msg -> Error (Printf.sprintf "the %s request does not decode: %s" Q.name msg)
    | Ok request -> (
        match f request with
        | reply -> ( try Ok (R.encode reply) with e -> Error ("the reply does not encode: " ^ Printexc.to_string e))
        | exception e -> Error (Printexc.to_string e))
  in
  let name = match label with Some l -> l | None -> Q.name ^ "->" ^ R.name in
  let id = ok (Ffi.serve rt.handle (pair_key ~request:Q.type_id ~reply:R.type_id) handler capacity (Some name)) in
  { Service.rt; id; closed = Atomic.make false; name }

let timeout_ms_of timeout =
  if not (Float.is_finite timeout && timeout >= 0.) then
    invalid_arg (Printf.sprintf "Mycelium_native.request: timeout must be a finite number of seconds >= 0, not %g" timeout);
  int_of_float (Float.min (Float.ceil (timeout *. 1000.)) 4_294_967_294.)

let request_raw ?(timeout = 5.) rt ~request_type ~reply_type payload =
  match ok (Ffi.request rt.handle (pair_key ~request:request_type ~reply:reply_type) payload (timeout_ms_of timeout) false) with
  | [| reply |], _, _ -> reply
  | _ -> raise (Mycelium_error (Panic, "the stubs returned no reply for an answered request"))

let decode_reply (type r) (module R : MESSAGE with type t = r) payload =
  match R.decode payload with
  | Ok v -> v
  | Error msg -> raise (Mycelium_error (Decode, Printf.sprintf "the %s reply does not decode: %s" R.name msg))

let request (type q r) ?timeout rt (module Q : MESSAGE with type t = q) (module R : MESSAGE with type t = r) (msg : q) : r
    =
  decode_reply (module R) (request_raw ?timeout rt ~request_type:Q.type_id ~reply_type:R.type_id (Q.encode msg))

let request_all (type q r) ?(timeout = 5.) rt (module Q : MESSAGE with type t = q) (module R : MESSAGE with type t = r)
    (msg : q) : r gathered =
  let replies, failed, unanswered =
    ok (Ffi.request rt.handle (pair_key ~request:Q.type_id ~reply:R.type_id) (Q.encode msg) (timeout_ms_of timeout) true)
  in
  { replies = List.map (decode_reply (module R)) (Array.to_list replies); failed; unanswered }

module type SERVICE = sig
  val name : string

  module Request : MESSAGE
  module Reply : MESSAGE
end

let serve_service (type q r) ?capacity ?label rt (module S : SERVICE with type Request.t = q and type Reply.t = r) f =
  serve ?capacity ~label:(Option.value label ~default:S.name) rt (module S.Request) (module S.Reply) f

let call (type q r) ?timeout rt (module S : SERVICE with type Request.t = q and type Reply.t = r) (msg : q) : r =
  request ?timeout rt (module S.Request) (module S.Reply) msg

let call_all (type q r) ?timeout rt (module S : SERVICE with type Request.t = q and type Reply.t = r) (msg : q) :
    r gathered =
  request_all ?timeout rt (module S.Request) (module S.Reply) msg

module Log = Log
