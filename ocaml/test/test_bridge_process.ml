(* A Rust peer in another process: `mycelium bridge` (the CLI built by cargo) listens on a Unix
   socket, publishes TradeTicks once this process subscribes and counts the TextMessages this
   process publishes; both sides' counts are reconciled exactly.

   The CLI is $MYCELIUM_CLI, or target/debug/mycelium of the repository (scripts/test-ocaml.sh
   builds it and sets the variable). The test fails when it is missing: a skipped cross-process
   test would pass silently in CI. *)

open Support
module C = Contracts

let cli () =
  let path =
    match Sys.getenv_opt "MYCELIUM_CLI" with
    | Some p -> p
    | None ->
        let target =
          match Sys.getenv_opt "CARGO_TARGET_DIR" with
          | Some d -> d
          | None -> Filename.concat (Lazy.force root) "target"
        in
        Filename.concat (Filename.concat target "debug") "mycelium"
  in
  match Unix.access path [ Unix.X_OK ] with
  | () -> path
  | exception Unix.Unix_error _ ->
      Alcotest.failf
        "the mycelium CLI is not at %s: build it with `cargo build -p mycelium-codegen --bin mycelium` or set \
         MYCELIUM_CLI (scripts/test-ocaml.sh does both)"
        path

(* A child process whose standard output is read line by line with a deadline. *)
module Child = struct
  type t = { pid : int; out : Unix.file_descr; buf : Buffer.t; stderr_file : string; mutable status : Unix.process_status option }

  let spawn prog args =
    let stderr_file = Filename.temp_file "myc-ml-peer" ".stderr" in
    let err = Unix.openfile stderr_file [ Unix.O_WRONLY; Unix.O_TRUNC ] 0o600 in
    let out_r, out_w = Unix.pipe ~cloexec:true () in
    let pid =
      Fun.protect
        ~finally:(fun () ->
          Unix.close out_w;
          Unix.close err)
        (fun () -> Unix.create_process prog (Array.append [| prog |] args) Unix.stdin out_w err)
    in
    { pid; out = out_r; buf = Buffer.create 4096; stderr_file; status = None }

  let stderr t = try read_file t.stderr_file with Sys_error _ -> "(unreadable)"

  (* Reads more output; false at end of file. *)
  let fill t ~deadline =
    let left = deadline -. Unix.gettimeofday () in
    if left <= 0. then Alcotest.failf "the peer printed nothing more in time; its stderr:\n%s" (stderr t);
    match Unix.select [ t.out ] [] [] left with
    | [], _, _ -> Alcotest.failf "the peer printed nothing more in time; its stderr:\n%s" (stderr t)
    | _ ->
        let chunk = Bytes.create 4096 in
        let n = Unix.read t.out chunk 0 4096 in
        Buffer.add_subbytes t.buf chunk 0 n;
        n > 0

  let take_line t =
    let s = Buffer.contents t.buf in
    match String.index_opt s '\n' with
    | None -> None
    | Some i ->
        Buffer.clear t.buf;
        Buffer.add_string t.buf (String.sub s (i + 1) (String.length s - i - 1));
        Some (String.sub s 0 i)

  let rec read_line t ~deadline =
    match take_line t with
    | Some l -> Some l
    | None -> if fill t ~deadline then read_line t ~deadline else None

  let rec read_all t ~deadline acc =
    match read_line t ~deadline with Some l -> read_all t ~deadline (l :: acc) | None -> List.rev acc

  let wait_exit t ~deadline =
    let rec go () =
      match Unix.waitpid [ Unix.WNOHANG ] t.pid with
      | 0, _ ->
          if Unix.gettimeofday () > deadline then Alcotest.failf "the peer did not exit in time; its stderr:\n%s" (stderr t);
          Thread.delay 0.01;
          go ()
      | _, st ->
          t.status <- Some st;
          st
    in
    go ()

  (* Leaves no process behind, whatever happened. *)
  let cleanup t =
    if t.status = None then begin
      (try Unix.kill t.pid Sys.sigkill with Unix.Unix_error _ -> ());
      ignore (Unix.waitpid [] t.pid)
    end;
    Unix.close t.out;
    try Sys.remove t.stderr_file with Sys_error _ -> ()
end

let starts_with ~prefix s = String.length s >= String.length prefix && String.sub s 0 (String.length prefix) = prefix

let after ~prefix s = String.sub s (String.length prefix) (String.length s - String.length prefix)

let ticks_from_rust = 400
let texts_to_rust = 150

