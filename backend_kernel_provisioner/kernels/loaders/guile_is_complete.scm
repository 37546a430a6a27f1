;;; is_complete for the Scheme (Guile) session kernel (loaded by guile_loader.scm, which answers an
;;; `is_complete` request with the verdict): Guile's reader reads the cell's forms without evaluating
;;; them; running out of input inside a form, a string or a block comment means the cell ends early.
(define (is-complete-status text)
  (catch #t
    (lambda ()
      (let ((port (open-input-string text)))
        (let loop ()
          (unless (eof-object? (read port))
            (loop))))
      "complete")
    (lambda (key . args)
      (let ((message (describe key args)))
        (if (or (string-contains message "end of input") (string-contains message "unterminated"))
            "incomplete"
            "invalid")))))
