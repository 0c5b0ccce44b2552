(* NATS through the bridge entry points: [Runtime.connect rt "nats://..."] joins a runtime's bus
   to a real nats-server (Debian's, started here on a free loopback port). Two runtimes of this
   process exchange messages through it in both directions, counts reconciled with the joins'
   own counters; then the errors a user can make. The suite fails, not skips, without
   nats-server: scripts/test-ocaml.sh installs it. *)

open Support
module H = Handwritten

let nats_binary () =
  let on_path =
    String.split_on_char ':' (Option.value ~default:"" (Sys.getenv_opt "PATH"))
    |> List.map (fun dir -> Filename.concat dir "nats-server")
    |> List.find_opt Sys.file_exists
  in
  match on_path with
  | Some p -> p
  | None when Sys.file_exists "/usr/sbin/nats-server" -> "/usr/sbin/nats-server"
  | None -> Alcotest.fail "nats-server is not installed (Debian: apt-get install nats-server)"

let free_port () =
  let s = Unix.socket Unix.PF_INET Unix.SOCK_STREAM 0 in
  Fun.protect ~finally:(fun () -> Unix.close s) @@ fun () ->
  Unix.bind s (Unix.ADDR_INET (Unix.inet_addr_loopback, 0));
  match Unix.getsockname s with Unix.ADDR_INET (_, port) -> port | _ -> assert false

(* Runs [f url] with a nats-server listening on a free loopback port, killed afterwards. *)
let with_server ?(config = "") f =
  let port = free_port () in
  let conf = Filename.temp_file "myc-ml-nats" ".conf" in
  let oc = open_out conf in
  Printf.fprintf oc "listen: 127.0.0.1:%d\n%s\n" port config;
  close_out oc;
  let devnull = Unix.openfile "/dev/null" [ Unix.O_WRONLY ] 0 in
  let pid = Unix.create_process (nats_binary ()) [| "nats-server"; "-c"; conf |] Unix.stdin devnull devnull in
  Unix.close devnull;
  Fun.protect
    ~finally:(fun () ->
      Unix.kill pid Sys.sigkill;
      ignore (Unix.waitpid [] pid);
      Sys.remove conf)
  @@ fun () ->
  let deadline = Unix.gettimeofday () +. 20. in
  let rec ready () =
    let s = Unix.socket Unix.PF_INET Unix.SOCK_STREAM 0 in
    match Unix.connect s (Unix.ADDR_INET (Unix.inet_addr_loopback, port)) with
    | () -> Unix.close s
    | exception Unix.Unix_error _ ->
        Unix.close s;
        if Unix.gettimeofday () > deadline then Alcotest.fail "nats-server did not start";
        Thread.delay 0.02;
        ready ()
  in
  ready ();
  f port (Printf.sprintf "nats://127.0.0.1:%d" port)

let stat j name =
  match Yojson.Safe.Util.(Yojson.Safe.from_string (M.Bridge.stats_json j) |> member "stats" |> member name) with
  | `Int n -> n
  | v -> Alcotest.failf "stats.%s is %s" name (Yojson.Safe.to_string v)

let two_runtimes () =
  with_server @@ fun _ url ->
  with_runtime @@ fun a ->
  with_runtime @@ fun b ->
  let ticks = Inbox.create () and texts = Inbox.create () and own_texts = Inbox.create () in
  let _ = M.subscribe a (module H.TradeTick) (Inbox.add ticks) in
  (* a hears its own texts locally: NATS must not echo them back a second time. *)
  let _ = M.subscribe a (module H.TextMessage) (Inbox.add own_texts) in
  let _ = M.subscribe b (module H.TextMessage) (Inbox.add texts) in
  let ja = M.Runtime.connect a url and jb = M.Runtime.connect b url in
  Alcotest.(check (list string)) "endpoints" [ url ] (M.Bridge.endpoints ja);
  (* Ready: connected, and the server has every subscription the bus had. *)
  M.Bridge.wait ja;
  M.Bridge.wait jb;
  let sent_ticks = List.init 250 (fun i -> H.tick ~symbol:(Printf.sprintf "S%d" i) i) in
  let sent_texts =
    List.init 90 (fun i -> { H.TextMessage.sender = "a"; body = Printf.sprintf "text-%d" i; sent_at_ns = Int64.of_int i })
  in
  List.iter (M.publish b (module H.TradeTick)) sent_ticks;
  List.iter (M.publish a (module H.TextMessage)) sent_texts;
  Test_bridge.within ~what:"250 ticks at a" (fun () -> Inbox.length ticks >= 250);
  Test_bridge.within ~what:"90 texts at b" (fun () -> Inbox.length texts >= 90);
  Alcotest.(check bool) "ticks: same values, in publish order" true (Inbox.contents ticks = sent_ticks);
  Alcotest.(check bool) "texts: same values, in publish order" true (Inbox.contents texts = sent_texts);
  Alcotest.(check int) "a received every tick once" 250 (stat ja "received");
  Alcotest.(check int) "b received every text once" 90 (stat jb "received");
  Alcotest.(check int) "nothing refused" 0 (stat ja "refused");
  Thread.delay 0.2;
  Alcotest.(check int) "no echo: a's texts reached a once" 90 (Inbox.length own_texts);
  M.Bridge.close ja;
  Alcotest.(check bool) "closed" true (M.Bridge.is_closed ja);
  let s, _ = expect_error (fun () -> M.Bridge.stats_json ja) in
  Alcotest.check status "stats after close" M.Closed s;
  M.Runtime.close b;
  Alcotest.(check bool) "closed with its runtime" true (M.Bridge.is_closed jb)

let errors () =
  with_server ~config:"authorization { token: \"ml-s3cret\" }" @@ fun port url ->
  with_runtime @@ fun rt ->
  let j = M.Runtime.connect ~token:"ml-s3cret" rt url in
  M.Bridge.wait j;
  M.Bridge.close j;
  let s, msg = expect_error (fun () -> M.Runtime.connect ~token:"nope" rt url) in
  Alcotest.check status "a wrong token" M.Bridge s;
  check_contains "says the credentials were refused" ~sub:"refused our credentials" msg;
  Alcotest.(check bool) "the secret is not in the message" false (contains ~sub:"nope" msg);
  let s, _ = expect_error (fun () -> M.Runtime.listen rt url) in
  Alcotest.check status "listening on nats://" M.Invalid_argument s;
  let closed = free_port () in
  let s, msg = expect_error (fun () -> M.Runtime.connect rt (Printf.sprintf "nats://127.0.0.1:%d" closed)) in
  Alcotest.check status "a server that is down" M.Bridge s;
  check_contains "names the server" ~sub:(string_of_int closed) msg;
  ignore port

(* `mycelium bridge --nats` (Rust, another process) publishes ticks to this bus and counts the
   texts this bus publishes; both sides' counts reconcile. *)
let rust_cli_peer () =
  let module P = Test_bridge_process in
  let module C = Contracts in
  let cli = P.cli () in
  with_server @@ fun _ url ->
  with_runtime @@ fun rt ->
  let ticks = Inbox.create () in
  let _ = M.subscribe rt (module C.TradeTick) (Inbox.add ticks) in
  let join = M.Runtime.connect rt url in
  (* Ready before the peer starts: core NATS delivers only to subscribers already there. *)
  M.Bridge.wait ~timeout_ms:30_000 join;
  let n_ticks = 300 and n_texts = 120 in
  let child =
    P.Child.spawn cli
      [|
        "bridge"; "--schema"; Filename.concat (Lazy.force root) "contracts.yaml"; "--nats"; url;
        "--publish-json"; "TradeTick"; {|{"symbol": "RS", "price": 2.5, "size": {i}, "ts_ns": 7, "side": 1}|};
        "--count"; string_of_int n_ticks; "--subscribe"; "TextMessage"; "--expect"; string_of_int n_texts; "--stats";
      |]
  in
  Fun.protect ~finally:(fun () -> P.Child.cleanup child) @@ fun () ->
  let deadline = Unix.gettimeofday () +. 60. in
  (match P.Child.read_line child ~deadline with
  | Some l when l = "joined " ^ url -> ()
  | l -> Alcotest.failf "expected 'joined %s', the peer printed %s; stderr:\n%s" url (Option.value ~default:"nothing" l) (P.Child.stderr child));
  List.iter
    (fun i -> M.publish rt (module C.TextMessage) { C.TextMessage.sender = "ocaml"; body = Printf.sprintf "t%d" i; sent_at_ns = Int64.of_int i })
    (List.init n_texts Fun.id);
  Test_bridge.within ~what:"the Rust peer's ticks" (fun () -> Inbox.length ticks >= n_ticks);
  Alcotest.(check (list int)) "ticks: every {i}, in order, once" (List.init n_ticks Fun.id)
    (List.map (fun t -> t.C.TradeTick.size) (Inbox.contents ticks));
  let lines = P.Child.read_all child ~deadline [] in
  (match P.Child.wait_exit child ~deadline with
  | Unix.WEXITED 0 -> ()
  | _ -> Alcotest.failf "the peer failed; stdout:\n%s\nstderr:\n%s" (String.concat "\n" lines) (P.Child.stderr child));
  Alcotest.(check bool) "the peer received every text" true (List.mem (Printf.sprintf "received %d" n_texts) lines);
  let peer =
    match List.filter (P.starts_with ~prefix:"stats ") lines with
    | [ l ] -> Yojson.Safe.(from_string (P.after ~prefix:"stats " l) |> Util.member "stats")
    | l -> Alcotest.failf "expected one stats line, got %d" (List.length l)
  in
  let count name = Yojson.Safe.Util.(peer |> member name |> to_int) in
  Alcotest.(check int) "peer: sent" n_ticks (count "sent");
  Alcotest.(check int) "peer: received" n_texts (count "received");
  Alcotest.(check int) "ours: received" n_ticks (stat join "received");
  Alcotest.(check int) "ours: sent" n_texts (stat join "sent")

let tests =
  [
    Alcotest.test_case "a Rust peer process (mycelium bridge --nats), counts reconciled" `Quick rust_cli_peer;
    Alcotest.test_case "two runtimes through one NATS server, counts reconciled" `Quick two_runtimes;
    Alcotest.test_case "token refused, listen refused, server down" `Quick errors;
  ]
