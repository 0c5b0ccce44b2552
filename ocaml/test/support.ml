(* Helpers shared by the test modules. *)

module M = Mycelium_native

let rec find_root dir =
  if Sys.file_exists (Filename.concat dir "contracts.yaml") && Sys.file_exists (Filename.concat dir "ocaml/dune-project")
  then dir
  else
    let parent = Filename.dirname dir in
    if parent = dir then failwith "cannot find the repository root (contracts.yaml); set MYCELIUM_ROOT" else find_root parent

(* dune runs tests inside ocaml/_build/default/test, so the repository is a few levels up. *)
let root = lazy (match Sys.getenv_opt "MYCELIUM_ROOT" with Some r -> r | None -> find_root (Sys.getcwd ()))

let read_file path =
  let ic = open_in_bin path in
  Fun.protect ~finally:(fun () -> close_in_noerr ic) (fun () -> really_input_string ic (in_channel_length ic))

let contracts_yaml = lazy (read_file (Filename.concat (Lazy.force root) "contracts.yaml"))
let runtime () = M.Runtime.create ~schema_yaml:(Lazy.force contracts_yaml)

let with_runtime f =
  let rt = runtime () in
  Fun.protect ~finally:(fun () -> M.Runtime.close rt) (fun () -> f rt)

(* A thread-safe list of what a callback received, in arrival order. *)
module Inbox = struct
  type 'a t = { lock : Mutex.t; mutable items : 'a list }

  let create () = { lock = Mutex.create (); items = [] }

  let add t v =
    Mutex.lock t.lock;
    t.items <- v :: t.items;
    Mutex.unlock t.lock

  let contents t =
    Mutex.lock t.lock;
    let l = List.rev t.items in
    Mutex.unlock t.lock;
    l

  let length t = List.length (contents t)
end

(* For what has no "wait until done" call (finalisers, background destroys): retry with a full
   major GC in between, up to a generous bound. The bound only turns a hang into a failure; no
   assertion depends on how long it takes. *)
let eventually ~what cond =
  let rec go n =
    if cond () then ()
    else if n = 0 then Alcotest.failf "gave up waiting for %s" what
    else begin
      Gc.full_major ();
      Thread.delay 0.005;
      go (n - 1)
    end
  in
  go 4000

let status = Alcotest.testable (fun f s -> Format.pp_print_string f (M.status_name s)) ( = )

(* Runs [f] and returns the status and message of the Mycelium_error it raises. *)
let expect_error f =
  match f () with
  | _ -> Alcotest.fail "expected Mycelium_error, got a result"
  | exception M.Mycelium_error (s, msg) -> (s, msg)

let contains ~sub s =
  let n = String.length sub and m = String.length s in
  let rec at i = i + n <= m && (String.sub s i n = sub || at (i + 1)) in
  at 0

let check_contains what ~sub s =
  if not (contains ~sub s) then Alcotest.failf "%s: expected %S in %S" what sub s

let find ~sub s =
  let n = String.length sub and m = String.length s in
  let rec at i = if i + n > m then None else if String.sub s i n = sub then Some i else at (i + 1) in
  at 0

let replace_first ~sub ~by s =
  match find ~sub s with
  | None -> None
  | Some i -> Some (String.sub s 0 i ^ by ^ String.sub s (i + String.length sub) (String.length s - i - String.length sub))
