(* Wire helpers shared by every message module. Hidden by the .mli. Written against the
   OCaml 4.13 standard library (String.get_int32_le and friends need 4.13). Every module is
   named through Stdlib so that a message called String or List cannot shadow it. *)
module Wire_ = struct
  exception Malformed of string

  let max_payload = 16 * 1024 * 1024
  let u32_max = 0xFFFF_FFFF

  let fail fmt = Stdlib.Printf.ksprintf (fun m -> raise (Malformed m)) fmt
  let bad fmt = Stdlib.Printf.ksprintf invalid_arg fmt

  (* ---- encoding: each put_* checks its range, then appends little-endian bytes ---- *)

  let check_int what ty lo hi v =
    if v < lo || v > hi then bad "%s: %d is out of range for %s (%d..%d)" what v ty lo hi

  let put_u8 what b v =
    check_int what "u8" 0 0xFF v;
    Stdlib.Buffer.add_uint8 b v

  let put_i8 what b v =
    check_int what "i8" (-0x80) 0x7F v;
    Stdlib.Buffer.add_int8 b v

  let put_u16 what b v =
    check_int what "u16" 0 0xFFFF v;
    Stdlib.Buffer.add_uint16_le b v

  let put_i16 what b v =
    check_int what "i16" (-0x8000) 0x7FFF v;
    Stdlib.Buffer.add_int16_le b v

  let put_u32 what b v =
    check_int what "u32" 0 u32_max v;
    Stdlib.Buffer.add_int32_le b (Stdlib.Int32.of_int v)

  let put_i32 what b v =
    check_int what "i32" (-0x8000_0000) 0x7FFF_FFFF v;
    Stdlib.Buffer.add_int32_le b (Stdlib.Int32.of_int v)

  let put_u64 _what b v = Stdlib.Buffer.add_int64_le b v
  let put_i64 _what b v = Stdlib.Buffer.add_int64_le b v

  (* Finite doubles at or beyond the midpoint between the largest f32 and 2^128 round to
     infinity; they are rejected, as by the Rust and Python encoders. *)
  let f32_overflow = 0x1.ffffffp127

  (* An f32 lives in an OCaml float, a double. The hardware conversions between the widths
     (Int32.float_of_bits / bits_of_float) set a NaN's quiet bit, so a signalling NaN would
     come out of a decode and re-encode changed. NaNs are converted by hand instead: sign kept,
     the 23-bit payload (quiet bit included) moved to the top of the double's 52-bit payload and
     back, so f32 bits survive the round trip exactly. Other values convert exactly (decode) or
     round to nearest (encode) in hardware. *)
  let f32_is_nan bits =
    Stdlib.Int32.logand bits 0x7F80_0000l = 0x7F80_0000l
    && Stdlib.Int32.logand bits 0x007F_FFFFl <> 0l

  let float_of_f32_bits bits =
    if f32_is_nan bits then
      let u = Stdlib.Int64.logand (Stdlib.Int64.of_int32 bits) 0xFFFF_FFFFL in
      let sign = Stdlib.Int64.shift_left (Stdlib.Int64.shift_right_logical u 31) 63 in
      let payload = Stdlib.Int64.shift_left (Stdlib.Int64.logand u 0x7F_FFFFL) 29 in
      Stdlib.Int64.float_of_bits
        (Stdlib.Int64.logor sign (Stdlib.Int64.logor 0x7FF0_0000_0000_0000L payload))
    else Stdlib.Int32.float_of_bits bits

  let f32_bits_of_float v =
    if Stdlib.Float.is_nan v then
      let d = Stdlib.Int64.bits_of_float v in
      let sign = Stdlib.Int64.to_int32 (Stdlib.Int64.shift_left (Stdlib.Int64.shift_right_logical d 63) 31) in
      let payload =
        Stdlib.Int64.to_int32 (Stdlib.Int64.logand (Stdlib.Int64.shift_right_logical d 29) 0x7F_FFFFL)
      in
      (* A payload only in the bits an f32 has no room for: quiet NaN, as the hardware gives. *)
      let payload = if payload = 0l then 0x40_0000l else payload in
      Stdlib.Int32.logor sign (Stdlib.Int32.logor 0x7F80_0000l payload)
    else Stdlib.Int32.bits_of_float v

  let put_f32 what b v =
    if Stdlib.Float.is_finite v && Stdlib.Float.abs v >= f32_overflow then
      bad "%s: %g is out of range for f32" what v;
    Stdlib.Buffer.add_int32_le b (f32_bits_of_float v)

  let put_f64 _what b v = Stdlib.Buffer.add_int64_le b (Stdlib.Int64.bits_of_float v)
  let put_bool _what b v = Stdlib.Buffer.add_uint8 b (if v then 1 else 0)

  let put_len what b n =
    if n > u32_max then bad "%s: length %d does not fit the u32 length prefix" what n;
    Stdlib.Buffer.add_int32_le b (Stdlib.Int32.of_int n)

  (* Index of the first byte that is not part of a well-formed UTF-8 sequence (as Rust's
     Utf8Error::valid_up_to), or the length when the whole string is valid. Surrogates,
     overlong forms and code points above U+10FFFF are invalid. *)
  let utf8_valid_up_to s =
    let n = Stdlib.String.length s in
    let byte i = Stdlib.Char.code (Stdlib.String.get s i) in
    let within k lo hi i = i + k < n && byte (i + k) >= lo && byte (i + k) <= hi in
    let cont k i = within k 0x80 0xBF i in
    let rec go i =
      if i >= n then n
      else
        let c = byte i in
        if c < 0x80 then go (i + 1)
        else if c >= 0xC2 && c <= 0xDF then if cont 1 i then go (i + 2) else i
        else if c = 0xE0 then if within 1 0xA0 0xBF i && cont 2 i then go (i + 3) else i
        else if c = 0xED then if within 1 0x80 0x9F i && cont 2 i then go (i + 3) else i
        else if c >= 0xE1 && c <= 0xEF then if cont 1 i && cont 2 i then go (i + 3) else i
        else if c = 0xF0 then
          if within 1 0x90 0xBF i && cont 2 i && cont 3 i then go (i + 4) else i
        else if c >= 0xF1 && c <= 0xF3 then
          if cont 1 i && cont 2 i && cont 3 i then go (i + 4) else i
        else if c = 0xF4 then
          if within 1 0x80 0x8F i && cont 2 i && cont 3 i then go (i + 4) else i
        else i
    in
    go 0

  let put_string what b s =
    let valid = utf8_valid_up_to s in
    if valid < Stdlib.String.length s then bad "%s: invalid UTF-8 at byte %d" what valid;
    put_len what b (Stdlib.String.length s);
    Stdlib.Buffer.add_string b s

  let put_bytes what b s =
    put_len what b (Stdlib.String.length s);
    Stdlib.Buffer.add_string b s

  let put_array what n b s =
    let len = Stdlib.String.length s in
    if len <> n then bad "%s: bytes[%d] needs exactly %d bytes, got %d" what n n len;
    Stdlib.Buffer.add_string b s

  let put_list what put b items =
    put_len what b (Stdlib.List.length items);
    Stdlib.List.iter (put b) items

  (* list<u8> has the layout of bytes: a u32 count, then one byte per element. *)
  let put_u8_list what b items =
    put_len what b (Stdlib.List.length items);
    Stdlib.List.iter (put_u8 (what ^ "[]") b) items

  let encode write v =
    let b = Stdlib.Buffer.create 64 in
    write b v;
    Stdlib.Buffer.contents b

  (* ---- decoding: a string and a cursor; errors are worded as by the Rust decoder ---- *)

  let take s p n what =
    let off = !p in
    let rest = Stdlib.String.length s - off in
    if n > rest then fail "truncated at byte %d: needed %d more byte(s) for %s" off (n - rest) what;
    p := off + n;
    off

  let get_u8 what s p = Stdlib.String.get_uint8 s (take s p 1 what)
  let get_i8 what s p = Stdlib.String.get_int8 s (take s p 1 what)
  let get_u16 what s p = Stdlib.String.get_uint16_le s (take s p 2 what)
  let get_i16 what s p = Stdlib.String.get_int16_le s (take s p 2 what)

  let get_u32 what s p =
    Stdlib.Int32.to_int (Stdlib.String.get_int32_le s (take s p 4 what)) land u32_max

  let get_i32 what s p = Stdlib.Int32.to_int (Stdlib.String.get_int32_le s (take s p 4 what))
  let get_u64 what s p = Stdlib.String.get_int64_le s (take s p 8 what)
  let get_i64 what s p = Stdlib.String.get_int64_le s (take s p 8 what)

  let get_f32 what s p = float_of_f32_bits (Stdlib.String.get_int32_le s (take s p 4 what))

  let get_f64 what s p =
    Stdlib.Int64.float_of_bits (Stdlib.String.get_int64_le s (take s p 8 what))

  let get_bool what s p =
    let off = take s p 1 what in
    match Stdlib.String.get_uint8 s off with
    | 0 -> false
    | 1 -> true
    | v -> fail "invalid bool value %d in %s at byte %d" v what off

  let get_bytes what s p =
    let n = get_u32 what s p in
    let off = take s p n what in
    Stdlib.String.sub s off n

  let get_string what s p =
    let n = get_u32 what s p in
    let off = take s p n what in
    let text = Stdlib.String.sub s off n in
    let valid = utf8_valid_up_to text in
    if valid < n then fail "invalid UTF-8 in %s at byte %d" what (off + valid);
    text

  let get_array what n s p =
    let off = take s p n what in
    Stdlib.String.sub s off n

  (* Checked before anything is allocated: count * min_size must fit in what is left. *)
  let get_count what min_size s p =
    let off = !p in
    let n = get_u32 what s p in
    let available = Stdlib.String.length s - !p in
    if n > available / (if min_size < 1 then 1 else min_size) then
      fail "%s at byte %d claims %d element(s); only %d byte(s) remain" what off n available;
    n

  let get_list what min_size read s p =
    let n = get_count what min_size s p in
    (* List.init calls its function in index order, so elements are read in wire order. *)
    Stdlib.List.init n (fun _ -> read s p)

  let get_u8_list what s p =
    let bytes = get_bytes what s p in
    Stdlib.List.init (Stdlib.String.length bytes) (fun i -> Stdlib.Char.code bytes.[i])

  let decode read s =
    let p = ref 0 in
    match read s p with
    | v ->
      let len = Stdlib.String.length s in
      if !p = len then Stdlib.Ok v
      else
        Stdlib.Error
          (Stdlib.Printf.sprintf "%d trailing byte(s) after the last field at byte %d"
             (len - !p) !p)
    | exception Malformed message -> Stdlib.Error message

  (* ---- frames ---- *)

  let frame type_id payload =
    let len = Stdlib.String.length payload in
    if len > max_payload then
      bad "encoded payload of %d bytes exceeds the maximum of %d bytes" len max_payload;
    let b = Stdlib.Buffer.create (6 + len) in
    Stdlib.Buffer.add_uint16_le b type_id;
    Stdlib.Buffer.add_int32_le b (Stdlib.Int32.of_int len);
    Stdlib.Buffer.add_string b payload;
    Stdlib.Buffer.contents b

  let split_frame s =
    let size = Stdlib.String.length s in
    if size < 6 then
      Stdlib.Error
        (Stdlib.Printf.sprintf "truncated at byte %d: needed %d more byte(s) for frame header"
           size (6 - size))
    else
      let type_id = Stdlib.String.get_uint16_le s 0 in
      let len = Stdlib.Int32.to_int (Stdlib.String.get_int32_le s 2) land u32_max in
      if len > max_payload then
        Stdlib.Error
          (Stdlib.Printf.sprintf "payload of %d bytes exceeds the maximum of %d bytes" len
             max_payload)
      else if size < 6 + len then
        Stdlib.Error
          (Stdlib.Printf.sprintf "truncated at byte %d: needed %d more byte(s) for frame payload"
             size (6 + len - size))
      else if size > 6 + len then
        Stdlib.Error
          (Stdlib.Printf.sprintf "%d trailing byte(s) after the last field at byte %d"
             (size - 6 - len) (6 + len))
      else Stdlib.Ok (type_id, Stdlib.String.sub s 6 len)

  (* ---- JSON, in the documented mapping (numbers, "NaN"/"NaN:0x…"/"inf"/"-inf", hex bytes) ---- *)

  let json_raw = Stdlib.Buffer.add_string
  let json_int b v = json_raw b (Stdlib.string_of_int v)
  let json_u64 b v = json_raw b (Stdlib.Printf.sprintf "%Lu" v)
  let json_i64 b v = json_raw b (Stdlib.Printf.sprintf "%Ld" v)
  let json_bool b v = json_raw b (if v then "true" else "false")

  (* The shortest %g form (of the precisions tried) that reads back as the same value. *)
  let shortest same precisions v =
    let rec go = function
      | [] -> Stdlib.Printf.sprintf "%.17g" v
      | digits :: rest ->
        let text = Stdlib.Printf.sprintf "%.*g" digits v in
        if same (Stdlib.float_of_string text) then text else go rest
    in
    go precisions

  (* "NaN" is the canonical quiet NaN; any other NaN is written with its bits (of the field's
     width), as the Rust mapping does, so JSON loses nothing. *)
  let json_nan b ~f32 v =
    if f32 then
      let bits = f32_bits_of_float v in
      if bits = 0x7FC0_0000l then json_raw b "\"NaN\""
      else json_raw b (Stdlib.Printf.sprintf "\"NaN:0x%08lx\"" bits)
    else
      let bits = Stdlib.Int64.bits_of_float v in
      if bits = 0x7FF8_0000_0000_0000L then json_raw b "\"NaN\""
      else json_raw b (Stdlib.Printf.sprintf "\"NaN:0x%016Lx\"" bits)

  let json_float b ~f32 v =
    if Stdlib.Float.is_nan v then json_nan b ~f32 v
    else if v = Stdlib.Float.infinity then json_raw b "\"inf\""
    else if v = Stdlib.Float.neg_infinity then json_raw b "\"-inf\""
    else if f32 then
      let bits = Stdlib.Int32.bits_of_float v in
      json_raw b
        (shortest (fun x -> Stdlib.Int32.bits_of_float x = bits) [ 6; 7; 8; 9 ] v)
    else json_raw b (shortest (fun x -> x = v) [ 15; 16; 17 ] v)

  let json_f32 b v = json_float b ~f32:true v
  let json_f64 b v = json_float b ~f32:false v

  let json_string b s =
    Stdlib.Buffer.add_char b '"';
    Stdlib.String.iter
      (fun c ->
        match c with
        | '"' -> json_raw b "\\\""
        | '\\' -> json_raw b "\\\\"
        | '\n' -> json_raw b "\\n"
        | '\r' -> json_raw b "\\r"
        | '\t' -> json_raw b "\\t"
        | c when Stdlib.Char.code c < 0x20 ->
          json_raw b (Stdlib.Printf.sprintf "\\u%04x" (Stdlib.Char.code c))
        | c -> Stdlib.Buffer.add_char b c)
      s;
    Stdlib.Buffer.add_char b '"'

  let json_hex b s =
    Stdlib.Buffer.add_char b '"';
    Stdlib.String.iter
      (fun c -> json_raw b (Stdlib.Printf.sprintf "%02x" (Stdlib.Char.code c)))
      s;
    Stdlib.Buffer.add_char b '"'

  let json_list write b items =
    Stdlib.Buffer.add_char b '[';
    Stdlib.List.iteri
      (fun i item ->
        if i > 0 then json_raw b ", ";
        write b item)
      items;
    Stdlib.Buffer.add_char b ']'

  let to_json write v =
    let b = Stdlib.Buffer.create 128 in
    write b v;
    Stdlib.Buffer.contents b
end
