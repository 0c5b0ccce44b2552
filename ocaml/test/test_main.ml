(* A child process started by Support.run_in_child runs one scenario instead of the suite. *)
let run_child name =
  match List.assoc_opt name Test_pubsub.child_scenarios with
  | None ->
      prerr_endline ("unknown child scenario " ^ name);
      exit 2
  | Some scenario -> (
      match scenario () with
      | () -> exit 0
      | exception e ->
          prerr_endline ("child scenario " ^ name ^ " failed: " ^ Printexc.to_string e);
          exit 1)

let () =
  match Sys.getenv_opt Support.child_env with
  | Some name -> run_child name
  | None ->
      Alcotest.run "mycelium_native"
        [
          ("runtime", Test_runtime.tests);
          ("pubsub", Test_pubsub.tests);
          ("gc", Test_gc.tests);
          ("lwt", Test_lwt.tests);
          ( "vectors",
            [
              Alcotest.test_case "hand-written TradeTick and TextMessage" `Quick
                (Test_vectors.check_all ~min_vectors:15
                   [ ("TradeTick", (module Handwritten.TradeTick)); ("TextMessage", (module Handwritten.TextMessage)) ]);
            ] );
          ("generated", Test_generated.tests);
          ("bridge", Test_bridge.tests);
          ("bridge-process", Test_bridge_process.tests);
          ("log", Test_log.tests);
          ("request-reply", Test_request_reply.tests);
          ("topics", Test_topics.tests);
          ("nats", Test_nats.tests);
        ]
