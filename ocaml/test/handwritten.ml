(* A hand-written stand-in for two messages of the generated module (TradeTick, TextMessage), with
   the same wire format (docs/wire-format.md). The tests use it where they test the adapter
   rather than the generator, so that a generator bug cannot hide an adapter bug and vice versa. *)

let put_u32 b n =
  if n < 0 || n > 0xFFFF_FFFF then invalid_arg "u32 out of range";
  Buffer.add_int32_le b (Int32.of_int n)

let put_string b s =
  put_u32 b (String.length s);
  Buffer.add_string b s

exception Short

let need s pos n = if !pos + n > String.length s then raise Short

let get_u8 s pos =
  need s pos 1;
  let v = Char.code s.[!pos] in
  pos := !pos + 1;
  v

let get_u32 s pos =
  need s pos 4;
  let v = Int32.to_int (String.get_int32_le s !pos) land 0xFFFF_FFFF in
  pos := !pos + 4;
  v

let get_u64 s pos =
  need s pos 8;
  let v = String.get_int64_le s !pos in
  pos := !pos + 8;
  v

let get_f64 s pos = Int64.float_of_bits (get_u64 s pos)

let get_string s pos =
  let n = get_u32 s pos in
  need s pos n;
  let v = String.sub s !pos n in
  pos := !pos + n;
  v

let decoding name f s =
  let pos = ref 0 in
  match f s pos with
  | v when !pos = String.length s -> Ok v
  | _ -> Error (name ^ ": trailing bytes")
  | exception Short -> Error (name ^ ": truncated")

module TradeTick = struct
  type t = { symbol : string; price : float; size : int; ts_ns : int64; side : int }

  let type_id = 1
  let name = "TradeTick"

  let encode t =
    let b = Buffer.create 32 in
    put_string b t.symbol;
    Buffer.add_int64_le b (Int64.bits_of_float t.price);
    put_u32 b t.size;
    Buffer.add_int64_le b t.ts_ns;
    if t.side < 0 || t.side > 255 then invalid_arg "TradeTick.side out of range";
    Buffer.add_uint8 b t.side;
    Buffer.contents b

  let decode =
    decoding name (fun s pos ->
        let symbol = get_string s pos in
        let price = get_f64 s pos in
        let size = get_u32 s pos in
        let ts_ns = get_u64 s pos in
        let side = get_u8 s pos in
        { symbol; price; size; ts_ns; side })
end

module TextMessage = struct
  type t = { sender : string; body : string; sent_at_ns : int64 }

  let type_id = 2
  let name = "TextMessage"

  let encode t =
    let b = Buffer.create 32 in
    put_string b t.sender;
    put_string b t.body;
    Buffer.add_int64_le b t.sent_at_ns;
    Buffer.contents b

  let decode =
    decoding name (fun s pos ->
        let sender = get_string s pos in
        let body = get_string s pos in
        let sent_at_ns = get_u64 s pos in
        { sender; body; sent_at_ns })
end

let tick ?(symbol = "BTC-USD") ?(price = 1.25) ?(side = 1) i =
  { TradeTick.symbol; price; size = i; ts_ns = Int64.of_int (i * 1000); side }
