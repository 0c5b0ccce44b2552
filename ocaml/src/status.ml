(* The C ABI's mycelium_status codes (rust/mycelium-ffi/src/status.rs), as a variant. *)

type t =
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

let of_code = function
  | 1 -> Null_pointer
  | 2 -> Invalid_argument
  | 3 -> Schema
  | 4 -> Schema_mismatch
  | 5 -> Unknown_type
  | 6 -> Decode
  | 7 -> Too_large
  | 8 -> Queue_full
  | 9 -> Closed
  | 10 -> Unknown_subscription
  | 11 -> Timeout
  | 12 -> Abi_mismatch
  | 13 -> Buffer_too_small
  | 14 -> Panic
  | 15 -> Wrong_thread
  | 16 -> Bridge
  | 17 -> No_responder
  | 18 -> Responder_failed
  | n -> Unknown n

let name = function
  | Null_pointer -> "MYCELIUM_ERR_NULL_POINTER"
  | Invalid_argument -> "MYCELIUM_ERR_INVALID_ARGUMENT"
  | Schema -> "MYCELIUM_ERR_SCHEMA"
  | Schema_mismatch -> "MYCELIUM_ERR_SCHEMA_MISMATCH"
  | Unknown_type -> "MYCELIUM_ERR_UNKNOWN_TYPE"
  | Decode -> "MYCELIUM_ERR_DECODE"
  | Too_large -> "MYCELIUM_ERR_TOO_LARGE"
  | Queue_full -> "MYCELIUM_ERR_QUEUE_FULL"
  | Closed -> "MYCELIUM_ERR_CLOSED"
  | Unknown_subscription -> "MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION"
  | Timeout -> "MYCELIUM_ERR_TIMEOUT"
  | Abi_mismatch -> "MYCELIUM_ERR_ABI_MISMATCH"
  | Buffer_too_small -> "MYCELIUM_ERR_BUFFER_TOO_SMALL"
  | Panic -> "MYCELIUM_ERR_PANIC"
  | Wrong_thread -> "MYCELIUM_ERR_WRONG_THREAD"
  | Bridge -> "MYCELIUM_ERR_BRIDGE"
  | No_responder -> "MYCELIUM_ERR_NO_RESPONDER"
  | Responder_failed -> "MYCELIUM_ERR_RESPONDER_FAILED"
  | Unknown n -> Printf.sprintf "MYCELIUM_STATUS_%d" n
