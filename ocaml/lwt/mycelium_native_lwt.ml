module M = Mycelium_native

(* State shared by the delivery thread (producer) and the Lwt thread (consumer). The delivery
   thread must not touch the Lwt_stream: Lwt is not thread-safe and runs on one thread only. *)
type 'a mailbox = {
  lock : Mutex.t;
  pending : 'a Queue.t;
  mutable notified : bool;  (** A notification is on its way; further ones would be wasted. *)
  mutable ended : bool;
}

let with_lock m f =
  Mutex.lock m;
  Fun.protect ~finally:(fun () -> Mutex.unlock m) f

(* A stream fed by the subscription [subscribe] makes with the function it is given, which the
   delivery thread calls with each element. *)
let stream_of_subscription (subscribe : ('a -> unit) -> M.Subscription.t) =
  let box = { lock = Mutex.create (); pending = Queue.create (); notified = false; ended = false } in
  let stream, push = Lwt_stream.create () in
  let notification = ref (-1) in
  (* Lwt thread: move what arrived into the stream. *)
  let drain () =
    let items, ended =
      with_lock box.lock (fun () ->
          box.notified <- false;
          let items = List.of_seq (Queue.to_seq box.pending) in
          Queue.clear box.pending;
          (items, box.ended))
    in
    List.iter (fun v -> push (Some v)) items;
    if ended then begin
      push None;
      Lwt_unix.stop_notification !notification
    end
  in
  notification := Lwt_unix.make_notification drain;
  (* Any thread: wake the Lwt loop unless a wake-up is already pending. *)
  let wake_with f =
    let send =
      with_lock box.lock (fun () ->
          f ();
          let send = not box.notified in
          box.notified <- true;
          send)
    in
    if send then Lwt_unix.send_notification !notification
  in
  let deliver v = wake_with (fun () -> Queue.push v box.pending) in
  let sub =
    match subscribe deliver with
    | sub -> sub
    | exception e ->
        (* Refused (e.g. spin_us above the limit): nothing will ever wake the notification. *)
        Lwt_unix.stop_notification !notification;
        raise e
  in
  M.Subscription.on_close sub (fun () -> wake_with (fun () -> box.ended <- true));
  (stream, sub)

let subscribe_stream ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt m =
  stream_of_subscription (M.subscribe ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt m)

(* The pair is made on the delivery thread, like the decoded message itself. *)
let subscribe_stream_with_topic ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt m =
  stream_of_subscription (fun deliver ->
      M.subscribe_with_topic ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt m (fun v topic ->
          deliver (v, topic)))

let stream ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt m =
  fst (subscribe_stream ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt m)

let stream_with_topic ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt m =
  fst (subscribe_stream_with_topic ?capacity ?overflow ?max_batch ?label ?spin_us ?pattern rt m)

let recv s = Lwt.bind (Lwt_stream.get s) (function Some v -> Lwt.return v | None -> Lwt.fail End_of_file)

(* Request/reply: the blocking request runs on Lwt's preemptive thread pool (it releases the
   runtime lock while it waits), so the Lwt loop keeps running. *)
let request ?timeout rt q r msg = Lwt_preemptive.detach (fun () -> M.request ?timeout rt q r msg) ()
let request_all ?timeout rt q r msg = Lwt_preemptive.detach (fun () -> M.request_all ?timeout rt q r msg) ()
let call ?timeout rt s msg = Lwt_preemptive.detach (fun () -> M.call ?timeout rt s msg) ()
let call_all ?timeout rt s msg = Lwt_preemptive.detach (fun () -> M.call_all ?timeout rt s msg) ()
