(* Publishing and subscribing: delivery, order, both directions between handles, callbacks that
   raise, close from inside a callback, overflow policies. *)

open Support
module H = Handwritten

let round_trip () =
  with_runtime (fun rt ->
      let got = Inbox.create () in
      let sub = M.subscribe rt (module H.TradeTick) (Inbox.add got) in
      let sent = List.init 500 (fun i -> H.tick ~symbol:(Printf.sprintf "SYM-%d" i) ~price:(float_of_int i /. 4.) i) in
      List.iter (M.publish rt (module H.TradeTick)) sent;
      M.Runtime.flush rt;
      Alcotest.(check int) "all delivered" 500 (Inbox.length got);
      Alcotest.(check bool) "same values, in publish order" true (Inbox.contents got = sent);
      M.Subscription.close sub)

let types_are_separate () =
  with_runtime (fun rt ->
      let ticks = Inbox.create () and texts = Inbox.create () in
      let _ = M.subscribe rt (module H.TradeTick) (Inbox.add ticks) in
      let _ = M.subscribe rt (module H.TextMessage) (Inbox.add texts) in
      M.publish rt (module H.TextMessage) { H.TextMessage.sender = "ocaml"; body = "h\000i \xe2\x82\xac"; sent_at_ns = -1L };
      M.publish rt (module H.TradeTick) (H.tick 7);
      M.Runtime.flush rt;
      Alcotest.(check int) "one tick" 1 (Inbox.length ticks);
      match Inbox.contents texts with
      | [ t ] ->
          Alcotest.(check string) "body with NUL and UTF-8" "h\000i \xe2\x82\xac" t.body;
          Alcotest.(check int64) "u64 max round-trips" (-1L) t.sent_at_ns
      | l -> Alcotest.failf "expected one text, got %d" (List.length l))

let schema_of rt =
  let digest = M.Runtime.schema_digest rt and canonical = M.Runtime.schema_description rt in
  (module struct
    let schema_digest = digest
    let schema_canonical = canonical
  end : M.SCHEMA)

(* Two handles onto one bus, as an OCaml adapter attached to a Rust host sees it. *)
let both_ways_between_handles () =
  with_runtime (fun host ->
      let guest = M.Runtime.of_handle (M.Runtime.address host) (schema_of host) in
      Fun.protect ~finally:(fun () -> M.Runtime.close guest) @@ fun () ->
      let at_host = Inbox.create () and at_guest = Inbox.create () in
      let _ = M.subscribe host (module H.TextMessage) (Inbox.add at_host) in
      let _ = M.subscribe guest (module H.TradeTick) (Inbox.add at_guest) in
      M.publish host (module H.TradeTick) (H.tick 1);
      M.publish guest (module H.TextMessage) { H.TextMessage.sender = "guest"; body = "hi"; sent_at_ns = 5L };
      M.Runtime.flush host;
      M.Runtime.flush guest;
      Alcotest.(check int) "guest got the host's tick" 1 (Inbox.length at_guest);
      Alcotest.(check (list string)) "host got the guest's text" [ "hi" ]
        (List.map (fun t -> t.H.TextMessage.body) (Inbox.contents at_host)))

exception Boom of int

let raising_callbacks () =
  with_runtime (fun rt ->
      let reported = Inbox.create () in
      M.set_callback_error_reporter (fun ~message_name exn _ -> Inbox.add reported (message_name, exn));
      Fun.protect ~finally:(fun () -> M.set_callback_error_reporter M.default_callback_error_reporter)
      @@ fun () ->
      let ok = Inbox.create () in
      let _ =
        M.subscribe ~max_batch:7 rt (module H.TradeTick) (fun t ->
            if t.size mod 3 = 0 then raise (Boom t.size) else Inbox.add ok t.size)
      in
      for i = 1 to 30 do
        M.publish rt (module H.TradeTick) (H.tick i)
      done;
      M.Runtime.flush rt;
      let expected_ok = List.filter (fun i -> i mod 3 <> 0) (List.init 30 succ) in
      Alcotest.(check (list int)) "delivery went on after each exception" expected_ok (Inbox.contents ok);
      Alcotest.(check int) "each exception counted" 10 (M.metrics rt (module H.TradeTick)).handler_errors;
      Alcotest.(check (list int)) "each exception reported with its message name" (List.init 10 (fun i -> 3 * (i + 1)))
        (List.map
           (function "TradeTick", Boom n -> n | name, e -> Alcotest.failf "unexpected report %s %s" name (Printexc.to_string e))
           (Inbox.contents reported)))

