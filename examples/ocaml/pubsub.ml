(* The smallest complete OCaml program on Mycelium: a runtime with a bus of its own, a callback
   subscription to TradeTick, three published ticks, [flush] to wait until the callback saw
   them, a clean close.

   Build and run: see examples/README.md (scripts/test-ocaml.sh does both).
     dune build ./pubsub.exe && ./_build/default/pubsub.exe contracts.yaml
   Exits 0 only when the callback received exactly what was published, in order. *)

module M = Mycelium_native
module C = Contracts

let () =
  if Array.length Sys.argv <> 2 then (
    prerr_endline "usage: pubsub CONTRACTS.yaml";
    exit 2);
  let rt = M.Runtime.of_file Sys.argv.(1) in
  (* Refuse to run against a schema other than the one Contracts was generated from. *)
  M.Runtime.verify rt (module C);
  (* The callback runs on the subscription's delivery thread: guard what it shares. *)
  let lock = Mutex.create () and received = ref [] in
  let sub =
    M.subscribe ~label:"ocaml-sample" rt (module C.TradeTick) (fun t ->
        Printf.printf "ocaml callback got %s %s %d @ %.1f\n%!" t.symbol
          (if t.side = 0 then "buy" else "sell")
          t.size t.price;
        Mutex.lock lock;
        received := t :: !received;
        Mutex.unlock lock)
  in
  let sent =
    List.mapi
      (fun i symbol ->
        let i = i + 1 in
        { C.TradeTick.symbol; price = 100. *. float i; size = i; ts_ns = Int64.of_int i; side = i mod 2 })
      [ "BTC-USD"; "ETH-USD"; "SOL-USD" ]
  in
  (* Each publish is validated against the schema before any subscriber sees it. *)
  List.iter (M.publish rt (module C.TradeTick)) sent;
  Printf.printf "ocaml published %d TradeTicks (schema digest %s)\n%!" (List.length sent)
    (String.sub (M.Runtime.schema_digest rt) 0 12);
  M.Runtime.flush rt;
  let m = M.metrics rt (module C.TradeTick) in
  Printf.printf "bus metrics: TradeTick published %d, delivered %d\n" m.published m.delivered;
  M.Subscription.close sub;
  M.Runtime.close rt;
  Mutex.lock lock;
  let got = List.rev !received in
  Mutex.unlock lock;
  if got = sent then print_endline "ok: received what was published"
  else (
    Printf.eprintf "mismatch: published %d ticks, received %d (or different values)\n"
      (List.length sent) (List.length got);
    exit 1)
