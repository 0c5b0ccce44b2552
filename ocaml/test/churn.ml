(* Subscription churn must not grow memory (issue #12 item 14). Run by scripts/test-ocaml.sh as
   [churn.exe CONTRACTS_YAML], outside the alcotest suite because 100 000 thread lifetimes under
   valgrind would take hours.

   Each subscription has its own delivery thread, registered with the OCaml runtime for the OCaml
   callback. Before the fix every cycle left its registration behind (~400 bytes: OCaml 4.13 kept
   the info block, memprof context and descriptor of every thread ever registered, because the
   unregistration never found its thread), so 100 000 cycles grew RSS by ~40 MiB; with the
   unregistration fixed but OCaml 4.13's forgotten memprof context still leaked, by ~8 MiB.

   A warm-up lets the heaps reach their steady size first; the bound is on what the measured
   cycles add after it, which is memory, not time. *)

module M = Mycelium_native

let rss_kib () =
  let ic = open_in "/proc/self/status" in
  Fun.protect ~finally:(fun () -> close_in_noerr ic) @@ fun () ->
  let rec find () =
    let line = input_line ic in
    if String.length line > 6 && String.sub line 0 6 = "VmRSS:" then Scanf.sscanf line "VmRSS: %d kB" Fun.id
    else find ()
  in
  find ()

let cycles rt n =
  for _ = 1 to n do
    (* Even with nothing delivered the delivery thread registers with the runtime: it releases
       the callback's GC root when the subscription ends. *)
    let sub = M.subscribe rt (module Contracts.TradeTick) ignore in
    M.Subscription.close sub
  done

let () =
  let schema = match Sys.argv with [| _; path |] -> path | _ -> failwith "usage: churn.exe CONTRACTS_YAML" in
  let rt = M.Runtime.of_file schema in
  let warm_up = 20_000 and measured = 100_000 and limit_kib = 1024 in
  cycles rt warm_up;
  Gc.full_major ();
  let before = rss_kib () in
  for step = 1 to 4 do
    cycles rt (measured / 4);
    Printf.printf "churn: %d subscribe/close cycles after the warm-up: RSS %+d KiB\n%!" (step * measured / 4)
      (rss_kib () - before)
  done;
  Gc.full_major ();
  let grown = rss_kib () - before in
  M.Runtime.close rt;
  Printf.printf "churn: %d cycles grew RSS by %d KiB (limit: under %d KiB)\n%!" measured grown limit_kib;
  if grown >= limit_kib then begin
    prerr_endline "churn: FAILED: subscription churn grows memory";
    exit 1
  end
