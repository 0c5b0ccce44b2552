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

(* Scenarios that deadlock with the runtime lock held if the adapter regresses run in a child
   process: in a process whose lock is stuck no OCaml thread (so no timer) can run, so only
   another process can turn that hang into a failure. The child is this test executable again,
   told by [child_env] which scenario to run (test_main.ml dispatches on it, before Alcotest); the
   parent kills it when [timeout_s] passes. The deadline only bounds a hang: a normal run takes
   well under a second. *)
let child_env = "MYCELIUM_ML_TEST_CHILD"

let run_in_child ?(timeout_s = 60.) scenario =
  let log = Filename.temp_file "myc-ml-child" ".log" in
  Fun.protect ~finally:(fun () -> try Sys.remove log with Sys_error _ -> ()) @@ fun () ->
  let out = Unix.openfile log [ Unix.O_WRONLY; Unix.O_TRUNC ] 0o600 in
  let env = Array.append [| child_env ^ "=" ^ scenario |] (Unix.environment ()) in
  let exe = Sys.executable_name in
  let pid =
    Fun.protect ~finally:(fun () -> Unix.close out) (fun () -> Unix.create_process_env exe [| exe |] env Unix.stdin out out)
  in
  let output () = try read_file log with Sys_error _ -> "(unreadable)" in
  let deadline = Unix.gettimeofday () +. timeout_s in
  let rec wait () =
    match Unix.waitpid [ Unix.WNOHANG ] pid with
    | 0, _ ->
        if Unix.gettimeofday () > deadline then begin
          Unix.kill pid Sys.sigkill;
          ignore (Unix.waitpid [] pid);
          Alcotest.failf "child scenario %S still running after %.0f s (deadlocked?), killed; its output:\n%s" scenario
            timeout_s (output ())
        end
        else begin
          Thread.delay 0.01;
          wait ()
        end
    | _, status -> status
    | exception Unix.Unix_error (Unix.EINTR, _, _) -> wait ()
  in
  match wait () with
  | Unix.WEXITED 0 -> ()
  | Unix.WEXITED n -> Alcotest.failf "child scenario %S exited with %d; its output:\n%s" scenario n (output ())
  | Unix.WSIGNALED n | Unix.WSTOPPED n -> Alcotest.failf "child scenario %S killed by signal %d; its output:\n%s" scenario n (output ())

(* Whether the child-process run of pubsub's slow-consumer scenario passed (it runs first, as
   pubsub comes before gc). The in-process tests that would deadlock the same way, leaving the
   suite hung and never reporting, do not run after it failed: they fail at once instead (this
   Alcotest has no skip). *)
let deadlock_free = ref true

let unless_deadlocked f () =
  if !deadlock_free then f () else Alcotest.fail "not run: the child-process run deadlocked or failed (see that test)"
