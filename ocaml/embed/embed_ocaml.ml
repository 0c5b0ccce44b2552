(* Guest side of the embedding test and benchmark (tests/embed-ocaml). The Rust host starts the
   OCaml runtime, then calls these through Callback.register'd names with the runtime lock held.

   Protocol: the host publishes TradeTick; this code answers each with a TextMessage whose body is
   "echo:<symbol>", and publishes its own TextMessages on request. It also serves RiskCheck
   (approving every order), for the request/reply round trip. *)

module M = Mycelium_native
module C = Contracts

type state = {
  rt : M.Runtime.t;
  sub : M.Subscription.t;
  risk : M.Service.t;  (* answers RiskCheck requests: approves every order *)
  ticks : int Atomic.t;
  echo : bool Atomic.t;
}

let state = ref None
let get () = match !state with Some s -> s | None -> failwith "mycelium_embed_attach was not called"

let attach address =
  let rt = M.Runtime.of_handle address (module C) in
  let ticks = Atomic.make 0 and echo = Atomic.make true in
  let sub =
    M.subscribe rt (module C.TradeTick) (fun t ->
        Atomic.incr ticks;
        if Atomic.get echo then
          M.publish rt (module C.TextMessage) { C.TextMessage.sender = "ocaml"; body = "echo:" ^ t.symbol; sent_at_ns = t.ts_ns })
  in
  let risk =
    M.serve rt (module C.RiskCheck.Request) (module C.RiskCheck.Reply) (fun (o : C.Order.t) ->
        { C.OrderDecision.order_id = o.order_id; approved = true; reason = ""; ts_ns = o.ts_ns })
  in
  state := Some { rt; sub; risk; ticks; echo }

(* [n] TextMessages "ocaml-<i>"; returns when all were published. *)
let publish_texts n =
  let s = get () in
  for i = 1 to n do
    M.publish s.rt (module C.TextMessage) { C.TextMessage.sender = "ocaml"; body = "ocaml-" ^ string_of_int i; sent_at_ns = Int64.of_int i }
  done

let ticks_received () = Atomic.get (get ()).ticks

(* Whether ticks are answered (the benchmark turns it off to time one direction only). *)
let set_echo on = Atomic.set (get ()).echo on

(* Waits until every tick published so far went through the callback. *)
let flush () = M.Runtime.flush (get ()).rt

(* Closes everything; returns how many ticks the callback saw. *)
let stop () =
  let s = get () in
  M.Subscription.close s.sub;
  M.Service.close s.risk;
  M.Runtime.close s.rt;
  state := None;
  Atomic.get s.ticks

let () =
  Callback.register "mycelium_embed_attach" attach;
  Callback.register "mycelium_embed_publish_texts" publish_texts;
  Callback.register "mycelium_embed_ticks_received" ticks_received;
  Callback.register "mycelium_embed_set_echo" set_echo;
  Callback.register "mycelium_embed_flush" flush;
  Callback.register "mycelium_embed_stop" stop
