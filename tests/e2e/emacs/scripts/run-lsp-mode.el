;;; run-lsp-mode.el --- the Emacs tier with lsp-mode (Debian's elpa-lsp-mode) and its default settings  -*- lexical-binding: t -*-
(require 'lsp-mode)
(require 'daytona-test-harness)

;; what a user configures: the server as an lsp-mode client, and the project folder (lsp-mode asks for it otherwise)
(lsp-register-client
 (make-lsp-client :new-connection (lsp-stdio-connection daytona-test-command)
                  :activation-fn (lsp-activate-on "python" "shellscript" "javascript")
                  :server-id 'daytona-lsp))
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
