(* Named topics from OCaml (docs/topics.md): publish ?topic, subscribe ?pattern, the reason given
   for malformed ones, the topic handed to subscribe_with_topic callbacks, and per-topic metrics
   (Runtime.enable_topic_metrics). *)

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

(* Runtime.metrics_json's per-topic part: (type_id, name, topic, published, published_bytes) per
   entry of "topics", and "topics_untracked". *)
let topic_metrics rt =
  let open Yojson.Safe.Util in
  let json = Yojson.Safe.from_string (M.Runtime.metrics_json rt) in
  let entry t =
    ( t |> member "type_id" |> to_int,
      t |> member "name" |> to_string,
      t |> member "topic" |> to_string,
      t |> member "published" |> to_int,
      t |> member "published_bytes" |> to_int )
  in
  (json |> member "topics" |> to_list |> List.map entry, json |> member "topics_untracked" |> to_int)

let per_topic_metrics_are_opt_in_and_bounded () =
  let entries = Alcotest.(list (pair (triple int string string) (pair int int))) in
  let pack (id, name, topic, n, bytes) = ((id, name, topic), (n, bytes)) in
  let check what want want_untracked (topics, untracked) =
    Alcotest.check entries (what ^ ": topics") (List.map pack want) (List.map pack topics);
    Alcotest.(check int) (what ^ ": topics_untracked") want_untracked untracked
  in
  with_runtime (fun rt ->
      let publish ?topic symbol = M.publish ?topic rt (module C.TradeTick) (tick symbol 1) in
      publish ~topic:"ticks/A" "A";
      check "off by default" [] 0 (topic_metrics rt);
      M.Runtime.enable_topic_metrics rt 1;
      publish ~topic:"ticks/A" "A";
      publish ~topic:"ticks/B" "B";
      publish ~topic:"ticks/A" "A";
      publish "plain";
      let bytes = String.length (C.TradeTick.encode (tick "A" 1)) in
      check "limit 1" [ (C.TradeTick.type_id, "TradeTick", "ticks/A", 2, 2 * bytes) ] 1 (topic_metrics rt);
      check_contains "prometheus" ~sub:"mycelium_topic_messages_published_total{" (M.Runtime.metrics_prometheus rt);
      let refused n =
        match M.Runtime.enable_topic_metrics rt n with
        | () -> Alcotest.failf "max_topics %d was accepted" n
        | exception Invalid_argument msg -> check_contains (string_of_int n) ~sub:"max_topics" msg
      in
      List.iter refused [ -1; 0x1_0000_0000; max_int ];
      check "unchanged by refused limits" [ (C.TradeTick.type_id, "TradeTick", "ticks/A", 2, 2 * bytes) ] 1
        (topic_metrics rt);
      M.Runtime.enable_topic_metrics rt 0;
      check "0 turns it off and forgets" [] 0 (topic_metrics rt);
      publish ~topic:"ticks/A" "A";
      check "still off" [] 0 (topic_metrics rt);
      (* The whole uint32_t range is accepted. *)
      M.Runtime.enable_topic_metrics rt 0xFFFF_FFFF;
      M.Runtime.enable_topic_metrics rt 0);
  let rt = runtime () in
  M.Runtime.close rt;
  let s, _ = expect_error (fun () -> M.Runtime.enable_topic_metrics rt 1) in
  Alcotest.check status "after Runtime.close" M.Closed s

let tests =
  [
    Alcotest.test_case "patterns filter topics; bad ones say why" `Quick patterns_filter_topics;
    Alcotest.test_case "subscribe_with_topic: callbacks get each message's topic" `Quick callbacks_get_the_topic;
    Alcotest.test_case "subscribe_with_topic: payloads survive collections" `Quick
      payloads_survive_collections_during_topic_allocation;
    Alcotest.test_case "Runtime.enable_topic_metrics: opt-in, bounded, 0 clears" `Quick
      per_topic_metrics_are_opt_in_and_bounded;
  ]
