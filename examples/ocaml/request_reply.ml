(* Request/reply in OCaml: a risk service that approves small orders, asked by [request], by
   [request_all] with a second service, and failing on an order it cannot judge.

   Build and run: see examples/README.md (scripts/test-ocaml.sh does both).
     dune build ./request_reply.exe && ./_build/default/request_reply.exe contracts.yaml
   Exits 0 only when every answer is the expected one. *)

module M = Mycelium_native
module C = Contracts

let risk_check (o : C.Order.t) =
  if o.qty > 1000 then failwith (Printf.sprintf "order %Ld: quantity %d is not plausible" o.order_id o.qty);
  let approved = o.qty <= 10 in
  { C.OrderDecision.order_id = o.order_id; approved; reason = (if approved then "" else "over 10"); ts_ns = 0L }

let order id qty = { C.Order.order_id = id; symbol = "BTC-USD"; side = 0; qty; limit_price = 64000.5; ts_ns = 0L }

let () =
  if Array.length Sys.argv <> 2 then (
    prerr_endline "usage: request_reply CONTRACTS.yaml";
    exit 2);
  let rt = M.Runtime.of_file Sys.argv.(1) in
  M.Runtime.verify rt (module C);
  let failures = ref [] in
  let expect what ok = if not ok then failures := what :: !failures in
  (* The generated service (services: in contracts.yaml) names its request and reply messages;
     serve_service / call take it, serve / request take the two message modules. *)
  let svc = M.serve_service rt (module C.RiskCheck) risk_check in
  let small = M.call rt (module C.RiskCheck) (order 1L 5) in
  let big = M.request rt (module C.Order) (module C.OrderDecision) (order 2L 50) in
  Printf.printf "order 1: approved=%b; order 2: approved=%b (%s)\n%!" small.approved big.approved big.reason;
  expect "decisions" (small.approved && small.order_id = 1L && (not big.approved) && big.order_id = 2L);
  (match M.request rt (module C.Order) (module C.OrderDecision) (order 3L 5000) with
  | _ -> expect "an implausible order was answered" false
  | exception M.Mycelium_error (M.Responder_failed, why) -> Printf.printf "order 3 failed as expected: %s\n%!" why);
  let backup = M.serve ~label:"backup" rt (module C.Order) (module C.OrderDecision) risk_check in
  let g = M.request_all rt (module C.Order) (module C.OrderDecision) (order 4L 1) in
  Printf.printf "order 4: %d answers, %d failed\n%!" (List.length g.replies) g.failed;
  expect "request_all" (List.length g.replies = 2 && g.failed = 0);
  M.Service.close backup;
  M.Service.close svc;
  M.Runtime.close rt;
  List.iter (fun f -> Printf.eprintf "FAILED: %s\n" f) !failures;
  exit (if !failures = [] then 0 else 1)
