;;; Loader of the Scheme (Guile) session kernel (protocol: backend_kernel_provisioner/kernels/session.py).
;;; Each form of a cell is evaluated in one fresh user module, so definitions last between cells
;;; and the loader's own names stay out of the user's way. The value of the last form is the
;;; cell's result. SIGINT throws 'backend-interrupt into the running cell. (ice-9 rdelim) is imported.
;;; system and system* ignore SIGINT while the command runs (as libc's system does), so the
;;; interrupt would be lost: the kernel also names the interrupted request in the session's
;;; `interrupt` flag file, and the user module's system and system* check it when they return.
;;; Guile's system* also leaves SIGINT ignored in the command itself, which then never stops: the
;;; user's system* starts it through `env --default-signal` (GNU coreutils) when env has it.
(use-modules (ice-9 rdelim) (ice-9 textual-ports) (srfi srfi-1))

(define %user (make-fresh-user-module))
(module-use! %user (resolve-interface '(ice-9 rdelim)))  ; read-line, as at the REPL
(define %cells (open-input-file (getenv "BACKEND_SESSION_CELLS")))
(define %status (open-output-file (getenv "BACKEND_SESSION_STATUS")))
(setvbuf (current-output-port) 'line)
(setvbuf (current-error-port) 'none)

(define (json-string s)
  (call-with-output-string
    (lambda (port)
      (write-char #\" port)
      (string-for-each
        (lambda (c)
          (case c
            ((#\") (display "\\\"" port))
            ((#\\) (display "\\\\" port))
            ((#\newline) (display "\\n" port))
            ((#\return) (display "\\r" port))
            ((#\tab) (display "\\t" port))
            (else (if (< (char->integer c) 32)
                      (format port "\\u~4,'0x" (char->integer c))
                      (write-char c port)))))
        s)
      (write-char #\" port))))

(define (json value)
  (cond ((boolean? value) (if value "true" "false"))
        ((string? value) (json-string value))
        ((number? value) (number->string value))
        ((list? value)
         (if (and (pair? value) (pair? (car value)) (symbol? (caar value)))
             (string-append "{" (string-join (map (lambda (kv) (string-append (json-string (symbol->string (car kv)))
                                                                                ":" (json (cdr kv))))
                                                  value) ",") "}")
             (string-append "[" (string-join (map json value) ",") "]")))
        (else (json-string (format #f "~a" value)))))

(define (report . fields)
  (force-output (current-output-port))
  (force-output (current-error-port))
  (display (json fields) %status)
  (newline %status)
  (force-output %status))

;; display-html, display-png, ...: rich output on the status channel (guile_display.scm).
(load "guile_display.scm")

(define %in-cell #f)  ; #t only while a cell's forms run: an interrupt throws only into a running cell

;; Guile runs a signal's handler later, at a safe point: a SIGINT whose cell already ended (stopped by
;; the flag below, or finished) must not throw into the loader itself, which would end the session.
(define (interrupt-handler signum)
  (when %in-cell
    (set! %in-cell #f)
    (throw 'backend-interrupt)))

(define %flag (string-append (getenv "BACKEND_SESSION_DIR") "/interrupt"))
(define %current-id #f)  ; the id a flag must name to interrupt the running cell

(define (check-interrupt)
  (when (and %current-id (file-exists? %flag)
             (equal? (false-if-exception (string-trim-both (call-with-input-file %flag get-string-all)))
                     (number->string %current-id)))
    (false-if-exception (delete-file %flag))
    (set! %in-cell #f)
    (throw 'backend-interrupt)))

(define (checking-after name procedure)
  (let ((checking (lambda args
                    (call-with-values (lambda () (apply procedure args))
                      (lambda results (check-interrupt) (apply values results))))))
    (set-procedure-property! checking 'name name)
    (module-define! %user name checking)))

(define %env-resets-signals
  (delay (false-if-exception
           (eqv? 0 (status:exit-val (system "env --default-signal=INT,QUIT true >/dev/null 2>&1"))))))

(define (system*-with-signals . args)
  (if (and (pair? args) (string? (car args)) (not (string-index (car args) #\=)) (force %env-resets-signals))
      (apply system* "env" "--default-signal=INT,QUIT" "--" args)
      (apply system* args)))

(checking-after 'system system)
(checking-after 'system* system*-with-signals)

(define (describe key args)
  "The message Guile's REPL would print for an error."
  (string-trim-right
    (call-with-output-string
      (lambda (port)
        (false-if-exception (print-exception port #f key args))))))

(define (run id text)
  (define port (open-input-string text))
  (define result #f)
  (set! %current-id id)
  (catch #t
    (lambda ()
      (set! %in-cell #t)
      (sigaction SIGINT interrupt-handler)
      (let loop ()
        (let ((form (read port)))
          (unless (eof-object? form)
            (call-with-values (lambda () (eval form %user))
              (lambda values
                (set! result (if (or (null? values) (unspecified? (car values)))
                                 #f
                                 (string-join (map (lambda (v) (call-with-output-string (lambda (p) (write v p))))
                                                   values) " ")))))
            (check-interrupt)  ; SIGINT's handler runs a moment later: a pipe read may return first
            (loop))))
      (set! %in-cell #f)
      (sigaction SIGINT SIG_IGN)
      (if result
          (report `(id . ,id) '(status . "ok") `(result . ,result))
          (report `(id . ,id) '(status . "ok"))))
    (lambda (key . args)
      (set! %in-cell #f)
      (sigaction SIGINT SIG_IGN)
      (when (eq? key 'quit)  ; (exit n) ends the session, as it would end Guile
        (apply throw key args))
      (if (eq? key 'backend-interrupt)
          (report `(id . ,id) '(status . "error") '(ename . "KeyboardInterrupt") '(evalue . "interrupted")
                  '(exit_code . 130))
          (let ((message (describe key args)))
            (report `(id . ,id) '(status . "error") `(ename . ,(symbol->string key))
                    `(evalue . ,(if (string-null? message) (symbol->string key) message))
                    '(exit_code . 1) `(traceback . (,message))))))))

(define (module-names module)
  (let ((names '()))
    (module-for-each (lambda (name var) (set! names (cons (symbol->string name) names))) module)
    names))

(define (complete id text)
  (define start
    (let loop ((i (string-length text)))
      (if (and (> i 0) (not (memv (string-ref text (- i 1)) '(#\( #\) #\space #\newline #\tab #\' #\` #\, #\" #\[ #\]))))
          (loop (- i 1))
          i)))
  (define token (substring text start))
  (define names (append (module-names %user) (append-map module-names (module-uses %user))))
  (define matches (sort (delete-duplicates (filter (lambda (n) (string-prefix? token n)) names)) string<?))
  (report `(id . ,id) '(status . "ok") `(matches . ,(if (null? matches) '() matches)) `(token . ,token)))

(load (string-append (dirname (current-filename)) "/guile_inspect.scm"))  ; inspect: Shift-Tab's answers
(load (string-append (dirname (current-filename)) "/guile_is_complete.scm"))  ; does the text end early?

(sigaction SIGINT SIG_IGN)
(report '(status . "ready"))
(let loop ()
  (let ((line (read-line %cells)))
    (unless (eof-object? line)
      (let* ((first (string-index line #\space))
             (second (and first (string-index line #\space (+ first 1)))))
        (when second
          (let ((id (string->number (substring line 0 first)))
                (kind (substring line (+ first 1) second))
                (text (call-with-input-file (substring line (+ second 1)) get-string-all)))
            ;; A late interrupt that still found its way out of a cell is dropped, never fatal.
            (catch 'backend-interrupt
              (lambda ()
                (cond ((string=? kind "run") (run id text))
                      ((string=? kind "complete") (complete id text))
                      ((string=? kind "inspect") (inspect id text))
                      ((string=? kind "is_complete")
                       (report `(id . ,id) '(status . "ok") `(complete . ,(is-complete-status text))))))
              (lambda _ #f)))))
        ;; End of the cells channel (the kernel's shutdown) ends the loop: Guile exits cleanly.
        (loop)))))