let rust_peer_over_unix_socket () =
  let cli = cli () in
  let path = Filename.concat (Filename.get_temp_dir_name ()) (Printf.sprintf "myc-ml-%d-rust.sock" (Unix.getpid ())) in
  let contracts = Filename.concat (Lazy.force root) "contracts.yaml" in
  let child =
    Child.spawn cli
      [|
        "bridge"; "--schema"; contracts; "--name"; "rust-peer"; "--listen"; "unix:" ^ path;
        "--publish-json"; "TradeTick"; {|{"symbol": "RS", "price": 2.5, "size": {i}, "ts_ns": 7, "side": 1}|};
        "--count"; string_of_int ticks_from_rust; "--subscribe"; "TextMessage"; "--expect"; string_of_int texts_to_rust;
        "--stats";
      |]
  in
  Fun.protect ~finally:(fun () -> Child.cleanup child) @@ fun () ->
  let deadline = Unix.gettimeofday () +. 60. in
  (match Child.read_line child ~deadline with
  | Some l when l = "listening unix:" ^ path -> ()
  | Some l -> Alcotest.failf "expected 'listening unix:%s', the peer printed %S; stderr:\n%s" path l (Child.stderr child)
  | None -> Alcotest.failf "the peer exited before listening; stderr:\n%s" (Child.stderr child));
  with_runtime @@ fun rt ->
  M.Runtime.verify rt (module C);
  let ticks = Inbox.create () in
  (* Subscribed before connecting, so the handshake already carries the interest. *)
  let _ = M.subscribe rt (module C.TradeTick) (Inbox.add ticks) in
  let bridge = M.Runtime.connect rt ("unix:" ^ path) in
  M.Bridge.wait ~timeout_ms:30_000 bridge;
  (* The peer's --subscribe reaches this bus as a forwarding subscription. *)
  Test_bridge.wait_for_peer_interest rt C.TextMessage.type_id;
  let bodies = List.init texts_to_rust (Printf.sprintf "from ocaml %d") in
  List.iteri
    (fun i body -> M.publish rt (module C.TextMessage) { C.TextMessage.sender = "ocaml"; body; sent_at_ns = Int64.of_int i })
    bodies;
  Test_bridge.within ~what:"the Rust peer's ticks" (fun () -> Inbox.length ticks >= ticks_from_rust);
  let got = Inbox.contents ticks in
  Alcotest.(check (list int)) "ticks: every {i}, in order, once" (List.init ticks_from_rust Fun.id)
    (List.map (fun t -> t.C.TradeTick.size) got);
  Alcotest.(check bool) "ticks: the other fields" true
    (List.for_all (fun t -> t.C.TradeTick.symbol = "RS" && t.price = 2.5 && t.ts_ns = 7L && t.side = 1) got);
  (* The peer exits by itself once it published and received everything. *)
  let lines = Child.read_all child ~deadline [] in
  (match Child.wait_exit child ~deadline with
  | Unix.WEXITED 0 -> ()
  | _ -> Alcotest.failf "the peer failed; stdout:\n%s\nstderr:\n%s" (String.concat "\n" lines) (Child.stderr child));
  let json_lines = List.filter (starts_with ~prefix:"{") lines in
  let received_bodies =
    List.map
      (fun l ->
        let j = Yojson.Safe.from_string l in
        Yojson.Safe.Util.(j |> member "value" |> member "body" |> to_string))
      json_lines
  in
  Alcotest.(check (list string)) "the peer printed every text, in order" bodies received_bodies;
  let has l = List.mem l lines in
  Alcotest.(check bool) "published N" true (has (Printf.sprintf "published %d" ticks_from_rust));
  Alcotest.(check bool) "received M" true (has (Printf.sprintf "received %d" texts_to_rust));
  let peer_stats =
    match List.filter (starts_with ~prefix:"stats ") lines with
    | [ l ] -> Yojson.Safe.from_string (after ~prefix:"stats " l)
    | l -> Alcotest.failf "expected one stats line, got %d" (List.length l)
  in
  let peer name = Yojson.Safe.Util.(peer_stats |> member name |> to_int) in
  Alcotest.(check int) "peer: messages out" ticks_from_rust (peer "messages_out");
  Alcotest.(check int) "peer: messages in" texts_to_rust (peer "messages_in");
  Alcotest.(check int) "ours: messages in" ticks_from_rust (Test_bridge.stat bridge "messages_in");
  Alcotest.(check int) "ours: messages out" texts_to_rust (Test_bridge.stat bridge "messages_out");
  Alcotest.(check bool) "the peer removed its socket" false (Sys.file_exists path);
  M.Bridge.close bridge

let tests =
  [ Alcotest.test_case "a Rust peer process over a Unix socket, counts reconciled" `Quick rust_peer_over_unix_socket ]
