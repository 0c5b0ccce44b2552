(* Named topics from OCaml (docs/topics.md): publish ?topic, subscribe ?pattern, the reason given
   for malformed ones, and the topic handed to subscribe_with_topic callbacks. *)

open Support
module C = Contracts

let tick symbol ts = { C.TradeTick.symbol; price = 1.0; size = 1; ts_ns = Int64.of_int ts; side = 0 }

let patterns_filter_topics () =
  with_runtime (fun rt ->
      let every = Inbox.create () and btc = Inbox.create () and any = Inbox.create () in
      let subs =
        [
          M.subscribe rt (module C.TradeTick) (fun t -> Inbox.add every t.ts_ns);
          M.subscribe ~pattern:"ticks/BTC-USD" rt (module C.TradeTick) (fun t -> Inbox.add btc t.ts_ns);
          M.subscribe ~pattern:"ticks/*" rt (module C.TradeTick) (fun t -> Inbox.add any t.ts_ns);
        ]
      in
      M.publish ~topic:"ticks/BTC-USD" rt (module C.TradeTick) (tick "BTC-USD" 1);
      M.publish ~topic:"ticks/ETH-USD" rt (module C.TradeTick) (tick "ETH-USD" 2);
      M.publish rt (module C.TradeTick) (tick "X" 3);
      M.Runtime.flush rt;
      Alcotest.(check (list int64)) "no pattern: everything" [ 1L; 2L; 3L ] (Inbox.contents every);
      Alcotest.(check (list int64)) "ticks/BTC-USD" [ 1L ] (Inbox.contents btc);
      Alcotest.(check (list int64)) "ticks/*" [ 1L; 2L ] (Inbox.contents any);
      let reason f = match f () with _ -> "accepted" | exception M.Mycelium_error (M.Invalid_argument, m) -> m in
      let contains ~sub s =
        let n = String.length sub in
        let rec go i = i + n <= String.length s && (String.sub s i n = sub || go (i + 1)) in
        go 0
      in
      let r = reason (fun () -> M.publish ~topic:"ticks//x" rt (module C.TradeTick) (tick "X" 4)) in
      Alcotest.(check bool) ("bad topic: " ^ r) true (contains ~sub:"empty segment" r);
      let r = reason (fun () -> ignore (M.subscribe ~pattern:"a/>/b" rt (module C.TradeTick) ignore)) in
      Alcotest.(check bool) ("bad pattern: " ^ r) true (contains ~sub:"before its last segment" r);
      List.iter M.Subscription.close subs)

let callbacks_get_the_topic () =
  with_runtime (fun rt ->
      let typed = Inbox.create () and raw = Inbox.create () and plain = Inbox.create () in
      let subs =
        [
          M.subscribe_with_topic rt (module C.TradeTick) (fun t topic -> Inbox.add typed (t.ts_ns, topic));
          M.subscribe_raw_with_topic ~pattern:"ticks/*" rt ~type_id:C.TradeTick.type_id ~name:"TradeTick"
            (fun payload topic ->
              match C.TradeTick.decode payload with
              | Ok t -> Inbox.add raw (t.ts_ns, topic)
              | Error e -> failwith e);
          M.subscribe rt (module C.TradeTick) (fun t -> Inbox.add plain t.ts_ns);
        ]
      in
      M.publish ~topic:"ticks/BTC-USD" rt (module C.TradeTick) (tick "BTC-USD" 1);
      M.publish rt (module C.TradeTick) (tick "X" 2);
      M.publish ~topic:"ticks/ETH-USD" rt (module C.TradeTick) (tick "ETH-USD" 3);
      M.Runtime.flush rt;
      let seen = Alcotest.(list (pair int64 (option string))) in
      Alcotest.check seen "subscribe_with_topic"
        [ (1L, Some "ticks/BTC-USD"); (2L, None); (3L, Some "ticks/ETH-USD") ]
        (Inbox.contents typed);
      Alcotest.check seen "subscribe_raw_with_topic ~pattern:\"ticks/*\""
        [ (1L, Some "ticks/BTC-USD"); (3L, Some "ticks/ETH-USD") ]
        (Inbox.contents raw);
      Alcotest.(check (list int64)) "plain subscribe beside them" [ 1L; 2L; 3L ] (Inbox.contents plain);
      (* A topic the stubs could not read would count here, not crash. *)
      Alcotest.(check int) "no handler errors" 0 (M.metrics rt (module C.TradeTick)).handler_errors;
      List.iter M.Subscription.close subs)

(* The delivery allocates a message's payload, then its topic and the [Some]: a minor collection
   in between moves the payload, and a C local that is not a registered root would still point
   to the old copy. The callback then overwrites the whole (small) minor heap before it compares,
   so such a stale copy is garbage by the time it is read. Its first allocation varies in size,
   so that the collections fall at varying points of the deliveries (otherwise they settle into a
   cycle that seldom meets the topic's allocation). *)
let payloads_survive_collections_during_topic_allocation () =
  let n = 3000 and minor_words = 4096 in
  let payloads = Array.init n (fun i -> C.TradeTick.encode (tick (String.make 300 'p' ^ string_of_int i) i)) in
  let topics = Array.init n (fun i -> Printf.sprintf "ticks/%s%d" (String.make 200 't') i) in
  let overwrite_minor_heap i =
    ignore (Sys.opaque_identity (Bytes.make (8 * (i * 37 mod 251)) 'z'));
    for _ = 1 to (minor_words / 250) + 1 do
      ignore (Sys.opaque_identity (Bytes.make 2000 'z'))
    done
  in
  let saved = Gc.get () in
  Gc.set { saved with minor_heap_size = minor_words };
  Fun.protect ~finally:(fun () -> Gc.set saved) (fun () ->
      with_runtime (fun rt ->
          let next = ref 0 and wrong = ref 0 in
          let sub =
            M.subscribe_raw_with_topic rt ~type_id:C.TradeTick.type_id ~name:"TradeTick" (fun payload topic ->
                let i = !next in
                overwrite_minor_heap i;
                if payload <> payloads.(i) || topic <> Some topics.(i) then incr wrong;
                next := i + 1)
          in
          Array.iteri (fun i p -> M.publish_raw ~topic:topics.(i) rt ~type_id:C.TradeTick.type_id p) payloads;
          M.Runtime.flush rt;
          M.Subscription.close sub;
          Alcotest.(check int) "delivered" n !next;
          Alcotest.(check int) "payloads or topics that differ from what was published" 0 !wrong))

let tests =
  [
    Alcotest.test_case "patterns filter topics; bad ones say why" `Quick patterns_filter_topics;
    Alcotest.test_case "subscribe_with_topic: callbacks get each message's topic" `Quick callbacks_get_the_topic;
    Alcotest.test_case "subscribe_with_topic: payloads survive collections" `Quick
      payloads_survive_collections_during_topic_allocation;
  ]
