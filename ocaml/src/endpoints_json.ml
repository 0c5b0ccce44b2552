(* The "endpoints" list of a bridge's stats JSON (mycelium_bridge_stats_json), read without a
   JSON library: the library depends on nothing but threads, and this is the one list of strings
   it needs. The key is looked up as ["endpoints"] followed by a colon; an unescaped quote cannot
   occur inside a JSON string, so the match can only be the key itself. *)

exception Malformed of string

let is_space = function ' ' | '\t' | '\n' | '\r' -> true | _ -> false

let rec skip_spaces s i = if i < String.length s && is_space s.[i] then skip_spaces s (i + 1) else i

let expect s i c =
  let i = skip_spaces s i in
  if i < String.length s && s.[i] = c then i + 1
  else raise (Malformed (Printf.sprintf "expected '%c' at byte %d" c i))

let find_sub s sub =
  let n = String.length sub and m = String.length s in
  let rec at i = if i + n > m then None else if String.sub s i n = sub then Some i else at (i + 1) in
  at 0

let hex4 s i =
  if i + 4 > String.length s then raise (Malformed "truncated \\u escape");
  match int_of_string_opt ("0x" ^ String.sub s i 4) with
  | Some n -> n
  | None -> raise (Malformed (Printf.sprintf "bad \\u escape at byte %d" i))

(* A JSON string starting at the opening quote [i]: its text (UTF-8) and the index after it. *)
let read_string s i =
  let i = expect s i '"' in
  let b = Buffer.create 32 in
  let add_code n = Buffer.add_utf_8_uchar b (if Uchar.is_valid n then Uchar.of_int n else Uchar.rep) in
  let rec go i =
    if i >= String.length s then raise (Malformed "unterminated string")
    else
      match s.[i] with
      | '"' -> i + 1
      | '\\' when i + 1 < String.length s -> (
          match s.[i + 1] with
          | ('"' | '\\' | '/') as c ->
              Buffer.add_char b c;
              go (i + 2)
          | 'b' -> Buffer.add_char b '\b'; go (i + 2)
          | 'f' -> Buffer.add_char b '\012'; go (i + 2)
          | 'n' -> Buffer.add_char b '\n'; go (i + 2)
          | 'r' -> Buffer.add_char b '\r'; go (i + 2)
          | 't' -> Buffer.add_char b '\t'; go (i + 2)
          | 'u' ->
              (* The stats come from serde_json, which escapes only control characters this way
                 (never a surrogate pair: it writes other characters as UTF-8). *)
              add_code (hex4 s (i + 2));
              go (i + 6)
          | c -> raise (Malformed (Printf.sprintf "bad escape \\%c at byte %d" c i)))
      | c ->
          Buffer.add_char b c;
          go (i + 1)
  in
  let next = go i in
  (Buffer.contents b, next)

let endpoints json =
  match find_sub json "\"endpoints\"" with
  | None -> Error "no \"endpoints\" key"
  | Some k -> (
      try
        let i = expect json (k + String.length "\"endpoints\"") ':' in
        let i = expect json i '[' in
        let i = skip_spaces json i in
        if i < String.length json && json.[i] = ']' then Ok []
        else
          let rec items acc i =
            let v, i = read_string json (skip_spaces json i) in
            let i = skip_spaces json i in
            if i < String.length json && json.[i] = ',' then items (v :: acc) (i + 1)
            else
              let _ = expect json i ']' in
              List.rev (v :: acc)
          in
          Ok (items [] i)
      with Malformed why -> Error why)
