(* Request/reply from OCaml: serve, request, request_all, failures (a raising handler, no
   responder, a timeout), concurrent requesters, Lwt. Waits are bounded only to turn a hang
   into a failure. *)

open Support
module C = Contracts

let order ?(qty = 1) order_id =
  { C.Order.order_id = Int64.of_int order_id; symbol = "BTC-USD"; side = 0; qty; limit_price = 100.5; ts_ns = 0L }

let decide (o : C.Order.t) =
  let approved = o.qty <= 10 in
  { C.OrderDecision.order_id = o.order_id; approved; reason = (if approved then "" else "too big"); ts_ns = 1L }

let status_of f = match f () with _ -> None | exception M.Mycelium_error (s, msg) -> Some (s, msg)

let round_trip () =
  with_runtime (fun rt ->
      let svc = M.serve rt (module C.RiskCheck.Request) (module C.RiskCheck.Reply) decide in
      let d = M.request ~timeout:10. rt (module C.Order) (module C.OrderDecision) (order 7) in
      Alcotest.(check int64) "order id" 7L d.order_id;
      Alcotest.(check bool) "approved" true d.approved;
      let d = M.request ~timeout:10. rt (module C.Order) (module C.OrderDecision) (order ~qty:50 8) in
      Alcotest.(check (pair bool string)) "refused" (false, "too big") (d.approved, d.reason);
      M.Service.close svc;
      M.Service.close svc;
      Alcotest.(check bool) "closed" true (M.Service.is_closed svc))

let failures_are_typed () =
  with_runtime (fun rt ->
      (match status_of (fun () -> M.request ~timeout:10. rt (module C.Order) (module C.OrderDecision) (order 1)) with
      | Some (M.No_responder, _) -> ()
      | _ -> Alcotest.fail "expected No_responder");
      let flaky (o : C.Order.t) = if o.order_id = 13L then failwith "unlucky order" else decide o in
      let svc = M.serve rt (module C.Order) (module C.OrderDecision) flaky in
      (match status_of (fun () -> M.request ~timeout:10. rt (module C.Order) (module C.OrderDecision) (order 13)) with
      | Some (M.Responder_failed, msg) ->
          Alcotest.(check bool) ("the reason is the exception: " ^ msg) true
            (let sub = "unlucky order" in
             let n = String.length sub in
             let rec go i = i + n <= String.length msg && (String.sub msg i n = sub || go (i + 1)) in
             go 0)
      | _ -> Alcotest.fail "expected Responder_failed");
      let d = M.request ~timeout:10. rt (module C.Order) (module C.OrderDecision) (order 14) in
      Alcotest.(check int64) "the service goes on" 14L d.order_id;
      M.Service.close svc;
      let release = Mutex.create () in
      Mutex.lock release;
      let slow o =
        Mutex.lock release;
        Mutex.unlock release;
        decide o
      in
      let svc = M.serve rt (module C.Order) (module C.OrderDecision) slow in
      (match status_of (fun () -> M.request ~timeout:0.2 rt (module C.Order) (module C.OrderDecision) (order 2)) with
      | Some (M.Timeout, _) -> ()
      | _ -> Alcotest.fail "expected Timeout");
      Mutex.unlock release;
      M.Service.close svc)

let gather_and_concurrency () =
  with_runtime (fun rt ->
      let tagged tag (o : C.Order.t) = { (decide o) with reason = tag } in
      let a = M.serve rt (module C.Order) (module C.OrderDecision) (tagged "a") in
      let b = M.serve rt (module C.Order) (module C.OrderDecision) (tagged "b") in
      let broken = M.serve rt (module C.Order) (module C.OrderDecision) (fun _ -> failwith "down") in
      let g = M.request_all ~timeout:10. rt (module C.Order) (module C.OrderDecision) (order 5) in
      Alcotest.(check (list string)) "both answers" [ "a"; "b" ]
        (List.sort compare (List.map (fun (d : C.OrderDecision.t) -> d.reason) g.replies));
      Alcotest.(check (pair int int)) "failed, unanswered" (1, 0) (g.failed, g.unanswered);
      M.Service.close broken;
      M.Service.close b;
      let errors = Atomic.make 0 in
      let worker base =
        for i = 0 to 49 do
          let d = M.request ~timeout:30. rt (module C.Order) (module C.OrderDecision) (order (base + i)) in
          if d.order_id <> Int64.of_int (base + i) then Atomic.incr errors
        done
      in
      let threads = List.init 4 (fun k -> Thread.create worker (k * 1000)) in
      List.iter Thread.join threads;
      Alcotest.(check int) "every requester got its own answer" 0 (Atomic.get errors);
      M.Service.close a)

let lwt_request () =
  with_runtime (fun rt ->
      let svc = M.serve rt (module C.Order) (module C.OrderDecision) decide in
      let ticks = ref 0 in
      let rec ticker () = incr ticks; Lwt.bind (Lwt_unix.sleep 0.001) ticker in
      let d =
        Lwt_main.run
          (Lwt.pick
             [
               Lwt.map Option.some (Mycelium_native_lwt.request ~timeout:10. rt (module C.Order) (module C.OrderDecision) (order 3));
               Lwt.map (fun () -> None) (ticker ());
             ])
      in
      M.Service.close svc;
      match d with
      | Some d -> Alcotest.(check int64) "Lwt answer" 3L d.order_id
      | None -> Alcotest.fail "no answer")

(* The generated descriptor (services: in contracts.yaml) in place of the two message modules. *)
let service_descriptor () =
  with_runtime (fun rt ->
      (match status_of (fun () -> M.call ~timeout:10. rt (module C.RiskCheck) (order 1)) with
      | Some (M.No_responder, _) -> ()
      | _ -> Alcotest.fail "expected No_responder before serve_service");
      let svc = M.serve_service rt (module C.RiskCheck) decide in
      Alcotest.(check string) "labelled with the service's name" C.RiskCheck.name (M.Service.name svc);
      let d = M.call ~timeout:10. rt (module C.RiskCheck) (order ~qty:50 21) in
      Alcotest.(check (triple int64 bool string)) "call" (21L, false, "too big") (d.order_id, d.approved, d.reason);
      let g = M.call_all ~timeout:10. rt (module C.RiskCheck) (order 22) in
      Alcotest.(check (list int64)) "call_all" [ 22L ] (List.map (fun (d : C.OrderDecision.t) -> d.order_id) g.replies);
      let d = Lwt_main.run (Mycelium_native_lwt.call ~timeout:10. rt (module C.RiskCheck) (order 23)) in
      Alcotest.(check int64) "Lwt call" 23L d.order_id;
      M.Service.close svc)

let tests =
  [
    Alcotest.test_case "round trip and close" `Quick round_trip;
    Alcotest.test_case "no responder, a raising handler, a timeout" `Quick failures_are_typed;
    Alcotest.test_case "request_all and concurrent requesters" `Quick gather_and_concurrency;
    Alcotest.test_case "Lwt request" `Quick lwt_request;
    Alcotest.test_case "generated service descriptor: serve_service, call, call_all" `Quick service_descriptor;
  ]
