(* Encode-side checks of the OCaml module generated from contracts.yaml (compiled in as
   [Contracts]): every out-of-range value raises [Invalid_argument] whose message starts
   with the field it belongs to, and the limits themselves encode and round-trip.

   Usage: check_ocaml_encode. Prints "N passed, M failed"; exits 1 on any failure. *)

let passed = ref 0
let failed = ref 0

let check ok what =
  if ok then incr passed
  else begin
    incr failed;
    prerr_endline ("FAIL: " ^ what)
  end

let starts_with ~prefix s =
  String.length s >= String.length prefix
  && String.sub s 0 (String.length prefix) = prefix

let guard what f = try f () with e -> check false (what ^ ": raised " ^ Printexc.to_string e)

let expect_invalid what prefix f =
  match f () with
  | (_ : string) -> check false (what ^ ": encoded without error")
  | exception Invalid_argument msg ->
    check (starts_with ~prefix msg) (what ^ ": Invalid_argument names the field: " ^ msg)
  | exception e -> check false (what ^ ": raised " ^ Printexc.to_string e)

let encode_errors () =
  let open Contracts in
  let a = AllTypes.default in
  let all what prefix v = expect_invalid what prefix (fun () -> AllTypes.encode v) in
  all "u8 256" "AllTypes.u8_value:" { a with u8_value = 256 };
  all "u8 -1" "AllTypes.u8_value:" { a with u8_value = -1 };
  all "u16 65536" "AllTypes.u16_value:" { a with u16_value = 65536 };
  all "u32 2^32" "AllTypes.u32_value:" { a with u32_value = 0x1_0000_0000 };
  all "u32 -1" "AllTypes.u32_value:" { a with u32_value = -1 };
  all "i8 128" "AllTypes.i8_value:" { a with i8_value = 128 };
  all "i16 -32769" "AllTypes.i16_value:" { a with i16_value = -32769 };
  all "i32 2^31" "AllTypes.i32_value:" { a with i32_value = 0x8000_0000 };
  all "f32 1e39" "AllTypes.f32_value:" { a with f32_value = 1e39 };
  all "invalid UTF-8" "AllTypes.string_value:" { a with string_value = "ok\xff" };
  all "surrogate" "AllTypes.string_value:" { a with string_value = "\xed\xa0\x80" };
  all "bytes[16] short" "AllTypes.fixed_bytes:" { a with fixed_bytes = "abc" };
  all "u16 list element" "AllTypes.u16_list[]:" { a with u16_list = [ 1; 70000 ] };
  all "string list element" "AllTypes.string_list[]:" { a with string_list = [ "\xc0" ] };
  all "u8 in list<list<u8>>" "AllTypes.nested_list[][]:" { a with nested_list = [ [ 300 ] ] };
  all "nested message" "PriceLevel.qty:" { a with level = { PriceLevel.price = 1.0; qty = -1 } };
  all "message in list" "PriceLevel.qty:"
    { a with levels = [ PriceLevel.default; { PriceLevel.default with qty = 1 lsl 40 } ] };
  expect_invalid "TradeTick.side 256" "TradeTick.side:" (fun () ->
      TradeTick.encode { TradeTick.default with side = 256 });
  (* The limits themselves encode. *)
  guard "limits" (fun () ->
      let v =
        { a with u8_value = 255; u32_value = 0xFFFF_FFFF; i32_value = -0x8000_0000;
                 f32_value = 3.4028234663852886e38; u64_value = -1L }
      in
      check (AllTypes.decode (AllTypes.encode v) = Ok v) "limits round-trip")

let () =
  encode_errors ();
  Printf.printf "%d passed, %d failed\n" !passed !failed;
  exit (if !failed = 0 then 0 else 1)
