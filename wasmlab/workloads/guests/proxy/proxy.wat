;; The smallest real wasi:http proxy: wasi:http/incoming-handler@0.2.0 answering every request with status 200 and
;; the fixed body "hello from wasmlab\n" (19 bytes), for `wasmlab serve` under the real `wasmtime serve` (issue 28).
;; It imports only what it calls: wasi:io's output stream and, from wasi:http/types, fields, outgoing-response,
;; outgoing-body and response-outparam.  error-code is spelled whole because wasmtime matches import types exactly.
(component
  (import "wasi:io/error@0.2.0" (instance $ioerr (export "error" (type (sub resource)))))
  (alias export $ioerr "error" (type $error))
  (import "wasi:io/streams@0.2.0" (instance $streams
    (alias outer 1 $error (type $e0))
    (export "error" (type $err (eq $e0)))
    (export "output-stream" (type $os (sub resource)))
    (type $se (variant (case "last-operation-failed" (own $err)) (case "closed")))
    (export "stream-error" (type $se2 (eq $se)))
    (export "[method]output-stream.blocking-write-and-flush"
      (func (param "self" (borrow $os)) (param "contents" (list u8)) (result (result (error $se2)))))))
  (alias export $streams "output-stream" (type $output-stream))
  (import "wasi:http/types@0.2.0" (instance $http
    (alias outer 1 $output-stream (type $os0))
    (export "output-stream" (type $os (eq $os0)))
    (export "fields" (type $fields (sub resource)))
    (export "incoming-request" (type $request (sub resource)))
    (export "outgoing-response" (type $response (sub resource)))
    (export "outgoing-body" (type $body (sub resource)))
    (export "response-outparam" (type $outparam (sub resource)))
    (type $dns (record (field "rcode" (option string)) (field "info-code" (option u16))))
    (export "DNS-error-payload" (type $dns2 (eq $dns)))
    (type $tls (record (field "alert-id" (option u8)) (field "alert-message" (option string))))
    (export "TLS-alert-received-payload" (type $tls2 (eq $tls)))
    (type $fsp (record (field "field-name" (option string)) (field "field-size" (option u32))))
    (export "field-size-payload" (type $fsp2 (eq $fsp)))
    (type $ec (variant
      (case "DNS-timeout") (case "DNS-error" $dns2) (case "destination-not-found") (case "destination-unavailable")
      (case "destination-IP-prohibited") (case "destination-IP-unroutable") (case "connection-refused")
      (case "connection-terminated") (case "connection-timeout") (case "connection-read-timeout")
      (case "connection-write-timeout") (case "connection-limit-reached") (case "TLS-protocol-error")
      (case "TLS-certificate-error") (case "TLS-alert-received" $tls2) (case "HTTP-request-denied")
      (case "HTTP-request-length-required") (case "HTTP-request-body-size" (option u64))
      (case "HTTP-request-method-invalid") (case "HTTP-request-URI-invalid") (case "HTTP-request-URI-too-long")
      (case "HTTP-request-header-section-size" (option u32)) (case "HTTP-request-header-size" (option $fsp2))
      (case "HTTP-request-trailer-section-size" (option u32)) (case "HTTP-request-trailer-size" $fsp2)
      (case "HTTP-response-incomplete") (case "HTTP-response-header-section-size" (option u32))
      (case "HTTP-response-header-size" $fsp2) (case "HTTP-response-body-size" (option u64))
      (case "HTTP-response-trailer-section-size" (option u32)) (case "HTTP-response-trailer-size" $fsp2)
      (case "HTTP-response-transfer-coding" (option string)) (case "HTTP-response-content-coding" (option string))
      (case "HTTP-response-timeout") (case "HTTP-upgrade-failed") (case "HTTP-protocol-error") (case "loop-detected")
      (case "configuration-error") (case "internal-error" (option string))))
    (export "error-code" (type $error-code (eq $ec)))
    (export "[constructor]fields" (func (result (own $fields))))
    (export "[constructor]outgoing-response" (func (param "headers" (own $fields)) (result (own $response))))
    (export "[method]outgoing-response.body" (func (param "self" (borrow $response)) (result (result (own $body)))))
    (export "[method]outgoing-body.write" (func (param "self" (borrow $body)) (result (result (own $os)))))
    (export "[static]outgoing-body.finish"
      (func (param "this" (own $body)) (param "trailers" (option (own $fields))) (result (result (error $error-code)))))
    (export "[static]response-outparam.set"
      (func (param "param" (own $outparam)) (param "response" (result (own $response) (error $error-code)))))))
  (alias export $http "incoming-request" (type $incoming-request))
  (alias export $http "response-outparam" (type $response-outparam))
  ;; Memory and a bump allocator for what the host writes back (an error-code's strings): every instance serves one
  ;; request, so nothing is ever freed.
  (core module $libc
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      global.get $next local.get 2 i32.add i32.const -1 i32.add i32.const 0 local.get 2 i32.sub i32.and local.set $at
      local.get $at local.get 3 i32.add global.set $next
      local.get $at))
  (core instance $libc (instantiate $libc))
  (core func $fields-new (canon lower (func $http "[constructor]fields")))
  (core func $response-new (canon lower (func $http "[constructor]outgoing-response")))
  (core func $response-body (canon lower (func $http "[method]outgoing-response.body") (memory (core memory $libc "mem"))))
  (core func $body-write (canon lower (func $http "[method]outgoing-body.write") (memory (core memory $libc "mem"))))
  (core func $body-finish (canon lower (func $http "[static]outgoing-body.finish")
    (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core func $outparam-set (canon lower (func $http "[static]response-outparam.set") (memory (core memory $libc "mem"))))
  (core func $stream-write (canon lower (func $streams "[method]output-stream.blocking-write-and-flush")
    (memory (core memory $libc "mem"))))
  (core func $stream-drop (canon resource.drop $output-stream))
  (core module $main
    (import "libc" "mem" (memory 1))
    (import "http" "fields-new" (func $fields-new (result i32)))
    (import "http" "response-new" (func $response-new (param i32) (result i32)))
    (import "http" "response-body" (func $response-body (param i32 i32)))
    (import "http" "body-write" (func $body-write (param i32 i32)))
    (import "http" "body-finish" (func $body-finish (param i32 i32 i32 i32)))
    (import "http" "outparam-set" (func $outparam-set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
    (import "http" "stream-write" (func $stream-write (param i32 i32 i32 i32)))
    (import "http" "stream-drop" (func $stream-drop (param i32)))
    (data (i32.const 16) "hello from wasmlab\n")
    ;; handle(request, outparam): a 200 response with no headers, its body written and finished; a failed step traps,
    ;; which wasmtime serve answers with a 500, so a broken guest cannot pass for a working one.
    (func (export "handle") (param $request i32) (param $outparam i32)
      (local $response i32) (local $body i32) (local $stream i32)
      call $fields-new call $response-new local.set $response
      local.get $response i32.const 64 call $response-body
      i32.const 64 i32.load if unreachable end
      i32.const 68 i32.load local.set $body
      local.get $outparam i32.const 0 local.get $response i32.const 0 i64.const 0 i32.const 0 i32.const 0 i32.const 0 i32.const 0
      call $outparam-set
      local.get $body i32.const 64 call $body-write
      i32.const 64 i32.load if unreachable end
      i32.const 68 i32.load local.set $stream
      local.get $stream i32.const 16 i32.const 19 i32.const 64 call $stream-write
      i32.const 64 i32.load8_u if unreachable end
      local.get $stream call $stream-drop
      local.get $body i32.const 0 i32.const 0 i32.const 128 call $body-finish
      i32.const 128 i32.load8_u if unreachable end))
  (core instance $main (instantiate $main
    (with "libc" (instance $libc))
    (with "http" (instance
      (export "fields-new" (func $fields-new)) (export "response-new" (func $response-new))
      (export "response-body" (func $response-body)) (export "body-write" (func $body-write))
      (export "body-finish" (func $body-finish)) (export "outparam-set" (func $outparam-set))
      (export "stream-write" (func $stream-write)) (export "stream-drop" (func $stream-drop))))))
  (func $handle (param "request" (own $incoming-request)) (param "response-out" (own $response-outparam))
    (canon lift (core func $main "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))