let close_inside_callback () =
  with_runtime (fun rt ->
      let got = Inbox.create () in
      let sub = ref None in
      let s =
        M.subscribe ~max_batch:64 rt (module H.TradeTick) (fun t ->
            Inbox.add got t.size;
            if t.size = 3 then Option.iter M.Subscription.close !sub)
      in
      sub := Some s;
      (* Published before the first delivery can run: the whole batch is queued, so the
         subscription must stop in the middle of it. *)
      for i = 1 to 50 do
        M.publish rt (module H.TradeTick) (H.tick i)
      done;
      M.Runtime.flush rt;
      Alcotest.(check (list int)) "nothing after the close" [ 1; 2; 3 ] (Inbox.contents got);
      Alcotest.(check bool) "closed" true (M.Subscription.is_closed s);
      (* Closing again from outside is harmless. *)
      M.Subscription.close s)

let runtime_close_inside_callback () =
  let rt = runtime () in
  let got = Inbox.create () and other = Inbox.create () in
  (* Another subscription whose delivery thread must be joined by the close. *)
  let _ = M.subscribe rt (module H.TextMessage) (fun t -> Inbox.add other t.body) in
  let _ =
    M.subscribe ~max_batch:64 rt (module H.TradeTick) (fun t ->
        Inbox.add got t.size;
        if t.size = 2 then M.Runtime.close rt)
  in
  M.publish rt (module H.TextMessage) { H.TextMessage.sender = "a"; body = "before"; sent_at_ns = 0L };
  M.Runtime.flush rt;
  (* The close races with this loop: publishes after it fail with Closed. *)
  (try
     for i = 1 to 20 do
       M.publish rt (module H.TradeTick) (H.tick i)
     done
   with M.Mycelium_error (M.Closed, _) -> ());
  eventually ~what:"the callback to close the runtime" (fun () -> not (M.Runtime.is_open rt));
  Alcotest.(check (list int)) "no call after the close" [ 1; 2 ] (Inbox.contents got);
  Alcotest.(check (list string)) "the other subscription was served, then ended" [ "before" ] (Inbox.contents other);
  let s, _ = expect_error (fun () -> M.publish rt (module H.TradeTick) (H.tick 99)) in
  Alcotest.check status "publish after the close" M.Closed s

let callbacks_may_publish_and_not_flush () =
  with_runtime (fun rt ->
      let echoes = Inbox.create () and flush_status = Inbox.create () in
      let _ = M.subscribe rt (module H.TextMessage) (fun t -> Inbox.add echoes t.body) in
      let _ =
        M.subscribe rt (module H.TradeTick) (fun t ->
            (match M.Runtime.flush rt with
            | () -> Inbox.add flush_status None
            | exception M.Mycelium_error (s, _) -> Inbox.add flush_status (Some s));
            M.publish rt (module H.TextMessage) { sender = "echo"; body = t.symbol; sent_at_ns = 0L })
      in
      M.publish rt (module H.TradeTick) (H.tick ~symbol:"ECHO" 1);
      M.Runtime.flush rt;
      M.Runtime.flush rt;
      Alcotest.(check (list string)) "echo published from a callback" [ "ECHO" ] (Inbox.contents echoes);
      Alcotest.(check (list (option status))) "flush from a callback" [ Some M.Wrong_thread ] (Inbox.contents flush_status))

