(* The adapter with the generated module (ocaml/contracts, from `mycelium codegen --lang ocaml`):
   golden vectors for every message, schema verification, and messages without fields. *)

open Support
module C = Contracts

let messages : (string * (module M.MESSAGE)) list =
  [
    ("TradeTick", (module C.TradeTick));
    ("TextMessage", (module C.TextMessage));
    ("Order", (module C.Order));
    ("OrderDecision", (module C.OrderDecision));
    ("PriceLevel", (module C.PriceLevel));
    ("Quote", (module C.Quote));
    ("TickBatch", (module C.TickBatch));
    ("Heartbeat", (module C.Heartbeat));
    ("AllTypes", (module C.AllTypes));
  ]

(* Decoded values also print as the vectors' JSON. Compared as values: keys in any order, "1" and
   "1.0" the same number, and two decimals that read back as the same f32 the same (an f32 has
   several valid spellings: "1e-45" and "1.4013e-45"). The exact bits, sign of zero included, are
   checked by the byte-level test above. *)
let rec same (a : Yojson.Safe.t) (b : Yojson.Safe.t) =
  let num = function
    | `Int n -> Some (float_of_int n)
    | `Intlit s -> float_of_string_opt s
    | `Float f -> Some f
    | _ -> None
  in
  match (a, b) with
  | `Assoc x, `Assoc y ->
      let sort = List.sort (fun (k, _) (l, _) -> compare k l) in
      List.length x = List.length y && List.for_all2 (fun (k, v) (l, w) -> k = l && same v w) (sort x) (sort y)
  | `List x, `List y -> List.length x = List.length y && List.for_all2 same x y
  (* Integers exactly: u64 values do not fit a float. *)
  | (`Int _ | `Intlit _), (`Int _ | `Intlit _) -> Yojson.Safe.to_string a = Yojson.Safe.to_string b
  | _ -> (
      match (num a, num b) with
      | Some x, Some y -> x = y || Int32.bits_of_float x = Int32.bits_of_float y
      | _ -> Yojson.Safe.equal a b)

let to_json (type a) name (module Msg : M.MESSAGE with type t = a) (to_json : a -> string) payload =
  match Msg.decode payload with
  | Error e -> Alcotest.failf "%s: does not decode: %s" name e
  | Ok v -> Yojson.Safe.from_string (to_json v)

let json_of_vector name payload =
  let j f m = to_json name m f payload in
  match String.index_opt name '-' |> Option.map (fun i -> String.sub name 0 i) with
  | Some "TradeTick" -> j C.TradeTick.to_json (module C.TradeTick)
  | Some "TextMessage" -> j C.TextMessage.to_json (module C.TextMessage)
  | Some "Order" -> j C.Order.to_json (module C.Order)
  | Some "OrderDecision" -> j C.OrderDecision.to_json (module C.OrderDecision)
  | Some "PriceLevel" -> j C.PriceLevel.to_json (module C.PriceLevel)
  | Some "Quote" -> j C.Quote.to_json (module C.Quote)
  | Some "TickBatch" -> j C.TickBatch.to_json (module C.TickBatch)
  | Some "Heartbeat" -> j C.Heartbeat.to_json (module C.Heartbeat)
  | Some "AllTypes" -> j C.AllTypes.to_json (module C.AllTypes)
  | _ -> Alcotest.failf "vector %s names no known message" name

let vector_values () =
  let json = Yojson.Safe.from_file (Filename.concat (Lazy.force root) "tests/vectors/contracts.json") in
  let open Yojson.Safe.Util in
  let vectors = json |> member "vectors" |> to_list in
  List.iter
    (fun v ->
      let name = v |> member "name" |> to_string in
      let frame = Test_vectors.of_hex (v |> member "frame_hex" |> to_string) in
      let payload = String.sub frame 6 (String.length frame - 6) in
      let got = json_of_vector name payload and want = v |> member "value" in
      if not (same got want) then
        Alcotest.failf "%s: decoded value differs\n expected %s\n      got %s" name (Yojson.Safe.to_string want)
          (Yojson.Safe.to_string got))
    vectors

let schema_matches () =
  with_runtime (fun rt ->
      M.Runtime.verify rt (module C);
      Alcotest.(check string) "digest" (M.Runtime.schema_digest rt) C.schema_digest)

let heartbeat_has_no_payload () =
  with_runtime (fun rt ->
      let beats = ref 0 in
      let sub = M.subscribe rt (module C.Heartbeat) (fun () -> incr beats) in
      for _ = 1 to 3 do
        M.publish rt (module C.Heartbeat) ()
      done;
      M.Runtime.flush rt;
      M.Subscription.close sub;
      Alcotest.(check int) "three heartbeats" 3 !beats)

let nested_and_lists () =
  with_runtime (fun rt ->
      let got = ref [] in
      let _ = M.subscribe rt (module C.TickBatch) (fun b -> got := b :: !got) in
      let tick i = { C.TradeTick.default with symbol = "S" ^ string_of_int i; size = i } in
      let batch = { C.TickBatch.venue = "XNAS"; seq = 42L; ticks = List.init 100 tick } in
      M.publish rt (module C.TickBatch) batch;
      M.Runtime.flush rt;
      Alcotest.(check bool) "the batch arrives equal" true (!got = [ batch ]))

let tests =
  [
    Alcotest.test_case "every vector decodes, re-encodes byte-identically and is accepted" `Quick
      (Test_vectors.check_all ~min_vectors:80 messages);
    Alcotest.test_case "decoded vectors equal their JSON values" `Quick vector_values;
    Alcotest.test_case "the generated module verifies against the runtime" `Quick schema_matches;
    Alcotest.test_case "Heartbeat: a message without fields" `Quick heartbeat_has_no_payload;
    Alcotest.test_case "TickBatch with 100 nested ticks" `Quick nested_and_lists;
  ]
