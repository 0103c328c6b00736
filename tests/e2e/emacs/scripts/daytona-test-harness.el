;;; daytona-test-harness.el --- helpers shared by the Emacs e2e scripts  -*- lexical-binding: t -*-
;; Loaded by `emacs --batch -l harness.el -l <client>.el'. The scripts drive a real Emacs (eglot or lsp-mode with
;; their default settings) against the real server and assert on what Emacs shows: the echo area / *Messages*, and
;; flymake's diagnostics. Waiting is on predicates while Emacs processes the server's output; nothing sleeps.
;; Environment: DAYTONA_TEST_DIR (the project), DAYTONA_LSP_COMMAND (the server command, words separated by tabs).

(package-activate-all)  ; what an interactive Emacs does at startup: the Debian elpa packages and their autoloads
(require 'cl-lib)
(require 'flymake)

(defvar daytona-test-dir (file-name-as-directory (getenv "DAYTONA_TEST_DIR")))
(defvar daytona-test-command (split-string (getenv "DAYTONA_LSP_COMMAND") "\t"))

(defun daytona-test-log (fmt &rest args)
  (princ (concat (apply #'format fmt args) "\n") #'external-debugging-output))

(defun daytona-test-messages ()
  "What Emacs has shown in the echo area so far (the *Messages* buffer)."
  (with-current-buffer (messages-buffer)
    (buffer-substring-no-properties (point-min) (point-max))))

(defun daytona-test-fail (fmt &rest args)
  (daytona-test-log "FAIL: %s" (apply #'format fmt args))
  (daytona-test-log "---- *Messages* ----\n%s\n--------------------" (daytona-test-messages))
  (dolist (buffer (buffer-list))  ; the clients' logs: events, the server's stderr
    (when (string-match-p "EGLOT\\|lsp-log\\|stderr" (buffer-name buffer))
      (daytona-test-log "---- %s ----\n%s" (buffer-name buffer)
                        (with-current-buffer buffer (buffer-substring-no-properties (point-min) (point-max))))))
  (kill-emacs 1))

(defun daytona-test-check (ok fmt &rest args)
  (unless ok (apply #'daytona-test-fail fmt args))
  (daytona-test-log "ok: %s" (apply #'format fmt args)))

(defun daytona-test-wait (what seconds predicate)
  "Process server output until PREDICATE holds; fail saying WHAT after SECONDS.
Each round also runs `post-command-hook', as Emacs' command loop does between a user's commands (flymake starts
its checks from there)."
  (let ((deadline (+ (float-time) seconds)))
    (while (and (not (funcall predicate)) (< (float-time) deadline))
      (run-hooks 'post-command-hook)
      (accept-process-output nil 0.05))
    (unless (funcall predicate)
      (daytona-test-fail "no %s within %s s" what seconds))))

(defun daytona-test-shown-since (start regexp)
  "Non-nil when the messages shown after position START of *Messages* match REGEXP."
  (string-match-p regexp (substring (daytona-test-messages) (min start (length (daytona-test-messages))))))

(defun daytona-test-open (name)
  "Visit NAME of the test project; return its buffer."
  (find-file (expand-file-name name daytona-test-dir))
  (current-buffer))

(defun daytona-test-error-lines ()
  "1-based lines of the current buffer's flymake error diagnostics."
  (cl-loop for d in (flymake-diagnostics)
           when (memq (flymake-diagnostic-type d) '(:error eglot-error)) ; lsp-mode's, eglot's
           collect (line-number-at-pos (flymake-diagnostic-beg d))))

(defun daytona-test-timed (thunk)
  "Call THUNK; return (seconds . error-or-nil): how long the client's request held Emacs, and what it signalled."
  (let ((start (float-time)) (err nil))
    (condition-case e (funcall thunk) (error (setq err e)))
    (cons (- (float-time) start) err)))

(defun daytona-test-late-reader (thunk)
  "Call THUNK; after each message it sends to a process, Emacs reads nothing for 2 s, as on a busy machine.
The server's answer and whatever the run sent after it (a short run: all of it) then reach the client in one read."
  (let ((stall (lambda (&rest _) (call-process "sleep" nil nil nil "2")))) ; a child's wait: no process output is read
    (advice-add 'process-send-string :after stall)
    (unwind-protect (funcall thunk)
      (advice-remove 'process-send-string stall))))

(defun daytona-test-run-scenario (start-client run-action)
  "The scenario of the tier, for one client: START-CLIENT in a buffer; RUN-ACTION runs the file's code action."
  (let ((mark 0))
    ;; 1. a file from the code action: its output (42) appears in the echo area
    (daytona-test-open "answer.py")
    (funcall start-client)
    (setq mark (length (daytona-test-messages)))
    (let ((held (daytona-test-timed run-action)))
      (daytona-test-check (null (cdr held)) "running answer.py from the code action signals nothing (%S)" (cdr held)))
    (daytona-test-wait "result of answer.py" 60
                       (lambda () (daytona-test-shown-since mark "answer\\.py: exit 0 in [0-9]+ ms\n42")))
    (daytona-test-check t "answer.py's result and its output 42 appear in the echo area")
    ;; 2. a runtime error: the diagnostic lands on the line that failed (a .sh file in a server that started for .py)
    (daytona-test-open "fails.sh")
    (funcall start-client)
    (setq mark (length (daytona-test-messages)))
    (let ((held (daytona-test-timed (lambda () (daytona-test-late-reader run-action)))))
      (daytona-test-check (null (cdr held)) "running fails.sh, read late, signals nothing (%S)" (cdr held)))
    (daytona-test-wait "error diagnostic and result of fails.sh" 60
                       (lambda () (and (daytona-test-error-lines) (daytona-test-shown-since mark "fails\\.sh: exit"))))
    (daytona-test-check (equal (daytona-test-error-lines) '(3)) "the error diagnostic is on line 3 (got %S)"
                        (daytona-test-error-lines))
    (daytona-test-check (daytona-test-shown-since mark "fails\\.sh: exit 127")
                        "the echo area says fails.sh exited 127")
    ;; 3. a 15 s program: the request returns at once (no "Timed out"), the result arrives when the run ends
    (daytona-test-open "slow.py")
    (funcall start-client)
    (setq mark (length (daytona-test-messages)))
    (let ((held (daytona-test-timed run-action)))
      (daytona-test-check (null (cdr held)) "running slow.py signals nothing (%S)" (cdr held))
      (daytona-test-check (< (car held) 5) "the code action held Emacs %.1f s (< 5 s)" (car held)))
    (daytona-test-wait "result of slow.py" 60
                       (lambda () (daytona-test-shown-since mark "slow\\.py: exit 0 in [0-9]+ ms\nbegun\nslept 15 s")))
    (daytona-test-check (not (daytona-test-shown-since mark "[Tt]imed out"))
                        "the 15 s run ends with its output and no timeout error")))

(provide 'daytona-test-harness)
;;; daytona-test-harness.el ends here
