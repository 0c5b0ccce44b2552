(* The library's log records (Rust `tracing` events of the bus, bridges and stubs) handed to an
   OCaml handler. The records wait in a bounded queue on the Rust side (ocaml/stubs/src/log.rs);
   a systhread started by [set_handler] takes them with the runtime lock released and calls the
   handler with it held, so no Rust thread ever has to take the OCaml runtime lock to log. *)

type level = Error | Warning | Info | Debug | Trace

type record = { level : level; target : string; message : string; fields : (string * string) list }

external install : unit -> bool = "mycelium_ml_log_install"

external next : unit -> (int * string * string * (string * string) array, int * string) result
  = "mycelium_ml_log_next"

let level_of_index = function 0 -> Error | 1 -> Warning | 2 -> Info | 3 -> Debug | _ -> Trace

let string_of_level = function
  | Error -> "ERROR"
  | Warning -> "WARN"
  | Info -> "INFO"
  | Debug -> "DEBUG"
  | Trace -> "TRACE"

let to_string r =
  let fields = List.map (fun (k, v) -> Printf.sprintf " %s=%s" k v) r.fields in
  Printf.sprintf "mycelium %s %s: %s%s" (string_of_level r.level) r.target r.message (String.concat "" fields)

let stderr_handler r = prerr_endline (to_string r)

let handler = ref stderr_handler
let lock = Mutex.create ()
let state = ref `Not_started

let rec forward () =
  match next () with
  | Error _ -> ()
  | Ok (level, target, message, fields) ->
      let r = { level = level_of_index level; target; message; fields = Array.to_list fields } in
      (try !handler r
       with e -> prerr_endline ("mycelium: the log handler raised " ^ Printexc.to_string e ^ "; record: " ^ to_string r));
      forward ()

let set_handler h =
  Mutex.lock lock;
  handler := h;
  let forwarding =
    match !state with
    | `Forwarding -> true
    | `Host_has_subscriber -> false
    | `Not_started ->
        if install () then begin
          ignore (Thread.create forward ());
          state := `Forwarding;
          true
        end
        else begin
          state := `Host_has_subscriber;
          false
        end
  in
  Mutex.unlock lock;
  forwarding