(* A callback held on a mutex keeps the queue full, whatever the scheduling. *)
let with_stuck_subscriber rt ~overflow f =
  let gate = Mutex.create () and got = Inbox.create () in
  Mutex.lock gate;
  let entered = Inbox.create () in
  let sub =
    M.subscribe ~capacity:1 ~max_batch:1 ~overflow rt (module H.TradeTick) (fun t ->
        Inbox.add entered ();
        Mutex.lock gate;
        Mutex.unlock gate;
        Inbox.add got t.size)
  in
  M.publish rt (module H.TradeTick) (H.tick 1);
  (* Wait until the callback holds message 1, so the queue (capacity 1) is empty again. *)
  eventually ~what:"the first delivery" (fun () -> Inbox.length entered = 1);
  let result = f () in
  Mutex.unlock gate;
  M.Runtime.flush rt;
  M.Subscription.close sub;
  (result, Inbox.contents got)

let overflow_fail () =
  with_runtime (fun rt ->
      let outcome, got =
        with_stuck_subscriber rt ~overflow:M.Fail_publish (fun () ->
            M.publish rt (module H.TradeTick) (H.tick 2);
            expect_error (fun () -> M.publish rt (module H.TradeTick) (H.tick 3)))
      in
      Alcotest.check status "second queued message refused" M.Queue_full (fst outcome);
      Alcotest.(check (list int)) "the refused one never arrives" [ 1; 2 ] got)

let overflow_drop_oldest () =
  with_runtime (fun rt ->
      let (), got =
        with_stuck_subscriber rt ~overflow:M.Drop_oldest (fun () ->
            List.iter (fun i -> M.publish rt (module H.TradeTick) (H.tick i)) [ 2; 3; 4 ])
      in
      Alcotest.(check (list int)) "only the newest queued message survives" [ 1; 4 ] got;
      Alcotest.(check int) "drops counted" 2 (M.metrics rt (module H.TradeTick)).dropped)

(* Publishing into a full Block queue waits with the runtime lock released: the stuck callback
   (another thread) must be able to take the lock and finish, or this deadlocks. *)
let blocked_publish_releases_the_lock () =
  with_runtime (fun rt ->
      let got = Inbox.create () in
      let _ =
        M.subscribe ~capacity:1 ~max_batch:1 rt (module H.TradeTick) (fun t ->
            (* Allocates and runs OCaml: needs the runtime lock. *)
            Inbox.add got (String.concat "" [ t.symbol; string_of_int t.size ]))
      in
      for i = 1 to 200 do
        M.publish rt (module H.TradeTick) (H.tick ~symbol:"S" i)
      done;
      M.Runtime.flush rt;
      Alcotest.(check int) "every message, none dropped" 200 (Inbox.length got))

(* An OCaml thread publishes many messages into a full Block queue (capacity 1) whose consumer,
   an OCaml callback, is slower than the publisher. [publish] keeps the runtime lock while there
   is room, so it must give the lock up while it waits for room, or the callback (which needs
   the lock) never runs and nothing moves again: a deadlock.

   The callback also runs the GC while the publisher waits: each payload is a fresh string (the
   encoded message) that nothing references once [publish] holds it, and [publish] no longer
   copies it; the library must be done with it before it lets the lock go. A minor collection
   reuses the string's space and a compaction may free its chunk, so a late read would deliver
   garbage (or, under valgrind, read freed memory). *)
