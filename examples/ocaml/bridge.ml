(* Two buses joined over a Unix socket: one runtime listens, another connects, a TextMessage
   published on the connecting side is received by a callback on the listening side. The two
   runtimes live in one program to keep the sample self-contained; in real use each side is its
   own process (OCaml, Python, C or a Rust service) and only the address is shared.

   Built and run like pubsub.ml (examples/README.md, "OCaml"; scripts/test-ocaml.sh does both):
     dune build ./bridge.exe && ./_build/default/bridge.exe contracts.yaml
   Exits 0 only when the message crossed the socket unchanged. *)

module M = Mycelium_native
module C = Contracts

(* Polls [cond] for up to ten seconds. *)
let wait_until what cond =
  let rec go n =
    if cond () then ()
    else if n = 0 then (
      Printf.eprintf "gave up waiting for %s\n" what;
      exit 1)
    else (
      Thread.delay 0.005;
      go (n - 1))
  in
  go 2000

let () =
  if Array.length Sys.argv <> 2 then (
    prerr_endline "usage: bridge CONTRACTS.yaml";
    exit 2);
  let server = M.Runtime.of_file Sys.argv.(1) and client = M.Runtime.of_file Sys.argv.(1) in
  M.Runtime.verify server (module C);
  (* A fresh path: the listener refuses to replace a file that is not a socket. *)
  let path = Filename.temp_file "mycelium-bridge-" ".sock" in
  Sys.remove path;
  let listener = M.Runtime.listen server ("unix:" ^ path) in
  Printf.printf "listening on %s\n%!" (String.concat ", " (M.Bridge.endpoints listener));
  let received = Atomic.make None in
  let sub = M.subscribe server (module C.TextMessage) (fun m -> Atomic.set received (Some m)) in
  let bridge = M.Runtime.connect client ("unix:" ^ path) in
  (* Connected, and both sides agreed on the schema (a mismatch raises here, naming it). *)
  M.Bridge.wait bridge;
  (* Only types the other side subscribed to cross; the server's subscription reaches the
     client's bus as the bridge's own subscriber there. Publishing before that would go nowhere. *)
  wait_until "the server's subscription" (fun () -> (M.metrics client (module C.TextMessage)).subscribers > 0);
  let sent = { C.TextMessage.sender = "ocaml-client"; body = "hello over the socket"; sent_at_ns = 42L } in
  M.publish client (module C.TextMessage) sent;
  wait_until "the message" (fun () -> Atomic.get received <> None);
  let got = Atomic.get received in
  M.Subscription.close sub;
  M.Bridge.close bridge;
  (* Closing a runtime closes its bridges too; the listener removes its socket file. *)
  M.Runtime.close client;
  M.Runtime.close server;
  match got with
  | Some m when m = sent -> Printf.printf "ok: the server received %S from %s\n" m.body m.sender
  | _ ->
      prerr_endline "mismatch: the server received something other than what the client published";
      exit 1
