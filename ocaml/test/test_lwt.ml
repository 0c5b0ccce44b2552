(* The Lwt interface: streams (of messages, or of (message, topic) pairs) fed from delivery
   threads through Lwt_unix notifications. *)

open Support
module H = Handwritten
module ML = Mycelium_native_lwt

let stream_in_order () =
  with_runtime (fun rt ->
      let stream, sub = ML.subscribe_stream rt (module H.TradeTick) in
      let n = 300 in
      let received =
        Lwt_main.run
          (let open Lwt.Syntax in
           (* Publish from another system thread while the Lwt loop waits. *)
           let publisher = Thread.create (fun () -> for i = 1 to n do M.publish rt (module H.TradeTick) (H.tick i) done) () in
           let* first = ML.recv stream in
           let* rest = Lwt_stream.nget (n - 1) stream in
           Thread.join publisher;
           Lwt.return (first :: rest))
      in
      Alcotest.(check (list int)) "all messages, in order" (List.init n succ) (List.map (fun t -> t.H.TradeTick.size) received);
      M.Subscription.close sub)

let stream_ends_on_close () =
  with_runtime (fun rt ->
      let stream, sub = ML.subscribe_stream rt (module H.TradeTick) in
      for i = 1 to 5 do
        M.publish rt (module H.TradeTick) (H.tick i)
      done;
      M.Runtime.flush rt;
      M.Subscription.close sub;
      let all = Lwt_main.run (Lwt_stream.to_list stream) in
      Alcotest.(check (list int)) "what arrived before the close, then the end" [ 1; 2; 3; 4; 5 ]
        (List.map (fun t -> t.H.TradeTick.size) all);
      match Lwt_main.run (ML.recv stream) with
      | _ -> Alcotest.fail "recv after the end returned a value"
      | exception End_of_file -> ())

let stream_ends_on_runtime_close () =
  let rt = runtime () in
  let stream = ML.stream rt (module H.TextMessage) in
  M.publish rt (module H.TextMessage) { H.TextMessage.sender = "a"; body = "b"; sent_at_ns = 1L };
  M.Runtime.flush rt;
  M.Runtime.close rt;
  let all = Lwt_main.run (Lwt_stream.to_list stream) in
  Alcotest.(check (list string)) "one message then the end" [ "b" ] (List.map (fun t -> t.H.TextMessage.body) all)

(* A stream whose delivery thread spins (?spin_us) receives messages published later from another
   thread: each arrives after the spin ran out, so the thread must be woken from its sleep. *)
let stream_with_spin () =
  with_runtime (fun rt ->
      let stream, sub = ML.subscribe_stream ~spin_us:200 rt (module H.TradeTick) in
      let received =
        Lwt_main.run
          (let open Lwt.Syntax in
           let publisher =
             Thread.create
               (fun () ->
                 List.iter
                   (fun i ->
                     Thread.delay 0.05;
                     M.publish rt (module H.TradeTick) (H.tick i))
                   [ 1; 2; 3 ])
               ()
           in
           let timeout = Lwt.bind (Lwt_unix.sleep 10.) (fun () -> Lwt.fail_with "no message within 10 s") in
           let* got = Lwt.pick [ Lwt_stream.nget 3 stream; timeout ] in
           Thread.join publisher;
           Lwt.return got)
      in
      Alcotest.(check (list int)) "the delayed messages, in order" [ 1; 2; 3 ]
        (List.map (fun t -> t.H.TradeTick.size) received);
      M.Subscription.close sub;
      match ML.stream ~spin_us:10_001 rt (module H.TradeTick) with
      | _ -> Alcotest.fail "spin_us 10001 was accepted"
      | exception M.Mycelium_error (s, msg) ->
          Alcotest.check status "spin_us 10001" M.Invalid_argument s;
          check_contains "the message names the option" ~sub:"spin_us" msg)

(* subscribe_stream_with_topic: (message, topic) pairs in publish order, None for a publish
   without a topic, published from another thread while the Lwt loop waits. *)
let stream_with_topic_pairs () =
  with_runtime (fun rt ->
      let stream, sub = ML.subscribe_stream_with_topic rt (module H.TradeTick) in
      let n = 300 in
      let topic_of i = if i mod 3 = 0 then None else Some (Printf.sprintf "ticks/%d" (i mod 7)) in
      let received =
        Lwt_main.run
          (let open Lwt.Syntax in
           let publisher =
             Thread.create
               (fun () ->
                 for i = 1 to n do
                   M.publish ?topic:(topic_of i) rt (module H.TradeTick) (H.tick i)
                 done)
               ()
           in
           let* first = ML.recv stream in
           let* rest = Lwt_stream.nget (n - 1) stream in
           Thread.join publisher;
           Lwt.return (first :: rest))
      in
      Alcotest.(check (list (pair int (option string))))
        "every message with its topic, in order"
        (List.init n (fun i -> (i + 1, topic_of (i + 1))))
        (List.map (fun (t, topic) -> (t.H.TradeTick.size, topic)) received);
      M.Subscription.close sub;
      Alcotest.(check int) "nothing after the close" 0 (List.length (Lwt_main.run (Lwt_stream.to_list stream))))

(* stream_with_topic ?pattern: only the matching topics, each with its topic; the stream ends
   with the runtime. *)
let stream_with_topic_pattern () =
  let rt = runtime () in
  let stream = ML.stream_with_topic ~pattern:"ticks/*" rt (module H.TradeTick) in
  M.publish ~topic:"ticks/BTC-USD" rt (module H.TradeTick) (H.tick 1);
  M.publish rt (module H.TradeTick) (H.tick 2);
  M.publish ~topic:"ticks/ETH-USD" rt (module H.TradeTick) (H.tick 3);
  M.publish ~topic:"quotes/BTC-USD" rt (module H.TradeTick) (H.tick 4);
  M.Runtime.flush rt;
  M.Runtime.close rt;
  let all = Lwt_main.run (Lwt_stream.to_list stream) in
  Alcotest.(check (list (pair int (option string))))
    "the ticks/* messages with their topics, then the end"
    [ (1, Some "ticks/BTC-USD"); (3, Some "ticks/ETH-USD") ]
    (List.map (fun (t, topic) -> (t.H.TradeTick.size, topic)) all)

let tests =
  [
    Alcotest.test_case "stream delivers in order across threads" `Quick stream_in_order;
    Alcotest.test_case "stream ends after Subscription.close" `Quick stream_ends_on_close;
    Alcotest.test_case "stream ends after Runtime.close" `Quick stream_ends_on_runtime_close;
    Alcotest.test_case "stream with ?spin_us receives delayed messages" `Quick stream_with_spin;
    Alcotest.test_case "subscribe_stream_with_topic: (message, topic) pairs in order" `Quick stream_with_topic_pairs;
    Alcotest.test_case "stream_with_topic ?pattern: matching topics only" `Quick stream_with_topic_pattern;
  ]
