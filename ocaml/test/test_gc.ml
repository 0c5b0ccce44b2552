(* The GC side of callbacks: roots survive collections and compaction during delivery, are
   released on close, and a forgotten runtime is finalised without crashing. *)

open Support
module H = Handwritten

let stress_during_delivery () =
  with_runtime (fun rt ->
      let got = Inbox.create () in
      let keep = ref [] in
      let _ =
        M.subscribe ~max_batch:16 rt (module H.TradeTick) (fun t ->
            (* Allocate on the delivery thread too, so minor and major GCs happen there. *)
            keep := Array.make 8 t.symbol :: !keep;
            if List.length !keep > 64 then keep := [];
            Inbox.add got (t.size, t.symbol))
      in
      let n = 3000 in
      for i = 1 to n do
        M.publish rt (module H.TradeTick) (H.tick ~symbol:(String.make (i mod 50) 'x' ^ string_of_int i) i);
        if i mod 500 = 0 then Gc.compact () else if i mod 100 = 0 then Gc.full_major () else if i mod 10 = 0 then Gc.minor ()
      done;
      M.Runtime.flush rt;
      Gc.compact ();
      let expected = List.init n (fun i -> (i + 1, String.make ((i + 1) mod 50) 'x' ^ string_of_int (i + 1))) in
      Alcotest.(check bool) "every message intact and in order" true (Inbox.contents got = expected))

(* A closure with a finaliser that flips a flag once the GC has collected it. *)
let tracked_callback () =
  let collected = Atomic.make false in
  let count = ref 0 in
  let f (_ : H.TradeTick.t) = incr count in
  Gc.finalise (fun _ -> Atomic.set collected true) f;
  (f, collected, count)

let root_released_on_close () =
  with_runtime (fun rt ->
      let collected =
        (* In a function so that no stack slot of this frame keeps [f] alive. *)
        let subscribe () =
          let f, collected, count = tracked_callback () in
          let sub = M.subscribe rt (module H.TradeTick) f in
          M.publish rt (module H.TradeTick) (H.tick 1);
          M.Runtime.flush rt;
          Alcotest.(check int) "delivered" 1 !count;
          Gc.full_major ();
          Alcotest.(check bool) "alive while subscribed" false (Atomic.get collected);
          (sub, collected)
        in
        let sub, collected = subscribe () in
        M.Subscription.close sub;
        collected
      in
      eventually ~what:"the callback to be collected after close" (fun () -> Atomic.get collected))

let root_released_on_runtime_close () =
  let rt = runtime () in
  let collected =
    let subscribe () =
      let f, collected, _ = tracked_callback () in
      ignore (M.subscribe rt (module H.TradeTick) f : M.Subscription.t);
      collected
    in
    subscribe ()
  in
  Gc.full_major ();
  Alcotest.(check bool) "alive while the runtime is open" false (Atomic.get collected);
  M.Runtime.close rt;
  eventually ~what:"the callback to be collected after Runtime.close" (fun () -> Atomic.get collected)

let forgotten_runtime_is_finalised () =
  let collected =
    let forget () =
      let rt = runtime () in
      let f, collected, count = tracked_callback () in
      ignore (M.subscribe rt (module H.TradeTick) f : M.Subscription.t);
      M.publish rt (module H.TradeTick) (H.tick 1);
      M.Runtime.flush rt;
      Alcotest.(check int) "delivered before being forgotten" 1 !count;
      collected
    in
    forget ()
  in
  (* The runtime's finaliser hands the handle to a background destroy, whose unsubscribe drops
     the callback's root from the delivery thread; only then can the callback be collected. *)
  eventually ~what:"the forgotten runtime's callback to be collected" (fun () -> Atomic.get collected);
  eventually ~what:"the background destroy to finish" (fun () -> M.finaliser_destroys_pending () = 0)

let many_short_subscriptions () =
  with_runtime (fun rt ->
      let total = ref 0 in
      for round = 1 to 100 do
        let sub = M.subscribe rt (module H.TradeTick) (fun t -> total := !total + t.size) in
        M.publish rt (module H.TradeTick) (H.tick round);
        M.Runtime.flush rt;
        M.Subscription.close sub;
        if round mod 25 = 0 then Gc.compact ()
      done;
      Alcotest.(check int) "each subscription got its message" (100 * 101 / 2) !total)

let tests =
  [
    (* Fills a Block queue: deadlocks where pubsub's slow-consumer test does. *)
    Alcotest.test_case "Gc.full_major/compact during delivery" `Quick (unless_deadlocked stress_during_delivery);
    Alcotest.test_case "Subscription.close releases the callback (Gc.finalise)" `Quick root_released_on_close;
    Alcotest.test_case "Runtime.close releases the callbacks (Gc.finalise)" `Quick root_released_on_runtime_close;
    Alcotest.test_case "a forgotten runtime is finalised without crashing" `Quick forgotten_runtime_is_finalised;
    Alcotest.test_case "100 subscriptions opened and closed" `Quick many_short_subscriptions;
  ]