let slow_consumer_scenario ~messages () =
  with_runtime (fun rt ->
      let got = Inbox.create () in
      let sub =
        M.subscribe ~capacity:1 ~max_batch:1 rt (module H.TextMessage) (fun t ->
            (* Allocating work with the lock held: slower than one publish. *)
            ignore (Sys.opaque_identity (List.init 300 (fun i -> string_of_int i)));
            if Int64.rem t.sent_at_ns 50L = 0L then Gc.compact () else Gc.minor ();
            Inbox.add got t)
      in
      let body i = Printf.sprintf "body-%d-%s" i (String.make (i mod 61) 'x') in
      let publisher =
        Thread.create
          (fun () ->
            for i = 1 to messages do
              M.publish rt (module H.TextMessage) { sender = "publisher"; body = body i; sent_at_ns = Int64.of_int i }
            done)
          ()
      in
      Thread.join publisher;
      M.Runtime.flush rt;
      M.Subscription.close sub;
      let delivered = Inbox.contents got in
      (* Plain failures, not Alcotest checks: this also runs in a child process, which reports
         the exception's text. *)
      if List.length delivered <> messages then
        failwith (Printf.sprintf "delivered %d messages, expected %d" (List.length delivered) messages);
      List.iteri
        (fun k (t : H.TextMessage.t) ->
          let i = k + 1 in
          if t.sent_at_ns <> Int64.of_int i || t.body <> body i || t.sender <> "publisher" then
            failwith (Printf.sprintf "message %d arrived as {sender=%S; body=%S; sent_at_ns=%Ld}" i t.sender t.body t.sent_at_ns))
        delivered)

(* A callback that recurses without bound overflows its delivery thread's stack. OCaml turns that
   into Stack_overflow (on an OCaml Thread as on the main one), which must reach the callback error
   reporter and count as a handler error like any exception, with delivery going on after it. A
   delivery thread without the alternate signal stack OCaml's SIGSEGV handler runs on was killed
   by SIGSEGV instead, and the process with it, hence a child process. Twice, so the second
   overflow also finds the handler and its stack ready. *)
let stack_overflow_scenario () =
  with_runtime (fun rt ->
      let reported = Inbox.create () in
      M.set_callback_error_reporter (fun ~message_name:_ exn _ -> Inbox.add reported exn);
      Fun.protect ~finally:(fun () -> M.set_callback_error_reporter M.default_callback_error_reporter)
      @@ fun () ->
      let rec depth n = if n < 0 then n else 1 + depth (Sys.opaque_identity (n + 1)) in
      let got = Inbox.create () in
      let _ =
        M.subscribe ~max_batch:1 rt (module H.TradeTick) (fun t ->
            if t.symbol = "DEEP" then ignore (Sys.opaque_identity (depth 0)) else Inbox.add got t.size)
      in
      List.iter
        (fun i -> M.publish rt (module H.TradeTick) (if i = 0 then H.tick ~symbol:"DEEP" 0 else H.tick i))
        [ 0; 1; 2; 0; 3 ];
      M.Runtime.flush rt;
      (* Plain failures: the child reports the exception's text. *)
      if Inbox.contents got <> [ 1; 2; 3 ] then
        failwith
          (Printf.sprintf "delivered [%s], expected [1; 2; 3]"
             (String.concat "; " (List.map string_of_int (Inbox.contents got))));
      (match Inbox.contents reported with
      | [ Stack_overflow; Stack_overflow ] -> ()
      | l -> failwith ("reported [" ^ String.concat "; " (List.map Printexc.to_string l) ^ "], expected two Stack_overflow"));
      let errors = (M.metrics rt (module H.TradeTick)).handler_errors in
      if errors <> 2 then failwith (Printf.sprintf "%d handler errors counted, expected 2" errors))

(* What a child process of the test executable may be asked to run (see Support.run_in_child). *)
let child_scenarios =
  [ ("slow-consumer", slow_consumer_scenario ~messages:3000); ("stack-overflow", stack_overflow_scenario) ]

let slow_consumer_in_child () =
  deadlock_free := false;
  run_in_child "slow-consumer";
  deadlock_free := true

let subscriptions_from_threads () =
  with_runtime (fun rt ->
      let got = Inbox.create () in
      let workers =
        List.init 4 (fun w ->
            Thread.create
              (fun () ->
                let sub = M.subscribe rt (module H.TradeTick) (fun t -> if t.side = w then Inbox.add got t.size) in
                for i = 1 to 50 do
                  M.publish rt (module H.TradeTick) (H.tick ~side:w i)
                done;
                M.Runtime.flush rt;
                M.Subscription.close sub)
              ())
      in
      List.iter Thread.join workers;
      (* Each worker counts only its own side, all published after it subscribed. *)
      Alcotest.(check int) "every worker's own messages" 200 (Inbox.length got))

(* ?spin_us: the delivery thread polls its empty queue that long before sleeping. Two bursts with
   a pause longer than the spin in between, so the thread both catches messages while spinning and
   is woken from its sleep. *)
let spin_us_delivers () =
  with_runtime (fun rt ->
      let got = Inbox.create () and raw = Inbox.create () in
      let sub = M.subscribe ~spin_us:200 rt (module H.TradeTick) (fun t -> Inbox.add got t.size) in
      let raw_sub = M.subscribe_raw ~spin_us:10_000 rt ~type_id:H.TradeTick.type_id ~name:"raw" (Inbox.add raw) in
      for i = 1 to 10 do
        M.publish rt (module H.TradeTick) (H.tick i)
      done;
      Thread.delay 0.05;
      for i = 11 to 20 do
        M.publish rt (module H.TradeTick) (H.tick i);
        if i mod 5 = 0 then Thread.delay 0.01
      done;
      M.Runtime.flush rt;
      Alcotest.(check (list int)) "every message, in publish order" (List.init 20 succ) (Inbox.contents got);
      Alcotest.(check int) "the raw subscription (spin_us at the limit) too" 20 (Inbox.length raw);
      M.Subscription.close sub;
      M.Subscription.close raw_sub)

let spin_us_out_of_range () =
  with_runtime (fun rt ->
      let refused what f =
        let s, msg = expect_error f in
        Alcotest.check status (what ^ ": status") M.Invalid_argument s;
        check_contains (what ^ ": the message names the option") ~sub:"spin_us" msg
      in
      refused "10001" (fun () -> M.subscribe ~spin_us:10_001 rt (module H.TradeTick) ignore);
      refused "10001, raw" (fun () -> M.subscribe_raw ~spin_us:10_001 rt ~type_id:H.TradeTick.type_id ~name:"raw" ignore);
      (* Beyond u32: refused by the stubs before the library sees it. *)
      refused "2^40" (fun () -> M.subscribe ~spin_us:(1 lsl 40) rt (module H.TradeTick) ignore);
      (match M.subscribe ~spin_us:(-1) rt (module H.TradeTick) ignore with
      | _ -> Alcotest.fail "a negative spin_us was accepted"
      | exception Invalid_argument msg -> check_contains "negative" ~sub:"spin_us" msg);
      Alcotest.(check int) "no subscription left behind" 0 (M.metrics rt (module H.TradeTick)).subscribers)

let tests =
  [
    Alcotest.test_case "publish/subscribe round trip in order" `Quick round_trip;
    Alcotest.test_case "types are delivered separately" `Quick types_are_separate;
    Alcotest.test_case "both ways between two handles on one bus" `Quick both_ways_between_handles;
    Alcotest.test_case "exceptions in callbacks are reported and counted" `Quick raising_callbacks;
    Alcotest.test_case "close from inside the callback" `Quick close_inside_callback;
    Alcotest.test_case "Runtime.close from inside a callback" `Quick runtime_close_inside_callback;
    Alcotest.test_case "callbacks may publish; flush from one fails" `Quick callbacks_may_publish_and_not_flush;
    Alcotest.test_case "overflow Fail_publish" `Quick overflow_fail;
    Alcotest.test_case "overflow Drop_oldest" `Quick overflow_drop_oldest;
    Alcotest.test_case "a thread publishing into a slower callback's full queue (child process)" `Quick
      slow_consumer_in_child;
    Alcotest.test_case "a blocked publish releases the runtime lock" `Quick (unless_deadlocked blocked_publish_releases_the_lock);
    Alcotest.test_case "a thread publishing into a slower callback's full queue, GC meanwhile" `Quick
      (unless_deadlocked (slow_consumer_scenario ~messages:500));
    Alcotest.test_case "subscribe and publish from several threads" `Quick subscriptions_from_threads;
    Alcotest.test_case "unbounded recursion in a callback is a Stack_overflow (child process)" `Quick (fun () ->
        run_in_child "stack-overflow");
    Alcotest.test_case "?spin_us: delivery in order, with pauses" `Quick spin_us_delivers;
    Alcotest.test_case "?spin_us above 10000 is refused, naming spin_us" `Quick spin_us_out_of_range;
  ]
