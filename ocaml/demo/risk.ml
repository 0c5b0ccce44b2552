(* The demo's risk engine, running inside the Rust demo process (rust/mycelium-demo --risk ocaml).

   It serves RiskCheck on the host's bus (request/reply, docs/request-reply.md): the strategy
   asks about each order and gets an OrderDecision (same order_id). An order is refused when
   - its notional (qty * limit_price) is over [max_order_notional], or
   - it would take the symbol's net position, valued at the order's price, over
     [max_position_notional] either way (long or short).
   Approved orders count as filled at once, so they move the position; refused ones do not.
   The Rust-only mode applies the same rules (rust/mycelium-demo/src/rules.rs).

   The host starts the OCaml runtime and calls the functions registered at the bottom, holding
   the runtime lock; the service's handler runs on a responder thread of its own, one request at
   a time. *)

module M = Mycelium_native
module C = Contracts

let max_order_notional = 250_000.
let max_position_notional = 1_000_000.

(* Net position per symbol, in units (buys add, sells subtract). Only the handler touches it, and
   a service's handler answers one request at a time. *)
let positions : (string, int) Hashtbl.t = Hashtbl.create 16

let decide (o : C.Order.t) =
  let notional = float_of_int o.qty *. o.limit_price in
  let held = Option.value (Hashtbl.find_opt positions o.symbol) ~default:0 in
  let after = if o.side = 0 then held + o.qty else held - o.qty in
  let exposure = Float.abs (float_of_int after *. o.limit_price) in
  if notional > max_order_notional then
    Error (Printf.sprintf "notional %.0f over limit %.0f" notional max_order_notional)
  else if exposure > max_position_notional then
    Error (Printf.sprintf "position %s %.0f over limit %.0f" o.symbol exposure max_position_notional)
  else begin
    Hashtbl.replace positions o.symbol after;
    Ok ()
  end

let now_ns () = Int64.of_float (Unix.gettimeofday () *. 1e9)

(* The host passes the capacity before attaching: the requests that may wait for the service
   (a request arriving when it is full fails at once, and the requester sees why). *)
let capacity = ref 4096

type running = {
  rt : M.Runtime.t;
  svc : M.Service.t;
  handled : int Atomic.t;  (* requests answered *)
  sent : int Atomic.t;  (* replies given *)
}

let running = ref None

let get () =
  match !running with Some r -> r | None -> failwith "mycelium_risk_attach was not called"

let on_order ~sent ~handled (o : C.Order.t) =
  let approved, reason = match decide o with Ok () -> (true, "") | Error why -> (false, why) in
  Atomic.incr handled;
  Atomic.incr sent;
  { C.OrderDecision.order_id = o.order_id; approved; reason; ts_ns = now_ns () }

let attach address =
  if Option.is_some !running then failwith "mycelium_risk_attach was already called";
  let rt = M.Runtime.of_handle address (module C) in
  let handled = Atomic.make 0 and sent = Atomic.make 0 in
  let svc =
    M.serve ~capacity:!capacity ~label:"ocaml-risk" rt (module C.RiskCheck.Request) (module C.RiskCheck.Reply)
      (on_order ~sent ~handled)
  in
  running := Some { rt; svc; handled; sent }

let set_capacity n = if n < 1 then invalid_arg "capacity must be at least 1" else capacity := n

(* Stops the service (waiting for a running handler) and closes the runtime; idempotent. *)
let stop () =
  match !running with
  | None -> ()
  | Some r ->
      M.Service.close r.svc;
      M.Runtime.close r.rt

let () =
  Callback.register "mycelium_risk_set_capacity" set_capacity;
  Callback.register "mycelium_risk_attach" attach;
  Callback.register "mycelium_risk_orders_handled" (fun () -> Atomic.get (get ()).handled);
  Callback.register "mycelium_risk_decisions_sent" (fun () -> Atomic.get (get ()).sent);
  Callback.register "mycelium_risk_stop" stop
