(* The OCaml types of the stubs in ocaml/stubs/src/stubs.rs. Failures come back as values
   ((status code, message)), never as exceptions raised from Rust; Mycelium_native raises them. *)

type handle
(** A custom block owning a C runtime handle; its finaliser destroys a forgotten one. *)

type error = int * string

external runtime_create : string -> (handle, error) result = "mycelium_ml_runtime_create"
external runtime_attach : nativeint -> (handle, error) result = "mycelium_ml_runtime_attach"
external runtime_destroy : handle -> error option = "mycelium_ml_runtime_destroy"
external runtime_is_open : handle -> bool = "mycelium_ml_runtime_is_open"
external runtime_address : handle -> (nativeint, error) result = "mycelium_ml_runtime_address"
external bus_close : handle -> error option = "mycelium_ml_bus_close"
external verify_digest : handle -> string -> error option = "mycelium_ml_verify_digest"
external verify_description : handle -> string -> error option = "mycelium_ml_verify_description"
external schema_digest : handle -> (string, error) result = "mycelium_ml_schema_digest"
external schema_description : handle -> (string, error) result = "mycelium_ml_schema_description"
external publish : handle -> int -> string -> error option = "mycelium_ml_publish"
external publish_topic : handle -> int -> string -> string -> error option = "mycelium_ml_publish_topic"

type subscribe_options = int * int * int * string option * int * string option
(** [(capacity, policy, max_batch, label, spin_us, pattern)]. *)

external subscribe : handle -> int -> subscribe_options -> (string -> bool) -> (int, error) result
  = "mycelium_ml_subscribe"
(** [subscribe h type_id options handler]. [handler] becomes a GC root until the subscription's
    [drop]; it must not capture the runtime (see docs/ocaml.md). *)

external subscribe_with_topic :
  handle -> int -> subscribe_options -> (string -> string option -> bool) -> (int, error) result
  = "mycelium_ml_subscribe_with_topic"
(** [subscribe] whose handler also gets the topic each message was published with. *)

external unsubscribe : handle -> int -> error option = "mycelium_ml_unsubscribe"

(* Request/reply (ocaml/stubs/src/service.rs). [key] packs the pair: request lsl 16 lor reply. *)
external serve :
  handle -> int -> (string -> (string, string) result) -> int -> string option -> (int, error) result
  = "mycelium_ml_serve"

external unserve : handle -> int -> error option = "mycelium_ml_unserve"

external request : handle -> int -> string -> int -> bool -> (string array * int * int, error) result
  = "mycelium_ml_request"
external flush : handle -> int -> error option = "mycelium_ml_flush"
external type_metrics : handle -> int -> (int array, error) result = "mycelium_ml_type_metrics"
external metrics_json : handle -> (string, error) result = "mycelium_ml_metrics_json"
external metrics_prometheus : handle -> (string, error) result = "mycelium_ml_metrics_prometheus"

external enable_topic_metrics : handle -> int -> error option = "mycelium_ml_enable_topic_metrics"
(** [enable_topic_metrics h max_topics]; [max_topics] 0..0xFFFF_FFFF (the stub refuses others). *)

external deferred_destroys_pending : unit -> int = "mycelium_ml_deferred_destroys_pending"
external abi_version : unit -> int = "mycelium_ml_abi_version"

(* Socket bridges (ocaml/stubs/src/bridge.rs). Ids are the C ABI's; every one of these releases
   the runtime lock. *)

external bridge_listen : handle -> string -> string option -> int -> (int, error) result
  = "mycelium_ml_bridge_listen"
(** [bridge_listen h address token socket_mode]; [socket_mode] 0 is the default 0600. *)

external bridge_connect : handle -> string -> string option -> (int, error) result = "mycelium_ml_bridge_connect"

external bridge_wait : handle -> int -> int -> int -> error option = "mycelium_ml_bridge_wait"
(** [bridge_wait h id sessions timeout_ms]. *)

external bridge_close : handle -> int -> error option = "mycelium_ml_bridge_close"
external bridge_stats_json : handle -> int -> (string, error) result = "mycelium_ml_bridge_stats_json"
