;;; run-lsp-mode.el --- the Emacs tier with lsp-mode (Debian's elpa-lsp-mode) and its default settings  -*- lexical-binding: t -*-
(require 'lsp-mode)
(require 'daytona-test-harness)

;; what a user configures: the server as an lsp-mode client, the README's fix, the project folder (lsp-mode asks for it)
(lsp-register-client
 (make-lsp-client :new-connection (lsp-stdio-connection daytona-test-command)
                  :activation-fn (lsp-activate-on "python" "shellscript" "javascript")
                  :server-id 'daytona-lsp))

;; the README's fix for lsp-mode without its fix of May 2026 (Debian's 8.0.0, emacs-lsp/lsp-mode#4323): the answer to
;; a request lsp-mode waits for drops the messages that came in the same read (a short run's result)
(defvar daytona-lsp-answered nil)
(defun daytona-lsp-dispatch (dispatch &rest args)
  (unless (eq (catch 'lsp-done (apply dispatch args) 'dispatched) 'dispatched) (setq daytona-lsp-answered t)))
(defun daytona-lsp-filter (filter &rest args)
  (let ((daytona-lsp-answered nil))
    (apply filter args)
    (when daytona-lsp-answered (throw 'lsp-done '_))))
(advice-add 'lsp--parser-on-message :around #'daytona-lsp-dispatch)
(advice-add 'lsp--create-filter-function :filter-return (lambda (f) (apply-partially #'daytona-lsp-filter f)))

(lsp-workspace-folders-add (directory-file-name daytona-test-dir))

(defun daytona-test-lsp-start ()
  (unless (bound-and-true-p lsp-mode)
    (lsp))
  (daytona-test-wait "lsp-mode connection" 60
                     (lambda () (and (bound-and-true-p lsp-mode)
                                     (cl-some (lambda (w) (eq (lsp--workspace-status w) 'initialized))
                                              (lsp-workspaces))))))

(defun daytona-test-lsp-run ()
  ;; the code action at point (no region: "Run file in … sandbox")
  (let ((action (cl-find-if (lambda (a) (string-match-p "^Run file in" (lsp:code-action-title a)))
                            (lsp-code-actions-at-point))))
    (unless action (daytona-test-fail "no \"Run file\" code action in %s" (buffer-name)))
    (lsp-execute-code-action action)))

(daytona-test-run-scenario #'daytona-test-lsp-start #'daytona-test-lsp-run)
(lsp-workspace-shutdown (car (lsp-workspaces)))
(kill-emacs 0)
