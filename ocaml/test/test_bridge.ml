(* Socket bridges: two runtimes of this process joined through a Unix socket and through TCP,
   refusals (token, schema), argument errors, lifecycle; and a Rust peer in another process
   (`mycelium bridge`, see Rust_peer below). Every wait is bounded; the bounds only turn a hang
   into a failure, no assertion depends on how long something took. *)

open Support
module H = Handwritten

(* Unix socket paths are limited to 107 bytes: keep them short, in the temporary directory. *)
let sock_path name =
  Filename.concat (Filename.get_temp_dir_name ()) (Printf.sprintf "myc-ml-%d-%s.sock" (Unix.getpid ()) name)

(* Polls [cond] for up to about [seconds] (what has no blocking wait: a subscription reaching
   the peer, messages crossing a socket). *)
let within ?(seconds = 30.) ~what cond =
  let deadline = Unix.gettimeofday () +. seconds in
  let rec go () =
    if cond () then ()
    else if Unix.gettimeofday () > deadline then Alcotest.failf "gave up after %.0f s waiting for %s" seconds what
    else begin
      Thread.delay 0.002;
      go ()
    end
  in
  go ()

let subscribers rt type_id = (M.Runtime.type_metrics rt type_id).subscribers

(* The peer's interest in a type has arrived once the bridge holds a forwarding subscription
   for it on this side's bus; only then does a publish here cross. *)
let wait_for_peer_interest rt type_id =
  within ~what:(Printf.sprintf "the peer's subscription to type %d" type_id) (fun () -> subscribers rt type_id > 0)

let stats b = Yojson.Safe.from_string (M.Bridge.stats_json b)

let stat b name =
  match Yojson.Safe.Util.(stats b |> member "stats" |> member name) with
  | `Int n -> n
  | j -> Alcotest.failf "stats.%s is %s" name (Yojson.Safe.to_string j)

let with_pair f = with_runtime (fun a -> with_runtime (fun b -> f a b))

let texts n = List.init n (fun i -> { H.TextMessage.sender = "a"; body = Printf.sprintf "text-%d" i; sent_at_ns = Int64.of_int i })

(* Both directions between two runtimes of this process, counts reconciled with the bridge's
   own counters on both sides. *)
let in_process_unix () =
  with_pair @@ fun a b ->
  let path = sock_path "pair" in
  let listener = M.Runtime.listen a ("unix:" ^ path) in
  Alcotest.(check bool) "the socket file exists" true (Sys.file_exists path);
  Alcotest.(check (list string)) "endpoints" [ "unix:" ^ path ] (M.Bridge.endpoints listener);
  Alcotest.(check int) "permission mode 0600 by default" 0o600 (Unix.stat path).st_perm;
  let ticks = Inbox.create () and got_texts = Inbox.create () in
  let _ = M.subscribe a (module H.TradeTick) (Inbox.add ticks) in
  let _ = M.subscribe b (module H.TextMessage) (Inbox.add got_texts) in
  let connector = M.Runtime.connect b ("unix:" ^ path) in
  M.Bridge.wait connector;
  M.Bridge.wait listener;
  Alcotest.(check (list string)) "a connector's endpoint" [ "unix:" ^ path ] (M.Bridge.endpoints connector);
  wait_for_peer_interest b H.TradeTick.type_id;
  wait_for_peer_interest a H.TextMessage.type_id;
  let sent_ticks = List.init 300 (fun i -> H.tick ~symbol:(Printf.sprintf "S%d" i) i) in
  let sent_texts = texts 120 in
  List.iter (M.publish b (module H.TradeTick)) sent_ticks;
  List.iter (M.publish a (module H.TextMessage)) sent_texts;
  within ~what:"300 ticks at the listener" (fun () -> Inbox.length ticks >= 300);
  within ~what:"120 texts at the connector" (fun () -> Inbox.length got_texts >= 120);
  Alcotest.(check bool) "ticks: same values, in publish order" true (Inbox.contents ticks = sent_ticks);
  Alcotest.(check bool) "texts: same values, in publish order" true (Inbox.contents got_texts = sent_texts);
  Alcotest.(check int) "connector: messages out" 300 (stat connector "messages_out");
  Alcotest.(check int) "connector: messages in" 120 (stat connector "messages_in");
  Alcotest.(check int) "listener: messages in" 300 (stat listener "messages_in");
  Alcotest.(check int) "listener: messages out" 120 (stat listener "messages_out");
  Alcotest.(check int) "listener: one session" 1 (stat listener "sessions");
  (* Closing is idempotent, and a closed bridge says so. *)
  M.Bridge.close connector;
  M.Bridge.close connector;
  Alcotest.(check bool) "connector closed" true (M.Bridge.is_closed connector);
  let s, _ = expect_error (fun () -> M.Bridge.wait connector) in
  Alcotest.check status "wait after close" M.Closed s;
  let s, _ = expect_error (fun () -> M.Bridge.stats_json connector) in
  Alcotest.check status "stats after close" M.Closed s;
  (* Runtime.close closes the listener, which removes its socket file. *)
  Alcotest.(check bool) "listener open" false (M.Bridge.is_closed listener);
  M.Runtime.close a;
  Alcotest.(check bool) "listener closed with its runtime" true (M.Bridge.is_closed listener);
  Alcotest.(check bool) "socket file removed" false (Sys.file_exists path);
  M.Bridge.close listener;
  let s, _ = expect_error (fun () -> M.Bridge.stats_json listener) in
  Alcotest.check status "stats after Runtime.close" M.Closed s

(* TCP port 0: the endpoint reports the port the system chose, and a peer can use it. *)
let tcp_port_zero () =
  with_pair @@ fun a b -> (
  let listener = M.Runtime.listen a "tcp:127.0.0.1:0" in
  match M.Bridge.endpoints listener with
  | [ ep ] ->
      let port =
        match String.rindex_opt ep ':' with
        | Some i -> int_of_string_opt (String.sub ep (i + 1) (String.length ep - i - 1))
        | None -> None
      in
      (match port with
      | Some p when p > 0 && String.length ep > 14 && String.sub ep 0 14 = "tcp:127.0.0.1:" -> ()
      | _ -> Alcotest.failf "expected tcp:127.0.0.1:<port>, got %s" ep);
      let got = Inbox.create () in
      let _ = M.subscribe a (module H.TradeTick) (Inbox.add got) in
      let connector = M.Runtime.connect b ep in
      M.Bridge.wait connector;
      wait_for_peer_interest b H.TradeTick.type_id;
      M.publish b (module H.TradeTick) (H.tick 42);
      within ~what:"the tick over TCP" (fun () -> Inbox.length got >= 1);
      Alcotest.(check (list int)) "one tick, size 42" [ 42 ] (List.map (fun t -> t.H.TradeTick.size) (Inbox.contents got))
  | l -> Alcotest.failf "expected one endpoint, got [%s]" (String.concat "; " l))

let token_refusal () =
  with_pair @@ fun a b ->
  let address = "unix:" ^ sock_path "token" in
  let listener = M.Runtime.listen ~token:"s3cret" a address in
  let refused token =
    let c = M.Runtime.connect ?token b address in
    let s, msg = expect_error (fun () -> M.Bridge.wait c) in
    Alcotest.check status "refused" M.Bridge s;
    check_contains "the reason" ~sub:"token" msg;
    (* A refused connector has stopped; closing it is still fine. *)
    M.Bridge.close c
  in
  refused (Some "wrong");
  refused None;
  within ~what:"the listener counting two refusals" (fun () -> stat listener "rejected" = 2);
  let c = M.Runtime.connect ~token:"s3cret" b address in
  M.Bridge.wait c;
  M.Bridge.wait listener;
  Alcotest.(check int) "the right token gets a session" 1 (stat listener "sessions")

let schema_mismatch () =
  with_runtime @@ fun a -> (
  let yaml = Lazy.force contracts_yaml in
  match replace_first ~sub:"- price: f64" ~by:"- price: f32" yaml with
  | None -> Alcotest.fail "contracts.yaml has no '- price: f64' line to alter"
  | Some altered ->
      let other = M.Runtime.create ~schema_yaml:altered in
      Fun.protect ~finally:(fun () -> M.Runtime.close other) @@ fun () ->
      let address = "unix:" ^ sock_path "schema" in
      let _listener = M.Runtime.listen a address in
      let c = M.Runtime.connect other address in
      let s, msg = expect_error (fun () -> M.Bridge.wait c) in
      Alcotest.check status "refused" M.Bridge s;
      check_contains "names the message and field" ~sub:"TradeTick: field price" msg)

let nobody_listening () =
  with_runtime @@ fun a ->
  let c = M.Runtime.connect a ("unix:" ^ sock_path "nobody") in
  (* Not an error: the connector keeps trying, as for a peer that starts later. *)
  let s, msg = expect_error (fun () -> M.Bridge.wait ~timeout_ms:100 c) in
  Alcotest.check status "timeout" M.Timeout s;
  check_contains "says how many sessions" ~sub:"0 of 1" msg;
  M.Bridge.close c

let bad_arguments () =
  with_runtime @@ fun a ->
  let invalid what f =
    let s, msg = expect_error f in
    Alcotest.check status what M.Invalid_argument s;
    Alcotest.(check bool) (what ^ ": a message") true (msg <> "")
  in
  invalid "no scheme" (fun () -> M.Runtime.listen a "nonsense");
  invalid "not loopback" (fun () -> M.Runtime.listen a "tcp:0.0.0.0:0");
  invalid "NUL in the address" (fun () -> M.Runtime.listen a "unix:/tmp/a\000b");
  invalid "NUL in the token" (fun () -> M.Runtime.connect ~token:"a\000b" a "unix:/tmp/x.sock");
  invalid "empty token" (fun () -> M.Runtime.listen ~token:"" a ("unix:" ^ sock_path "empty-token"));
  (match M.Runtime.listen ~socket_mode:0o1777 a ("unix:" ^ sock_path "mode") with
  | _ -> Alcotest.fail "socket_mode 0o1777 accepted"
  | exception Invalid_argument _ -> ());
  (* A path that is not a socket is never replaced. *)
  let file = sock_path "regular-file" in
  let oc = open_out file in
  close_out oc;
  Fun.protect ~finally:(fun () -> Sys.remove file) @@ fun () ->
  let s, msg = expect_error (fun () -> M.Runtime.listen a ("unix:" ^ file)) in
  Alcotest.check status "a regular file" M.Bridge s;
  check_contains "names the path" ~sub:file msg;
  Alcotest.(check bool) "the file is still there" true (Sys.file_exists file);
  (* Nor is a socket where a live bridge listens. *)
  let path = sock_path "taken" in
  let _first = M.Runtime.listen a ("unix:" ^ path) in
  let s, _ = expect_error (fun () -> M.Runtime.listen a ("unix:" ^ path)) in
  Alcotest.check status "address in use" M.Bridge s;
  let c = M.Runtime.connect a ("unix:" ^ path) in
  match M.Bridge.wait ~sessions:(-1) c with
  | () -> Alcotest.fail "sessions -1 accepted"
  | exception Invalid_argument _ -> ()

let socket_mode_and_odd_paths () =
  with_runtime @@ fun a ->
  let path = sock_path "mode" in
  let first = M.Runtime.listen ~socket_mode:0o660 a ("unix:" ^ path) in
  Alcotest.(check int) "mode 0660" 0o660 (Unix.stat path).st_perm;
  M.Bridge.close first;
  Alcotest.(check bool) "close removes the socket" false (Sys.file_exists path);
  (* Quotes, backslashes, control characters and UTF-8 come back unchanged through the JSON. *)
  let odd = sock_path "q\"b\\s\t\001 \xc3\xa9" in
  let l = M.Runtime.listen a ("unix:" ^ odd) in
  Alcotest.(check (list string)) "endpoint with escapes" [ "unix:" ^ odd ] (M.Bridge.endpoints l);
  Alcotest.(check bool) "bridge ids are distinct" true (M.Bridge.id l <> M.Bridge.id first);
  Alcotest.(check string) "address kept" ("unix:" ^ odd) (M.Bridge.address l)

let status_code () =
  Alcotest.(check string) "name" "MYCELIUM_ERR_BRIDGE" (M.status_name M.Bridge)

let tests =
  [
    Alcotest.test_case "two runtimes over a Unix socket, both directions, counts reconciled" `Quick in_process_unix;
    Alcotest.test_case "TCP port 0: endpoints give the port" `Quick tcp_port_zero;
    Alcotest.test_case "a wrong or missing token is refused" `Quick token_refusal;
    Alcotest.test_case "a schema mismatch is refused, naming the message" `Quick schema_mismatch;
    Alcotest.test_case "wait times out while nobody listens" `Quick nobody_listening;
    Alcotest.test_case "bad addresses, tokens and paths" `Quick bad_arguments;
    Alcotest.test_case "socket mode and paths that need escaping" `Quick socket_mode_and_odd_paths;
    Alcotest.test_case "status Bridge" `Quick status_code;
  ]
