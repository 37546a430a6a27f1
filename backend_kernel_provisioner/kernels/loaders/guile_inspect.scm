;;; Inspect (Shift-Tab) for the Scheme (Guile) session kernel, loaded by guile_loader.scm into its
;;; module (it uses %user and report): what a name of the user module is. A procedure shows its
;;; signature (parameter names from procedure-arguments, else its arity) and its documentation
;;; (a docstring, or for Guile's primitives the text of guile-procedures.txt); syntax says so; other
;;; values show their type and value. Nothing the user wrote is evaluated: the name is looked up.
(use-modules (ice-9 documentation) (ice-9 session) (system vm program))

(define (inspect-names names)
  (map (lambda (n) (if (symbol? n) (symbol->string n) (format #f "~a" n))) (or names '())))

(define (inspect-signature name proc)
  "(name a b #:optional c #:key d . rest), or #f when the parameters have no names."
  (let* ((args (false-if-exception (procedure-arguments proc)))
         (required (inspect-names (and args (assq-ref args 'required))))
         (optional (inspect-names (and args (assq-ref args 'optional))))
         (keys (map (lambda (k) (if (pair? k) (symbol->string (keyword->symbol (car k))) (format #f "~a" k)))
                    (or (and args (assq-ref args 'keyword)) '())))
         (rest (and args (assq-ref args 'rest))))
    (and args
         (not (member "_" (append required optional)))
         (string-append "(" (string-join (append (list name) required
                                                 (if (null? optional) '() (cons "#:optional" optional))
                                                 (if (null? keys) '() (cons "#:key" keys))
                                                 (if rest (list "." (if (eq? rest '_) "rest" (format #f "~a" rest)))
                                                     '()))
                                         " ")
                        ")"))))

(define (inspect-arity proc)
  "Guile's own words for the arity, else the numbers of procedure-minimum-arity."
  (let ((said (string-trim-both (catch #t (lambda () (with-output-to-string (lambda () (arity proc))))
                                       (lambda _ ""))))
        (numbers (false-if-exception (procedure-minimum-arity proc))))
    (cond ((not (string-null? said)) said)
          ((and (list? numbers) (= (length numbers) 3))
           (format #f "~a required, ~a optional~a" (car numbers) (cadr numbers) (if (caddr numbers) ", and more" "")))
          (else ""))))

(define (inspect-type value)
  (cond ((procedure? value) "procedure") ((number? value) "number") ((string? value) "string")
        ((symbol? value) "symbol") ((boolean? value) "boolean") ((char? value) "character")
        ((null? value) "empty list") ((list? value) "list") ((pair? value) "pair") ((vector? value) "vector")
        ((hash-table? value) "hash table") ((record? value) "record") (else "object")))

(define (inspect-describe name value detail)
  (let ((doc (false-if-exception (object-documentation value))))
    (cond
      ((macro? value)
       (string-append "Type:      syntax (a macro)" (if doc (string-append "\nDoc:\n" doc) "")))
      ((procedure? value)
       (let ((signature (inspect-signature name value)))
         (string-append (if signature (string-append "Signature: " signature "\n") "")
                        "Type:      procedure"
                        (let ((shown (inspect-arity value)))
                          (if (string-null? shown) "" (string-append "\nArity:     " shown)))
                        (if doc (string-append "\nDoc:\n" doc) ""))))
      (else
       (let* ((shown (call-with-output-string (lambda (port) (write value port))))
              (limit (if (> detail 0) 20000 2000)))
         (string-append "Type:      " (inspect-type value) "\nValue:     "
                        (if (> (string-length shown) limit) (string-append (substring shown 0 limit) "...") shown)))))))

(define (inspect id text)
  (let* ((lines (string-split text #\newline))
         (name (string-trim-both (car lines)))
         (detail (or (and (pair? (cdr lines)) (string->number (string-trim-both (cadr lines)))) 0))
         (variable (and (not (string-null? name)) (module-variable %user (string->symbol name))))
         (shown (and variable (variable-bound? variable)
                     (false-if-exception (inspect-describe name (variable-ref variable) detail)))))
    (if shown
        (report `(id . ,id) '(status . "ok") '(found . #t) `(text . ,shown))
        (report `(id . ,id) '(status . "ok") '(found . #f)))))
