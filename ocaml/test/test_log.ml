(* The library's log records reach an OCaml handler (Mycelium_native.Log; ocaml/stubs/src/log.rs).
   Waits are bounded only to turn a hang into a failure. *)

open Support

let records : M.Log.record list ref = ref []
let records_lock = Mutex.create ()

let collect r =
  Mutex.lock records_lock;
  records := r :: !records;
  Mutex.unlock records_lock

let find pred =
  Mutex.lock records_lock;
  let found = List.find_opt pred !records in
  Mutex.unlock records_lock;
  found

let contains ~sub s =
  let n = String.length sub and m = String.length s in
  let rec go i = i + n <= m && (String.sub s i n = sub || go (i + 1)) in
  go 0

let a_bridge_that_cannot_connect_reports_why () =
  Alcotest.(check bool) "forwarding started" true (M.Log.set_handler collect);
  let path =
    Filename.concat (Filename.get_temp_dir_name ()) (Printf.sprintf "myc-ml-%d-absent.sock" (Unix.getpid ()))
  in
  with_runtime (fun rt ->
      let bridge = M.Runtime.connect rt ("unix:" ^ path) in
      let is_it (r : M.Log.record) =
        String.length r.target >= 15 && String.sub r.target 0 15 = "mycelium_bridge" && contains ~sub:"cannot connect" r.message
      in
      let deadline = Unix.gettimeofday () +. 30. in
      let rec wait () =
        match find is_it with
        | Some r -> r
        | None ->
            if Unix.gettimeofday () > deadline then Alcotest.fail "no 'cannot connect' record within 30 s";
            Thread.delay 0.02;
            wait ()
      in
      let r = wait () in
      M.Bridge.close bridge;
      Alcotest.(check string) "level" "WARN" (M.Log.string_of_level r.level);
      Alcotest.(check (option string)) "endpoint field" (Some ("unix:" ^ path)) (List.assoc_opt "endpoint" r.fields);
      Alcotest.(check bool) "the reason is a field" true
        (match List.assoc_opt "reason" r.fields with Some why -> contains ~sub:"No such file" why | None -> false);
      Alcotest.(check bool) "to_string names level, target and fields" true
        (contains ~sub:"mycelium WARN mycelium_bridge" (M.Log.to_string r) && contains ~sub:"endpoint=unix:" (M.Log.to_string r)));
  Alcotest.(check bool) "a second call only swaps the handler" true (M.Log.set_handler collect)

let tests = [ Alcotest.test_case "a bridge that cannot connect reports why" `Quick a_bridge_that_cannot_connect_reports_why ]
