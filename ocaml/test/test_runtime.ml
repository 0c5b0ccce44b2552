(* Runtime lifecycle, schema checks and error reporting. *)

open Support
module H = Handwritten

let invalid_schema () =
  let s, msg = expect_error (fun () -> M.Runtime.create ~schema_yaml:"messages: [not, a, map]") in
  Alcotest.check status "status" M.Schema s;
  Alcotest.(check bool) "message is not empty" true (String.length msg > 0)

let schema_module digest canonical =
  (module struct
    let schema_digest = digest
    let schema_canonical = canonical
  end : M.SCHEMA)

(* #12 item 16: a schema that is not UTF-8 is an invalid schema, as the .mli says. *)
let non_utf8_schema () =
  let s, msg = expect_error (fun () -> M.Runtime.create ~schema_yaml:"schema: \xff\xfe\nversion: 1\n") in
  Alcotest.check status "status" M.Schema s;
  check_contains "says why" ~sub:"not valid UTF-8" msg

(* #12 item 4: a schema parse never holds the runtime lock. The other thread can only run while
   the lock is free (it polls at each Thread.yield). The main thread holds the lock from [t0] until
   the external releases it, and takes it back only after the parse: had create held it for the
   whole parse, the other thread's first step after [t0] would come after the parse, i.e. in the
   last moments of the [t0, t1] window, not in its first half (the parse takes most of it). *)
let create_releases_the_runtime_lock () =
  let n = 300 in
  let b = Buffer.create (n * 80) in
  Buffer.add_string b "schema: big\nversion: 1\nmessages:\n";
  for i = 1 to n do
    Printf.bprintf b "  M%d:\n    id: %d\n    fields:\n      - a: u32\n      - b: string\n      - c: list<f64>\n" i i
  done;
  let schema_yaml = Buffer.contents b in
  let started = ref false and stop = ref false in
  let t0 = ref infinity and first_step = ref infinity in
  let counting =
    Thread.create
      (fun () ->
        while not !stop do
          started := true;
          (if !first_step = infinity then
             let now = Unix.gettimeofday () in
             if now > !t0 then first_step := now);
          Thread.yield ()
        done)
      ()
  in
  while not !started do
    Thread.yield ()
  done;
  t0 := Unix.gettimeofday ();
  let rt = M.Runtime.create ~schema_yaml in
  let t1 = Unix.gettimeofday () in
  stop := true;
  Thread.join counting;
  M.Runtime.close rt;
  let ms x = (x -. !t0) *. 1000. in
  if !first_step -. !t0 > (t1 -. !t0) /. 2. then
    Alcotest.failf "create took %.1f ms for %d messages and the other OCaml thread %s: the lock was held during the parse"
      (ms t1) n
      (if !first_step = infinity then "did not run before it returned"
       else Printf.sprintf "first ran after %.1f ms" (ms !first_step))

(* #12 item 8: a capacity above the bus's maximum is refused, naming the parameter and limit. *)
let capacity_above_the_maximum () =
  with_runtime (fun rt ->
      match M.subscribe ~capacity:(1 lsl 20 + 1) rt (module H.TradeTick) ignore with
      | _ -> Alcotest.fail "capacity above 1 Mi accepted"
      | exception Invalid_argument msg ->
          check_contains "parameter" ~sub:"capacity" msg;
          check_contains "limit" ~sub:"1048576" msg)

(* #12 item 11: an address that is not a runtime handle raises instead of crashing. *)
let of_handle_bogus_address () =
  List.iter
    (fun address ->
      let s, msg = expect_error (fun () -> M.Runtime.of_handle address (schema_module "" "")) in
      Alcotest.check status (Printf.sprintf "%nx" address) M.Invalid_argument s;
      check_contains "reason" ~sub:"not a mycelium runtime handle" msg)
    [ 0x1n; 0xdeadbeefn; 0x7ff000000000n ]

let close_is_idempotent () =
  let rt = runtime () in
  Alcotest.(check bool) "open" true (M.Runtime.is_open rt);
  M.Runtime.close rt;
  M.Runtime.close rt;
  Alcotest.(check bool) "closed" false (M.Runtime.is_open rt);
  let s, _ = expect_error (fun () -> M.publish rt (module H.TradeTick) (H.tick 1)) in
  Alcotest.check status "publish after close" M.Closed s;
  let s, _ = expect_error (fun () -> M.subscribe rt (module H.TradeTick) ignore) in
  Alcotest.check status "subscribe after close" M.Closed s

let digest_and_description () =
  with_runtime (fun rt ->
      let digest = M.Runtime.schema_digest rt in
      Alcotest.(check int) "64 hex chars" 64 (String.length digest);
      let canonical = M.Runtime.schema_description rt in
      check_contains "canonical description" ~sub:"TradeTick" canonical;
      (* Its own schema verifies. *)
      M.Runtime.verify rt (schema_module digest canonical))

(* Generated code for a schema where TradeTick.price is f32 instead of f64. *)
let altered_schema rt =
  let canonical = M.Runtime.schema_description rt in
  let altered =
    match replace_first ~sub:"field price f64" ~by:"field price f32" canonical with
    | Some s -> s
    | None -> Alcotest.failf "unexpected canonical form: %s" canonical
  in
  schema_module (String.make 64 '0') altered

let mismatch_names_the_difference () =
  with_runtime (fun rt ->
      match M.Runtime.verify rt (altered_schema rt) with
      | () -> Alcotest.fail "a different schema verified"
      | exception M.Schema_mismatch msg -> check_contains "mismatch message" ~sub:"TradeTick: field price f64 -> f32" msg)

let of_handle_clones_and_checks () =
  with_runtime (fun host ->
      let address = M.Runtime.address host in
      let digest = M.Runtime.schema_digest host and canonical = M.Runtime.schema_description host in
      (match M.Runtime.of_handle address (altered_schema host) with
      | _ -> Alcotest.fail "attached with a mismatched schema"
      | exception M.Schema_mismatch msg -> check_contains "mismatch" ~sub:"TradeTick" msg);
      let guest = M.Runtime.of_handle address (schema_module digest canonical) in
      (* Closing the clone leaves the host's handle working. *)
      M.Runtime.close guest;
      M.publish host (module H.TradeTick) (H.tick 1))

let attach_null_fails () =
  let s, _ = expect_error (fun () -> M.Runtime.of_handle 0n (schema_module "" "")) in
  Alcotest.check status "NULL handle" M.Null_pointer s

let rejected_payloads () =
  with_runtime (fun rt ->
      let s, msg = expect_error (fun () -> M.publish_raw rt ~type_id:1 "\001\002") in
      Alcotest.check status "truncated TradeTick" M.Decode s;
      check_contains "decode message" ~sub:"TradeTick" msg;
      let s, _ = expect_error (fun () -> M.publish_raw rt ~type_id:999 "") in
      Alcotest.check status "unknown type" M.Unknown_type s;
      let s, _ = expect_error (fun () -> M.publish_raw rt ~type_id:70000 "") in
      Alcotest.check status "type id out of u16 range" M.Invalid_argument s;
      (* Encoders refuse out-of-range values before anything reaches the bus. *)
      match M.publish rt (module H.TradeTick) { (H.tick 1) with side = 256 } with
      | () -> Alcotest.fail "side 256 was encoded"
      | exception Invalid_argument _ -> ())

let bad_options () =
  with_runtime (fun rt ->
      (match M.subscribe ~capacity:(-1) rt (module H.TradeTick) ignore with
      | _ -> Alcotest.fail "negative capacity accepted"
      | exception Invalid_argument _ -> ());
      let s, _ = expect_error (fun () -> M.subscribe ~label:"a\000b" rt (module H.TradeTick) ignore) in
      Alcotest.check status "NUL in label" M.Invalid_argument s;
      let s, _ = expect_error (fun () -> M.subscribe_raw rt ~type_id:999 ~name:"X" ignore) in
      Alcotest.check status "unknown type" M.Unknown_type s)

let close_bus () =
  with_runtime (fun rt ->
      M.Runtime.close_bus rt;
      let s, _ = expect_error (fun () -> M.publish rt (module H.TradeTick) (H.tick 1)) in
      Alcotest.check status "publish on a closed bus" M.Closed s)

let metrics_and_exposition () =
  with_runtime (fun rt ->
      let got = Inbox.create () in
      let sub = M.subscribe ~label:"metrics-test" rt (module H.TradeTick) (Inbox.add got) in
      for i = 1 to 25 do
        M.publish rt (module H.TradeTick) (H.tick i)
      done;
      M.Runtime.flush rt;
      let m = M.metrics rt (module H.TradeTick) in
      Alcotest.(check int) "type id" 1 m.type_id;
      Alcotest.(check int) "published" 25 m.published;
      Alcotest.(check int) "delivered" 25 m.delivered;
      Alcotest.(check int) "subscribers" 1 m.subscribers;
      Alcotest.(check int) "handler errors" 0 m.handler_errors;
      Alcotest.(check bool) "bytes counted" true (m.published_bytes > 25 * 20);
      check_contains "json" ~sub:"metrics-test" (M.Runtime.metrics_json rt);
      check_contains "prometheus" ~sub:"mycelium" (M.Runtime.metrics_prometheus rt);
      M.Subscription.close sub;
      Alcotest.(check int) "no subscriber after close" 0 (M.metrics rt (module H.TradeTick)).subscribers)

let abi () =
  let major, _ = M.abi_version () in
  Alcotest.(check int) "ABI major" 1 major

let tests =
  [
    Alcotest.test_case "an invalid schema is reported" `Quick invalid_schema;
    Alcotest.test_case "a schema that is not UTF-8 raises Schema" `Quick non_utf8_schema;
    Alcotest.test_case "create parses without holding the runtime lock" `Quick create_releases_the_runtime_lock;
    Alcotest.test_case "a capacity above 1 Mi is refused" `Quick capacity_above_the_maximum;
    Alcotest.test_case "of_handle of a bogus address raises" `Quick of_handle_bogus_address;
    Alcotest.test_case "close is idempotent and later calls fail with Closed" `Quick close_is_idempotent;
    Alcotest.test_case "digest and canonical description" `Quick digest_and_description;
    Alcotest.test_case "a schema mismatch names the difference" `Quick mismatch_names_the_difference;
    Alcotest.test_case "of_handle clones the host handle and checks the schema" `Quick of_handle_clones_and_checks;
    Alcotest.test_case "of_handle 0n fails cleanly" `Quick attach_null_fails;
    Alcotest.test_case "invalid payloads are refused with the right status" `Quick rejected_payloads;
    Alcotest.test_case "bad subscribe options" `Quick bad_options;
    Alcotest.test_case "close_bus refuses later publishes" `Quick close_bus;
    Alcotest.test_case "metrics" `Quick metrics_and_exposition;
    Alcotest.test_case "ABI version" `Quick abi;
  ]
