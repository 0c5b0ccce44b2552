(* The shared golden vectors (tests/vectors/contracts.json): every frame decodes with the OCaml
   code and encodes back to the same bytes, and the bus accepts the payload. *)

open Support

type vector = { name : string; message : string; type_id : int; payload : string }

let of_hex h =
  let n = String.length h / 2 in
  String.init n (fun i -> Char.chr (int_of_string ("0x" ^ String.sub h (2 * i) 2)))

let load () =
  let json = Yojson.Safe.from_file (Filename.concat (Lazy.force root) "tests/vectors/contracts.json") in
  let open Yojson.Safe.Util in
  let digest = json |> member "schema_digest" |> to_string in
  let vectors =
    json |> member "vectors" |> to_list
    |> List.map (fun v ->
           let frame = of_hex (v |> member "frame_hex" |> to_string) in
           {
             name = v |> member "name" |> to_string;
             message = v |> member "message" |> to_string;
             type_id = v |> member "type_id" |> to_int;
             payload = String.sub frame 6 (String.length frame - 6);
           })
  in
  (digest, vectors)

let hex s = String.concat "" (List.map (fun c -> Printf.sprintf "%02x" (Char.code c)) (List.of_seq (String.to_seq s)))

(* [modules]: the message modules under test, by message name. *)
let check_all ~min_vectors (modules : (string * (module M.MESSAGE)) list) () =
  let digest, vectors = load () in
  with_runtime (fun rt ->
      Alcotest.(check string) "vectors were made for contracts.yaml" (M.Runtime.schema_digest rt) digest;
      let checked = ref 0 in
      List.iter
        (fun v ->
          match List.assoc_opt v.message modules with
          | None -> ()
          | Some (module Msg) ->
              incr checked;
              Alcotest.(check int) (v.name ^ ": type id") v.type_id Msg.type_id;
              (match Msg.decode v.payload with
              | Error e -> Alcotest.failf "%s: does not decode: %s" v.name e
              | Ok value ->
                  let again = Msg.encode value in
                  if again <> v.payload then
                    Alcotest.failf "%s: re-encodes differently\n expected %s\n      got %s" v.name (hex v.payload) (hex again));
              (* Truncations are decode errors, never exceptions. *)
              if String.length v.payload > 0 then
                (match Msg.decode (String.sub v.payload 0 (String.length v.payload - 1)) with
                | Ok _ -> Alcotest.failf "%s: a truncated payload decoded" v.name
                | Error _ -> ());
              M.publish_raw rt ~type_id:v.type_id v.payload)
        vectors;
      if !checked < min_vectors then Alcotest.failf "only %d vectors checked (expected at least %d)" !checked min_vectors)
