(* Named topics from OCaml (docs/topics.md): publish ?topic, subscribe ?pattern, and the
   reason given for malformed ones. *)

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

let tests = [ Alcotest.test_case "patterns filter topics; bad ones say why" `Quick patterns_filter_topics ]
