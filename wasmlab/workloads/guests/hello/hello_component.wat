;; A WASI preview 2 component command: run writes "hello\n" to stdout and returns ok.  The smallest command a
;; component host serves (issue 25); hello_core.wat is the same command as a core WASI preview 1 module.
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
  (import "wasi:cli/stdout@0.2.0" (instance $stdout
    (alias outer 1 $output-stream (type $os0))
    (export "output-stream" (type $os (eq $os0)))
    (export "get-stdout" (func (result (own $os))))))
  (core module $libc (memory (export "mem") 1))
  (core instance $libc (instantiate $libc))
  (core func $get-stdout (canon lower (func $stdout "get-stdout")))
  (core func $write (canon lower (func $streams "[method]output-stream.blocking-write-and-flush")
    (memory (core memory $libc "mem"))))
  (core module $main
    (import "libc" "mem" (memory 1))
    (import "host" "get-stdout" (func $get-stdout (result i32)))
    (import "host" "write" (func $write (param i32 i32 i32 i32)))
    (data (i32.const 16) "hello\n")
    (func (export "run") (result i32)
      call $get-stdout i32.const 16 i32.const 6 i32.const 64 call $write
      i32.const 64 i32.load8_u))  ;; err (1) when the write failed, else ok (0)
  (core instance $main (instantiate $main
    (with "libc" (instance $libc))
    (with "host" (instance (export "get-stdout" (func $get-stdout)) (export "write" (func $write))))))
  (func $run (result (result)) (canon lift (core func $main "run")))
  (instance $run (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run)))
