let () =
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
    ]
