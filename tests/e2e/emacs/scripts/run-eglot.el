;;; run-eglot.el --- the Emacs tier with eglot (Debian's elpa-eglot) and its default settings  -*- lexical-binding: t -*-
(require 'eglot)
(require 'daytona-test-harness)

;; the one thing a user configures: which program serves these modes (one server, as eglot users write it)
(add-to-list 'eglot-server-programs `((python-mode sh-mode js-mode) . ,daytona-test-command))

(defun daytona-test-eglot-start ()
  (unless (eglot-current-server)
    (call-interactively #'eglot))
  (daytona-test-wait "eglot connection" 60
                     (lambda () (let ((server (eglot-current-server)))
                                  (and server (jsonrpc-running-p server) (eglot--managed-mode))))))

(defun daytona-test-eglot-run ()
  ;; the code action of kind source.daytona.run at point (no region: "Run file in … sandbox")
  (eglot-code-actions (point-min) nil "source.daytona.run" t))

(daytona-test-run-scenario #'daytona-test-eglot-start #'daytona-test-eglot-run)
(let ((server (eglot-current-server)))
  (when server (eglot-shutdown server)))
(kill-emacs 0)
