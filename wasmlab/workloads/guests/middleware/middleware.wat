;; The middleware of middleware.wit written by hand in the component text format: a core
;; module implementing the canonical ABI directly (no bindings generator, no language runtime),
;; lifted into a component.  Same policy as policy.py; the host checks every answer against it.
;;
;; Memory: static strings below 1024, a bump heap above it.  The host asks cabi_realloc for
;; room for each argument string and list; post-return resets the heap, so one instance can
;; serve any number of calls.
(component
  (core module $m
    (memory (export "memory") 1)
    (global $heap_base i32 (i32.const 1024))
    (global $heap (mut i32) (i32.const 1024))

    (data (i32.const 16) "x-api-key")     ;; 9 bytes
    (data (i32.const 32) "let-me-in")     ;; 9 bytes
    (data (i32.const 48) "x-request-id")  ;; 12 bytes
    (data (i32.const 64) "/v1")           ;; 3 bytes
    (data (i32.const 80) "0123456789abcdef")

    (func $realloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $ptr i32) (local $end i32)
      ;; align up
      (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                               (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $ptr) (local.get $size)))
      (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
        (then
          (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
                                                       (i32.const 16))
                                            (i32.const 1)))
                      (i32.const -1))
            (then unreachable))))
      (if (local.get $old_size)
        (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
      (global.set $heap (local.get $end))
      (local.get $ptr))

    (func $reset (export "cabi_post_on-request") (param i32)
      (global.set $heap (global.get $heap_base)))
    (func (export "cabi_post_on-response") (param i32)
      (global.set $heap (global.get $heap_base)))

    ;; a[0..alen] == b[0..blen], ASCII letters of a compared lowercased (b is lowercase)
    (func $eq_ci (param $a i32) (param $alen i32) (param $b i32) (param $blen i32) (result i32)
      (local $i i32) (local $c i32)
      (if (i32.ne (local.get $alen) (local.get $blen)) (then (return (i32.const 0))))
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $alen)))
          (local.set $c (i32.load8_u (i32.add (local.get $a) (local.get $i))))
          (if (i32.and (i32.ge_u (local.get $c) (i32.const 65)) (i32.le_u (local.get $c) (i32.const 90)))
            (then (local.set $c (i32.or (local.get $c) (i32.const 32)))))
          (if (i32.ne (local.get $c) (i32.load8_u (i32.add (local.get $b) (local.get $i))))
            (then (return (i32.const 0))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (i32.const 1))

    (func $eq (param $a i32) (param $alen i32) (param $b i32) (param $blen i32) (result i32)
      (local $i i32)
      (if (i32.ne (local.get $alen) (local.get $blen)) (then (return (i32.const 0))))
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $alen)))
          (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                      (i32.load8_u (i32.add (local.get $b) (local.get $i))))
            (then (return (i32.const 0))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (i32.const 1))

    (func $fnv1a (param $h i64) (param $p i32) (param $len i32) (result i64)
      (local $end i32)
      (local.set $end (i32.add (local.get $p) (local.get $len)))
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
          (local.set $h (i64.mul (i64.xor (local.get $h) (i64.load8_u (local.get $p)))
                                 (i64.const 0x100000001b3)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $next)))
      (local.get $h))

    ;; path == "/v1" or starts with "/v1/"
    (func $protected (param $p i32) (param $len i32) (result i32)
      (if (i32.lt_u (local.get $len) (i32.const 3)) (then (return (i32.const 0))))
      (if (i32.eqz (call $eq (local.get $p) (i32.const 3) (i32.const 64) (i32.const 3))) (then (return (i32.const 0))))
      (if (i32.eq (local.get $len) (i32.const 3)) (then (return (i32.const 1))))
      (i32.eq (i32.load8_u offset=3 (local.get $p)) (i32.const 47)))

    ;; some header (name, value) with name ~ "x-api-key" and value == "let-me-in"
    (func $authorized (param $headers i32) (param $count i32) (result i32)
      (local $entry i32) (local $end i32)
      (local.set $entry (local.get $headers))
      (local.set $end (i32.add (local.get $headers) (i32.shl (local.get $count) (i32.const 4))))
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $entry) (local.get $end)))
          (if (i32.and
                (call $eq_ci (i32.load (local.get $entry)) (i32.load offset=4 (local.get $entry)) (i32.const 16) (i32.const 9))
                (call $eq (i32.load offset=8 (local.get $entry)) (i32.load offset=12 (local.get $entry)) (i32.const 32) (i32.const 9)))
            (then (return (i32.const 1))))
          (local.set $entry (i32.add (local.get $entry) (i32.const 16)))
          (br $next)))
      (i32.const 0))

    ;; action layout: discriminant u8 at 0, payload at 4 (24 bytes in all)
    ;;   reject: u16 at 4
    ;;   modify: set-headers (ptr, len) at 4, remove-headers (ptr, len) at 12, option<u16> at 20 (tag) / 22 (value)
    (func (export "on-request")
      (param $mp i32) (param $ml i32) (param $pp i32) (param $pl i32)
      (param $hp i32) (param $hl i32) (param $bp i32) (param $bl i32) (result i32)
      (local $out i32) (local $hex i32) (local $set i32) (local $remove i32) (local $h i64) (local $i i32)
      (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
      (if (i32.and (call $protected (local.get $pp) (local.get $pl))
                   (i32.eqz (call $authorized (local.get $hp) (local.get $hl))))
        (then
          (i32.store8 (local.get $out) (i32.const 1))
          (i32.store16 offset=4 (local.get $out) (i32.const 401))
          (return (local.get $out))))
      (local.set $h (call $fnv1a (i64.const 0xcbf29ce484222325) (local.get $mp) (local.get $ml)))
      (local.set $h (call $fnv1a (local.get $h) (local.get $pp) (local.get $pl)))
      (local.set $h (call $fnv1a (local.get $h) (local.get $bp) (local.get $bl)))
      (local.set $hex (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
      (local.set $i (i32.const 15))
      (loop $digit
        (i32.store8 (i32.add (local.get $hex) (local.get $i))
                    (i32.load8_u offset=80 (i32.wrap_i64 (i64.and (local.get $h) (i64.const 15)))))
        (local.set $h (i64.shr_u (local.get $h) (i64.const 4)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br_if $digit (i32.ge_s (local.get $i) (i32.const 0))))
      (local.set $set (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 16)))
      (i32.store (local.get $set) (i32.const 48))
      (i32.store offset=4 (local.get $set) (i32.const 12))
      (i32.store offset=8 (local.get $set) (local.get $hex))
      (i32.store offset=12 (local.get $set) (i32.const 16))
      (local.set $remove (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
      (i32.store (local.get $remove) (i32.const 16))
      (i32.store offset=4 (local.get $remove) (i32.const 9))
      (i32.store8 (local.get $out) (i32.const 2))
      (i32.store offset=4 (local.get $out) (local.get $set))
      (i32.store offset=8 (local.get $out) (i32.const 1))
      (i32.store offset=12 (local.get $out) (local.get $remove))
      (i32.store offset=16 (local.get $out) (i32.const 1))
      (i32.store8 offset=20 (local.get $out) (i32.const 0))
      (local.get $out))

    (func (export "on-response")
      (param $status i32) (param $hp i32) (param $hl i32) (param $bp i32) (param $bl i32) (result i32)
      (local $out i32)
      (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
      (if (i32.ne (local.get $status) (i32.const 500))
        (then
          (i32.store8 (local.get $out) (i32.const 0))
          (return (local.get $out))))
      (i32.store8 (local.get $out) (i32.const 2))
      (i64.store offset=4 (local.get $out) (i64.const 0))
      (i64.store offset=12 (local.get $out) (i64.const 0))
      (i32.store8 offset=20 (local.get $out) (i32.const 1))
      (i32.store16 offset=22 (local.get $out) (i32.const 503))
      (local.get $out))
  )
  (core instance $i (instantiate $m))

  (type $header' (tuple string string))
  (type $request' (record (field "method" string) (field "path" string)
                          (field "headers" (list $header')) (field "body" (list u8))))
  (export $request "request" (type $request'))
  (type $response' (record (field "status" u16) (field "headers" (list $header')) (field "body" (list u8))))
  (export $response "response" (type $response'))
  (type $modification' (record (field "set-headers" (list $header')) (field "remove-headers" (list string))
                               (field "status" (option u16))))
  (export $modification "modification" (type $modification'))
  (type $action' (variant (case "continue") (case "reject" u16) (case "modify" $modification)))
  (export $action "action" (type $action'))

  (func $on-request (param "req" $request) (result $action)
    (canon lift (core func $i "on-request") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))
                (post-return (core func $i "cabi_post_on-request"))))
  (func $on-response (param "resp" $response) (result $action)
    (canon lift (core func $i "on-response") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))
                (post-return (core func $i "cabi_post_on-response"))))
  (export "on-request" (func $on-request))
  (export "on-response" (func $on-response))
)
