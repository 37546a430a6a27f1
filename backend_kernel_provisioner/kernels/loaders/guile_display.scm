;;; Rich output of the Scheme (Guile) session kernel, loaded by guile_loader.scm (it uses the loader's
;;; report, which flushes the output ports first). Each procedure writes one {"display": ...} line on the
;;; status channel (protocol: backend_kernel_provisioner/kernels/interpreter.py), then waits for the
;;; kernel's line on the FIFO display-ack, so the display sits between what the cell printed before and after.
;;;
;;;   (display-html s) (display-markdown s) (display-latex s) (display-svg s) (display-text s)
;;;   (display-json json-text-or-alist)
;;;   (display-png bytevector-or-path) (display-jpeg bytevector-or-path)
;;;   (display-mime '(("text/html" . "...") ("text/plain" . "...")))
;;; Each takes an optional last argument, the metadata as an alist: '((width . 200)).
(use-modules ((rnrs io ports) #:select (put-bytevector)))  ; bytevector? is in the core

(define %display-folder (getenv "BACKEND_SESSION_DIR"))
(define %display-serial 0)

(define (display-bundle pairs)
  "An alist keyed by MIME type strings, as the loader's json writes objects (symbol keys)."
  (map (lambda (kv) (cons (string->symbol (car kv)) (cdr kv))) pairs))

(define (send-display data files metadata)
  (report `(display . ((data . ,(display-bundle data)) (files . ,(display-bundle files)) (metadata . ,metadata))))
  (call-with-input-file (string-append %display-folder "/display-ack") read-line)
  *unspecified*)  ; not a value a cell would show

(define (display-image value mime extension metadata)
  (cond ((bytevector? value)
         (set! %display-serial (+ %display-serial 1))
         (let ((path (format #f "~a/display-~a.~a" %display-folder %display-serial extension)))
           (call-with-output-file path (lambda (port) (put-bytevector port value)) #:binary #t)
           (send-display '() `((,mime . ,path)) metadata)))
        ((and (string? value) (file-exists? value))
         (send-display '() `((,mime . ,(if (absolute-file-name? value) value (string-append (getcwd) "/" value)))) metadata))
        (else (error (string-append "display-" extension ": give a bytevector or the path of an image file") value))))

(define-syntax-rule (define-text-display name mime)
  (define* (name text #:optional (metadata '()))
    (unless (string? text) (error (string-append (symbol->string 'name) ": give a string") text))
    (send-display (list (cons mime text)) '() metadata)))

(define-text-display display-html "text/html")
(define-text-display display-markdown "text/markdown")
(define-text-display display-latex "text/latex")
(define-text-display display-svg "image/svg+xml")
(define-text-display display-text "text/plain")

(define* (display-json value #:optional (metadata '()))
  (send-display `(("application/json" . ,(if (string? value) value (json value)))) '() metadata))

(define* (display-png value #:optional (metadata '()))
  (display-image value "image/png" "png" metadata))

(define* (display-jpeg value #:optional (metadata '()))
  (display-image value "image/jpeg" "jpeg" metadata))

(define* (display-mime pairs #:optional (metadata '()))
  (send-display pairs '() metadata))

(for-each (lambda (name) (module-define! %user name (module-ref (current-module) name)))
          '(display-html display-markdown display-latex display-svg display-text display-json display-png
            display-jpeg display-mime))
